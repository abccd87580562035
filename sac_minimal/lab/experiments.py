"""Many runs: experiment grids (variants x worlds x h x seeds), world-level tests, recorded results, sharding.

An experiment (:mod:`sac_minimal.lab.variants`) is a list of variants, the (baseline, candidate) pairs it tests, the
hypotheses it declares (:mod:`sac_minimal.lab.hypotheses`) and its design: the surrogate worlds, the heterogeneity
values h and the seeds. Every variant is trained on every (world, h, seed) cell; at the same seed two variants share
their data order, random negatives and the starting weights of every layer they share, so differences are paired.

The world is the unit of replication. For each comparison and h, the seeds of each variant in a world are averaged
and the per-world differences are tested across worlds (:func:`sac_minimal.lab.significance.mean_with_interval`: mean,
95 % interval, t, p); a trend over h is the per-world least-squares slope of the difference, tested the same way.
The tests that the declared hypotheses name are a table's *family*: their p-values are Holm-adjusted together
(:func:`sac_minimal.lab.significance.holm`), each gets the table's simultaneous (Bonferroni) 95 % interval, and every
hypothesis is judged from its adjusted test (:func:`sac_minimal.lab.hypotheses.judge`). The table's other tests (a
comparison at an h no hypothesis names) are *exploratory*: shown with their own 95 % interval and raw p-value, never
with a significance word, so that adding a row or an h to a table never dilutes the tests declared before it ran.

Files (``results/<name>/``, small and committed): ``grid.json`` (the experiment: variants, comparisons, hypotheses,
primary comparisons, worlds, h values, seeds, base config; written before the first run, and a grid of another
design refuses to write into the same folder), ``runs/<variant>_w<world>_h<h>_s<seed>.json`` (one
:class:`~sac_minimal.lab.train.RunResult` each, with provenance), ``table.json`` and ``table.csv`` (written by
:func:`merge_grid`). A run file is keyed by its full config and its dataset's fingerprint: running a grid again skips
the runs recorded with the same config and data, and stops with the differing fields named if a recorded run has
another config or dataset (a record is never silently reused for another experiment nor overwritten). Checkpoints
go to ``data/cache/runs/`` (not committed), one folder per config and dataset, so a run shared by several
experiments (SSAD, SAC) is trained once. ``--shard i/n`` runs every n-th cell of the grid, so that several processes
or machines can share it; ``merge`` joins what they wrote.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import io
import json
import math
import os
import re
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sac_minimal.lab.config import LOSS_BEFORE_RECORDED, TrainConfig
from sac_minimal.files import read_json, remove_stale_temporaries, write_json_atomic, write_text_atomic
from sac_minimal.lab.hypotheses import METRIC, comparison_key, judge
from sac_minimal.lab.provenance import dataset_fingerprint
from sac_minimal.lab.significance import holm, mean_with_interval, significance_word, simultaneous_interval, slope
from sac_minimal.lab.train import RESULT, RunResult, fit_runs, resolve_data_root
from sac_minimal.lab.variants import EXPERIMENTS, VARIANTS, Experiment, Variant

REPORTED_METRICS = ("mAP@0.1", "mAP@0.2", "mAP@0.3", "mAP@0.4", "mAP@0.5", "mAP@0.6", "mAP@0.7", "Avg 0.1:0.7",
                    "Avg 0.3:0.7")

PAPER_TABLE1 = {
    "SSAD": (72.2, 69.7, 65.2, 56.5, 45.5, 31.0, 17.0, 51.0),
    "SSAD+SAC": (75.5, 73.7, 69.1, 61.1, 51.4, 37.1, 22.8, 55.8),
}
"""The paper's Table I: THUMOS14 test mAP (%) at tIoU 0.1..0.7 and their mean (Yang et al. 2022)."""
EXPLORATORY = "exploratory"
"""The word of a test that no declared hypothesis names: reported, never adjusted nor called significant."""
PAPER_GAIN = round((PAPER_TABLE1["SSAD+SAC"][-1] - PAPER_TABLE1["SSAD"][-1]) / 100, 6)
"""SAC's claimed gain over SSAD in Avg mAP 0.1:0.7 on THUMOS14, as a fraction (55.8 - 51.0 points)."""


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


