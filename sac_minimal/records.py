"""Recorded results, re-verified: is a record in ``results/`` still what this code produces?

Long grids (every Table I row over worlds, h and seeds; the ablations) take too long for a book build on two cores,
so they are run once from the command line and recorded in ``results/<name>/`` with their provenance
(:mod:`sac_minimal.provenance`). A record is only worth reading if it still holds, so the book build checks it:

* :func:`record_status` says when, where and from which code the record was made, whether the package's code
  differs from that commit now, and whether the datasets it names are the ones this machine would use;
* :func:`check_table` computes ``table.json`` again from ``grid.json`` and the run files and compares: an edited
  mean, per-seed value or verdict fails; a run file renamed or copied under another run's name fails;
* :func:`verify_record` then re-runs a small fixed subset of runs with their recorded configs (the first epoch of a
  few runs, or a whole run and its evaluation) and compares them with the record. Whether every value must be equal
  is decided by comparing *this* machine with the machine the run names (same device, torch, CPU model and
  instruction set, thread count: training on a CPU is then bit-identical for a seed); a run whose provenance is
  missing or malformed is an error, never a lenient pass. On another machine type the first epochs must agree
  within tolerances measured across summation orders (:data:`LOSS_TOLERANCE`), and a whole run is reported as
  ``not comparable`` (:data:`MAP_SPREAD`).

``python -m sac_minimal verify results/<name> <run>:<epochs> ...`` runs the same check from a shell, and
``tests/test_records.py`` fails when a committed record no longer reproduces.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sac_minimal.data.locate import REPOSITORY
from sac_minimal.experiments import RUN_NAME, build_table, check_run_name, read_run, run_name
from sac_minimal.files import read_json
from sac_minimal.provenance import (
    check_provenance,
    code_changed_since,
    code_fingerprint,
    dataset_fingerprint,
    machine,
    same_machine_type,
)
from sac_minimal.train import METRIC_COLUMNS, fit, read_metrics

RESULTS_DIR = REPOSITORY / "results"
"""The repository's recorded results (``results/``)."""
LOSS_TOLERANCE = {"total": 2e-3}
"""Relative tolerance per logged column on the first epochs of a run when the machine type differs from the record's
(other columns: :data:`TERM_TOLERANCE`). Measured on the quick profile (world 0) by training the same runs with one
and with two CPU threads, i.e. another summation order on the same CPU: after epoch 1 the total loss differed by at
most 7.3e-4 relative (SSAD+SAC stabilised; official 2.5e-4; SSAD and SSAD+Θ not at all), so 2e-3 leaves about 3x
for other CPUs' kernels while a 1 % change of the loss fails."""
TERM_TOLERANCE = 2e-2
"""The same for the loss terms and monitors, whose measured epoch-1 differences were up to 5.7e-3 (the appearance
share of SSAD+SAC official): small terms and shares move more than their sum."""
MAP_SPREAD = 0.02
"""How far the Avg mAP of a whole quick run moved (absolute) between one and two CPU threads on the same machine:
2.0 points for SSAD+SAC official, 1.5 for the stabilised preset, 0 for SSAD (measured with the tolerances above).
Training amplifies rounding differences, so a whole run re-made on another machine type is not expected to match
its record: such a check reports its differences and is ``not comparable``, never ``passed`` (an effect of a few
points could hide inside this spread)."""


@dataclass(frozen=True)
class Check:
    """Re-run the recorded run ``run`` (a run file's name, e.g. ``sac_w3_h1_s0``) for its first ``epochs`` epochs
    (``None``: the whole run and its mAP)."""

    run: str
    epochs: int | None = 1

    def __post_init__(self):
        if not RUN_NAME.fullmatch(self.run):
            raise ValueError(f"a check names a run file, like ssad_w3_h1_s0; got {self.run!r}")
        if self.epochs is not None and (isinstance(self.epochs, bool) or not isinstance(self.epochs, int)
                                        or self.epochs < 1):
            raise ValueError(f"a check re-runs at least one epoch, got epochs={self.epochs!r}")

    def describe(self) -> str:
        span = "whole run" if self.epochs is None else "epoch 1" if self.epochs == 1 else f"epochs 1-{self.epochs}"
        return f"{self.run}, {span}"


