"""Recorded results, re-verified: is a record in ``results/`` still what this code produces?

Long grids (ten seeds of every Table I row, the ablations) take too long for a book build on two cores, so they are
run once from the command line and recorded in ``results/<name>/`` with their provenance
(:mod:`sac_minimal.provenance`). A record is only worth reading if it still holds, so the book build checks it:

* :func:`record_status` says when, where and from which code the record was made, whether the package's code
  differs from that commit now, and whether the dataset it names is the one this machine would use;
* :func:`verify_record` re-runs a small fixed subset of its runs with the recorded configs (the first epoch of a
  few runs, or a whole run and its evaluation) and compares them with the record. On the machine type that made
  it (same device, torch, CPU instruction set and thread count) the comparison is **exact**: training on a CPU is
  bit-identical for a seed. Elsewhere it is within :data:`LOSS_TOLERANCE` (relative, per-epoch loss means) and
  :data:`MAP_TOLERANCE` (absolute, mAP), since other kernels round differently and training amplifies it.

``python -m sac_minimal verify results/<name> variant:seed:epochs ...`` runs the same check from a shell, and
``tests/test_records.py`` fails when a committed record no longer reproduces.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sac_minimal.data.locate import REPOSITORY
from sac_minimal.experiments import read_run, run_file
from sac_minimal.files import read_json
from sac_minimal.provenance import (
    code_changed_since,
    code_fingerprint,
    dataset_fingerprint,
    machine,
    same_machine_type,
)
from sac_minimal.train import METRIC_COLUMNS, fit, read_metrics

RESULTS_DIR = REPOSITORY / "results"
"""The repository's recorded results (``results/``)."""
LOSS_TOLERANCE = 1e-2
"""Relative tolerance on per-epoch metric means when the machine type differs from the record's."""
MAP_TOLERANCE = 0.03
"""Absolute tolerance on mAP (3 points) when the machine type differs from the record's."""


@dataclass(frozen=True)
class Check:
    """Re-run ``variant`` at ``seed`` for its first ``epochs`` epochs (``None``: the whole run and its mAP)."""

    variant: str
    seed: int
    epochs: int | None = 1

    def describe(self) -> str:
        if self.epochs is None:
            span = "whole run"
        elif self.epochs == 1:
            span = "epoch 1"
        else:
            span = f"epochs 1-{self.epochs}"
        return f"{self.variant} seed {self.seed}, {span}"


def parse_checks(texts: Sequence[str]) -> list[Check]:
    """``variant:seed:epochs`` (epochs a number or ``all``) -> :class:`Check` s."""
    checks = []
    for text in texts:
        try:
            variant, seed, epochs = text.split(":")
            checks.append(Check(variant, int(seed), None if epochs == "all" else int(epochs)))
        except ValueError:
            raise ValueError(f"a check looks like variant:seed:epochs (e.g. sac:0:1 or ssad:0:all), got {text!r}")
    return checks


@dataclass
class CheckResult:
    """One re-run compared with its record."""

    check: Check
    exact_expected: bool
    identical: bool
    passed: bool
    largest_difference: float
    compared: list
    seconds: float
    evaluation: dict = field(default_factory=dict)

    def format(self) -> str:
        if self.identical:
            verdict = "identical"
        else:
            verdict = f"largest difference {self.largest_difference:.2e}"
        mode = "exact match expected" if self.exact_expected else "another machine type: within tolerance"
        return (f"{self.check.describe():<34} {len(self.compared):>3} values: {verdict} ({mode}) -> "
                f"{'PASSED' if self.passed else 'FAILED'} [{self.seconds:.0f} s]")


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


def verify_check(results_dir: str | Path, check: Check, run_dir: str | Path | None = None) -> CheckResult:
    """Re-run one check of a record and compare it with the recorded run. The re-run goes to a temporary folder,
    or to ``run_dir`` when given (to use the re-trained model afterwards, e.g.
    :func:`~sac_minimal.train.load_trained_model`)."""
    recorded = read_run(run_file(Path(results_dir), check.variant, check.seed))
    recorded_machine = recorded.extra.get("provenance", {})
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        folder = run_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="verify_"))
        stack.enter_context(cpu_threads(recorded_machine.get("threads")))
        exact = same_machine_type(recorded_machine, machine())
        result = fit(recorded.config, folder, epoch_budget=check.epochs)
        metrics = result.metrics if result is not None else read_metrics(folder)
    epochs = len(metrics) if check.epochs is None else check.epochs
    compared = []
    for recorded_row, rerun_row in zip(recorded.metrics[:epochs], metrics[:epochs]):
        compared += [(f"epoch {recorded_row['epoch']} {name}", *values)
                     for name, *values in _differences(recorded_row, rerun_row, METRIC_COLUMNS)]
    relative = [abs(new - old) / max(abs(old), 1e-12) for _, old, new in compared]
    passed = bool(compared) and all(value <= (0 if exact else LOSS_TOLERANCE) for value in relative)
    largest = max(relative, default=0.0)
    evaluation = {}
    if check.epochs is None:
        evaluation = result.evaluation
        gaps = [abs(evaluation[name] - recorded.evaluation[name]) for name in recorded.evaluation]
        compared += [(f"mAP {name}", recorded.evaluation[name], evaluation[name]) for name in recorded.evaluation]
        passed = passed and all(gap <= (0 if exact else MAP_TOLERANCE) for gap in gaps)
        largest = max(largest, *gaps)
    identical = all(old == new for _, old, new in compared)
    return CheckResult(check, exact, identical, passed, largest, compared, time.perf_counter() - started,
                       evaluation)