RUN_NAME = re.compile(r"(?P<variant>[A-Za-z0-9_.]+)_w(?P<world>\d+)_h(?P<h>[0-9.]+)_s(?P<seed>\d+)")
"""A run file's stem: ``<variant>_w<world>_h<h>_s<seed>``."""


def run_name(variant: str, world: int, heterogeneity: float, seed: int) -> str:
    """The stem of a run's file (and its id in checks): ``sac_w3_h0.5_s1``."""
    return f"{variant}_w{world}_h{heterogeneity:g}_s{seed}"


def run_file(results_dir: Path, variant: str, world: int, heterogeneity: float, seed: int) -> Path:
    return Path(results_dir) / "runs" / f"{run_name(variant, world, heterogeneity, seed)}.json"


def run_key(config: TrainConfig, fingerprint: str) -> str:
    """A short key of a run's config and dataset: its checkpoint folder's name."""
    return hashlib.sha256((config.to_json() + fingerprint).encode()).hexdigest()[:12]


def read_run(path: Path) -> RunResult:
    """A recorded run; a truncated or corrupt file raises a ``ValueError`` naming it."""
    values = read_json(path, "run file")
    try:
        run = RunResult.from_dict(values)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"run file {path} is incomplete or corrupt ({error!r})") from error
    for name, kind in (("evaluation", dict), ("average_precision", list), ("metrics", list)):
        if not isinstance(getattr(run, name), kind):
            raise ValueError(f"run file {path}: its {name} is a {type(getattr(run, name)).__name__}, not a "
                             f"{kind.__name__}; it is incomplete or was edited")
    bad = [name for name in REPORTED_METRICS if not isinstance(run.evaluation.get(name), (int, float))
           or isinstance(run.evaluation.get(name), bool) or not 0.0 <= run.evaluation[name] <= 1.0]
    if bad:
        raise ValueError(f"run file {path} has no finite number for {', '.join(bad)} in its evaluation (an mAP lies "
                         "between 0 and 1); it is incomplete or was edited")
    precisions = [value for row in run.average_precision for value in (row if isinstance(row, list) else [row])]
    if any(value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not 0.0 <= value <= 1.0) for value in precisions):
        raise ValueError(f"run file {path} has an average precision that is not a number between 0 and 1; it is "
                         "incomplete or was edited")
    return run


def check_run_name(path: Path, run: RunResult) -> None:
    """A run file must hold the run its name says (variant, world, h, seed): a file copied or renamed under
    another run's name is an error, not a silent substitute."""
    expected = run_name(run.extra.get("variant", run.config.model), run.config.world, run.config.heterogeneity,
                        run.config.seed)
    if Path(path).stem != expected:
        raise ValueError(f"{path} holds the run {expected} (by its config), not the one its name says; a run file "
                         "must not be renamed or copied under another run's name")


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


def check_evaluation(run: RunResult, label: str) -> None:
    """A run's mAP figures must be what its per-class average precisions give (the same summary the evaluation
    computes, :meth:`~sac_minimal.evaluation.EvaluationResult.summary`), so that an edited mAP does not pass."""
    from sac_minimal.evaluation import EvaluationResult

    thresholds = [name for name in run.evaluation if name.startswith("mAP@")]
    try:
        precision = np.array([[np.nan if value is None else value for value in row]
                              for row in run.average_precision], dtype=np.float64)
        summary = EvaluationResult(np.array([float(name[4:]) for name in thresholds]), precision,
                                   np.zeros(precision.shape[1]), 0).summary()
    except (TypeError, ValueError, IndexError):
        summary = None
    if summary is None or precision.shape[0] != len(thresholds):
        raise ValueError(f"run {label} does not record an average precision per class for each of its "
                         f"{len(thresholds)} thresholds; its mAP cannot be checked")
    differing = [name for name, value in summary.items()
                 if not np.isclose(run.evaluation.get(name, np.nan), value, rtol=0, atol=1e-12)]
    if differing:
        raise ValueError(f"run {label}: {', '.join(differing)} is not what its per-class average precisions give; "
                         "the run file was edited")


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


