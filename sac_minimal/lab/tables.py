"""A grid's table: world-level tests, Holm's adjustment, verdicts, and the files ``table.json`` and ``table.csv``.

The world is the unit of replication. For each comparison and h, the seeds of each variant in a world are averaged
and the per-world differences are tested across worlds (:func:`sac_minimal.lab.significance.mean_with_interval`: mean,
95 % interval, t, p); a trend over h is the per-world least-squares slope of the difference, tested the same way.
The tests that the declared hypotheses name are a table's *family*: their p-values are Holm-adjusted together
(:func:`sac_minimal.lab.significance.holm`), each gets the table's simultaneous (Bonferroni) 95 % interval, and every
hypothesis is judged from its adjusted test (:func:`sac_minimal.lab.hypotheses.judge`). The table's other tests (a
comparison at an h no hypothesis names) are *exploratory*: shown with their own 95 % interval and raw p-value, never
with a significance word, so that adding a row or an h to a table never dilutes the tests declared before it ran.

``grid.json`` (the experiment, written before the first run by :mod:`sac_minimal.lab.experiments`) is read and
checked here; :func:`merge_grid` writes ``table.json`` and ``table.csv`` from it and the run files
(:mod:`sac_minimal.lab.runs`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sac_minimal.files import read_json, remove_stale_temporaries, write_json_atomic, write_text_atomic
from sac_minimal.lab.config import TrainConfig
from sac_minimal.lab.hypotheses import METRIC, comparison_key, judge
from sac_minimal.lab.runs import REPORTED_METRICS, RunResult, check_evaluation, load_runs, run_name
from sac_minimal.lab.significance import holm, mean_with_interval, significance_word, simultaneous_interval, slope
from sac_minimal.lab.variants import EXPERIMENTS, VARIANTS, Experiment

PAPER_TABLE1 = {
    "SSAD": (72.2, 69.7, 65.2, 56.5, 45.5, 31.0, 17.0, 51.0),
    "SSAD+SAC": (75.5, 73.7, 69.1, 61.1, 51.4, 37.1, 22.8, 55.8),
}
"""The paper's Table I: THUMOS14 test mAP (%) at tIoU 0.1..0.7 and their mean (Yang et al. 2022)."""
EXPLORATORY = "exploratory"
"""The word of a test that no declared hypothesis names: reported, never adjusted nor called significant."""
PAPER_GAIN = round((PAPER_TABLE1["SSAD+SAC"][-1] - PAPER_TABLE1["SSAD"][-1]) / 100, 6)
"""SAC's claimed gain over SSAD in Avg mAP 0.1:0.7 on THUMOS14, as a fraction (55.8 - 51.0 points)."""


def grid_definition(experiment: Experiment, base: TrainConfig, worlds: Sequence[int],
                    heterogeneities: Sequence[float], seeds: Sequence[int], left_out: dict | None = None) -> dict:
    """What ``grid.json`` records: the experiment, its hypotheses and its design, before any run; on a dataset that
    is not a surrogate, ``left_out`` names the rows left out and why (:meth:`Experiment.left_out_on_fixed_data`)."""
    if left_out:
        experiment = experiment.without(left_out)
    return {**({"left_out": dict(left_out)} if left_out else {}),
        "title": experiment.title,
        "variants": [dataclasses.asdict(VARIANTS[name]) for name in experiment.variants],
        "comparisons": [list(pair) for pair in experiment.comparisons],
        "trends": [list(pair) for pair in experiment.trends],
        "primary": [list(pair) for pair in experiment.primary],
        "hypotheses": [hypothesis.to_dict() for hypothesis in experiment.hypotheses],
        "metric": METRIC,
        "worlds": [int(world) for world in worlds], "heterogeneities": [float(h) for h in heterogeneities],
        "seeds": [int(seed) for seed in seeds], "development_worlds": list(experiment.development_worlds),
        "base": base.to_dict(),
    }


