"""THUMOS14 evaluation: ActivityNet-style average precision per class at temporal-IoU thresholds, and mAP.

For one class and one threshold (the ActivityNet protocol the official SAC code uses):

1. sort the class's detections by score, highest first;
2. walk down the list; a detection is a true positive if, among the ground-truth segments of the same class in the
   same video that no earlier detection has claimed, the one with the highest tIoU has tIoU >= threshold; it then
   claims that segment. Otherwise it is a false positive (duplicates, misses and wrong videos alike);
3. precision and recall after every detection; AP = the area under the precision envelope (all-point
   interpolation: precision at recall r is the best precision at any recall >= r).

mAP is the mean AP over the classes that have ground truth. THUMOS14 papers report tIoU 0.1, 0.2, ..., 0.7 and the
mean over them (the SAC paper's "Avg."); ActionFormer-era papers average 0.3..0.7; both are reported.

Detections on videos that are not in the ground truth at all (for instance an excluded video) are dropped and
counted, rather than scored as false positives; a detection in a ground-truth video that holds no instance of its
class is a false positive, as in ActivityNet.

Speed: the greedy matching depends only on earlier detections of the same (video, class), so step k handles the
k-th best detection of every (video, class) group at once, for every threshold at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sac_minimal.data.thumos14 import THUMOS14_CLASSES, VideoRecord
from sac_minimal.detection import Detections, rank_within_groups

DEFAULT_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def segment_iou(segment: np.ndarray, others: np.ndarray) -> np.ndarray:
    """tIoU of ``[..., 2]`` segments with ``[..., M, 2]`` segments -> ``[..., M]`` (broadcast over leading axes)."""
    start = np.maximum(segment[..., None, 0], others[..., 0])
    end = np.minimum(segment[..., None, 1], others[..., 1])
    intersection = (end - start).clip(min=0)
    union = (segment[..., None, 1] - segment[..., None, 0]) + (others[..., 1] - others[..., 0]) - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection, dtype=np.float64), where=union > 0)


def interpolated_average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """All-point interpolated AP from precision and recall after each ranked detection."""
    precision = np.concatenate([[0.0], precision, [0.0]])
    recall = np.concatenate([[0.0], recall, [1.0]])
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * envelope[steps]))


def match_detections(detections: Detections, ground_truth: Sequence[VideoRecord],
                     thresholds: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """True-positive flags ``[n_thresholds, N]`` of every detection (in ``detections``' order) and a mask ``[N]``
    of the detections whose video is in the ground truth."""
    thresholds = np.asarray(thresholds, dtype=np.float64)
    name_to_gt = {video.video: index for index, video in enumerate(ground_truth)}
    gt_video = np.array([name_to_gt.get(name, -1) for name in detections.videos], dtype=np.int64)
    detection_video = gt_video[detections.video_index] if len(detections) else np.zeros(0, dtype=np.int64)
    known = detection_video >= 0
    num_classes = len(THUMOS14_CLASSES)
    true_positive = np.zeros((len(thresholds), len(detections)), dtype=bool)

    # Ground truth laid out as a padded table, one row per (video, class) group that has any.
    gt_group = np.concatenate([index * num_classes + video.labels for index, video in enumerate(ground_truth)])
    gt_segments = np.concatenate([video.segments for video in ground_truth]) if ground_truth else np.zeros((0, 2))
    order = np.argsort(gt_group, kind="stable")
    gt_group, gt_segments = gt_group[order], gt_segments[order]
    groups, first = np.unique(gt_group, return_index=True)
    if not len(groups):
        return true_positive, known
    width = int(np.diff(np.append(first, len(gt_group))).max())
    table = np.full((len(groups), width, 2), np.nan)
    table[np.searchsorted(groups, gt_group), rank_within_groups(gt_group)] = gt_segments
    claimed = np.zeros((len(groups), width, len(thresholds)), dtype=bool)

    detection_group = detection_video * num_classes + detections.labels
    row = np.searchsorted(groups, detection_group).clip(max=len(groups) - 1)
    has_gt = known & (groups[row] == detection_group)
    candidates = np.flatnonzero(has_gt)
    candidates = candidates[np.lexsort((-detections.scores[candidates], detection_group[candidates]))]
    rank = rank_within_groups(detection_group[candidates])
    for step in range(int(rank.max()) + 1 if len(rank) else 0):
        current = candidates[rank == step]
        rows = row[current]
        iou = segment_iou(detections.segments[current], table[rows])  # [n, width]; NaN padding -> 0
        usable = (iou[..., None] >= thresholds) & ~claimed[rows]  # [n, width, thresholds]
        scored = np.where(usable, iou[..., None], -1.0)
        best = scored.argmax(axis=1)  # [n, thresholds]
        hit = np.take_along_axis(scored, best[:, None, :], axis=1)[:, 0, :] >= 0
        true_positive[:, current] = hit.T
        hit_rows, hit_thresholds = np.nonzero(hit)
        claimed[rows[hit_rows], best[hit_rows, hit_thresholds], hit_thresholds] = True
    return true_positive, known


@dataclass(frozen=True)
class EvaluationResult:
    """AP per threshold and class, and the summaries papers report.

    Attributes:
        thresholds: ``[n]`` tIoU thresholds.
        average_precision: ``[n, 20]`` AP per threshold and class (NaN for classes without ground truth).
        ground_truth_counts: ``[20]`` instances per class.
        dropped: detections dropped because their video is not in the ground truth.
    """

    thresholds: np.ndarray
    average_precision: np.ndarray
    ground_truth_counts: np.ndarray
    dropped: int

    @property
    def mean_ap(self) -> np.ndarray:
        """``[n]`` mAP per threshold (mean over classes with ground truth)."""
        return np.nanmean(self.average_precision, axis=1)

    def average_over(self, low: float, high: float) -> float:
        """Mean of mAP over the thresholds in [low, high]."""
        chosen = (self.thresholds >= low - 1e-9) & (self.thresholds <= high + 1e-9)
        if not chosen.any():
            raise ValueError(f"no evaluated threshold lies in [{low}, {high}]; evaluated {self.thresholds.tolist()}")
        return float(self.mean_ap[chosen].mean())

    def summary(self) -> dict:
        """``{"mAP@0.1": ..., ..., "Avg 0.1:0.7": ..., "Avg 0.3:0.7": ...}`` (fractions, not percent)."""
        result = {f"mAP@{threshold:.1f}": float(value) for threshold, value in zip(self.thresholds, self.mean_ap)}
        for low, high in ((0.1, 0.7), (0.3, 0.7)):
            if ((self.thresholds >= low - 1e-9) & (self.thresholds <= high + 1e-9)).any():
                result[f"Avg {low:.1f}:{high:.1f}"] = self.average_over(low, high)
        return result

    def format_table(self) -> str:
        """Per-class AP (percent) at every threshold, then the mAP row."""
        header = f"{'class':<18} {'GT':>4} | " + " ".join(f"{threshold:>5.1f}" for threshold in self.thresholds)
        lines = [header, "-" * len(header)]
        for index, name in enumerate(THUMOS14_CLASSES):
            if self.ground_truth_counts[index]:
                values = " ".join(f"{100 * value:>5.1f}" for value in self.average_precision[:, index])
                lines.append(f"{name:<18} {self.ground_truth_counts[index]:>4} | {values}")
        lines.append("-" * len(header))
        lines.append(f"{'mAP':<18} {int(self.ground_truth_counts.sum()):>4} | "
                     + " ".join(f"{100 * value:>5.1f}" for value in self.mean_ap))
        return "\n".join(lines)


def check_detections(detections: Detections) -> None:
    """Raise a ``ValueError`` for detections that cannot be scored: a NaN or infinite score (sorted anywhere, it
    silently changes the ranking and so the AP), or a segment with a non-finite or reversed (end < start) bound."""
    scores, segments = np.asarray(detections.scores, dtype=np.float64), np.asarray(detections.segments)
    bad_scores = ~np.isfinite(scores)
    if bad_scores.any():
        first = int(np.flatnonzero(bad_scores)[0])
        raise ValueError(f"{int(bad_scores.sum())} detections have a non-finite score (the first: {scores[first]} in "
                         f"video {detections.videos[detections.video_index[first]]}); scores must be finite numbers")
    bad_segments = ~np.isfinite(segments).all(axis=1) | (segments[:, 1] < segments[:, 0]) if len(segments) else []
    if np.any(bad_segments):
        first = int(np.flatnonzero(bad_segments)[0])
        raise ValueError(f"{int(np.sum(bad_segments))} detections have a non-finite or reversed segment (the first: "
                         f"{segments[first].tolist()} in video {detections.videos[detections.video_index[first]]}); "
                         "a segment is [start, end] in seconds with start <= end")


def evaluate_detections(detections: Detections | dict, ground_truth: Sequence[VideoRecord],
                        thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> EvaluationResult:
    """AP per class and threshold of ``detections`` (a :class:`Detections` or its ActivityNet JSON) against the
    ``ground_truth`` videos of one split.

    Example: one HighJump instance; a false detection scores first, then the true one. At tIoU 0.5 only the
    second matches (precision 1/2 at recall 1), so AP = 1/2:

    >>> import numpy as np
    >>> from sac_minimal.data.thumos14 import CLASS_ID, VideoRecord
    >>> truth = [VideoRecord("v", "test", 30.0, 60.0, 1800, np.array([[10.0, 20.0]]), np.array([CLASS_ID["HighJump"]]))]
    >>> found = {"results": {"v": [{"label": "HighJump", "segment": [40, 50], "score": 0.9},
    ...                            {"label": "HighJump", "segment": [11, 21], "score": 0.8}]}}
    >>> evaluate_detections(found, truth, thresholds=(0.5,)).mean_ap
    array([0.5])
    """
    if isinstance(detections, dict):
        detections = Detections.from_json(detections)
    check_detections(detections)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if not len(thresholds) or thresholds.min() <= 0 or thresholds.max() > 1:
        raise ValueError(f"tIoU thresholds must lie in (0, 1], got {thresholds.tolist()}")
    if not ground_truth:
        raise ValueError("no ground-truth videos to evaluate against")
    num_classes = len(THUMOS14_CLASSES)
    counts = np.bincount(np.concatenate([video.labels for video in ground_truth]), minlength=num_classes)
    true_positive, known = match_detections(detections, ground_truth, thresholds)
    average_precision = np.full((len(thresholds), num_classes), np.nan)
    for class_id in np.flatnonzero(counts):
        mine = np.flatnonzero(known & (detections.labels == class_id))
        mine = mine[np.argsort(-detections.scores[mine], kind="stable")]
        hits = true_positive[:, mine].astype(np.float64)
        cumulative_tp = np.cumsum(hits, axis=1)
        ranks = np.arange(1, len(mine) + 1)
        for index in range(len(thresholds)):
            average_precision[index, class_id] = interpolated_average_precision(
                cumulative_tp[index] / ranks, cumulative_tp[index] / counts[class_id]) if len(mine) else 0.0
    return EvaluationResult(thresholds=thresholds, average_precision=average_precision, ground_truth_counts=counts,
                            dropped=int((~known).sum()))


def ground_truth_detections(videos: Sequence[VideoRecord]) -> Detections:
    """The ground truth written as detections with score 1 (a sanity check: its mAP is 1 at every threshold)."""
    video_index = np.concatenate([np.full(len(video.labels), index) for index, video in enumerate(videos)])
    return Detections(videos=tuple(video.video for video in videos), video_index=video_index.astype(np.int64),
                      labels=np.concatenate([video.labels for video in videos]),
                      segments=np.concatenate([video.segments for video in videos]),
                      scores=np.ones(len(video_index)))