def verify_record(results_dir: str | Path, checks: Sequence[Check]) -> list[CheckResult]:
    """Re-run each check of a record and compare (see the module docstring)."""
    return [verify_check(results_dir, check) for check in checks]


def read_record(name: str) -> dict:
    """The merged table of ``results/<name>`` (``table.json``), with a clear error when it is not recorded."""
    path = RESULTS_DIR / name / "table.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: record it with the command in results/README.md")
    return read_json(path, "record table")


def format_verification(results: Sequence[CheckResult]) -> str:
    passed = sum(result.passed for result in results)
    lines = [f"re-verified {passed} of {len(results)} checks against the record:"]
    return "\n".join(lines + ["  " + result.format() for result in results])


@dataclass
class RecordStatus:
    """What a record is and whether the code and data it came from are still the ones here."""

    name: str
    title: str
    variants: list
    seeds: list
    provenance: list
    code_changed: bool | None
    same_code: bool
    dataset: dict
    dataset_here: str | None

    def format(self) -> str:
        lines = [f"record results/{self.name}: {self.title}",
                 f"  {len(self.variants)} variants x {len(self.seeds)} seeds (seeds {self.seeds[0]}-{self.seeds[-1]})"]
        for entry in self.provenance:
            lines.append(f"  made {entry.get('first_date', '?')[:16]} .. {entry.get('last_date', '?')[:16]} "
                         f"({entry.get('runs', '?')} runs) on {entry.get('device')} ({entry.get('cpu')}, "
                         f"{entry.get('cpu_capability')}, {entry.get('threads')} thread(s)), torch "
                         f"{entry.get('torch')}, commit {str(entry.get('commit'))[:10]}"
                         f"{' (dirty tree)' if entry.get('dirty') else ''}")
        if self.same_code:
            lines.append("  code: the package's sources are byte-identical to the record's")
        else:
            changed = {True: "the package's code has changed since the record's commit",
                       False: "the package's code is unchanged since the record's commit (by git)",
                       None: "the package's sources differ from the record's (no git history to compare)"}
            lines.append(f"  code: {changed[self.code_changed]}; re-running part of it tests whether the record still holds")
        data = self.dataset
        lines.append(f"  data: {data.get('kind')} {data.get('root')} (generator v{data.get('generator_version', '-')},"
                     f" fingerprint {str(data.get('fingerprint'))[:12]}); here: "
                     + ("the same dataset" if self.dataset_here == data.get("fingerprint") else
                        "not present" if self.dataset_here is None else "A DIFFERENT dataset"))
        return "\n".join(lines)


def record_status(results_dir: str | Path) -> RecordStatus:
    """The :class:`RecordStatus` of a merged record (``table.json``)."""
    from sac_minimal.config import TrainConfig
    from sac_minimal.train import resolve_data_root

    results_dir = Path(results_dir)
    table = read_json(results_dir / "table.json", "record table")
    commits = [entry.get("commit") for entry in table["provenance"]]
    changes = [code_changed_since(commit) for commit in commits]
    code_changed = True if True in changes else (None if None in changes else False)
    same_code = all(entry.get("code_sha256") == code_fingerprint() for entry in table["provenance"])
    config = TrainConfig.from_dict(next(iter(table["configs"].values()))["config"])
    try:
        dataset_here = dataset_fingerprint(resolve_data_root(config, create=False)[0])
    except (FileNotFoundError, ValueError):
        dataset_here = None
    return RecordStatus(results_dir.name, table.get("title", ""), list(table["variants"]), table["seeds"],
                        table["provenance"], code_changed, same_code, table["dataset"], dataset_here)


BOOK_RECORDS = {
    "table1_quick_v2": [Check(name, 0, 1) for name in ("ssad", "ssad_theta", "oracle", "sac", "composed",
                                                      "sac_stabilised", "light_theta")],
    "table1_quick_v1": [Check(name, 0, 1) for name in ("ssad", "oracle", "sac")],
    "ablation_attention_quick_v2": [Check("joint", 0, 1), Check("frame", 0, 1)],
    "ablation_components_quick_v2": [Check("ot_pooling", 0, 1), Check("ot_smooth", 0, 1)],
    "ablation_alternatives_quick_v2": [Check("nonlocal", 0, 1), Check("sequential", 0, 1)],
    "ablation_variants_quick_v2": [Check("exact_solver", 0, 1), Check("mass_t", 0, 1)],
}
"""The quick records the book reads, and the subset of each that the book build re-runs: the first epoch of these
runs (notebooks 08 and 09); notebook 10 re-runs two whole runs, evaluation included, of the seed it draws.
``tests/test_records.py`` re-runs the first three of each."""
