"""One run on disk: what a run produced (:class:`RunResult`), its file's name in a record
(``runs/<variant>_w<world>_h<h>_s<seed>.json``), and reading it back checked.

A run file is keyed by its full config and its dataset's fingerprint: running a grid again skips the runs recorded
with the same config and data, and stops with the differing fields named if a recorded run has another config or
dataset (a record is never silently reused for another experiment nor overwritten). Every value a run file holds is
checked when it is read (types, ranges: an AP or mAP outside [0, 1] is refused), so a malformed or edited file is an
error that names it, never a traceback deep inside a table.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sac_minimal.files import read_json
from sac_minimal.lab.config import TrainConfig

RESULT = "result.json"
"""A run folder's record of the finished run (:meth:`RunResult.to_dict`)."""
REPORTED_METRICS = ("mAP@0.1", "mAP@0.2", "mAP@0.3", "mAP@0.4", "mAP@0.5", "mAP@0.6", "mAP@0.7", "Avg 0.1:0.7",
                    "Avg 0.3:0.7")
"""The mAP summaries every run records and every table reports."""


@dataclass
class RunResult:
    """What one run produced.

    Attributes:
        config: the run's :class:`TrainConfig`.
        metrics: one dict per epoch (loss terms, lr, seconds).
        evaluation: mAP per threshold and the averages (fractions), from :meth:`EvaluationResult.summary`.
        average_precision: ``[thresholds][20]`` AP per class (NaN as None).
        dataset: ``{"kind", "root", "annotation_sha256"}``.
        seconds: training + evaluation wall time of this process (excluding resumed epochs' earlier time).
    """

    config: TrainConfig
    metrics: list
    evaluation: dict
    average_precision: list
    dataset: dict
    seconds: float
    device: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"config": self.config.to_dict(), "metrics": self.metrics, "evaluation": self.evaluation,
                "average_precision": self.average_precision, "dataset": self.dataset, "seconds": self.seconds,
                "device": self.device, **self.extra}

    @classmethod
    def from_dict(cls, values: dict) -> RunResult:
        known = ("config", "metrics", "evaluation", "average_precision", "dataset", "seconds", "device")
        return cls(config=TrainConfig.from_dict(values["config"]), metrics=values["metrics"],
                   evaluation=values["evaluation"], average_precision=values["average_precision"],
                   dataset=values["dataset"], seconds=values["seconds"], device=values.get("device", ""),
                   extra={key: value for key, value in values.items() if key not in known})



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