def check_design(worlds: Sequence[int], heterogeneities: Sequence[float], seeds: Sequence[int],
                 datasets: dict) -> None:
    """A grid's design must replicate over independent data. ``datasets`` maps each (world, h) to its
    ``(root, kind)``. Refused: a world, h or seed listed twice; more than one world, or more than one h, on a
    dataset that is not a surrogate (a world is an independently generated surrogate; real THUMOS14 or any other
    fixed folder is one dataset, whose replication unit is the seed); and two worlds whose data is the same file for
    file (the same dataset fingerprint)."""
    for label, values in (("world", worlds), ("h", heterogeneities), ("seed", seeds)):
        repeated = sorted({value for value in values if list(values).count(value) > 1})
        if repeated:
            raise ValueError(f"{label} {', '.join(f'{value:g}' for value in repeated)} is listed twice; each "
                             f"{label} is one independent unit, counting it twice would fake replication")
    fixed = sorted({str(root) for root, kind in datasets.values() if kind != "synthetic"})
    if fixed and (len(worlds) > 1 or len(heterogeneities) > 1):
        raise ValueError(f"{fixed[0]} is one fixed dataset, not a surrogate: a world is an independently generated "
                         "surrogate (a data seed), so worlds and h values cannot be replicated on it. Run one world "
                         "and one h (--worlds 0 --heterogeneity 1) with several --seeds: the seeds are then the "
                         "paired units of the tests")
    by_fingerprint: dict = {}
    for (world, h), (root, _) in datasets.items():
        fingerprint = dataset_fingerprint(root)
        other = by_fingerprint.setdefault((fingerprint, h), world)
        if other != world:
            raise ValueError(f"worlds {other} and {world} (h = {h:g}) have identical data ({root}); a world must be "
                             "an independent dataset, so the grid refuses to count one dataset twice")


def claim_grid(results_dir: Path, definition: dict) -> None:
    """Write ``grid.json``, or check that the one there is this grid: two grids of different designs (or configs)
    never write into the same record. The first writer creates the file exclusively, so two processes started at
    once cannot both claim it; processes running shards of the same grid agree and share it."""
    path = results_dir / "grid.json"
    results_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(definition, indent=1)
    # Written whole to a temporary file, then linked into place: the link fails if the file exists, and a process
    # that finds it never reads a half-written one.
    handle, temporary = tempfile.mkstemp(prefix=".grid.json.", suffix=".tmp", dir=results_dir)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.link(temporary, path)
        return
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)
    existing, definition = read_json(path, "grid file"), json.loads(text)
    if existing != definition:
        changed = sorted(key for key in set(existing) | set(definition) if existing.get(key) != definition.get(key))
        raise ValueError(f"{results_dir} already records another grid (differs in: {', '.join(changed)}); use "
                         "another --name, or delete that folder to replace the record")


def _cells(experiment: Experiment, worlds, heterogeneities, seeds) -> list[tuple[str, int, float, int]]:
    """Every (variant, world, h, seed) of the grid, in an order that interleaves the variants (so that shards get
    similar work)."""
    return [(variant, world, float(h), seed) for h in heterogeneities for world in worlds for seed in seeds
            for variant in experiment.variants]


ACCEPTANCE_VERSIONS = tuple(sorted(int(name.removeprefix("acceptance_v")) for name in EXPERIMENTS
                                   if re.fullmatch(r"acceptance_v\d+", name)))
"""Surrogate regimes (generator versions) with an acceptance test, read from the experiments that define one
(``acceptance_v<version>`` in :data:`~sac_minimal.lab.variants.EXPERIMENTS`), never a hand-kept list: an attention
model trains on one only after the test's record for that regime, size and loss has passed
(:func:`check_accepted_config`). Tiny surrogates, which exist for dry runs of scripts and are never recorded as
evidence, are exempt."""


