"""What a trained SAC attends to, measured against what the surrogate knows about every window.

The surrogate records each video's true reliabilities r_appearance, r_motion and its corrupted stretches (:mod:`sac_minimal.data.synthetic`). A modality attention that learned the premise of the paper should
give appearance a larger share where motion is unreliable, and a frame attention should single out action steps
and, where the data has them, avoid corrupted steps. These functions measure that on the test windows:

==========================  ==========================================================================================
``share_spearman``           Spearman correlation of a_m's appearance share with log(r_a / r_m), over windows
``share_by_condition``       mean appearance share per video condition (clean, far camera, look-alike)
``frame_auc_action``         ROC AUC of a_f for telling action steps (inside a ground-truth segment) from the others
``frame_spearman_reliability``  Spearman correlation of a_f with the step's reliability factor (None without
                             corrupted stretches)
``frame_ratio_corrupted``    mean a_f on corrupted steps / on the other steps (None without corrupted stretches)
``median_max_share``         median over windows of max(a_m)
``share_spearman_window``    Spearman correlation of a_m's appearance share with the window's true share: the
                             privileged control per window's weights, w_a / (w_a + w_m) (:func:`window_share_truth`)
``share_error_window``       mean |a_m's appearance share - that true share| over windows: the level, not only the
                             rank
``share_by_state``           mean appearance share and mean true share per window state (both clean, motion misleads,
                             appearance misleads: :data:`~sac_minimal.data.probe.WINDOW_STATES`)
``step_share_spearman``      Spearman correlation, over every step of every window, of the attention's appearance
                             split A_a,t / (A_a,t + A_m,t) with the step's true share (the privileged control per
                             step's); a_m a_f^T splits every step of a window alike, a per-frame split need not
==========================  ==========================================================================================

Training writes these into every SAC run's result (``diagnostics``) on the surrogate; notebooks 09, 10 and 12 read them.
For every model on the surrogate it also writes the test mAP of each video condition (:func:`map_by_condition`):
where a model gains or loses, which a whole-split mAP hides.
On any data, real or synthetic, it also writes where the modality attention went (:func:`appearance_share_drift`):
its mean appearance share on the test windows at the run's start and at its end. Across the seeds of the official
SAC, that final share is what tracks the harm of the OT term (notebook 10); an earlier measure, the fraction of
windows with max(a_m) > 0.95, did not (it counted seeds that collapsed onto motion and scored well as failures), and
is no longer computed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import stats

from sac_minimal.data.probe import WINDOW_STATES, window_state
from sac_minimal.data.synthetic import CONDITIONS, clean_share, corruption_factor, privileged_gates
from sac_minimal.detection import Detections
from sac_minimal.evaluation import evaluate_detections
from sac_minimal.data.windows import ResidentWindows, WindowDataset


def window_attention(sac: torch.nn.Module, windows: WindowDataset, device: torch.device | str = "cpu",
                     batch_size: int = 64, *, step_split: bool = False) -> tuple:
    """SAC's modality attention ``[W, 2]`` and frame attention ``[W, T]`` on every window (eval mode, so no
    transport problem is solved); ``None`` for an attention the configuration does not have. With ``step_split``
    a third array follows: the appearance split of the 2 x T attention at every step, ``[W, T]``,
    A_a,t / (A_a,t + A_m,t)."""
    sac.eval()
    resident = ResidentWindows(windows, device)
    modality, frame, split = [], [], []
    with torch.no_grad():
        for start in range(0, len(resident), batch_size):
            appearance, motion, _, _ = resident.batch(torch.arange(start, min(start + batch_size, len(resident))))
            output = sac(appearance, motion)
            modality.append(None if output.modality_attention is None else output.modality_attention.cpu())
            frame.append(None if output.frame_attention is None else output.frame_attention.cpu())
            split.append((output.attention[:, 0] / output.attention.sum(1).clamp_min(1e-12)).cpu())
    attended = (None if modality[0] is None else torch.cat(modality).numpy(),
                None if frame[0] is None else torch.cat(frame).numpy())
    return (*attended, torch.cat(split).numpy()) if step_split else attended


def window_step_seconds(windows: WindowDataset) -> np.ndarray:
    """``[W, T]`` the time in its video of every step of every window (edge-padded steps repeat the last one)."""
    table, spec = windows.table, windows.spec
    steps_per_video = windows.feature_steps[table.video_index]
    local = np.minimum(table.begin_frame[:, None] // spec.frames_per_step + np.arange(spec.steps)[None],
                       steps_per_video[:, None] - 1)
    fps = np.array([table.videos[index].fps for index in table.video_index])
    return (spec.frames_per_step * local + 2 * spec.frames_per_step) / fps[:, None]  # as step_seconds_of


def window_truth(windows: WindowDataset, metadata: dict) -> dict:
    """What the surrogate knows about every window: ``reliability`` ``[W, 2]`` = (r_a, r_m) of its video,
    ``log_ratio`` ``[W]`` = log(r_a / r_m), ``condition`` ``[W]``, ``action`` ``[W, T]`` (the step lies inside a
    ground-truth segment) and ``reliability_factor`` ``[W, T]`` (the corrupted stretches' factor, 1 elsewhere and in
    generator v1)."""
    table = windows.table
    seconds = window_step_seconds(windows)
    reliability = np.empty((len(table), 2))
    condition = np.empty(len(table), dtype=object)
    action = np.zeros(seconds.shape, dtype=bool)
    factor = np.ones(seconds.shape)
    for video_index, video in enumerate(table.videos):
        rows = np.flatnonzero(table.video_index == video_index)
        entry = metadata["videos"][video.video]
        reliability[rows] = entry["reliability"]
        condition[rows] = entry["condition"]
        for start, end in video.segments:
            action[rows] |= (seconds[rows] >= start) & (seconds[rows] <= end)
        factor[rows] = corruption_factor(entry.get("corruptions", []), seconds[rows].ravel()).reshape(-1,
                                                                                                      seconds.shape[1])
    return {"reliability": reliability, "log_ratio": np.log(reliability[:, 0] / reliability[:, 1]),
            "condition": condition, "action": action, "reliability_factor": factor}


def step_truth(windows: WindowDataset, metadata: dict) -> np.ndarray:
    """``[W, T, 2]`` the privileged control's per-step weights (:func:`~sac_minimal.data.synthetic.privileged_gates`:
    each step's true clean share m^2, per modality) at every step of every window (edge padding repeats the last
    step)."""
    table, spec = windows.table, windows.spec
    steps_per_video = windows.feature_steps[table.video_index]
    local = np.minimum(table.begin_frame[:, None] // spec.frames_per_step + np.arange(spec.steps)[None],
                       steps_per_video[:, None] - 1)
    weights = np.empty((*local.shape, 2))
    for video_index, video in enumerate(table.videos):
        rows = np.flatnonzero(table.video_index == video_index)
        gates = privileged_gates(metadata, video.video, int(windows.feature_steps[video_index]), video.fps)
        weights[rows] = gates[local[rows]]
    return weights


def window_share_truth(step_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From :func:`step_truth`'s ``[W, T, 2]``: each window's true appearance share ``[W]``, w_a / (w_a + w_m) with
    w the privileged control per window's weights (the mean over the window's steps; 1/2 where both are 0), and
    each window's state ``[W]`` (:func:`~sac_minimal.data.probe.window_state`)."""
    window = step_weights.mean(axis=1)
    total = window.sum(axis=1)
    share = np.where(total > 0, window[:, 0] / np.where(total > 0, total, 1.0), 0.5)
    return share, np.array([window_state(row) for row in window])


