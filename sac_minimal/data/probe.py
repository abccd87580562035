"""Linear probes on ground-truth segments: does a modality identify a class?

Each annotated instance becomes one example: the mean appearance and the mean motion feature over the steps its
segment covers. A ridge-regression classifier (closed form, one-hot targets) is fitted on the training split and
scored per class on the test split with appearance only, motion only, or both. Notebook 06 uses it to show where
modality matters; the tests use it to check the synthetic surrogate's properties.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sac_minimal.data.thumos14 import (
    CLASS_ID,
    THUMOS14_CLASSES,
    FeatureFormat,
    VideoRecord,
    load_video_features,
)


@dataclass(frozen=True)
class SegmentExamples:
    """One row per instance (CliffDiving's duplicate Diving annotation dropped).

    Attributes:
        appearance, motion: ``[N, D]`` mean features over each segment's steps.
        labels: ``[N]`` class ids.
        videos: ``[N]`` the video of each instance.
    """

    appearance: np.ndarray
    motion: np.ndarray
    labels: np.ndarray
    videos: np.ndarray


def segment_steps(segments: np.ndarray, fps: float, frames_per_step: int, num_steps: int) -> np.ndarray:
    """``[N, 2]`` first and last feature step (inclusive) covered by each segment given in seconds."""
    first = np.floor(segments[:, 0] * fps / frames_per_step).astype(np.int64)
    last = np.ceil(segments[:, 1] * fps / frames_per_step).astype(np.int64) - 1
    first = first.clip(0, num_steps - 1)
    return np.stack([first, np.maximum(last.clip(0, num_steps - 1), first)], axis=1)


def segment_examples(root: str | Path, videos: Sequence[VideoRecord], feature_format: FeatureFormat) -> SegmentExamples:
    """Mean features of every instance of ``videos``, read from ``root``'s feature files."""
    appearance, motion, labels, names = [], [], [], []
    cliff, diving = CLASS_ID["CliffDiving"], CLASS_ID["Diving"]
    for video in videos:
        if not len(video.labels):
            continue
        duplicate = (video.labels == diving) & np.array(
            [((video.labels == cliff) & (video.segments == segment).all(axis=1)).any() for segment in video.segments])
        segments, video_labels = video.segments[~duplicate], video.labels[~duplicate]
        features = np.asarray(load_video_features(root, video.video, feature_format))
        steps = segment_steps(segments, video.fps, feature_format.frames_per_step, len(features))
        # Prefix sums turn every segment mean into two lookups.
        cumulative = np.concatenate([np.zeros((1, features.shape[1])), np.cumsum(features, axis=0, dtype=np.float64)])
        means = (cumulative[steps[:, 1] + 1] - cumulative[steps[:, 0]]) / (steps[:, 1] - steps[:, 0] + 1)[:, None]
        # Contrast with the video's own median step, so that the probe sees the action, not the scene.
        means -= np.median(features, axis=0)
        video_appearance, video_motion = feature_format.split(means)
        appearance.append(video_appearance)
        motion.append(video_motion)
        labels.append(video_labels)
        names += [video.video] * len(video_labels)
    if not labels:
        raise ValueError("no annotated instances to probe")
    return SegmentExamples(np.concatenate(appearance), np.concatenate(motion), np.concatenate(labels),
                           np.array(names))


def fit_ridge_probe(features: np.ndarray, labels: np.ndarray, *, num_classes: int = len(THUMOS14_CLASSES),
                    ridge: float = 1.0):
    """Fit a one-vs-all ridge classifier; returns ``predict(features) -> [N]`` class ids.

    Features are standardised with the training mean and deviation; weights solve
    ``(X^T X + ridge I) W = X^T Y`` with one-hot ``Y``.
    """
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-8
    design = np.hstack([(features - mean) / scale, np.ones((len(features), 1))])
    targets = np.eye(num_classes)[labels]
    weights = np.linalg.solve(design.T @ design + ridge * np.eye(design.shape[1]), design.T @ targets)

    def predict(new_features: np.ndarray) -> np.ndarray:
        new_design = np.hstack([(new_features - mean) / scale, np.ones((len(new_features), 1))])
        return (new_design @ weights).argmax(axis=1)

    return predict


def per_class_accuracy(predicted: np.ndarray, labels: np.ndarray,
                       num_classes: int = len(THUMOS14_CLASSES)) -> np.ndarray:
    """``[num_classes]`` accuracy per true class (NaN for classes without test instances)."""
    correct = np.bincount(labels, weights=(predicted == labels).astype(np.float64), minlength=num_classes)
    total = np.bincount(labels, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, correct / np.maximum(total, 1), np.nan)


def modality_probe(train: SegmentExamples, test: SegmentExamples, *, ridge: float = 1.0) -> dict:
    """Per-class test accuracy of probes on appearance only, motion only and both: ``{name: [20]}``,
    plus ``"predictions"``: the ``[N]`` test predictions of each probe."""
    inputs = {
        "appearance": (train.appearance, test.appearance),
        "motion": (train.motion, test.motion),
        "both": (np.hstack([train.appearance, train.motion]), np.hstack([test.appearance, test.motion])),
    }
    accuracy, predictions = {}, {}
    for name, (train_features, test_features) in inputs.items():
        predict = fit_ridge_probe(train_features, train.labels, ridge=ridge)
        predictions[name] = predict(test_features)
        accuracy[name] = per_class_accuracy(predictions[name], test.labels)
    accuracy["predictions"] = predictions
    return accuracy


PROBE_WINDOW, PROBE_STRIDE = 128, 64
"""Steps per window and between windows of :func:`reliability_probe` (the training windows' length)."""


PROBE_RIDGES = (1.0, 10.0, 100.0, 1000.0, 10000.0)
"""The ridge penalties :func:`reliability_probe` chooses from, by 5-fold cross-validation over training videos."""


def reliability_probe(root: str | Path, per_window: bool = False) -> dict:
    """Can reliability be *learned* from the features? Each window of :data:`PROBE_WINDOW` steps (every
    :data:`PROBE_STRIDE`) becomes one example, the mean appearance and motion feature over its steps (what a
    modality attention that pools a window sees), labelled by its video's condition (``clean``, ``far_camera``:
    motion unreliable, ``look_alike``: appearance unreliable, from ``synthetic.json``), or with ``per_window`` by the
    window's own state (:data:`WINDOW_STATES`, from the truth averaged over the window,
    :func:`window_state`); a ridge classifier (:func:`fit_ridge_probe`, its penalty chosen from :data:`PROBE_RIDGES`
    by 5-fold cross-validation over the training videos) is fitted on the training videos and scored on the test
    videos. If it cannot beat the majority class, no attention learned from these features can recover what the
    truth is worth.

    Returns ``{"accuracy", "chance", "windows", "ridge", "per_condition": {label: accuracy}}``."""
    from sac_minimal.data.synthetic import CONDITIONS, privileged_gates, read_synthetic_metadata
    from sac_minimal.data.thumos14 import load_annotations

    root = Path(root)
    metadata = read_synthetic_metadata(root)
    annotations = load_annotations(root, exclude=())
    feature_format = FeatureFormat.from_root(root)
    names = WINDOW_STATES if per_window else CONDITIONS
    examples = {}
    for split in ("train", "test"):
        rows, labels, owners = [], [], []
        for number, video in enumerate(annotations.split(split)):
            appearance, motion = feature_format.split(load_video_features(root, video.video, feature_format))
            condition = CONDITIONS.index(metadata["videos"][video.video]["condition"])
            gates = privileged_gates(metadata, video.video, len(appearance), video.fps) if per_window else None
            for start in range(0, max(1, len(appearance) - PROBE_WINDOW + 1), PROBE_STRIDE):
                span = slice(start, start + PROBE_WINDOW)
                rows.append(np.concatenate([appearance[span].mean(0), motion[span].mean(0)]))
                labels.append(window_state(gates[span].mean(0)) if per_window else condition)
                owners.append(number)
        examples[split] = (np.asarray(rows, dtype=np.float64), np.asarray(labels), np.asarray(owners))
    train_features, train_labels, train_videos = examples["train"]
    folds = train_videos % 5

    def validated(ridge):
        right = 0
        for fold in range(5):
            inside = folds != fold
            predict = fit_ridge_probe(train_features[inside], train_labels[inside], num_classes=len(names),
                                      ridge=ridge)
            right += (predict(train_features[~inside]) == train_labels[~inside]).sum()
        return right

    ridge = max(PROBE_RIDGES, key=validated)
    predict = fit_ridge_probe(train_features, train_labels, num_classes=len(names), ridge=ridge)
    features, labels, _ = examples["test"]
    predicted = predict(features)
    return {"accuracy": float((predicted == labels).mean()),
            "chance": float(np.bincount(labels, minlength=len(names)).max() / len(labels)),
            "windows": int(len(labels)), "ridge": ridge,
            "per_condition": {name: float((predicted[labels == index] == index).mean())
                              for index, name in enumerate(names) if (labels == index).any()}}


WINDOW_STATES = ("clean", "motion_misleads", "appearance_misleads")
"""A window's state for the per-window probe: both modalities mostly clean, or which one misleads more."""


def window_state(window_gates: np.ndarray) -> int:
    """The index in :data:`WINDOW_STATES` of a window whose truth averaged over its steps is ``window_gates``
    (appearance, motion): clean when both are at least 1/2, else the modality with the lower weight misleads."""
    appearance, motion = (float(value) for value in window_gates)
    if min(appearance, motion) >= 0.5:
        return 0
    return 1 if motion < appearance else 2