class NotAccepted(ValueError):
    """An attention model was asked to train on a regime whose acceptance test is missing, invalid or not passed
    (:func:`validated_acceptance`): a refusal by design, told apart from every other error."""


def acceptance_name(version: int, size: str, loss: str) -> str:
    """The record of generator ``version``'s acceptance test at ``size`` with SSAD's ``loss``:
    ``acceptance_v<version>_<size>`` for the book's first loss (the records made before runs named their loss),
    ``acceptance_v<version>_<size>_<loss>_loss`` for another. A testbed is accepted for one loss at a time: the
    controls that decide it are trained with that loss."""
    suffix = "" if loss == LOSS_BEFORE_RECORDED else f"_{loss}_loss"
    return f"acceptance_v{version}_{size}{suffix}"


def acceptance_record(config: TrainConfig) -> str | None:
    """The record (``results/<name>``) whose acceptance test must have passed before ``config`` may train: for an
    attention model (``ssad_sac``) on a surrogate of a regime in :data:`ACCEPTANCE_VERSIONS` at the quick or full
    size, :func:`acceptance_name` of its version, size and loss; else None (SSAD and the controls need none: they
    decide the test)."""
    if config.model != "ssad_sac" or config.data_version not in ACCEPTANCE_VERSIONS or config.data_size == "tiny":
        return None
    if resolve_data_root(config, create=False)[1] != "synthetic":
        return None
    return acceptance_name(config.data_version, config.data_size, config.loss)


def check_accepted_config(config: TrainConfig) -> None:
    """Refuse to train ``config`` unless :func:`acceptance_record` is None or names a valid acceptance record that
    passed (:func:`validated_acceptance`). Called before every training run (``train``, every grid, ``verify``)."""
    name = acceptance_record(config)
    if name is not None:
        from sac_minimal.data.locate import REPOSITORY

        folder = REPOSITORY / "results" / name
        stamp = tuple((str(path), path.stat().st_mtime_ns, path.stat().st_size)
                      for path in sorted(folder.rglob("*")) if path.is_file()) if folder.is_dir() else ()
        _validated_once(name, config.data_version, config.data_size, stamp, config.loss)


@functools.lru_cache(maxsize=8)
def _validated_once(name: str, version: int, size: str, stamp: tuple, loss: str) -> None:
    """:func:`validated_acceptance`, once per state of the record's files (``stamp``): a chapter that re-runs many
    attention runs checks the record once, and any edit of it is checked again."""
    validated_acceptance(name, version, size, loss)


def validated_acceptance(name: str, version: int, size: str, loss: str = LOSS_BEFORE_RECORDED) -> dict:
    """The acceptance test of ``results/<name>`` after checking it: ``acceptance.json`` must be an acceptance record
    (criteria, probes, a boolean verdict), made on generator ``version`` at ``size``, and its criteria and verdict
    must be what its run files give (recomputed here from the record's table and its stored probes); then it must
    have passed. Every failure is a ``ValueError`` that says why and the command that records the test."""
    from sac_minimal.data.locate import REPOSITORY
    from sac_minimal.lab.hypotheses import ACCEPTANCE_CONTROLS, acceptance

    results_dir = REPOSITORY / "results" / name
    path = results_dir / ACCEPTANCE_FILE
    command = (f"cd {REPOSITORY} && python -m sac_minimal ablate acceptance_v{version} --profile {size} "
               f"--name {name}" + ("" if loss == TrainConfig().loss else f" --loss {loss}"))
    purpose = (f"attention models train on generator v{version} ({size}) only once its acceptance test has passed: "
               "on a testbed where no control wins, a grid of attention models could not tell 'the attention does "
               "not help' from 'nothing here rewards attention'")
    if not path.is_file():
        raise NotAccepted(f"{purpose}; {path} is not recorded: run {command}")
    stored = read_json(path, "acceptance file")
    if (not isinstance(stored, dict) or not isinstance(stored.get("passed"), bool)
            or not isinstance(stored.get("criteria"), list) or not isinstance(stored.get("probes"), dict)):
        raise NotAccepted(f"{path} is not an acceptance record (it needs criteria, probes and a true/false verdict); "
                         f"record the test again: {command}")
    grid = read_grid(results_dir)
    base = TrainConfig.from_dict(grid["base"])
    if (base.data_version, base.data_size, base.loss) != (version, size, loss):
        raise NotAccepted(f"{path} tested generator v{base.data_version} ({base.data_size}) with the {base.loss} "
                         f"loss, not v{version} ({size}) with the {loss} loss; record the right test: {command}")
    again = acceptance(build_table(results_dir), stored["probes"], ACCEPTANCE_CONTROLS[version])
    if json.dumps(again, sort_keys=True) != json.dumps({key: stored[key] for key in again}, sort_keys=True):
        raise NotAccepted(f"{path} is not what the record's runs give (its criteria or verdict were edited); record "
                         f"the test again: {command}")
    if not stored["passed"]:
        raise NotAccepted(f"{purpose}, and the acceptance test in {path} did not pass")
    return stored