GRID_FIELDS = {"title": str, "variants": list, "comparisons": list, "trends": list, "primary": list,
               "hypotheses": list, "metric": str, "worlds": list, "heterogeneities": list, "seeds": list,
               "development_worlds": list, "base": dict}
"""The fields of ``grid.json`` and their types."""


def read_grid(results_dir: Path) -> dict:
    """A record's ``grid.json``, with a one-line error naming what is malformed (a missing field, a field of the
    wrong type, an empty design)."""
    path = Path(results_dir) / "grid.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run the experiment first")
    grid = read_json(path, "grid file")
    if not isinstance(grid, dict):
        raise ValueError(f"{path} is not a grid (a JSON object expected, got {type(grid).__name__})")
    problems = [f"{name} missing" for name in GRID_FIELDS if name not in grid]
    problems += [f"{name} is a {type(grid[name]).__name__}, not a {kind.__name__}" for name, kind in GRID_FIELDS.items()
                 if name in grid and not isinstance(grid[name], kind)]
    if not problems:
        problems += [f"{name} is empty" for name in ("variants", "worlds", "heterogeneities", "seeds") if not grid[name]]
        problems += ["variants must be objects with a name" for variant in grid["variants"][:1]
                     if not isinstance(variant, dict) or not isinstance(variant.get("name"), str)]
        problems += [f"{name} must be whole numbers" for name in ("worlds", "seeds")
                     if not all(isinstance(value, int) and not isinstance(value, bool) for value in grid[name])]
        problems += ["heterogeneities must be numbers" for value in grid["heterogeneities"][:1]
                     if not all(isinstance(h, (int, float)) and not isinstance(h, bool) for h in grid["heterogeneities"])]
    if problems:
        raise ValueError(f"{path} is malformed ({'; '.join(problems)}); it was edited or damaged: restore it "
                         "(git checkout) or record the grid again")
    return grid


