"""One training run: fit SSAD (with or without SAC) for one seed, evaluate it at the last epoch, record everything.

The loop is plain PyTorch, one explicit step at a time::

    for epoch in 1..E:                      lr from the schedule (x 0.1 after the decay epochs)
        draw the epoch's batch order and random-negative priorities (generators seeded by (seed, epoch))
        for batch in shuffled windows:
            raw, sac_losses = model(appearance, motion)
            loss = ssad_loss_runs(raw, ...)["total"] + sac_losses["total"]     (Eq. 6 + SSAD's three terms)
            loss.backward(); optimizer.step()
        append a row to metrics.csv; save checkpoint.pt
    evaluate on the test windows -> detections -> mAP (sac_minimal.evaluation)

Because every random draw of an epoch comes from generators seeded by (seed, epoch), a run interrupted after any
epoch and resumed from its checkpoint ends with exactly the metrics of an uninterrupted run (on the same machine).
A non-finite loss stops the run, names the step and the term, and saves the state it happened in.

:func:`fit_runs` is the same loop for R seeds of one recipe at once (:class:`~sac_minimal.group.ModelGroup`: one
batched forward and backward per step, each run with its own generators, checkpoint and result); :func:`fit` is
``fit_runs`` with R = 1.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sac_minimal.anchors import default_anchors
from sac_minimal.config import TrainConfig
from sac_minimal.data.locate import dataset_root
from sac_minimal.data.thumos14 import FeatureFormat, load_annotations
from sac_minimal.data.windows import ResidentWindows, WindowDataset
from sac_minimal.detection import postprocess, ssad_loss_runs
from sac_minimal.evaluation import evaluate_detections
from sac_minimal.group import ModelGroup, load_optimizer_states, optimizer_state_of
from sac_minimal.sac import SAC
from sac_minimal.ssad import SSAD

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.csv"
RESULT = "result.json"
NONFINITE_STATE = "nonfinite_state.pt"
LOSS_COLUMNS = ("classification", "overlap", "localisation", "sac_ot", "sac_smooth", "sac_fnorm", "total")


def choose_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU. Asking for ``cuda`` without a GPU is an error, not a silent CPU run."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch.cuda.is_available() is False; use --device auto or cpu")
    return torch.device(name)


class Detector(nn.Module):
    """SSAD, optionally behind SAC (or behind Θ alone for the capacity-matched baseline).

    ``forward(appearance [B, Da, T], motion [B, Dm, T]) -> (raw [B, 140, 24], sac_losses dict)``.
    """

    def __init__(self, config: TrainConfig, appearance_channels: int, motion_channels: int):
        super().__init__()
        sac_config = config.sac_config(appearance_channels, motion_channels)
        self.sac = SAC(sac_config) if sac_config is not None else None
        host_channels = sac_config.output_channels if sac_config is not None else appearance_channels + motion_channels
        self.ssad = SSAD(in_channels=host_channels, base_channels=config.base_channels,
                         main_channels=config.main_channels)
        self.amp = config.amp

    def forward(self, appearance: torch.Tensor, motion: torch.Tensor) -> tuple[torch.Tensor, dict]:
        if self.sac is None:
            features, sac_losses = torch.cat([appearance, motion], dim=1), {}
        else:
            output = self.sac(appearance, motion)
            features, sac_losses = output.features, output.losses
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp and features.is_cuda):
            raw = self.ssad(features)
        return raw.float(), sac_losses


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


def resolve_data_root(config: TrainConfig) -> tuple[Path, str]:
    """The dataset folder a config trains on, and its kind (``thumos14``, ``synthetic`` or ``folder``)."""
    if config.data_root is not None:
        root = Path(config.data_root)
        kind = "synthetic" if (root / "synthetic.json").exists() else "folder"
        return root, kind
    return dataset_root(prefer_real=config.profile == "full", size=config.data_size)


def file_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _progress(enabled: bool, text: str) -> None:
    if enabled:
        sys.stdout.write("\r" + text)
        sys.stdout.flush()


def _loss_terms(losses: dict, sac_losses: dict) -> dict:
    terms = {"classification": losses["classification"], "overlap": losses["overlap"],
             "localisation": losses["localisation"]}
    for name in ("ot", "smooth", "fnorm"):
        if name in sac_losses:
            terms[f"sac_{name}"] = sac_losses[name]
    return terms


def training_losses(group: ModelGroup, appearance, motion, segments, labels, priority, anchors, *,
                    matching: str = "decoded", negative_ratio: float = 1.0) -> tuple[torch.Tensor, dict]:
    """Forward and loss of one training step for the R runs of a group: Eq. (6), SSAD's three terms plus SAC's.

    Args:
        appearance, motion: ``[R, B, D, T]``; segments ``[R, B, S, 2]``; labels ``[R, B, S]``; priority
            ``[R, B, A]`` (random negatives, :func:`~sac_minimal.detection.select_negatives`).

    Returns:
        ``(total [R], {term: [R]})`` with the terms of :data:`LOSS_COLUMNS` that the model has.
    """
    raw, sac_losses = group(appearance, motion)
    losses = ssad_loss_runs(raw, segments, labels, anchors, priority, matching=matching,
                            negative_ratio=negative_ratio)
    total = losses["total"] + sac_losses["total"] if sac_losses else losses["total"]
    return total, {**_loss_terms(losses, sac_losses), "total": total}


def fit(config: TrainConfig, run_dir: str | Path, *, progress: bool | None = None, verbose: bool = False,
        epoch_budget: int | None = None, time_budget_s: float | None = None,
        compiled: bool = False) -> RunResult | None:
    """Train one model for one seed and evaluate it after the last epoch.

    Args:
        config: the run.
        run_dir: where ``checkpoint.pt``, ``metrics.csv`` and ``result.json`` go; an existing checkpoint of the same
            config is resumed.
        progress: a live progress line (default: only when stdout is a terminal).
        verbose: print one line per epoch.
        epoch_budget: train at most this many epochs in this call and return ``None`` if the run is not finished
            (a later call resumes it), for time-limited or preemptible machines.
        time_budget_s: likewise, stop after the epoch whose successor would end past this many seconds of this
            call (judged by the last epoch's duration); the evaluation after the last epoch is not counted.
        compiled: ``torch.compile`` the training step's forward and loss (see :func:`fit_runs`).

    Returns:
        The :class:`RunResult` (also written to ``run_dir/result.json``), or ``None`` when stopped by the budget.
    """
    results = fit_runs([config], [run_dir], progress=progress, verbose=verbose, epoch_budget=epoch_budget,
                       time_budget_s=time_budget_s, compiled=compiled)
    return None if results is None else results[0]


def check_runs_can_share_a_loop(configs: Sequence[TrainConfig]) -> None:
    """Runs trained at once must be the same recipe with different seeds."""
    if not configs:
        raise ValueError("no runs to train")
    recipes = {config.replace(seed=0) for config in configs}
    if len(recipes) > 1:
        raise ValueError("runs trained at once must differ only in their seed; got configs that differ in "
                         + ", ".join(sorted(name for name in configs[0].to_dict()
                                            if len({str(getattr(config, name)) for config in configs}) > 1)))
    seeds = [config.seed for config in configs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"runs trained at once need distinct seeds, got {seeds}")


def _resume_states(configs: Sequence[TrainConfig], run_dirs: Sequence[Path], device: torch.device) -> list | None:
    """Each run's checkpoint, or None when no run has one; runs at different epochs cannot share a loop."""
    paths = [run_dir / CHECKPOINT for run_dir in run_dirs]
    if not any(path.exists() for path in paths):
        return None
    states = [torch.load(path, map_location=device, weights_only=False) if path.exists() else None for path in paths]
    for config, state, path in zip(configs, states, paths):
        if state is not None and state["config"] != config.to_dict():
            raise ValueError(f"{path} belongs to another config; use a new run directory or delete it")
    epochs = [state["epoch"] if state is not None else 0 for state in states]
    if len(set(epochs)) > 1:
        raise ValueError(f"runs to be trained at once have checkpoints at different epochs {epochs} "
                         f"({', '.join(str(path.parent) for path in paths)}); resume them one at a time with fit")
    return states


def fit_runs(configs: Sequence[TrainConfig], run_dirs: Sequence[str | Path], *, progress: bool | None = None,
             verbose: bool = False, epoch_budget: int | None = None, time_budget_s: float | None = None,
             sync_every: int | None = None, compiled: bool = False) -> list[RunResult] | None:
    """Train R runs that differ only in their seed in one loop (a :class:`~sac_minimal.group.ModelGroup`): one
    batched forward and backward per step for all of them. Each run keeps its own initialisation, batch order and
    random negatives (generators seeded by its seed), its own checkpoint, metrics and result, as if trained alone by
    :func:`fit` (which is this function with R = 1); only floating-point summation order differs.

    Arguments as :func:`fit`, one ``run_dir`` per config, and ``sync_every``: steps between the host's reads of the
    loss values (the NaN/Inf check and the metrics); default 1 on CPU, where reading costs nothing, and 25 on CUDA,
    where each read makes the host wait for the GPU; and ``compiled``: ``torch.compile`` the forward and loss (on
    CUDA with CUDA graphs), which changes nothing but speed and rounding and is recorded in the results. Returns the
    R results, or ``None`` when stopped by a budget.
    """
    check_runs_can_share_a_loop(configs)
    if len(run_dirs) != len(configs):
        raise ValueError(f"{len(configs)} configs but {len(run_dirs)} run directories")
    config = configs[0]
    run_dirs = [Path(run_dir) for run_dir in run_dirs]
    for run_dir in run_dirs:
        run_dir.mkdir(parents=True, exist_ok=True)
    progress = sys.stdout.isatty() if progress is None else progress
    started = time.perf_counter()
    device = choose_device(config.device)
    sync_every = sync_every or (25 if device.type == "cuda" else 1)
    root, kind = resolve_data_root(config)
    annotations = load_annotations(root)
    feature_format = FeatureFormat.from_root(root)
    train_windows = WindowDataset(root, "train", annotations=annotations, feature_format=feature_format)
    resident = ResidentWindows(train_windows, device)
    if not bool(torch.isfinite(resident.bank).all()):
        raise ValueError(f"the training features under {root} contain NaN or Inf; run "
                         f"python -m sac_minimal data check --root {root}")
    anchors = default_anchors().to(device)

    channels = feature_format.channels_per_modality
    models = []
    for run_config in configs:
        torch.manual_seed(run_config.seed)
        models.append(Detector(run_config, channels, channels).to(device))
    group = ModelGroup(models)
    # fused: one kernel for all parameters on CUDA (the same Adam; only rounding differs from the loop version)
    optimizer = torch.optim.Adam(group.parameters(), lr=config.learning_rate, fused=device.type == "cuda")

    def step_losses(appearance, motion, segments, labels, priority):
        return training_losses(group, appearance, motion, segments, labels, priority, anchors,
                               matching=config.matching, negative_ratio=config.negative_ratio)

    if compiled:  # one optimised graph for forward and loss; on CUDA replayed as a CUDA graph (reduce-overhead)
        group.disable_host_sync()
        step_losses = torch.compile(step_losses, mode="reduce-overhead" if device.type == "cuda" else "default")
    histories, first_epoch = [[] for _ in configs], 1
    states = _resume_states(configs, run_dirs, device)
    if states is not None:
        for run, state in enumerate(states):
            group.load_state_dict(run, state["model"])
        load_optimizer_states(optimizer, group, [state["optimizer"] for state in states])
        histories, first_epoch = [state["metrics"] for state in states], states[0]["epoch"] + 1

    last_epoch = config.epochs if epoch_budget is None else min(config.epochs, first_epoch + epoch_budget - 1)
    finished_epoch = first_epoch - 1
    for epoch in range(first_epoch, last_epoch + 1):
        epoch_started = time.perf_counter()
        learning_rate = config.learning_rate_at(epoch)
        for parameter_group in optimizer.param_groups:
            parameter_group["lr"] = learning_rate
        group.train()
        shuffles = [torch.Generator().manual_seed(run.seed * 100_003 + epoch) for run in configs]
        negatives = [torch.Generator().manual_seed(run.seed * 100_003 + epoch + 50_000) for run in configs]
        orders = torch.stack([torch.randperm(len(resident), generator=shuffle) for shuffle in shuffles])  # [R, W]
        # The random-negative priorities of the whole epoch, one uniform number per (window slot, anchor), drawn on
        # the CPU (the same draws on every device) and moved to the device once per epoch, not once per step.
        priorities = torch.stack([torch.rand(len(resident), len(anchors), generator=generator)
                                  for generator in negatives]).to(device)  # [R, W, A]
        sums = torch.zeros(len(configs), len(LOSS_COLUMNS), dtype=torch.float64)
        steps, pending = 0, []  # pending: (step, batch indices, loss terms on the device) the host has not read yet
        for step, start in enumerate(range(0, orders.shape[1], config.batch_size), start=1):
            indices = orders[:, start:start + config.batch_size]  # [R, b]
            appearance, motion, segments, labels = (
                tensor.unflatten(0, indices.shape) for tensor in resident.batch(indices.flatten()))
            total, terms = step_losses(appearance, motion, segments, labels,
                                       priorities[:, start:start + config.batch_size])  # total: [R]
            pending.append((step, indices, torch.stack([value.detach().float() for value in terms.values()])))
            if len(pending) == sync_every or start + config.batch_size >= orders.shape[1]:
                # One device-to-host transfer for all terms of all runs of the pending steps: [steps, terms, R].
                values = torch.stack([entry[2] for entry in pending]).cpu()
                finite = torch.isfinite(values).flatten(1).all(1)
                if not bool(finite.all()):
                    first = int((~finite).nonzero()[0])
                    _stop_on_nonfinite(values[first], list(terms), configs, run_dirs, group, optimizer,
                                       pending[first][1], epoch, pending[first][0], step)
                for column, name in enumerate(LOSS_COLUMNS):
                    if name in terms:
                        sums[:, column] += values[:, list(terms).index(name)].double().sum(0)
                pending = []
                _progress(progress, f"epoch {epoch}/{config.epochs} step {step} loss {values[-1, -1].mean():.4f}")
            optimizer.zero_grad(set_to_none=True)
            total.sum().backward()  # the runs share no parameter, so each gets its own gradient
            optimizer.step()
            steps += 1
        seconds = time.perf_counter() - epoch_started
        for run, (run_config, run_dir) in enumerate(zip(configs, run_dirs)):
            row = {"epoch": epoch, "lr": learning_rate,
                   **{name: float(sums[run, column] / steps) for column, name in enumerate(LOSS_COLUMNS)},
                   "seconds": seconds}
            histories[run].append(row)
            torch.save({"config": run_config.to_dict(), "epoch": epoch, "model": group.state_dict(run),
                        "optimizer": optimizer_state_of(optimizer, group, run), "metrics": histories[run]},
                       run_dir / CHECKPOINT)
            _write_metrics(run_dir / METRICS, histories[run])
        if progress:
            sys.stdout.write("\n")
        if verbose:
            losses_text = ", ".join(f"{history[-1]['total']:.4f}" for history in histories)
            print(f"epoch {epoch:3d}  lr {learning_rate:.1e}  loss {losses_text}  ({seconds:.1f} s)")
        finished_epoch = epoch
        if time_budget_s is not None and time.perf_counter() - started + seconds > time_budget_s:
            break

    if finished_epoch < config.epochs:
        return None
    dataset = {"kind": kind, "root": root.name,
               "annotation_sha256": file_sha256(root / "annotations" / "thumos14.json")}
    results = []
    for run, (run_config, run_dir) in enumerate(zip(configs, run_dirs)):
        evaluation = evaluate_model(group.model(run), root, annotations, feature_format, device)
        result = RunResult(config=run_config, metrics=histories[run], evaluation=evaluation.summary(),
                           average_precision=[[None if np.isnan(value) else float(value) for value in row]
                                              for row in evaluation.average_precision],
                           dataset=dataset, seconds=time.perf_counter() - started, device=_device_name(device),
                           extra={**({"trained_together": len(configs)} if len(configs) > 1 else {}),
                                  **({"compiled": True} if compiled else {})})
        (run_dir / RESULT).write_text(json.dumps(result.to_dict(), indent=1))
        results.append(result)
    return results


def _stop_on_nonfinite(values, names, configs, run_dirs, group, optimizer, indices, epoch, step, current_step):
    """Save the state of the first run whose loss is not finite and stop with an error naming the step and terms.
    ``values``: ``[terms, R]`` of step ``step``; the weights saved are those before step ``current_step``'s update
    (the same step unless the host reads the losses every few steps)."""
    run = int((~torch.isfinite(values)).any(0).nonzero()[0])
    bad = ", ".join(f"{name}={value}" for name, value in zip(names, values[:, run].tolist())
                    if not np.isfinite(value))
    path = run_dirs[run] / NONFINITE_STATE
    torch.save({"config": configs[run].to_dict(), "epoch": epoch, "step": step, "weights_before_step": current_step,
                "model": group.state_dict(run), "optimizer": optimizer_state_of(optimizer, group, run),
                "batch": indices[run]}, path)
    weights = "" if current_step == step else f" (weights as before step {current_step})"
    raise FloatingPointError(f"non-finite loss at epoch {epoch}, step {step}: {bad}; the model{weights}, optimizer "
                             f"and batch of seed {configs[run].seed} were saved to {path}")


def _write_metrics(path: Path, metrics: list) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(metrics[0]))
        writer.writeheader()
        writer.writerows(metrics)


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def predict_windows(model: Detector, windows: WindowDataset, device: torch.device,
                    batch_size: int = 64) -> torch.Tensor:
    """Raw outputs ``[W, 140, 24]`` of every window (eval mode: SAC solves no transport problem)."""
    model.eval()
    resident = ResidentWindows(windows, device)
    outputs = []
    with torch.no_grad():
        for start in range(0, len(resident), batch_size):
            appearance, motion, _, _ = resident.batch(torch.arange(start, min(start + batch_size, len(resident))))
            outputs.append(model(appearance, motion)[0].cpu())
    return torch.cat(outputs)


def evaluate_model(model: Detector, root: Path, annotations, feature_format: FeatureFormat,
                   device: torch.device):
    """Test-split mAP of a model: predict every test window, post-process, evaluate."""
    test_windows = WindowDataset(root, "test", annotations=annotations, feature_format=feature_format)
    outputs = predict_windows(model, test_windows, device)
    videos = test_windows.table.videos
    detections = postprocess(outputs, default_anchors(), window_video=test_windows.table.video_index,
                             begin_frame=test_windows.table.begin_frame, videos=[video.video for video in videos],
                             fps=[video.fps for video in videos], durations=[video.duration for video in videos])
    return evaluate_detections(detections, annotations.split("test"))