def check_accepted(experiment: Experiment, base: TrainConfig | None = None) -> None:
    """An experiment that ``requires`` an accepted testbed runs only when the acceptance record of its generator,
    size and SSAD loss (:func:`acceptance_name`, for the profile ``base``) is valid and passed
    (:func:`validated_acceptance`); otherwise a ``ValueError`` says why and what to run."""
    if experiment.requires is None:
        return
    base = experiment.base_config(base if base is not None else TrainConfig())
    size = experiment.requires.rsplit("_", 1)[1]
    validated_acceptance(acceptance_name(base.data_version, size, base.loss), base.data_version, size, base.loss)


def check_tests_can_be_made(experiment: Experiment, worlds: Sequence[int], heterogeneities: Sequence[float],
                            seeds: Sequence[int], fixed: bool = False) -> None:
    """Before anything trains: an acceptance test reads its control at every h of
    :data:`~sac_minimal.lab.hypotheses.ACCEPTANCE_HETEROGENEITIES`, so its grid must run them all; refused with what
    to change, instead of training every run and failing at the merge. (Other grids may run fewer h, e.g. on a GPU;
    the hypotheses at the h they leave out are then not tested. The command line also refuses a grid with a single
    unit, :func:`check_units`.)"""
    from sac_minimal.lab.hypotheses import ACCEPTANCE_HETEROGENEITIES

    if experiment.title.startswith("Acceptance") and fixed:
        raise ValueError(f"{experiment.title} compares SSAD with controls that read a surrogate's truth on its "
                         "development worlds; a dataset that is not a surrogate has no truth to read: leave --data "
                         "out to run it on the surrogate")
    missing = sorted(set(ACCEPTANCE_HETEROGENEITIES) - {float(h) for h in heterogeneities})
    if experiment.title.startswith("Acceptance") and not fixed and missing:
        raise ValueError(f"{experiment.title} tests at h = {', '.join(f'{h:g}' for h in missing)}, which this grid "
                         "does not run; leave --heterogeneity out to run the acceptance test's design")


def check_units(worlds: Sequence[int], seeds: Sequence[int]) -> None:
    """A table's tests pair units across models: at least two worlds, or two seeds on one world (on fixed data)."""
    if len(worlds) < 2 and len(seeds) < 2:
        raise ValueError(f"a test across units needs at least two of them; this grid has {len(worlds)} world and "
                         f"{len(seeds)} seed: run two or more worlds, or two or more --seeds on one world")


def check_confirmatory_worlds(experiment: Experiment, worlds: Sequence[int]) -> None:
    """A table tested on confirmatory worlds never runs on the worlds its generator was designed on: a world of
    ``experiment.development_worlds`` that the experiment does not itself declare (an acceptance test declares its
    development worlds) is refused."""
    borrowed = sorted(set(worlds) & set(experiment.development_worlds) - set(experiment.worlds))
    if borrowed:
        raise ValueError(f"worlds {', '.join(map(str, borrowed))} are development worlds of this regime (looked at "
                         f"while its generator was designed, never evidence); {experiment.title} is tested on its "
                         f"confirmatory worlds {', '.join(map(str, experiment.worlds))}: choose among those")