def parse_checks(texts: Sequence[str]) -> list[Check]:
    """``run:epochs`` (epochs a whole number >= 1 or ``all``) -> :class:`Check` s."""
    checks = []
    for text in texts:
        try:
            run, epochs = text.rsplit(":", 1)
            checks.append(Check(run, None if epochs == "all" else int(epochs)))
        except ValueError as error:
            raise ValueError(f"a check looks like run:epochs (e.g. sac_w3_h1_s0:1 or ssad_w3_h1_s0:all), got "
                             f"{text!r} ({error})") from None
    return checks


OUTCOMES = ("exact match", "within tolerance", "not comparable", "failed")


@dataclass
class CheckResult:
    """One re-run compared with its record.

    ``outcome``: ``exact match`` (every value equal: expected on the record's machine type), ``within tolerance``
    (another machine type, first epochs within :data:`LOSS_TOLERANCE` and :data:`TERM_TOLERANCE`), ``not comparable`` (a whole run on another
    machine type: differences reported, see :data:`MAP_SPREAD`) or ``failed``."""

    check: Check
    same_machine_type: bool
    outcome: str
    largest_difference: float
    compared: list
    seconds: float
    evaluation: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.outcome in ("exact match", "within tolerance")

    def row(self) -> dict:
        """The check as one table row."""
        return {"run": self.check.run, "re-ran": self.check.describe().split(", ", 1)[1],
                "values": len(self.compared),
                "machine": "same type" if self.same_machine_type else "another type",
                "largest difference": self.largest_difference, "outcome": self.outcome}

    def format(self) -> str:
        where = "same machine type" if self.same_machine_type else "another machine type"
        if self.outcome == "exact match":
            detail = "every value equal"
        elif self.outcome == "failed" and self.same_machine_type:
            detail = f"values differ (largest {self.largest_difference:.2e}) where they must be equal"
        else:
            detail = f"largest difference {self.largest_difference:.2e}"
        return f"{self.check.describe()}: {len(self.compared)} values, {detail} ({where}) -> {self.outcome.upper()}"