def _step_share(step_weights: np.ndarray) -> np.ndarray:
    total = step_weights.sum(axis=-1)
    return np.where(total > 0, step_weights[..., 0] / np.where(total > 0, total, 1.0), 0.5)


def privileged_appearance_share(truth: dict) -> np.ndarray:
    """``[W]`` the appearance share that the privileged control's weights give each window's video,
    w_a / (w_a + w_m) with w = :func:`~sac_minimal.data.synthetic.clean_share` (r)^2 of the video's reliabilities
    (:func:`~sac_minimal.data.synthetic.privileged_gates` without the corrupted stretches, which lower both
    modalities alike): the level a modality attention that follows the truth as the privileged control does would
    sit at. At h = 0 it is 1/2 everywhere."""
    weights = clean_share(truth["reliability"]) ** 2
    return weights[:, 0] / weights.sum(axis=1)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for ``positive`` labels (the Mann-Whitney U statistic, ties counted
    half): the probability that a random positive scores above a random negative."""
    scores, positive = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(positive, dtype=bool).ravel()
    positives, negatives = int(positive.sum()), int((~positive).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("ROC AUC needs both positive and negative examples")
    ranks = stats.rankdata(scores)
    return float((ranks[positive].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _spearman(first: np.ndarray, second: np.ndarray) -> float | None:
    first, second = np.asarray(first).ravel(), np.asarray(second).ravel()
    if np.ptp(first) == 0 or np.ptp(second) == 0:
        return None
    return float(stats.spearmanr(first, second).statistic)


def attention_diagnostics(modality_attention: np.ndarray | None, frame_attention: np.ndarray | None,
                          truth: dict, step_split: np.ndarray | None = None) -> dict:
    """The measurements of the module docstring from one model's attention on the windows of ``truth``
    (:func:`window_truth`; the window and step measurements need its ``step_weights``, :func:`step_truth`).
    Measurements the model's attention cannot give are left out."""
    result = {}
    if "step_weights" in truth and modality_attention is not None:
        target, state = window_share_truth(truth["step_weights"])
        share = modality_attention[:, 0]
        result["share_spearman_window"] = _spearman(share, target)
        result["share_error_window"] = float(np.abs(share - target).mean())
        result["share_by_state"] = {name: {"attention": float(share[state == index].mean()),
                                           "truth": float(target[state == index].mean()),
                                           "windows": int((state == index).sum())}
                                    for index, name in enumerate(WINDOW_STATES) if (state == index).any()}
    if "step_weights" in truth and step_split is not None:
        result["step_share_spearman"] = _spearman(step_split, _step_share(truth["step_weights"]))
    if modality_attention is not None:
        share = modality_attention[:, 0]
        largest = modality_attention.max(axis=1)
        result["share_spearman"] = _spearman(share, truth["log_ratio"])
        result["share_by_condition"] = {condition: float(share[truth["condition"] == condition].mean())
                                        for condition in CONDITIONS if (truth["condition"] == condition).any()}
        result["median_max_share"] = float(np.median(largest))
    if frame_attention is not None:
        result["frame_auc_action"] = roc_auc(frame_attention, truth["action"])
        corrupted = truth["reliability_factor"] < 1
        result["frame_spearman_reliability"] = _spearman(frame_attention, truth["reliability_factor"])
        result["frame_ratio_corrupted"] = (float(frame_attention[corrupted].mean() / frame_attention[~corrupted].mean())
                                           if corrupted.any() else None)
    return result