def _given_surrogate(base: TrainConfig) -> dict | None:
    """The metadata of a surrogate folder given as ``data_root`` (its world is ``seed``), or None."""
    from sac_minimal.data.synthetic import METADATA_FILE, read_synthetic_metadata

    if base.data_root is None or not (Path(base.data_root) / METADATA_FILE).exists():
        return None
    return read_synthetic_metadata(Path(base.data_root))


def run_experiment(experiment: Experiment, base: TrainConfig, results_dir: str | Path, *,
                   checkpoints_dir: str | Path, worlds: Sequence[int] | None = None,
                   heterogeneities: Sequence[float] | None = None, seeds: Sequence[int] | None = None,
                   shard: str | None = None, verbose: bool = False, seeds_together: bool = False,
                   time_budget_s: float | None = None, compiled: bool = False,
                   finish_within_budget: bool = False) -> list[Path]:
    """Train this shard's cells of an experiment's grid; each finished cell writes its run file.

    ``worlds``, ``heterogeneities`` and ``seeds`` default to the experiment's design (on a dataset that is not a
    surrogate: one world, one h; :func:`check_design` refuses more, and the rows that need the surrogate's truth
    are left out). ``grid.json`` is claimed first (:func:`claim_grid`). Cells recorded with the same config and dataset are skipped, so an interrupted experiment is
    resumed by running the same command again; a cell finished in ``checkpoints_dir`` for another experiment is
    copied, not retrained. With ``seeds_together`` the unfinished seeds of a (variant, world, h) train in one loop
    (:func:`~sac_minimal.lab.train.fit_runs`), which is how a GPU is kept busy at the official batch of 4. With
    ``time_budget_s`` the grid stops at an epoch boundary when the budget would be exceeded (checkpoints kept; the
    same call later resumes); with ``finish_within_budget`` too, a training loop projected after its first epoch
    to outlast the budget left raises :class:`~sac_minimal.lab.train.WouldNotFinish`. ``compiled`` compiles each
    training step. Returns this shard's run files; those not
    yet written are unfinished cells."""
    index, count = parse_shard(shard)
    results_dir, checkpoints_dir = Path(results_dir), Path(checkpoints_dir)
    if results_dir.is_symlink():
        raise ValueError(f"{results_dir} is a symbolic link (to {results_dir.resolve()}); a record is written into "
                         "its own folder, never through a link into another: remove the link or choose another --name")
    check_accepted(experiment, base)
    base = experiment.base_config(base)
    given = _given_surrogate(base)
    if given is not None:  # one surrogate folder given with --data is one (world, h): its own, unless asked
        worlds = worlds or (given["seed"],)
        heterogeneities = heterogeneities or (float(given["heterogeneity"]),)
    asked = {"world": worlds[0] if worlds else None,
             "heterogeneity": float(heterogeneities[0]) if heterogeneities else None}
    probe = base.replace(**{key: value for key, value in asked.items() if value is not None})
    fixed = resolve_data_root(probe, create=False)[1] != "synthetic"  # real THUMOS14 or a given folder: one dataset
    worlds = tuple(((0,) if fixed else experiment.worlds) if worlds is None else worlds)
    if not fixed:
        check_confirmatory_worlds(experiment, worlds)
    heterogeneities = tuple(((1.0,) if fixed else experiment.heterogeneities) if heterogeneities is None
                            else heterogeneities)
    seeds = tuple(range(experiment.seeds) if seeds is None else seeds)
    check_tests_can_be_made(experiment, worlds, heterogeneities, seeds, fixed)
    roots = {(world, float(h)): resolve_data_root(base.replace(world=world, heterogeneity=float(h)))
             for world in worlds for h in heterogeneities}
    check_design(worlds, heterogeneities, seeds, roots)
    left_out = {}
    if any(kind != "synthetic" for _, kind in roots.values()):
        left_out = experiment.left_out_on_fixed_data()
    elif base.data_root is not None and "headroom" in experiment.variants:  # one surrogate folder: one (world, h)
        left_out = {"headroom": "it is SSAD on the same world at h = 0, which one --data folder does not hold; leave "
                                "--data out to run it"}
    for name, reason in left_out.items():
        print(f"left out on {next(iter(roots.values()))[0]}: {VARIANTS[name].title} ({reason})")
    configs = (VARIANTS[name].config(base, seed, world, h)
               for name, world, h, seed in _cells(experiment.without(left_out), worlds, heterogeneities, seeds))
    for config in {(config.model, config.data_version, config.data_size): config for config in configs}.values():
        check_accepted_config(config)  # every row at this size, before anything is claimed or trained
    claim_grid(results_dir, grid_definition(experiment, base, worlds, heterogeneities, seeds, left_out))
    experiment = experiment.without(left_out)
    remove_stale_temporaries(results_dir / "runs")
    cells = _cells(experiment, worlds, heterogeneities, seeds)[index::count]
    finished = finished_runs(checkpoints_dir)
    to_train = []
    for name, world, heterogeneity, seed in cells:
        config = VARIANTS[name].config(base, seed, world, heterogeneity)
        fingerprint = dataset_fingerprint(resolve_data_root(config)[0])
        path = run_file(results_dir, name, world, heterogeneity, seed)
        if recorded_run(path, config, fingerprint) is not None:
            continue
        if (config.to_json(), fingerprint) in finished:
            _record(path, VARIANTS[name], finished[config.to_json(), fingerprint], fingerprint, verbose)
        else:
            run_dir = checkpoints_dir / f"{path.stem}_{run_key(config, fingerprint)}"
            to_train.append((VARIANTS[name], path, config, run_dir, fingerprint))
    if seeds_together:
        groups: dict = {}
        for cell in to_train:
            groups.setdefault(cell[2].replace(seed=0).to_json(), []).append(cell)
        batches = list(groups.values())
    else:
        batches = [[cell] for cell in to_train]
    started = time.perf_counter()
    for batch in batches:
        remaining = None if time_budget_s is None else time_budget_s - (time.perf_counter() - started)
        if remaining is not None and remaining <= 0:
            break
        results = fit_runs([cell[2] for cell in batch], [cell[3] for cell in batch], verbose=verbose,
                           time_budget_s=remaining, compiled=compiled,
                           finish_within_budget=finish_within_budget)
        if results is None:
            break
        for (variant, path, _, _, fingerprint), result in zip(batch, results):
            _record(path, variant, result, fingerprint, verbose)
    return [run_file(results_dir, *cell) for cell in cells]


