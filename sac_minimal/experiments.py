"""Many runs: experiment grids (variants x seeds), paired and two-sample t-tests, recorded results, sharding.

An experiment (:mod:`sac_minimal.variants`) is a list of variants and the (baseline, candidate) pairs it tests. Every
variant is trained on the same seeds, so each comparison is tested twice:

* **paired** (the right test here): seed k of the candidate and seed k of the baseline share their data order and
  random negatives, so the per-seed differences d_k are tested, t = mean(d) / (sd(d) / sqrt(n)), n - 1 degrees of
  freedom (``scipy.stats.ttest_rel``);
* **Student's** two-sample test with pooled variance, as the paper reports it (Eqs. 9-10)::

      s_p^2 = ((n_1 - 1) s_1^2 + (n_2 - 1) s_2^2) / (n_1 + n_2 - 2),   t = (m_1 - m_2) / (s_p sqrt(1/n_1 + 1/n_2))

  with n_1 + n_2 - 2 degrees of freedom (two-sided p-value).

Each comparison also reports its **minimum detectable difference**: the true difference that the test would find
at the 5 % level with 80 % power, given the spread measured, (t_{0.975} + t_{0.8}) x standard error.

Files (``results/<name>/``, small and committed): ``grid.json`` (variants, seeds, comparisons, base config),
``runs/<variant>_seed<k>.json`` (one :class:`~sac_minimal.train.RunResult` each, with provenance), ``table.json``
and ``table.csv`` (written by :func:`merge_grid`). A run file is keyed by its full config and its dataset's
fingerprint: running a grid again skips the runs recorded with the same config and data, and stops with the
differing fields named if a recorded run has another config or dataset (a record is never silently reused for
another experiment nor overwritten). Checkpoints go to ``data/cache/runs/`` (not committed), one folder per config
and dataset, so a run shared by several experiments (SSAD, SAC) is trained once. ``--shard i/n`` runs every n-th
cell of the grid, so that several machines can share it; ``merge`` joins what they wrote.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sac_minimal.config import TrainConfig
from sac_minimal.files import read_json, write_json_atomic, write_text_atomic
from sac_minimal.provenance import dataset_fingerprint
from sac_minimal.train import RESULT, RunResult, fit_runs, resolve_data_root
from sac_minimal.variants import Experiment, Variant

REPORTED_METRICS = ("mAP@0.1", "mAP@0.2", "mAP@0.3", "mAP@0.4", "mAP@0.5", "mAP@0.6", "mAP@0.7", "Avg 0.1:0.7",
                    "Avg 0.3:0.7")
SIGNIFICANCE, POWER = 0.05, 0.8

PAPER_TABLE1 = {
    "SSAD": (72.2, 69.7, 65.2, 56.5, 45.5, 31.0, 17.0, 51.0),
    "SSAD+SAC": (75.5, 73.7, 69.1, 61.1, 51.4, 37.1, 22.8, 55.8),
}
"""The paper's Table I: THUMOS14 test mAP (%) at tIoU 0.1..0.7 and their mean (Yang et al. 2022)."""


def _two_sided_p(statistic: float, dof: int) -> float:
    from scipy.stats import t as student_t

    return float(2 * student_t.sf(abs(statistic), dof))


def _statistic(difference: float, standard_error: float) -> float:
    if standard_error == 0:
        return 0.0 if difference == 0 else math.copysign(math.inf, difference)
    return difference / standard_error


def student_t_test(first: Sequence[float], second: Sequence[float]) -> dict:
    """Two-sample Student's t-test with pooled variance (Eqs. 9-10): ``{"t", "dof", "p", "pooled_std"}``."""
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    n1, n2 = len(first), len(second)
    if n1 < 2 or n2 < 2:
        raise ValueError(f"a t-test needs at least two runs per group, got {n1} and {n2}")
    dof = n1 + n2 - 2
    pooled_std = math.sqrt(((n1 - 1) * first.var(ddof=1) + (n2 - 1) * second.var(ddof=1)) / dof)
    statistic = _statistic(first.mean() - second.mean(), pooled_std * math.sqrt(1 / n1 + 1 / n2))
    return {"t": float(statistic), "dof": dof, "p": _two_sided_p(statistic, dof), "pooled_std": pooled_std}