def appearance_share_drift(start: torch.nn.Module, trained: torch.nn.Module, windows: WindowDataset,
                           device: torch.device | str = "cpu") -> dict:
    """Where a run's modality attention went: the mean appearance share a_m[:, 0] over ``windows`` of SAC at the
    run's start (``start``, rebuilt from the run's seed: matched starts make it the exact initial state) and after
    training, and the drift between them: ``{"start", "final", "drift"}``."""
    shares = [float(window_attention(sac, windows, device)[0][:, 0].mean()) for sac in (start, trained)]
    return {"start": shares[0], "final": shares[1], "drift": shares[1] - shares[0]}


def train_on_sac_losses(sac: torch.nn.Module, appearance: torch.Tensor, motion: torch.Tensor, *, steps: int = 120,
                        learning_rate: float = 1e-3) -> list[dict]:
    """Minimise SAC's own loss (L_OT and its regularisers, Eq. (6) without the detector) on fixed windows with
    Adam, and record after every step the batch means of a_m's appearance share and of max(a_m), L_OT and the
    mean of S. With the official preset this shows the OT
    collapse on its own (notebook 05): nothing but SAC's loss drives a_m to one modality.

    Args:
        sac: a :class:`~sac_minimal.sac.SAC` with ``use_ot`` (trained in place).
        appearance, motion: ``[B, D, T]`` windows.
    """
    optimizer = torch.optim.Adam(sac.parameters(), lr=learning_rate)
    sac.train()
    history = []
    for _ in range(steps):
        output = sac(appearance, motion)
        optimizer.zero_grad(set_to_none=True)
        output.losses["total"].backward()
        optimizer.step()
        shares = output.modality_attention.detach()
        history.append({"appearance_share": float(shares[:, 0].mean()),
                        "max_share": float(shares.max(-1).values.mean()),
                        "ot": float(output.losses["ot"].detach()),
                        "structure_mean": float(output.structure.detach().mean())})
    return history


def map_by_condition(detections: Detections, ground_truth: Sequence, metadata: dict,
                     metric: str = "Avg 0.1:0.7") -> dict:
    """``{condition: mAP}``: the test mAP (``metric``, a fraction) of ``detections`` scored against the test videos of
    each surrogate condition (clean, far camera, look-alike) alone; the detections of the other videos are left out
    (:func:`~sac_minimal.evaluation.evaluate_detections` drops detections of videos it has no truth for). Classes
    without an instance in a condition's videos do not count in its mean. A condition without any test video is
    left out."""
    conditions = {name: entry["condition"] for name, entry in metadata.get("videos", {}).items()}
    result = {}
    for condition in CONDITIONS:
        videos = [video for video in ground_truth if conditions.get(video.video) == condition]
        if any(len(video.labels) for video in videos):
            result[condition] = float(evaluate_detections(detections, videos).summary()[metric])
    return result