def _record(path: Path, variant: Variant, result: RunResult, fingerprint: str, verbose: bool) -> None:
    """Write a run file, checking again just before that no other process recorded another run there."""
    recorded_run(path, result.config, fingerprint)
    result.extra["variant"] = variant.name
    write_json_atomic(path, result.to_dict())
    if verbose:
        print(f"{path.stem}: Avg 0.1:0.7 = {result.evaluation['Avg 0.1:0.7']:.4f} ({result.seconds:.0f} s)",
              flush=True)


def load_runs(results_dir: str | Path) -> list[RunResult]:
    """Every run file of a record, each checked to hold the run its name says (a truncated or renamed file raises
    a ``ValueError`` naming it)."""
    runs = []
    for path in sorted((Path(results_dir) / "runs").glob("*.json")):
        if path.is_symlink() or not path.is_file():
            raise ValueError(f"{path} is not a plain file (a link, a pipe or a folder); a record's run files are "
                             "plain files: replace it with the run file itself")
        run = read_run(path)
        check_run_name(path, run)
        runs.append(run)
    return runs


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


PLATEAU_HORIZON, PLATEAU_TOLERANCE = 12, 0.10


def plateau_epoch(losses: Sequence[float], horizon: int = PLATEAU_HORIZON,
                  tolerance: float = PLATEAU_TOLERANCE) -> int | None:
    """The first epoch e (1-based) from which the training loss falls by less than ``tolerance`` (relative) over
    the next ``horizon`` epochs: the mean of epochs e-3..e against the mean of epochs e+horizon-3..e+horizon.
    ``None`` when no epoch of ``losses`` qualifies (train longer).

    >>> plateau_epoch([4.0, 3.0, 2.0, 1.5] + [1.0] * 20, horizon=4)
    8
    """
    losses = np.asarray(losses, dtype=np.float64)
    for epoch in range(4, len(losses) - horizon + 1):
        before, after = losses[epoch - 4:epoch].mean(), losses[epoch + horizon - 4:epoch + horizon].mean()
        if 1 - after / before < tolerance:
            return epoch
    return None