def check_grid(grid: dict, runs: Sequence[RunResult], where: str = "grid.json") -> None:
    """``grid.json`` must be the experiment defined in code (:data:`~sac_minimal.lab.variants.EXPERIMENTS`, found by its
    title) at the recorded design (worlds, h, seeds), and every run must be the run that experiment defines for its
    cell on the recorded base config: a flipped hypothesis, a changed primary comparison, a dropped variant or a
    forged base config is an error naming the fields that differ."""
    named = [experiment for experiment in EXPERIMENTS.values() if experiment.title == grid["title"]]
    if not named:
        raise ValueError(f"{where} names the experiment {grid['title']!r}, which is not defined in "
                         "sac_minimal.lab.variants.EXPERIMENTS; add your experiment there (under any key) so that its "
                         "record can be checked against its definition")
    try:
        base = TrainConfig.from_dict(grid["base"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: its base config is malformed ({error})") from None
    left_out = grid.get("left_out") or None
    if left_out is not None and (left_out != named[0].left_out_on_fixed_data()
                                 or any(run.dataset.get("kind") == "synthetic" for run in runs)):
        raise ValueError(f"{where} leaves out {sorted(left_out)}, but rows are left out only on a dataset that is "
                         "not a surrogate, and only those that need the surrogate's truth")
    expected = grid_definition(named[0], named[0].base_config(base), grid["worlds"], grid["heterogeneities"],
                               grid["seeds"], left_out)
    recorded = {**grid, "base": base.to_dict()}  # a base recorded before configs named their loss, read as trained
    differing = [name for name in expected if json.dumps(expected[name], sort_keys=True)
                 != json.dumps(recorded.get(name), sort_keys=True)]
    if differing:
        raise ValueError(f"{where} is not the experiment the code defines (differs in: {', '.join(differing)}); it "
                         "was edited after the grid ran, or the definition changed since: restore it, or record the "
                         "grid again")
    cells = {"variant": [variant["name"] for variant in grid["variants"]], "world": grid["worlds"], "h": grid["heterogeneities"],
             "seed": grid["seeds"]}
    for run in runs:
        name = run.extra.get("variant", run.config.model)
        label = run_name(name, run.config.world, run.config.heterogeneity, run.config.seed)
        outside = [f"{key} {value:g} is not among {where}'s {cells[key]}" if key != "variant" else
                   f"variant {value!r} is not one of {where}'s rows" for key, value in
                   (("variant", name), ("world", run.config.world), ("h", run.config.heterogeneity),
                    ("seed", run.config.seed)) if value not in cells[key]]
        if outside:
            raise ValueError(f"run {label} is not a cell of the grid ({'; '.join(outside)}): a run file that the "
                             "grid does not define was added to the record; remove it")
        check_evaluation(run, label)
        config = VARIANTS[name].config(base, run.config.seed, run.config.world, run.config.heterogeneity)
        if config != run.config:
            raise ValueError(f"run {run_name(name, run.config.world, run.config.heterogeneity, run.config.seed)} "
                             f"was not trained as {where} says ({'; '.join(config.differences(run.config))})")


def _h_key(heterogeneity: float) -> str:
    return f"{heterogeneity:g}"


def world_means(runs: Sequence[RunResult], grid: dict, metrics: Sequence[str] = REPORTED_METRICS) -> dict:
    """``{variant: {h: {world: {"per_seed": {metric: [...]}, "mean": {metric: value}}}}}`` (h and world as
    strings), checking that every cell of the grid has a run."""
    found: dict = {}
    for run in runs:
        config = run.config
        found[run.extra.get("variant", config.model), config.world, config.heterogeneity, config.seed] = run
    names = [variant["name"] for variant in grid["variants"]]
    missing = [run_name(name, world, h, seed) for name in names for h in grid["heterogeneities"]
               for world in grid["worlds"] for seed in grid["seeds"] if (name, world, h, seed) not in found]
    if missing:
        raise ValueError(f"incomplete grid: {len(missing)} runs missing ({', '.join(missing[:6])}"
                         f"{', ...' if len(missing) > 6 else ''}); run the remaining cells or shards, then merge")
    cells: dict = {}
    for name in names:
        for h in grid["heterogeneities"]:
            for world in grid["worlds"]:
                per_seed = {metric: [found[name, world, h, seed].evaluation[metric] for seed in grid["seeds"]]
                            for metric in metrics}
                cells.setdefault(name, {}).setdefault(_h_key(h), {})[str(world)] = {
                    "per_seed": per_seed, "mean": {metric: float(np.mean(values)) for metric, values in
                                                   per_seed.items()}}
    return cells


def replication_unit(grid: dict) -> str:
    """``world`` when the grid spans several worlds (the unit conclusions are tested across), ``seed`` when it has
    one dataset (real THUMOS14, or a single world): then the seeds are the units, paired."""
    return "world" if len(grid["worlds"]) > 1 else "seed"


def world_tests(cells: dict, grid: dict, metric: str = METRIC) -> dict:
    """Every test of a table: each comparison at each h and each trend over h, from the world means (or, with one
    world, from the matched seeds: :func:`replication_unit`); p-values Holm-adjusted together.
    ``{comparison_key: {"baseline", "candidate", "heterogeneity", "world_differences", "n", "mean", "low", "high",
    "t", "dof", "p", "mdd", "p_holm", "word", "low_adjusted", "high_adjusted", "excludes_paper_gain"}}``
    (differences in mAP fractions; ``world_differences`` holds one per unit). ``low`` and ``high`` are each test's
    own 95 % interval; ``low_adjusted`` and ``high_adjusted`` the table's simultaneous (Bonferroni) 95 % intervals,
    the level of the Holm verdicts (:func:`~sac_minimal.lab.significance.simultaneous_interval`);
    ``excludes_paper_gain``: whether the simultaneous interval lies wholly below the paper's claimed gain
    (:data:`PAPER_GAIN`), i.e. a gain of the paper's size is ruled out here. Only the tests the grid's hypotheses
    name are adjusted (module docstring); the others are :data:`EXPLORATORY`, with NaN adjusted values."""
    worlds = [str(world) for world in grid["worlds"]]

    def differences(baseline, candidate, h):
        if replication_unit(grid) == "seed":
            values = [cells[name][_h_key(h)][worlds[0]]["per_seed"][metric] for name in (candidate, baseline)]
            return [first - second for first, second in zip(*values)]
        return [cells[candidate][_h_key(h)][world]["mean"][metric] - cells[baseline][_h_key(h)][world]["mean"][metric]
                for world in worlds]

    tests = {}
    for baseline, candidate in grid["comparisons"]:
        for h in grid["heterogeneities"]:
            values = differences(baseline, candidate, h)
            tests[comparison_key(baseline, candidate, h)] = {"baseline": baseline, "candidate": candidate,
                                                       "heterogeneity": h, "world_differences": values,
                                                       **mean_with_interval(values)}
    for baseline, candidate in grid.get("trends", []) if len(grid["heterogeneities"]) > 1 else []:
        per_h = [differences(baseline, candidate, h) for h in grid["heterogeneities"]]
        slopes = [slope(grid["heterogeneities"], [row[index] for row in per_h]) for index in range(len(per_h[0]))]
        tests[comparison_key(baseline, candidate, None)] = {"baseline": baseline, "candidate": candidate,
                                                      "heterogeneity": None, "world_differences": slopes,
                                                      **mean_with_interval(slopes)}
    named = {comparison_key(entry["baseline"], entry["candidate"], entry["heterogeneity"])
             for entry in grid.get("hypotheses", [])} or set(tests)  # no hypotheses: every test is in the family
    family = [key for key in tests if key in named]
    size = sum(tests[key]["testable"] for key in family)
    for key, adjusted in zip(family, holm([tests[key]["p"] for key in family])):
        test = tests[key]
        test["p_holm"], test["word"] = adjusted, significance_word(adjusted)
        test["low_adjusted"], test["high_adjusted"] = (
            simultaneous_interval(test["world_differences"], size) if test["testable"] else (math.nan, math.nan))
        test["excludes_paper_gain"] = bool(test["high_adjusted"] < PAPER_GAIN)
    for key in tests.keys() - set(family):
        tests[key].update(p_holm=math.nan, word=EXPLORATORY, low_adjusted=math.nan, high_adjusted=math.nan,
                          excludes_paper_gain=None)
    return tests


def exploratory_tests(table: dict, comparisons: Sequence[tuple[str, str]],
                      heterogeneities: Sequence[float] = (1.0,)) -> dict:
    """Tests a recorded table does not hold, made from its cells as :func:`world_tests` makes its own, and marked
    :data:`EXPLORATORY` (no Holm adjustment, no verdict): e.g. the paper's comparison of SSAD+SAC with plain SSAD
    where the table's hypotheses compare it with the capacity-matched SSAD+Θ instead. ``comparisons``: (baseline,
    candidate) pairs of the table's rows."""
    grid = {"worlds": table["worlds"], "seeds": table["seeds"], "comparisons": list(comparisons),
            "heterogeneities": list(heterogeneities)}
    tests = world_tests(table["cells"], grid)
    for test in tests.values():
        test.update(p_holm=math.nan, word=EXPLORATORY, low_adjusted=math.nan, high_adjusted=math.nan,
                    excludes_paper_gain=None)
    return tests


def primary_tests(grid: dict, tests: dict) -> list[str]:
    """The keys of a table's primary tests: each primary comparison at every h where a hypothesis names it (a
    comparison at an h no hypothesis names is exploratory, whatever its pair), or at every h when none does."""
    keys = []
    for baseline, candidate in grid["primary"]:
        at_h = [comparison_key(baseline, candidate, h) for h in grid["heterogeneities"]]
        named = [key for key in at_h if tests[key]["word"] != EXPLORATORY]
        keys += named or at_h
    return keys


def summarize_grid(runs: Sequence[RunResult], grid: dict) -> dict:
    """The table of a grid (see the module docstring): world means, each variant's mean and spread over worlds at
    every h, every test with raw and Holm-adjusted p-values, the primary comparisons and the judged hypotheses.
    A grid that declares no hypotheses is refused: they must be stated before the results are seen."""
    if not grid.get("hypotheses"):
        raise ValueError("this grid declares no hypotheses; a record states what it tests before it runs "
                         "(sac_minimal.lab.variants.EXPERIMENTS), so it cannot be summarised")
    if len(grid["worlds"]) < 2 and len(grid["seeds"]) < 2:
        raise ValueError(f"tests need at least two worlds or, in one world, two seeds; got worlds {grid['worlds']} "
                         f"and seeds {grid['seeds']}")
    cells = world_means(runs, grid)
    variants = {}
    for name, by_h in cells.items():
        variants[name] = {}
        for h, by_world in by_h.items():
            columns = {metric: [entry["mean"][metric] for entry in by_world.values()] if len(by_world) > 1 else
                       next(iter(by_world.values()))["per_seed"][metric] for metric in REPORTED_METRICS}
            variants[name][h] = {"mean": {metric: float(np.mean(values)) for metric, values in columns.items()},
                                 "std_worlds": {metric: float(np.std(values, ddof=1)) for metric, values in
                                                columns.items()}}
    tests = world_tests(cells, grid)
    hypotheses = []
    for hypothesis in grid["hypotheses"]:  # a grid run at fewer h values than designed cannot judge them all
        key = comparison_key(hypothesis["baseline"], hypothesis["candidate"], hypothesis["heterogeneity"])
        verdict = judge(hypothesis, tests[key]) if key in tests else "not tested in this grid"
        hypotheses.append({**hypothesis, "test": key, "verdict": verdict})
    summary = {"metric": grid["metric"], "unit": replication_unit(grid), "worlds": grid["worlds"],
            "heterogeneities": grid["heterogeneities"],
            "seeds": grid["seeds"], "development_worlds": grid["development_worlds"], "cells": cells,
            "variants": variants, "tests": tests, "hypotheses": hypotheses,
            "primary": primary_tests(grid, tests)}
    if {"ssad", "privileged"} <= set(cells) and len(grid["worlds"]) > 1:
        summary["shares"] = shares_recovered(cells, grid)
    if {"ssad", "privileged_window"} <= set(cells) and len(grid["worlds"]) > 1:
        summary["shares_window"] = shares_recovered(cells, grid, control="privileged_window")
    return summary


CONTROLS = ("ssad", "ssad_theta", "headroom", "privileged", "privileged_window", "privileged_video", "reference",
            "light_theta_baseline")
"""Rows that are not attention models: no share of a control's gain is computed for them."""


def shares_recovered(cells: dict, grid: dict, metric: str = METRIC, control: str = "privileged") -> dict:
    """``{variant: {h: {"share", "low", "high", "n"}}}``: the share of a privileged control's gain over SSAD (per
    step, or ``privileged_window``: per window, the granularity of SAC's modality attention) that each attention
    model's gain over SSAD recovers, per h where the control gains
    (:func:`~sac_minimal.lab.significance.share_recovered`, worlds as the unit)."""
    from sac_minimal.lab.significance import share_recovered

    worlds = [str(world) for world in grid["worlds"]]

    def gains(name, h):
        return [cells[name][_h_key(h)][world]["mean"][metric] - cells["ssad"][_h_key(h)][world]["mean"][metric]
                for world in worlds]

    return {name: {_h_key(h): share_recovered(gains(name, h), gains(control, h))
                   for h in grid["heterogeneities"] if h > 0}
            for name in cells if name not in CONTROLS}


def condition_differences(runs: Sequence[RunResult], baseline: str, candidate: str, heterogeneity: float) -> dict:
    """``{condition: mean_with_interval(...)}``: where ``candidate`` gains or loses against ``baseline`` at one h,
    per video condition of the surrogate. Each run's ``map_by_condition``
    (:func:`~sac_minimal.lab.diagnostics.map_by_condition`) is averaged over a world's seeds, and the per-world
    differences are summarised with their 95 % interval (worlds as the unit; not adjusted: a reading of where the
    table's effect comes from, not one of its tests). Raises ``ValueError`` when a run has no per-condition mAP (a
    record made before it was written, or real data)."""
    by_world: dict = {}
    for run in runs:
        name, config = run.extra.get("variant", run.config.model), run.config
        if name not in (baseline, candidate) or config.heterogeneity != heterogeneity:
            continue
        if "map_by_condition" not in run.extra:
            raise ValueError(f"run {run_name(name, config.world, config.heterogeneity, config.seed)} records no "
                             "mAP per condition (made before it was written, or on real data)")
        for condition, value in run.extra["map_by_condition"].items():
            by_world.setdefault(condition, {}).setdefault(config.world, {}).setdefault(name, []).append(value)
    result = {}
    for condition, worlds in by_world.items():
        paired = [np.mean(entry[candidate]) - np.mean(entry[baseline]) for entry in worlds.values()
                  if baseline in entry and candidate in entry]
        if len(paired) >= 2:
            result[condition] = mean_with_interval(paired)
    return result


def variant_configs(runs: Sequence[RunResult]) -> dict:
    """Each variant's config (seed, world and h set to their defaults), checking that all its runs share it."""
    configs: dict = {}
    for run in runs:
        name = run.extra.get("variant", run.config.model)
        config = run.config.replace(seed=0, world=0, heterogeneity=1.0)
        if name in configs and configs[name] != config.to_dict():
            differences = TrainConfig.from_dict(configs[name]).differences(config)
            raise ValueError(f"the runs of {name} were trained differently ({'; '.join(differences)}, run "
                             f"{run_name(name, run.config.world, run.config.heterogeneity, run.config.seed)}); merge "
                             "only shards of the same command")
        configs[name] = config.to_dict()
    return configs


def run_datasets(runs: Sequence[RunResult]) -> dict:
    """The dataset of every (world, h of the data), ``{"w<world>_h<h>": dataset}``, checking that all runs on it
    agree (the headroom control's data is its world at h = 0: :meth:`~sac_minimal.lab.config.TrainConfig.data_heterogeneity`)."""
    datasets: dict = {}
    for run in runs:
        key = f"w{run.config.world}_h{run.config.data_heterogeneity:g}"
        if key in datasets and datasets[key] != run.dataset:
            raise ValueError(f"the runs of world {run.config.world}, h {run.config.data_heterogeneity:g} were trained "
                             "on different datasets; merge only shards of the same command on the same data")
        datasets[key] = run.dataset
    return datasets


def build_table(results_dir: str | Path) -> dict:
    """The table ``merge_grid`` writes, computed from the record's ``grid.json`` and run files."""
    results_dir = Path(results_dir)
    grid = read_grid(results_dir)
    runs = load_runs(results_dir)
    if not runs:
        raise FileNotFoundError(f"no run files under {results_dir / 'runs'}; no cell of the grid has finished")
    names = [variant["name"] for variant in grid["variants"]]
    runs = [run for run in runs if run.extra.get("variant", run.config.model) in names]
    configs, datasets = variant_configs(runs), run_datasets(runs)  # every run of a variant trained alike
    check_grid(grid, runs, str(results_dir / "grid.json"))
    table = summarize_grid(runs, grid)
    table["title"] = grid.get("title", "")
    table["labels"] = {variant["name"]: variant["label"] or variant["name"] for variant in grid["variants"]}
    table["configs"] = configs
    table["datasets"] = datasets
    table["provenance"] = distinct_provenance(runs)
    table["wall_seconds"] = float(sum(run.seconds for run in runs))
    if grid.get("left_out"):
        table["left_out"] = grid["left_out"]
    return table


def merge_grid(results_dir: str | Path) -> dict:
    """Join the run files of ``results_dir`` into ``table.json`` and ``table.csv`` (:func:`build_table`)."""
    results_dir = Path(results_dir)
    table = build_table(results_dir)
    remove_stale_temporaries(results_dir)
    write_json_atomic(results_dir / "table.json", table)
    write_text_atomic(results_dir / "table.csv", table_csv(table))
    return table


def distinct_provenance(runs: Sequence[RunResult]) -> list[dict]:
    """The distinct provenances of some runs (all fields but the date), each with the dates of its runs
    (``first_date``, ``last_date``) and how many runs it covers."""
    groups: dict = {}
    for run in runs:
        entry = dict(run.extra.get("provenance", {}))
        date = entry.pop("date", "")
        key = json.dumps(entry, sort_keys=True)
        group = groups.setdefault(key, {**entry, "first_date": date, "last_date": date, "runs": 0})
        group["first_date"], group["last_date"] = min(group["first_date"], date), max(group["last_date"], date)
        group["runs"] += 1
    return list(groups.values())


def table_csv(table: dict) -> str:
    """``variant, h, world, seed, metrics...`` rows of a table."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["variant", "h", "world", "seed", *REPORTED_METRICS])
    for name, by_h in table["cells"].items():
        for h, by_world in by_h.items():
            for world, entry in by_world.items():
                for position, seed in enumerate(table["seeds"]):
                    writer.writerow([name, h, world, seed, *(f"{entry['per_seed'][metric][position]:.6f}"
                                                             for metric in REPORTED_METRICS)])
    return buffer.getvalue()


def format_table(table: dict, metric: str = METRIC) -> str:
    """A record's table as text (the command line's summary; the book draws it as HTML): each variant's mean and
    spread over worlds at every h, then every test (effect in points, 95 % interval, raw and Holm-adjusted p),
    then the verdict on every hypothesis."""
    from sac_minimal.lab.significance import format_p

    labels = table.get("labels", {})
    lines = [(f"{table.get('title', '')}: {metric} mAP (%), mean over {len(table['worlds'])} worlds "
             f"({', '.join(map(str, table['worlds']))}) of {len(table['seeds'])} seeds each; +- sd over worlds")]
    for h in table["heterogeneities"]:
        cells = [f"{labels.get(name, name)} {100 * entry[f'{h:g}']['mean'][metric]:.1f}+-"
                 f"{100 * entry[f'{h:g}']['std_worlds'][metric]:.1f}" for name, entry in table["variants"].items()]
        lines.append(f"  h={h:g}: " + "; ".join(cells))
    family = sum(test["word"] != EXPLORATORY for test in table["tests"].values())
    lines.append("tests across worlds (candidate - baseline, points; Holm over the "
                 f"{family} tests its hypotheses name, the other {len(table['tests']) - family} exploratory):")
    for key, test in table["tests"].items():
        marker = " (primary)" if key in table.get("primary", []) else ""
        lines.append(f"  {key}{marker}: {100 * test['mean']:+.2f} [{100 * test['low']:+.2f}, {100 * test['high']:+.2f}]"
                     f", p {format_p(test['p'])}, Holm p {format_p(test['p_holm'])} ({test['word']})")
    lines.append("hypotheses:")
    lines += [f"  {entry['name']} ({entry['test']}): {entry['statement']} -> {entry['verdict']}"
              for entry in table["hypotheses"]]
    return "\n".join(lines)


def interval_text(test: dict, adjusted: bool = False) -> str:
    """A test's 95 % interval in points, as a table shows it: its own, or with ``adjusted`` the table's simultaneous
    one (the level of a Holm verdict); ``"n/a"`` where there is none (differences without spread, or the
    simultaneous interval of an exploratory test).

    >>> test = {"low": -0.004, "high": 0.0286, "low_adjusted": float("nan"), "high_adjusted": float("nan")}
    >>> interval_text(test), interval_text(test, adjusted=True)
    ('[-0.40, +2.86]', 'n/a')
    """
    low, high = (test["low_adjusted"], test["high_adjusted"]) if adjusted else (test["low"], test["high"])
    if not test.get("testable", True) or not (math.isfinite(low) and math.isfinite(high)):
        return "n/a"
    return f"[{100 * low:+.2f}, {100 * high:+.2f}]"


def describe_test(test: dict) -> str:
    """One test of a record in words, from its numbers: a test of the table's family with the table's simultaneous
    interval (Bonferroni's over the family), ``"+1.23 points (simultaneous 95 % interval -0.90 to +3.36; not
    significant after Holm's adjustment)"``; an exploratory one with its own, ``"+1.23 points (95 % interval -0.40 to
    +2.86; exploratory, not adjusted)"`` (a trend: points per unit of h). Holm's step-down test is sharper than the
    simultaneous interval, so a significant test whose interval still reaches 0 says so, rather than leave the two to
    look contradictory.

    >>> test = {"heterogeneity": 1.0, "mean": 0.031, "low_adjusted": -0.002, "high_adjusted": 0.064,
    ...         "word": "significant"}
    >>> describe_test(test)  # doctest: +NORMALIZE_WHITESPACE
    "+3.10 points (simultaneous 95 % interval -0.20 to +6.40; significant after Holm's adjustment, whose step-down
    test is sharper than this interval)"
    """
    unit = "points per unit of h" if test["heterogeneity"] is None else "points"
    if not test.get("testable", True):
        return f"{100 * test['mean']:+.2f} {unit} in every world alike (no spread: not testable)"
    if test["word"] == EXPLORATORY or "low_adjusted" not in test:
        return (f"{100 * test['mean']:+.2f} {unit} (95 % interval {100 * test['low']:+.2f} to "
                f"{100 * test['high']:+.2f}; exploratory, not adjusted)")
    sharper = (test["word"] == "significant" and test["low_adjusted"] <= 0 <= test["high_adjusted"])
    return (f"{100 * test['mean']:+.2f} {unit} (simultaneous 95 % interval {100 * test['low_adjusted']:+.2f} to "
            f"{100 * test['high_adjusted']:+.2f}; {test['word']} after Holm's adjustment"
            + (", whose step-down test is sharper than this interval)" if sharper else ")"))


def verdicts_before_after(before: dict, after: dict) -> list[dict]:
    """Each claim of a record (``after``, a ``table.json``) beside the same claim (by name) in a record made before it
    (``before``), such as a grid re-made with another loss: ``{"name", "statement", "before", "after"}``, where
    ``before`` and ``after`` are ``(difference in points, Holm-adjusted p, verdict)`` and ``before`` is ``None`` for a
    claim the earlier record did not make.

    >>> test = {"mean": 0.02, "p_holm": 0.01}
    >>> claim = {"name": "Q1", "statement": "s", "test": "t", "verdict": "supported"}
    >>> old = {"hypotheses": [{**claim, "verdict": "not shown"}], "tests": {"t": {"mean": 0.01, "p_holm": 0.2}}}
    >>> verdicts_before_after(old, {"hypotheses": [claim], "tests": {"t": test}})[0]["before"]
    (1.0, 0.2, 'not shown')
    """
    earlier = {entry["name"]: entry for entry in before["hypotheses"]}

    def result(record: dict, entry: dict) -> tuple[float, float, str]:
        test = record["tests"][entry["test"]]
        return 100 * test["mean"], test["p_holm"], entry["verdict"]

    return [{"name": entry["name"], "statement": entry["statement"],
             "before": result(before, earlier[entry["name"]]) if entry["name"] in earlier else None,
             "after": result(after, entry)} for entry in after["hypotheses"]]


def diagnostic_by_world(runs: Sequence[RunResult], variant: str, heterogeneity: float, measure: str) -> list[float]:
    """One attention diagnostic (:mod:`sac_minimal.lab.diagnostics`, e.g. ``share_spearman``) of a variant's runs at
    one h, averaged over each world's seeds: one value per world (worlds where the measure is undefined are left
    out)."""
    values: dict = {}
    for run in runs:
        if run.extra.get("variant") == variant and run.config.heterogeneity == heterogeneity:
            value = run.extra.get("diagnostics", {}).get(measure)
            if value is not None:
                values.setdefault(run.config.world, []).append(value)
    return [float(np.mean(seeds)) for _, seeds in sorted(values.items())]