@contextlib.contextmanager
def cpu_threads(threads: int | None):
    """Run a block with torch's CPU thread count set to ``threads`` (unchanged when None), then restore it."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _differences(recorded: dict, rerun: dict, names: Sequence[str]) -> list[tuple[str, float, float]]:
    return [(name, float(recorded[name]), float(rerun[name])) for name in names if name in recorded and name in rerun]


def _outcome(exact: bool, identical: bool, within: bool, whole_run: bool) -> str:
    if identical:
        return "exact match"
    if exact:
        return "failed"
    if whole_run:
        return "not comparable" if within else "failed"
    return "within tolerance" if within else "failed"


def verify_check(results_dir: str | Path, check: Check, run_dir: str | Path | None = None) -> CheckResult:
    """Re-run one check of a record and compare it with the recorded run. The re-run goes to a temporary folder,
    or to ``run_dir`` when given (to use the re-trained model afterwards, e.g.
    :func:`~sac_minimal.train.load_trained_model`).

    Whether every value must be equal is decided by comparing this machine with the machine the run names
    (:func:`~sac_minimal.provenance.same_machine_type`); a run whose provenance is missing or malformed is an error.
    """
    path = Path(results_dir) / "runs" / f"{check.run}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: the record has no run {check.run}")
    recorded = read_run(path)
    check_run_name(path, recorded)
    recorded_machine = check_provenance(recorded.extra.get("provenance"), str(path))
    if check.epochs is not None and check.epochs > len(recorded.metrics):
        raise ValueError(f"{check.run} records {len(recorded.metrics)} epoch(s); cannot compare {check.epochs}")
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        folder = run_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="verify_"))
        stack.enter_context(cpu_threads(recorded_machine["threads"]))
        exact = same_machine_type(recorded_machine, machine())
        result = fit(recorded.config, folder, epoch_budget=check.epochs)
        metrics = result.metrics if result is not None else read_metrics(folder)
    epochs = len(recorded.metrics) if check.epochs is None else check.epochs
    compared = []
    for recorded_row, rerun_row in zip(recorded.metrics[:epochs], metrics[:epochs]):
        compared += [(f"epoch {recorded_row['epoch']} {name}", *values)
                     for name, *values in _differences(recorded_row, rerun_row, METRIC_COLUMNS)]
    if len(metrics) < epochs or not compared:
        raise ValueError(f"the re-run of {check.run} produced {len(metrics)} epoch(s) of metrics, not {epochs}")
    relative = [abs(new - old) / max(abs(old), 1e-12) for _, old, new in compared]
    within = all(value <= LOSS_TOLERANCE.get(name.rsplit(" ", 1)[1], TERM_TOLERANCE)
                 for value, (name, _, _) in zip(relative, compared))
    largest = max(relative)
    evaluation = {}
    if check.epochs is None:
        evaluation = result.evaluation
        compared += [(f"mAP {name}", recorded.evaluation[name], evaluation[name]) for name in recorded.evaluation]
        largest = max(largest, *(abs(evaluation[name] - recorded.evaluation[name]) for name in recorded.evaluation))
    identical = all(old == new for _, old, new in compared)
    outcome = _outcome(exact, identical, within, check.epochs is None)
    return CheckResult(check, exact, outcome, largest, compared, time.perf_counter() - started, evaluation)


TABLE_FIELDS = ("metric", "unit", "worlds", "heterogeneities", "seeds", "cells", "variants", "tests", "hypotheses", "primary",
                "configs", "datasets", "labels", "title")
"""The parts of ``table.json`` that :func:`~sac_minimal.experiments.build_table` computes from the run files."""


def check_table(results_dir: str | Path) -> dict:
    """``table.json`` must be what the record's run files give: every per-seed value, mean, test and verdict is
    computed again from ``grid.json`` and ``runs/`` and compared (the book reads ``table.json``, so an edited value
    must not pass). Returns the table; a mismatch raises a ``ValueError`` naming the fields that differ."""
    results_dir = Path(results_dir)
    recorded = read_json(results_dir / "table.json", "record table")
    computed = build_table(results_dir)
    differing = [name for name in TABLE_FIELDS if recorded.get(name) != json.loads(json.dumps(computed.get(name)))]
    if differing:
        raise ValueError(f"{results_dir / 'table.json'} does not match its run files (differs in: "
                         f"{', '.join(differing)}); run python -m sac_minimal merge {results_dir} to rebuild it")
    for entry in recorded.get("provenance", []):
        check_provenance(entry, f"{results_dir / 'table.json'} provenance")
    return recorded


def verify_record(results_dir: str | Path, checks: Sequence[Check]) -> list[CheckResult]:
    """Check that ``table.json`` matches the run files (:func:`check_table`), then re-run each check and compare
    (see the module docstring)."""
    check_table(results_dir)
    return [verify_check(results_dir, check) for check in checks]


def read_record(name: str) -> dict:
    """The merged table of ``results/<name>`` (``table.json``), with a clear error when it is not recorded."""
    path = RESULTS_DIR / name / "table.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: record it with the command in results/README.md")
    return read_json(path, "record table")


def format_verification(results: Sequence[CheckResult]) -> str:
    counts = {outcome: sum(result.outcome == outcome for result in results) for outcome in OUTCOMES}
    summary = ", ".join(f"{count} {outcome}" for outcome, count in counts.items() if count)
    lines = [f"re-ran {len(results)} check(s) of the record: {summary}"]
    return "\n".join(lines + ["  " + result.format() for result in results])


@dataclass
class RecordStatus:
    """What a record is and whether the code and data it came from are still the ones here."""

    name: str
    title: str
    variants: list
    worlds: list
    heterogeneities: list
    seeds: list
    provenance: list
    code_changed: bool | None
    same_code: bool
    datasets: dict
    datasets_here: dict

    def provenance_rows(self) -> list[dict]:
        """One row per distinct machine and code the record's runs came from (for a table)."""
        return [{"made (UTC)": f"{entry['first_date'][:16]} .. {entry['last_date'][:16]}", "runs": entry["runs"],
                 "device": entry["device"], "CPU": entry["cpu_capability"], "threads": entry["threads"],
                 "torch": entry["torch"], "commit": entry["commit"][:10] + (" (dirty)" if entry["dirty"] else "")}
                for entry in self.provenance]

    @property
    def code_line(self) -> str:
        if self.same_code:
            return "the package's sources are byte-identical to the record's"
        changed = {True: "changed since the record's commit",
                   False: "unchanged since the record's commit (by git)",
                   None: "different from the record's sources (no git history to compare)"}
        return f"{changed[self.code_changed]}; the re-runs test whether the record still holds"

    @property
    def data_line(self) -> str:
        states = list(self.datasets_here.values())
        versions = sorted({str(data.get("generator_version", "-")) for data in self.datasets.values()})
        return (f"{len(self.datasets)} datasets (generator v{', v'.join(versions)}): {states.count('same')} the same "
                f"here, {states.count('different')} different, {states.count('absent')} not written yet")

    def format(self) -> str:
        lines = [f"record results/{self.name}: {self.title}",
                 (f"  {len(self.variants)} variants x {len(self.worlds)} worlds ({_span(self.worlds)}) x h "
                  f"{', '.join(f'{h:g}' for h in self.heterogeneities)} x {len(self.seeds)} seeds")]
        for row in self.provenance_rows():
            lines.append(f"  made {row['made (UTC)']} ({row['runs']} runs) on {row['device']} ({row['CPU']}, "
                         f"{row['threads']} thread(s)), torch {row['torch']}, commit {row['commit']}")
        lines.append(f"  code: {self.code_line}")
        lines.append(f"  data: {self.data_line}")
        return "\n".join(lines)


