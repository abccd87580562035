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

:func:`fit_runs` is the same loop for R seeds of one recipe at once (:class:`~sac_minimal.lab.group.ModelGroup`: one
batched forward and backward per step, each run with its own generators, checkpoint and result); :func:`fit` is
``fit_runs`` with R = 1.
"""

from __future__ import annotations

import csv
import io
import os
import pickle
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sac_minimal.anchors import default_anchors
from sac_minimal.data.synthetic import (
    METADATA_FILE,
    check_truth,
    privileged_gates,
    privileged_video_gates,
    read_synthetic_metadata,
    reference_gates,
)
from sac_minimal.data.thumos14 import ANNOTATION_FILE, AnnotationSet, FeatureFormat, VideoRecord, load_annotations
from sac_minimal.data.windows import ResidentWindows, WindowDataset
from sac_minimal.detection import postprocess_windows, ssad_loss_runs
from sac_minimal.evaluation import evaluate_detections
from sac_minimal.files import remove_stale_temporaries, save_torch_atomic, write_json_atomic, write_text_atomic
from sac_minimal.initialisation import official_conv_init
from sac_minimal.lab.acceptance import check_accepted_config
from sac_minimal.lab.config import TrainConfig, resolve_data_root
from sac_minimal.lab.diagnostics import (
    appearance_share_drift,
    attention_diagnostics,
    map_by_condition,
    step_truth,
    window_attention,
    window_truth,
)
from sac_minimal.lab.group import ModelGroup, load_optimizer_states, optimizer_state_of
from sac_minimal.lab.provenance import dataset_fingerprint, file_sha256, provenance
from sac_minimal.lab.runs import RESULT, RunResult
from sac_minimal.sac import SAC, WithSAC
from sac_minimal.ssad import SSAD

CHECKPOINT = "checkpoint.pt"
PREVIOUS_CHECKPOINT = "checkpoint_previous.pt"
UNREADABLE_CHECKPOINT = Exception
"""What ``torch.load`` may raise on a truncated, fuzzed or foreign file: anything (``RuntimeError``, ``EOFError``,
``UnpicklingError``, ``BadZipFile``, but also ``KeyError``, ``IndexError``, ``struct.error`` from a damaged
archive); every one of them means "unreadable", never a crash."""
CHECKPOINT_FIELDS = ("config", "epoch", "model", "optimizer", "metrics")
"""What a checkpoint must hold to resume from it."""
METRICS = "metrics.csv"
NONFINITE_STATE = "nonfinite_state.pt"
LOSS_COLUMNS = ("classification", "overlap", "localisation", "sac_ot", "sac_smooth", "sac_fnorm", "total")
MONITOR_COLUMNS = ("appearance_share", "modality_max", "structure_mean")
"""Per-epoch means logged next to the losses when the model has them (:attr:`sac_minimal.sac.SACOutput.monitors`)."""
METRIC_COLUMNS = LOSS_COLUMNS + MONITOR_COLUMNS


def choose_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU. Asking for ``cuda`` without a GPU is an error, not a silent CPU run."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch.cuda.is_available() is False (no GPU, or a CPU build "
                         "of torch); use --device auto or cpu")
    return torch.device(name)


class Detector(WithSAC):
    """SSAD, optionally behind SAC (or behind Θ alone for the capacity-matched baseline), built from a config.

    ``forward(appearance [B, Da, T], motion [B, Dm, T]) -> (raw [B, 140, 24], sac_terms dict)``: in training,
    SAC's loss terms (``total`` among them) and its monitors; empty for SSAD and the reference gate (whose gated
    features come from :func:`load_windows`). With ``amp`` SSAD runs under bf16 autocast on CUDA; SAC stays float32.

    Every convolution starts from the official initialisation drawn from a generator seeded by ``config.seed`` and
    its name (:mod:`sac_minimal.initialisation`): two models of the same seed start equal in every layer they share
    (SSAD's layers in SSAD and in SSAD+SAC, Θ and the attention heads with and without the OT branch).
    """

    def __init__(self, config: TrainConfig, appearance_channels: int, motion_channels: int):
        sac_config = config.sac_config(appearance_channels, motion_channels)
        sac = SAC(sac_config) if sac_config is not None else None
        host_channels = sac_config.output_channels if sac_config is not None else appearance_channels + motion_channels
        super().__init__(sac, SSAD(in_channels=host_channels, base_channels=config.base_channels,
                                   main_channels=config.main_channels))
        self.config, self.amp = config, config.amp
        official_conv_init(self, seed=config.seed)  # matched starts

    @property
    def ssad(self) -> SSAD:
        return self.host

    def run_host(self, features: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp and features.is_cuda):
            return self.host(features).float()


GATES = {"reference": reference_gates, "privileged": privileged_gates, "privileged_video": privileged_video_gates,
         "privileged_window": privileged_gates}
"""Controls that gate the features with weights computed from the surrogate's truth: the reference gate multiplies
each step; the privileged controls move it towards its video's mean (:data:`AROUND_MEAN`), per step, per video, or
per window (:data:`PER_WINDOW`)."""
AROUND_MEAN = ("privileged", "privileged_video", "privileged_window")
PER_WINDOW = ("privileged_window",)
"""Controls whose per-step weights are averaged over each window, so that every window has one weight per modality
(``WindowDataset.apply_window_gates``): the granularity of SAC's modality attention."""
"""Controls whose weights act around the video's mean (``WindowDataset.apply_step_gates(around_mean=True)``): a
weight of 0 removes a step's content without putting a jump into the features that could look like an action's
boundary."""


def load_windows(config: TrainConfig, root: Path, split: str, annotations: AnnotationSet,
                 feature_format: FeatureFormat) -> WindowDataset:
    """The windows of one split as the config's model sees them: for the ``reference`` and privileged controls,
    the features are gated by weights from the surrogate's truth (:data:`GATES`), per step, per window or per
    video."""
    windows = WindowDataset(root, split, annotations=annotations, feature_format=feature_format,
                            accept_length_mismatch=config.accept_length_mismatch)
    if config.model in GATES:
        if not (root / METADATA_FILE).exists():
            raise ValueError(f"the {config.model} control needs the true reliabilities the surrogate records in "
                             f"{METADATA_FILE}; {root} has none (real videos have no known reliability)")
        metadata = read_synthetic_metadata(root)
        check_truth(metadata, [video.video for video in windows.table.videos], root)
        gates = [GATES[config.model](metadata, video.video, steps, video.fps)
                 for video, steps in zip(windows.table.videos, windows.feature_steps)]
        if config.model in PER_WINDOW:
            windows.apply_window_gates(gates)
        else:
            windows.apply_step_gates(gates, around_mean=config.model in AROUND_MEAN)
    return windows


def _progress(enabled: bool, text: str) -> None:
    if enabled:
        sys.stdout.write("\r" + text)
        sys.stdout.flush()


def _loss_terms(losses: dict, sac_terms: dict) -> dict:
    terms = {"classification": losses["classification"], "overlap": losses["overlap"],
             "localisation": losses["localisation"]}
    for name in ("ot", "smooth", "fnorm"):
        if name in sac_terms:
            terms[f"sac_{name}"] = sac_terms[name]
    terms.update({name: sac_terms[name] for name in MONITOR_COLUMNS if name in sac_terms})
    return terms


def training_losses(group: ModelGroup, appearance, motion, segments, labels, priority, anchors, *,
                    matching: str = "decoded", negative_ratio: float = 1.0,
                    loss: str = "official") -> tuple[torch.Tensor, dict]:
    """Forward and loss of one training step for the R runs of a group: Eq. (6), SSAD's three terms plus SAC's.

    Args:
        appearance, motion: ``[R, B, D, T]``; segments ``[R, B, S, 2]``; labels ``[R, B, S]``; priority
            ``[R, B, A]`` (random negatives, :func:`~sac_minimal.detection.select_negatives`).

    Returns:
        ``(total [R], {term: [R]})`` with the terms of :data:`METRIC_COLUMNS` that the model has.
    """
    raw, sac_terms = group(appearance, motion)
    losses = ssad_loss_runs(raw, segments, labels, anchors, priority, matching=matching,
                            negative_ratio=negative_ratio, loss=loss)
    total = WithSAC.total_loss(losses["total"], sac_terms)
    return total, {**_loss_terms(losses, sac_terms), "total": total}


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


def save_checkpoint(run_dir: Path, state: dict) -> None:
    """Write ``checkpoint.pt`` atomically, keeping the previous epoch's as ``checkpoint_previous.pt`` until the new
    one is complete, so that a damaged checkpoint can fall back one epoch (:func:`load_checkpoint`)."""
    path = run_dir / CHECKPOINT
    if path.exists():
        os.replace(path, run_dir / PREVIOUS_CHECKPOINT)
    save_torch_atomic(path, state)


def load_checkpoint(run_dir: Path, device: torch.device | str = "cpu") -> dict | None:
    """A run folder's checkpoint (``None`` when it has none). An unreadable ``checkpoint.pt`` falls back to the
    previous epoch's with a warning naming the file; if both are unreadable, a ``ValueError`` names them."""
    failures = []
    for name in (CHECKPOINT, PREVIOUS_CHECKPOINT):
        path = run_dir / name
        if not path.exists():
            continue
        try:
            state = torch.load(path, map_location=device, weights_only=True)  # data only: never runs code
            if not isinstance(state, dict) or any(name not in state for name in CHECKPOINT_FIELDS):
                raise ValueError(f"not a checkpoint of this package (needs {', '.join(CHECKPOINT_FIELDS)})")
        except UNREADABLE_CHECKPOINT as error:
            failures.append(f"{path} ({_unreadable(error)})")
            continue
        if failures or name == PREVIOUS_CHECKPOINT:
            reason = "; ".join(failures) if failures else f"{run_dir / CHECKPOINT} is missing"
            warnings.warn(f"{reason}: resuming from {path} (epoch {state['epoch']})", stacklevel=2)
        return state
    if failures:
        raise ValueError(f"no readable checkpoint in {run_dir}: {'; '.join(failures)}. Delete the folder to train "
                         "this run from the start")
    return None


def _unreadable(error: Exception) -> str:
    """Why ``torch.load`` could not read a checkpoint, in one line."""
    if isinstance(error, pickle.UnpicklingError) and "weights_only" in str(error).lower() or \
            "Weights only load failed" in str(error):
        return "not a checkpoint of plain tensors and numbers; it is not loaded, since loading it could run code"
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else "empty or truncated file"
    return f"{type(error).__name__}: {first_line[:160]}"


def _resume_states(configs: Sequence[TrainConfig], run_dirs: Sequence[Path], device: torch.device) -> list | None:
    """Each run's checkpoint, or None when no run has one; runs at different epochs cannot share a loop."""
    states = [load_checkpoint(run_dir, device) for run_dir in run_dirs]
    if all(state is None for state in states):
        return None
    for config, state, run_dir in zip(configs, states, run_dirs):
        if state is not None and state["config"] != config.to_dict():
            differences = TrainConfig.from_dict(state["config"]).differences(config)
            raise ValueError(f"the checkpoint in {run_dir} belongs to another config (recorded -> asked: "
                             f"{'; '.join(differences)}); use a new run directory or delete it")
    epochs = [state["epoch"] if state is not None else 0 for state in states]
    if len(set(epochs)) > 1:
        raise ValueError(f"runs to be trained at once have checkpoints at different epochs {epochs} "
                         f"({', '.join(str(run_dir) for run_dir in run_dirs)}); resume them one at a time with fit")
    return states


@dataclass
class TrainingSetup:
    """Everything the epochs of R runs trained at once share (built by :func:`prepare_runs`)."""

    configs: Sequence[TrainConfig]
    run_dirs: Sequence[Path]
    device: torch.device
    dataset: dict
    ground_truth: list
    train: ResidentWindows
    test: WindowDataset
    anchors: object
    group: ModelGroup
    optimizer: torch.optim.Optimizer
    step_losses: object
    sync_every: int


def prepare_runs(configs: Sequence[TrainConfig], run_dirs: Sequence[Path], *, sync_every: int | None = None,
                 compiled: bool = False) -> TrainingSetup:
    """Set-up: the device, both splits' windows (checked before the first step, so that a bad test file is found
    now and not after training), the R models (each initialised from its own seed), one Adam and the step's
    forward-and-loss function."""

    check_runs_can_share_a_loop(configs)
    for config in configs:
        check_accepted_config(config)
    if len(run_dirs) != len(configs):
        raise ValueError(f"{len(configs)} configs but {len(run_dirs)} run directories")
    config = configs[0]
    root, kind = resolve_data_root(config)  # a folder that is refused leaves no run directory behind
    for run_dir in run_dirs:
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(run_dir)  # a checkpoint write killed before its rename
    device = choose_device(config.device)
    annotations = load_annotations(root)
    ground_truth = load_annotations(root, clip_to_video=False).split("test")  # scored as annotated
    for split, videos in (("train", annotations.split("train")), ("test", ground_truth)):
        if not any(len(video.labels) for video in videos):
            raise ValueError(f"the {split} split of {root} has no instance of THUMOS14's 20 classes (only "
                             "Ambiguous or unknown labels, or no videos): nothing to train on or score; check the "
                             "annotation file with python -m sac_minimal data check")
    feature_format = FeatureFormat.from_root(root)
    train_windows = load_windows(config, root, "train", annotations, feature_format)
    test_windows = load_windows(config, root, "test", annotations, feature_format)
    resident = ResidentWindows(train_windows, device)
    dataset = {"kind": kind, "root": root.name, "annotation_sha256": file_sha256(root / ANNOTATION_FILE),
               "fingerprint": dataset_fingerprint(root), "path": str(root)}
    if kind == "synthetic":
        dataset["generator_version"] = read_synthetic_metadata(root)["generator_version"]
    anchors = default_anchors().to(device)
    channels = feature_format.channels_per_modality
    models = []
    for run_config in configs:  # each seeded by its config (matched starts: sac_minimal.initialisation)
        models.append(Detector(run_config, channels, channels).to(device))
    group = ModelGroup(models)
    # fused: one kernel for all parameters on CUDA (the same Adam; only rounding differs from the loop version)
    optimizer = torch.optim.Adam(group.parameters(), lr=config.learning_rate, fused=device.type == "cuda")

    def step_losses(appearance, motion, segments, labels, priority):
        return training_losses(group, appearance, motion, segments, labels, priority, anchors,
                               matching=config.matching, negative_ratio=config.negative_ratio, loss=config.loss)

    if compiled:  # one optimised graph for forward and loss; on CUDA replayed as a CUDA graph (reduce-overhead)
        group.disable_host_sync()
        step_losses = torch.compile(step_losses, mode="reduce-overhead" if device.type == "cuda" else "default")
    return TrainingSetup(configs, run_dirs, device, dataset, ground_truth, resident, test_windows, anchors, group,
                         optimizer, step_losses, sync_every or (25 if device.type == "cuda" else 1))


def epoch_draws(configs: Sequence[TrainConfig], epoch: int, windows: int, anchors: int,
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch's random draws for every run, from generators seeded by (seed, epoch): the batch order
    ``[R, W]`` and the random-negative priorities ``[R, W, A]``, one uniform number per (window slot, anchor), drawn
    on the CPU (the same draws on every device) and moved to the device once per epoch, not once per step."""
    shuffles = [torch.Generator().manual_seed(run.seed * 100_003 + epoch) for run in configs]
    negatives = [torch.Generator().manual_seed(run.seed * 100_003 + epoch + 50_000) for run in configs]
    orders = torch.stack([torch.randperm(windows, generator=shuffle) for shuffle in shuffles])
    priorities = torch.stack([torch.rand(windows, anchors, generator=generator) for generator in negatives])
    return orders, priorities.to(device)


def train_epoch(setup: TrainingSetup, epoch: int, progress: bool) -> tuple[torch.Tensor, int, set]:
    """One epoch of every run: the shuffled batches, each a forward, a loss, a backward and an Adam step. Returns
    the summed metrics ``[R, len(METRIC_COLUMNS)]`` (float64), the number of steps and the metric names seen."""
    config = setup.configs[0]
    for parameter_group in setup.optimizer.param_groups:
        parameter_group["lr"] = config.learning_rate_at(epoch)
    setup.group.train()
    orders, priorities = epoch_draws(setup.configs, epoch, len(setup.train), len(setup.anchors), setup.device)
    sums = torch.zeros(len(setup.configs), len(METRIC_COLUMNS), dtype=torch.float64)
    steps, pending, names = 0, [], set()  # pending: (step, batch indices, loss terms the host has not read yet)
    for step, start in enumerate(range(0, orders.shape[1], config.batch_size), start=1):
        indices = orders[:, start:start + config.batch_size]  # [R, b]
        appearance, motion, segments, labels = (
            tensor.unflatten(0, indices.shape) for tensor in setup.train.batch(indices.flatten()))
        total, terms = setup.step_losses(appearance, motion, segments, labels,
                                         priorities[:, start:start + config.batch_size])  # total: [R]
        names.update(terms)
        pending.append((step, indices, torch.stack([value.detach().float() for value in terms.values()])))
        if len(pending) == setup.sync_every or start + config.batch_size >= orders.shape[1]:
            sums += _read_pending(setup, pending, list(terms), epoch, step)
            _progress(progress, f"epoch {epoch}/{config.epochs} step {step} mean loss "
                                f"{float(sums[:, LOSS_COLUMNS.index('total')].mean()) / step:.4f}")
            pending = []
        setup.optimizer.zero_grad(set_to_none=True)
        total.sum().backward()  # the runs share no parameter, so each gets its own gradient
        setup.optimizer.step()
        steps += 1
    return sums, steps, names


def _read_pending(setup: TrainingSetup, pending: list, names: list, epoch: int, step: int) -> torch.Tensor:
    """The pending steps' loss terms in one device-to-host transfer (``[steps, terms, R]``), checked for NaN/Inf,
    summed into the metric columns ``[R, len(METRIC_COLUMNS)]``."""
    values = torch.stack([entry[2] for entry in pending]).cpu()
    finite = torch.isfinite(values).flatten(1).all(1)
    if not bool(finite.all()):
        first = int((~finite).nonzero()[0])
        _stop_on_nonfinite(values[first], names, setup, pending[first][1], epoch, pending[first][0], step)
    sums = torch.zeros(len(setup.configs), len(METRIC_COLUMNS), dtype=torch.float64)
    for column, name in enumerate(METRIC_COLUMNS):
        if name in names:
            sums[:, column] = values[:, names.index(name)].double().sum(0)
    return sums


def save_epoch(setup: TrainingSetup, epoch: int, sums: torch.Tensor, steps: int, names: set, seconds: float,
               histories: list) -> None:
    """Append each run's epoch means to its history and write its checkpoint and ``metrics.csv``."""
    for run, (run_config, run_dir) in enumerate(zip(setup.configs, setup.run_dirs)):
        row = {"epoch": epoch, "lr": run_config.learning_rate_at(epoch),
               **{name: float(sums[run, column] / steps) for column, name in enumerate(METRIC_COLUMNS)
                  if name in LOSS_COLUMNS or name in names},
               "seconds": seconds}
        histories[run].append(row)
        save_checkpoint(run_dir, {"config": run_config.to_dict(), "epoch": epoch,
                                  "model": setup.group.state_dict(run),
                                  "optimizer": optimizer_state_of(setup.optimizer, setup.group, run),
                                  "metrics": histories[run]})
        _write_metrics(run_dir / METRICS, histories[run])


def evaluate_runs(setup: TrainingSetup, histories: list, started: float, extra: dict) -> list[RunResult]:
    """Evaluate every run on the test split (and, for SAC on the surrogate, measure its attention:
    :mod:`sac_minimal.lab.diagnostics`), write each ``result.json`` and return the results."""
    results = []
    device_name = _device_name(setup.device)
    for run, (run_config, run_dir) in enumerate(zip(setup.configs, setup.run_dirs)):
        model = setup.group.model(run)
        detections, evaluation = evaluate_model(model, setup.test, setup.ground_truth, setup.device)
        run_extra = {**extra, "provenance": provenance(device_name)}
        if setup.dataset["kind"] == "synthetic":
            metadata = read_synthetic_metadata(setup.dataset["path"])
            run_extra["map_by_condition"] = map_by_condition(detections, setup.ground_truth, metadata)
        if model.sac is not None and model.sac.config.attention in ("modality", "composed", "sequential"):
            channels = setup.test.feature_format.channels_per_modality
            start = Detector(run_config, channels, channels).sac.to(setup.device)  # this run's start (matched init)
            run_extra["appearance_share"] = appearance_share_drift(start, model.sac, setup.test, setup.device)
        if model.sac is not None and setup.dataset["kind"] == "synthetic":
            metadata = read_synthetic_metadata(setup.dataset["path"])
            truth = {**window_truth(setup.test, metadata), "step_weights": step_truth(setup.test, metadata)}
            modality, frame, split = window_attention(model.sac, setup.test, setup.device, step_split=True)
            run_extra["diagnostics"] = attention_diagnostics(modality, frame, truth, split)
        result = RunResult(config=run_config, metrics=histories[run], evaluation=evaluation.summary(),
                           average_precision=[[None if np.isnan(value) else float(value) for value in row]
                                              for row in evaluation.average_precision],
                           dataset={key: value for key, value in setup.dataset.items() if key != "path"},
                           seconds=time.perf_counter() - started, device=device_name, extra=run_extra)
        write_json_atomic(run_dir / RESULT, result.to_dict())
        results.append(result)
    return results


class WouldNotFinish(RuntimeError):
    """Raised by :func:`fit_runs` with ``finish_within_budget`` when, after its first epoch, the whole loop is
    projected to outlast the time budget: on a machine that is lent for minutes and then wiped, a loop that cannot
    finish is lost work. ``projected_s``: the loop's projected wall time (setup, the epoch just measured and the
    epochs left at its pace); ``budget_s``: the budget it was given; ``epoch_s``: the measured epoch."""

    def __init__(self, projected_s: float, budget_s: float, epoch_s: float):
        self.projected_s, self.budget_s, self.epoch_s = projected_s, budget_s, epoch_s
        super().__init__(f"this training loop would take about {projected_s / 60:.1f} min ({epoch_s:.1f} s per epoch)"
                         f" but {budget_s / 60:.1f} min were left: stopped after one epoch")


def fit_runs(configs: Sequence[TrainConfig], run_dirs: Sequence[str | Path], *, progress: bool | None = None,
             verbose: bool = False, epoch_budget: int | None = None, time_budget_s: float | None = None,
             sync_every: int | None = None, compiled: bool = False,
             finish_within_budget: bool = False) -> list[RunResult] | None:
    """Train R runs that differ only in their seed in one loop (a :class:`~sac_minimal.lab.group.ModelGroup`): one
    batched forward and backward per step for all of them. Each run keeps its own initialisation, batch order and
    random negatives (generators seeded by its seed), its own checkpoint, metrics and result, as if trained alone by
    :func:`fit` (which is this function with R = 1); only floating-point summation order differs.

    Arguments as :func:`fit`, one ``run_dir`` per config, and ``sync_every``: steps between the host's reads of the
    loss values (the NaN/Inf check and the metrics); default 1 on CPU, where reading costs nothing, and 25 on CUDA,
    where each read makes the host wait for the GPU; and ``compiled``: ``torch.compile`` the forward and loss (on
    CUDA with CUDA graphs), which changes nothing but speed and rounding and is recorded in the results. Returns the
    R results, or ``None`` when stopped by a budget. With ``finish_within_budget`` a loop projected after its first
    epoch to outlast ``time_budget_s`` raises :class:`WouldNotFinish` instead of training on (its checkpoint stays).
    """
    started = time.perf_counter()
    progress = sys.stdout.isatty() if progress is None else progress
    setup = prepare_runs(configs, [Path(run_dir) for run_dir in run_dirs], sync_every=sync_every,
                         compiled=compiled)
    histories, first_epoch = [[] for _ in configs], 1
    states = _resume_states(setup.configs, setup.run_dirs, setup.device)
    if states is not None:
        for run, state in enumerate(states):
            setup.group.load_state_dict(run, state["model"])
        load_optimizer_states(setup.optimizer, setup.group, [state["optimizer"] for state in states])
        histories, first_epoch = [state["metrics"] for state in states], states[0]["epoch"] + 1

    epochs = configs[0].epochs
    last_epoch = epochs if epoch_budget is None else min(epochs, first_epoch + epoch_budget - 1)
    finished_epoch = first_epoch - 1
    for epoch in range(first_epoch, last_epoch + 1):
        epoch_started = time.perf_counter()
        sums, steps, names = train_epoch(setup, epoch, progress)
        seconds = time.perf_counter() - epoch_started
        save_epoch(setup, epoch, sums, steps, names, seconds, histories)
        if progress:
            sys.stdout.write("\n")
        if verbose:
            losses_text = ", ".join(f"{history[-1]['total']:.4f}" for history in histories)
            print(f"epoch {epoch:3d}  lr {configs[0].learning_rate_at(epoch):.1e}  loss {losses_text}  "
                  f"({seconds:.1f} s)")
        finished_epoch = epoch
        elapsed = time.perf_counter() - started
        if finish_within_budget and time_budget_s is not None and epoch == first_epoch:
            projected = elapsed + seconds * (last_epoch - epoch)
            if projected > time_budget_s:
                raise WouldNotFinish(projected, time_budget_s, seconds)
        if time_budget_s is not None and elapsed + seconds > time_budget_s:
            break
    if finished_epoch < epochs:
        return None
    extra = {**({"trained_together": len(configs), "trained_with": sorted(config.seed for config in configs)}
                if len(configs) > 1 else {}),
             **({"compiled": True} if compiled else {})}
    return evaluate_runs(setup, histories, started, extra)


def _stop_on_nonfinite(values, names, setup: TrainingSetup, indices, epoch, step, current_step):
    """Save the state of the first run whose loss is not finite and stop with an error naming the step and terms.
    ``values``: ``[terms, R]`` of step ``step``; the weights saved are those before step ``current_step``'s update
    (the same step unless the host reads the losses every few steps)."""
    run = int((~torch.isfinite(values)).any(0).nonzero()[0])
    bad = ", ".join(f"{name}={value}" for name, value in zip(names, values[:, run].tolist())
                    if not np.isfinite(value))
    path = setup.run_dirs[run] / NONFINITE_STATE
    config = setup.configs[run]
    save_torch_atomic(path, {"config": config.to_dict(), "epoch": epoch, "step": step,
                             "weights_before_step": current_step, "model": setup.group.state_dict(run),
                             "optimizer": optimizer_state_of(setup.optimizer, setup.group, run),
                             "batch": indices[run]})
    weights = "" if current_step == step else f" (weights as before step {current_step})"
    raise FloatingPointError(f"non-finite loss at epoch {epoch}, step {step}: {bad}; the model{weights}, optimizer "
                             f"and batch of seed {config.seed} were saved to {path}")


def _write_metrics(path: Path, metrics: list) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(metrics[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(metrics)
    write_text_atomic(path, buffer.getvalue())


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The per-epoch rows of a run folder's ``metrics.csv`` (numbers as floats, the epoch as an int)."""
    with open(Path(run_dir) / METRICS, newline="") as handle:
        return [{key: int(value) if key == "epoch" else float(value) for key, value in row.items()}
                for row in csv.DictReader(handle)]


def load_trained_model(run_dir: str | Path, device: torch.device | str = "cpu") -> Detector:
    """The model of a run folder at its last saved epoch, in eval mode (its config and widths come from the
    checkpoint and the dataset it names)."""
    state = load_checkpoint(Path(run_dir), device)
    if state is None:
        raise FileNotFoundError(f"no checkpoint in {run_dir}; train the run first (python -m sac_minimal train)")
    config = TrainConfig.from_dict(state["config"])
    channels = FeatureFormat.from_root(resolve_data_root(config)[0]).channels_per_modality
    model = Detector(config, channels, channels).to(device)
    model.load_state_dict(state["model"])
    return model.eval()


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


def evaluate_model(model: Detector, test_windows: WindowDataset, ground_truth: Sequence[VideoRecord],
                   device: torch.device):
    """A model's test-split detections and their evaluation: predict every test window, post-process, evaluate
    against ``ground_truth`` (the test videos read with ``clip_to_video=False``: segments as annotated). The
    detections are returned too, so that they can be scored per video condition without predicting again."""
    detections = postprocess_windows(predict_windows(model, test_windows, device), test_windows)
    return detections, evaluate_detections(detections, ground_truth)