def paired_t_test(candidate: Sequence[float], baseline: Sequence[float]) -> dict:
    """Paired t-test on matched seeds: ``{"t", "dof", "p", "std_difference"}`` of the differences
    candidate_k - baseline_k (equal to ``scipy.stats.ttest_rel(candidate, baseline)``)."""
    differences = np.asarray(candidate, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    if len(differences) < 2:
        raise ValueError(f"a paired t-test needs at least two matched pairs, got {len(differences)}")
    dof = len(differences) - 1
    std_difference = float(differences.std(ddof=1))
    statistic = _statistic(differences.mean(), std_difference / math.sqrt(len(differences)))
    return {"t": float(statistic), "dof": dof, "p": _two_sided_p(statistic, dof), "std_difference": std_difference}


def minimum_detectable_difference(standard_error: float, dof: int, significance: float = SIGNIFICANCE,
                                  power: float = POWER) -> float:
    """The smallest true difference a two-sided t-test detects with the given power:
    (t_{1 - significance / 2, dof} + t_{power, dof}) x standard error (the usual normal-approximation formula with
    t quantiles)."""
    from scipy.stats import t as student_t

    return float((student_t.ppf(1 - significance / 2, dof) + student_t.ppf(power, dof)) * standard_error)


def compare(candidate: Sequence[float], baseline: Sequence[float]) -> dict:
    """Everything the book reports for one comparison on one metric: the difference of means, both tests, and
    each test's minimum detectable difference."""
    candidate, baseline = np.asarray(candidate, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    student, paired = student_t_test(candidate, baseline), paired_t_test(candidate, baseline)
    n1, n2 = len(candidate), len(baseline)
    return {
        "difference": float(candidate.mean() - baseline.mean()),
        "paired": paired, "student": student,
        "mdd_paired": minimum_detectable_difference(paired["std_difference"] / math.sqrt(n1), paired["dof"]),
        "mdd_student": minimum_detectable_difference(student["pooled_std"] * math.sqrt(1 / n1 + 1 / n2),
                                                     student["dof"]),
    }


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n; ``None`` -> (0, 1)."""
    if text is None:
        return 0, 1
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError as error:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from error
    if not 0 <= index < count:
        raise ValueError(f"--shard {text}: need 0 <= i < n")
    return index, count


def run_file(results_dir: Path, variant: str, seed: int) -> Path:
    return Path(results_dir) / "runs" / f"{variant}_seed{seed}.json"


def run_key(config: TrainConfig, fingerprint: str) -> str:
    """A short key of a run's config and dataset: its checkpoint folder's name."""
    return hashlib.sha256((config.to_json() + fingerprint).encode()).hexdigest()[:12]


def read_run(path: Path) -> RunResult:
    """A recorded run; a truncated or corrupt file raises a ``ValueError`` naming it."""
    values = read_json(path, "run file")
    try:
        return RunResult.from_dict(values)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"run file {path} is incomplete or corrupt ({error!r})") from error


def recorded_run(path: Path, config: TrainConfig, fingerprint: str) -> RunResult | None:
    """The run recorded at ``path`` if it is this config on this dataset; ``None`` if there is none or the file
    is truncated (a warning names it; it is trained again). A run of another config or dataset is an error: records
    are never silently reused for another experiment, nor overwritten."""
    if not path.exists():
        return None
    try:
        run = read_run(path)
    except ValueError as error:
        warnings.warn(f"{error}; training that run again", stacklevel=2)
        return None
    differences = run.config.differences(config)
    if run.dataset.get("fingerprint") != fingerprint:
        differences.append(f"dataset fingerprint: {run.dataset.get('fingerprint')} -> {fingerprint}")
    if differences:
        raise ValueError(f"{path} records another run than this command asks for ({'; '.join(differences)}). "
                         "Use another --name for a new record, or delete that file to replace it.")
    return run


def finished_runs(checkpoints_dir: Path) -> dict:
    """Every finished run under ``checkpoints_dir`` (trained for any experiment), keyed by its config (as JSON,
    seed included) and dataset fingerprint; a folder whose ``result.json`` cannot be read is passed over."""
    index = {}
    for path in sorted(Path(checkpoints_dir).glob(f"*/{RESULT}")):
        try:
            run = read_run(path)
        except (OSError, ValueError):
            continue
        index[run.config.to_json(), run.dataset.get("fingerprint")] = run
    return index


def _write_grid(results_dir: Path, variants: Sequence[Variant], seeds: Sequence[int],
                comparisons: Sequence[tuple[str, str]], base: TrainConfig, title: str) -> None:
    write_json_atomic(results_dir / "grid.json", {
        "title": title, "variants": [dataclasses.asdict(variant) for variant in variants], "seeds": list(seeds),
        "comparisons": [list(pair) for pair in comparisons], "base": base.to_dict()})


def run_grid(base: TrainConfig, variants: Sequence[Variant], seeds: Sequence[int], results_dir: str | Path, *,
             checkpoints_dir: str | Path, comparisons: Sequence[tuple[str, str]] = (), title: str = "",
             shard: str | None = None, verbose: bool = False, seeds_together: bool = False,
             time_budget_s: float | None = None, compiled: bool = False) -> list[Path]:
    """Train this shard's cells of the (variant, seed) grid; each finished cell writes its run file. Cells recorded
    with the same config and dataset are skipped, so an interrupted experiment is resumed by running the same
    command again; a cell finished in ``checkpoints_dir`` for another experiment is copied, not retrained. The grid
    itself (variants, seeds, comparisons, base config) is written to ``grid.json`` for :func:`merge_grid`.

    With ``seeds_together`` the unfinished seeds of a variant in this shard train in one loop
    (:func:`~sac_minimal.train.fit_runs`), which is how a GPU is kept busy at the official batch of 4. With
    ``time_budget_s`` the grid stops at an epoch boundary when the budget would be exceeded (checkpoints kept; the
    same call later resumes). ``compiled`` compiles each training step (:func:`~sac_minimal.train.fit_runs`).
    Returns this shard's run files; those not yet written are unfinished cells."""
    index, count = parse_shard(shard)
    results_dir, checkpoints_dir = Path(results_dir), Path(checkpoints_dir)
    _write_grid(results_dir, variants, seeds, comparisons, base, title)
    cells = [(variant, seed) for seed in seeds for variant in variants][index::count]
    finished = finished_runs(checkpoints_dir)
    to_train = []
    for variant, seed in cells:
        config = variant.config(base, seed)
        fingerprint = dataset_fingerprint(resolve_data_root(config)[0])
        path = run_file(results_dir, variant.name, seed)
        if recorded_run(path, config, fingerprint) is not None:
            continue
        if (config.to_json(), fingerprint) in finished:
            _record(path, variant, finished[config.to_json(), fingerprint], verbose)
        else:
            run_dir = checkpoints_dir / f"{variant.name}_seed{seed}_{run_key(config, fingerprint)}"
            to_train.append((variant, seed, config, run_dir))
    if seeds_together:
        batches = [[cell for cell in to_train if cell[0] == variant] for variant in variants]
    else:
        batches = [[cell] for cell in to_train]
    started = time.perf_counter()
    for batch in filter(None, batches):
        remaining = None if time_budget_s is None else time_budget_s - (time.perf_counter() - started)
        if remaining is not None and remaining <= 0:
            break
        results = fit_runs([cell[2] for cell in batch], [cell[3] for cell in batch], verbose=verbose,
                           time_budget_s=remaining, compiled=compiled)
        if results is None:
            break
        for (variant, seed, _, _), result in zip(batch, results):
            _record(run_file(results_dir, variant.name, seed), variant, result, verbose)
    return [run_file(results_dir, variant.name, seed) for variant, seed in cells]


def _record(path: Path, variant: Variant, result: RunResult, verbose: bool) -> None:
    result.extra["variant"] = variant.name
    write_json_atomic(path, result.to_dict())
    if verbose:
        print(f"{variant.name} seed {result.config.seed}: Avg 0.1:0.7 = {result.evaluation['Avg 0.1:0.7']:.4f} "
              f"({result.seconds:.0f} s)")


def run_experiment(experiment: Experiment, base: TrainConfig, seeds: Sequence[int], results_dir: str | Path, *,
                   checkpoints_dir: str | Path, **options) -> list[Path]:
    """Train a named experiment's grid (:func:`run_grid` with its variants, comparisons and title)."""
    from sac_minimal.variants import VARIANTS

    return run_grid(base, [VARIANTS[name] for name in experiment.variants], seeds, results_dir,
                    checkpoints_dir=checkpoints_dir, comparisons=experiment.comparisons, title=experiment.title,
                    **options)


def load_runs(results_dir: str | Path) -> list[RunResult]:
    """Every run file of a record (a truncated one raises a ``ValueError`` naming it)."""
    return [read_run(path) for path in sorted((Path(results_dir) / "runs").glob("*.json"))]


def summarize_grid(runs: Sequence[RunResult], variants: Sequence[str],
                   comparisons: Sequence[tuple[str, str]] = ()) -> dict:
    """Per-variant per-seed metrics, mean and std (ddof 1), and for each (baseline, candidate) pair and metric the
    comparison of :func:`compare` (``comparisons["<candidate> vs <baseline>"][metric]``), on the seeds every
    variant has."""
    by_variant: dict = {name: {} for name in variants}
    for run in runs:
        name = run.extra.get("variant", run.config.model)
        if name in by_variant:
            by_variant[name][run.config.seed] = run.evaluation
    seeds = sorted({seed for per_seed in by_variant.values() for seed in per_seed})
    missing = [(name, seed) for name in variants for seed in seeds if seed not in by_variant[name]]
    if missing:
        raise ValueError(f"incomplete grid: missing {missing}; run the remaining cells or shards, then merge")
    table = {"seeds": seeds, "variants": {}, "comparisons": {}}
    for name in variants:
        values = {metric: [by_variant[name][seed][metric] for seed in seeds] for metric in REPORTED_METRICS}
        table["variants"][name] = {
            "per_seed": values,
            "mean": {metric: float(np.mean(column)) for metric, column in values.items()},
            "std": {metric: float(np.std(column, ddof=1)) if len(column) > 1 else 0.0
                    for metric, column in values.items()},
        }
    if len(seeds) >= 2:
        for baseline, candidate in comparisons:
            table["comparisons"][f"{candidate} vs {baseline}"] = {
                metric: compare(table["variants"][candidate]["per_seed"][metric],
                                table["variants"][baseline]["per_seed"][metric])
                for metric in REPORTED_METRICS}
    return table


def variant_configs(runs: Sequence[RunResult]) -> dict:
    """Each variant's config (seed set to 0) and dataset, checking that all its runs share them."""
    configs: dict = {}
    for run in runs:
        name = run.extra.get("variant", run.config.model)
        entry = {"config": run.config.replace(seed=0).to_dict(), "dataset": run.dataset}
        if name in configs and configs[name] != entry:
            first = TrainConfig.from_dict(configs[name]["config"])
            differences = first.differences(run.config.replace(seed=0))
            if configs[name]["dataset"] != run.dataset:
                differences.append(f"dataset {configs[name]['dataset']} -> {run.dataset}")
            raise ValueError(f"the runs of {name} were trained differently ({'; '.join(differences)}, seed "
                             f"{run.config.seed}); merge only shards of the same command")
        configs[name] = entry
    return configs


def merge_grid(results_dir: str | Path) -> dict:
    """Join the run files of ``results_dir`` into ``table.json`` and ``table.csv``, with every variant's config and
    dataset (checked to agree across its seeds and shards) and every run's provenance."""
    results_dir = Path(results_dir)
    if not (results_dir / "grid.json").exists():
        raise FileNotFoundError(f"{results_dir / 'grid.json'} not found; run the experiment first")
    runs = load_runs(results_dir)
    if not runs:
        raise FileNotFoundError(f"no run files under {results_dir / 'runs'}; no cell of the grid has finished")
    grid = read_json(results_dir / "grid.json", "grid file")
    names = [variant["name"] for variant in grid["variants"]]
    table = summarize_grid(runs, names, [tuple(pair) for pair in grid["comparisons"]])
    table["title"] = grid.get("title", "")
    table["labels"] = {variant["name"]: variant["label"] or variant["name"] for variant in grid["variants"]}
    table["configs"] = {name: entry for name, entry in variant_configs(runs).items() if name in names}
    datasets = {entry["dataset"]["fingerprint"] for entry in table["configs"].values()}
    if len(datasets) > 1:
        raise ValueError(f"the runs of {results_dir} were trained on {len(datasets)} different datasets")
    table["dataset"] = next(iter(table["configs"].values()))["dataset"]
    table["provenance"] = distinct_provenance(runs)
    table["wall_seconds"] = float(sum(run.seconds for run in runs))
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
    """``variant, seed, metrics...`` rows of a table."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["variant", "seed", *REPORTED_METRICS])
    for name, entry in table["variants"].items():
        for position, seed in enumerate(table["seeds"]):
            writer.writerow([name, seed, *(f"{entry['per_seed'][metric][position]:.6f}"
                                          for metric in REPORTED_METRICS)])
    return buffer.getvalue()


def format_table(table: dict, percent: bool = True, metrics: Sequence[str] = REPORTED_METRICS,
                 tested: Sequence[str] = ("Avg 0.1:0.7",)) -> str:
    """Mean +- std per variant and metric, then each comparison's difference of means, paired and Student's
    p-values and the paired test's minimum detectable difference on the ``tested`` metrics."""
    scale = 100 if percent else 1
    labels = table.get("labels", {})
    width = max(11, *(len(labels.get(name, name)) for name in table["variants"]))
    header = f"{'variant':<{width}} " + " ".join(f"{metric.replace('mAP@', ''):>11}" for metric in metrics)
    lines = [f"mean +- std over {len(table['seeds'])} seeds ({'percent' if percent else 'fraction'})", header]
    for name, entry in table["variants"].items():
        cells = " ".join(f"{scale * entry['mean'][metric]:>5.1f}+-{scale * entry['std'][metric]:<4.1f}"
                         for metric in metrics)
        lines.append(f"{labels.get(name, name):<{width}} {cells}")
    for comparison, by_metric in table["comparisons"].items():
        candidate, baseline = comparison.split(" vs ")
        for metric in tested:
            result = by_metric[metric]
            lines.append(f"{labels.get(candidate, candidate)} - {labels.get(baseline, baseline)}, {metric}: "
                         f"{scale * result['difference']:+.2f} (paired p = {result['paired']['p']:.4f}, "
                         f"Student p = {result['student']['p']:.4f}; detectable: "
                         f"{scale * result['mdd_paired']:.2f} paired, {scale * result['mdd_student']:.2f} Student)")
    return "\n".join(lines)


def describe_comparison(table: dict, comparison: str, metric: str = "Avg 0.1:0.7") -> str:
    """One comparison of a table in words: the difference in points, both p-values, what the paired test can
    detect, and whether the difference is significant at the 5 % level (by the paired test)."""
    result = table["comparisons"][comparison][metric]
    candidate, baseline = comparison.split(" vs ")
    labels = table.get("labels", {})
    paired_p = result["paired"]["p"]
    verdict = "significant" if paired_p < SIGNIFICANCE else "not significant"
    return (f"{labels.get(candidate, candidate)} minus {labels.get(baseline, baseline)}: "
            f"{100 * result['difference']:+.2f} points of {metric} mAP over {len(table['seeds'])} matched seeds, "
            f"paired p {format_p(paired_p)} ({verdict} at the 5 % level; Student's p "
            f"{format_p(result['student']['p'])}); with this spread the paired test detects "
            f"{100 * result['mdd_paired']:.1f} points (80 % power)")


def format_p(p: float) -> str:
    """``= 0.012`` or ``< 0.001``."""
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"