def measure_plateau(base: TrainConfig, models: Sequence[str], checkpoints_dir: str | Path) -> dict:
    """Train each model (seed 0, ``base``'s world, learning rate and epochs, no decay) and find where its training
    loss reaches a plateau (:func:`plateau_epoch`): how many epochs a learning rate needs. Returns ``{"config",
    "models": {model: {"losses", "plateau_epoch", "Avg 0.1:0.7"}}, "provenance"}``."""
    from sac_minimal.lab.provenance import provenance

    base = base.replace(lr_decay_epochs=())
    result = {"config": base.to_dict(), "horizon": PLATEAU_HORIZON, "tolerance": PLATEAU_TOLERANCE, "models": {},
              "provenance": provenance()}
    for model in models:
        config = base.replace(model=model)
        fingerprint = dataset_fingerprint(resolve_data_root(config)[0])
        run = fit_runs([config], [Path(checkpoints_dir) / f"plateau_{model}_{run_key(config, fingerprint)}"])[0]
        losses = [row["total"] for row in run.metrics]
        result["models"][model] = {"losses": losses, "plateau_epoch": plateau_epoch(losses),
                                   METRIC: run.evaluation[METRIC]}
    return result


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


ACCEPTANCE_FILE = "acceptance.json"
"""Beside the table of an acceptance grid (``acceptance_v4``): the acceptance test's criteria, numbers and verdict."""


def acceptance_of(results_dir: str | Path) -> dict:
    """The acceptance test (:func:`~sac_minimal.lab.hypotheses.acceptance`) of a control grid: its table, and the
    reliability probe (:func:`~sac_minimal.data.probe.reliability_probe`) of each of its worlds at h = 1."""
    from sac_minimal.data.probe import reliability_probe
    from sac_minimal.lab.hypotheses import ACCEPTANCE_CONTROLS, ACCEPTANCE_PROBES, acceptance

    results_dir = Path(results_dir)
    grid, table = read_grid(results_dir), build_table(results_dir)
    base = TrainConfig.from_dict(grid["base"])
    if base.data_version not in ACCEPTANCE_CONTROLS:
        raise ValueError(f"generator v{base.data_version} has no acceptance test (regimes with one: "
                         f"{', '.join(f'v{version}' for version in ACCEPTANCE_CONTROLS)})")
    per_window = ACCEPTANCE_PROBES[base.data_version] == "per window"
    probes = {str(world): reliability_probe(resolve_data_root(base.replace(model="ssad", world=world,
                                                                             heterogeneity=1.0))[0], per_window)
              for world in grid["worlds"]}
    return {"probes": probes, **acceptance(table, probes, ACCEPTANCE_CONTROLS[base.data_version])}


def record_acceptance(results_dir: str | Path) -> dict:
    """Compute the acceptance test of a merged control grid and write it to ``acceptance.json`` with provenance."""
    from sac_minimal.lab.provenance import provenance

    result = acceptance_of(results_dir)
    write_json_atomic(Path(results_dir) / ACCEPTANCE_FILE, {**result, "provenance": provenance()})
    return result


def format_acceptance(result: dict) -> str:
    lines = [f"acceptance test: {'PASSED' if result['passed'] else 'NOT PASSED'}"]
    lines += [f"  [{'x' if criterion['passed'] else ' '}] {criterion['name']}: {criterion['detail']}"
              for criterion in result["criteria"]]
    return "\n".join(lines)