def _span(values: Sequence[int]) -> str:
    return f"{values[0]}-{values[-1]}" if list(values) == list(range(values[0], values[-1] + 1)) else \
        ", ".join(map(str, values))


def dataset_state(config, recorded: dict) -> str:
    """``same``, ``different`` or ``absent``: whether this machine has the dataset a run was trained on."""
    from sac_minimal.data.synthetic import METADATA_FILE
    from sac_minimal.train import resolve_data_root

    try:
        root = resolve_data_root(config, create=False)[0]
    except (FileNotFoundError, ValueError):
        return "absent"
    if not (root / METADATA_FILE).exists() and recorded.get("kind") == "synthetic":
        return "absent"
    if not root.exists():
        return "absent"
    return "same" if dataset_fingerprint(root) == recorded.get("fingerprint") else "different"


def record_status(results_dir: str | Path) -> RecordStatus:
    """The :class:`RecordStatus` of a merged record (``table.json``); a table whose provenance is missing or
    malformed is an error."""
    from sac_minimal.config import TrainConfig

    results_dir = Path(results_dir)
    table = read_json(results_dir / "table.json", "record table")
    try:
        provenance = [check_provenance(entry, f"{results_dir / 'table.json'} provenance")
                      for entry in table["provenance"]]
        configs, datasets = table["configs"], table["datasets"]
        worlds, heterogeneities, seeds = table["worlds"], table["heterogeneities"], table["seeds"]
    except (KeyError, TypeError) as error:
        raise ValueError(f"{results_dir / 'table.json'} lacks {error}; rebuild it with python -m sac_minimal "
                         f"merge {results_dir}") from None
    if not provenance or not seeds or not worlds:
        raise ValueError(f"{results_dir / 'table.json'} records no provenance, worlds or seeds; rebuild it with "
                         f"python -m sac_minimal merge {results_dir}")
    changes = [code_changed_since(entry["commit"]) for entry in provenance]
    code_changed = True if True in changes else (None if None in changes else False)
    same_code = all(entry["code_sha256"] == code_fingerprint() for entry in provenance)
    config = TrainConfig.from_dict(next(iter(configs.values())))
    here = {}
    for key, dataset in datasets.items():
        world, h = key.removeprefix("w").split("_h")
        here[key] = dataset_state(config.replace(world=int(world), heterogeneity=float(h)), dataset)
    return RecordStatus(results_dir.name, table.get("title", ""), list(table["variants"]), worlds, heterogeneities,
                        seeds, provenance, code_changed, same_code, datasets, here)


def book_checks(record: str, variants: Sequence[str], world: int = 3, heterogeneity: float = 1.0,
                seed: int = 0, epochs: int | None = 1) -> list[Check]:
    """The checks of ``variants`` at one (world, h, seed)."""
    return [Check(run_name(variant, world, heterogeneity, seed), epochs) for variant in variants]


BOOK_RECORDS = {
    "table1_quick_v3": book_checks("table1_quick_v3", ("ssad", "reference", "composed", "sac", "sac_stabilised"))
    + book_checks("table1_quick_v3", ("ssad", "sac"), heterogeneity=0.0),
    "ablation_learning_rate_quick_v3": book_checks("ablation_learning_rate_quick_v3", ("composed", "sac")),
    "ablation_attention_quick_v3": book_checks("ablation_attention_quick_v3", ("joint", "frame")),
    "ablation_components_quick_v3": book_checks("ablation_components_quick_v3", ("ot_pooling", "ot_smooth")),
    "ablation_alternatives_quick_v3": book_checks("ablation_alternatives_quick_v3", ("nonlocal", "sequential")),
    "ablation_variants_quick_v3": book_checks("ablation_variants_quick_v3", ("exact_solver", "mass_t")),
}
"""The quick records the book reads, and the subset of each that the book build re-runs: the first epoch of these
runs in world 3 (notebooks 08 and 09); notebook 10 re-runs two whole runs, evaluation included.
``tests/test_records.py`` re-runs the first three of each."""
