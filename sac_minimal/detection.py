"""SSAD's training loss and its post-processing, from raw network outputs to video-level detections in seconds.

Loss (book/recipe.md, Section 4: the official code's SSAD, ``core/loss.py`` and ``core/ab_match.py``), over all the
anchors of a batch of windows, flattened together:

* anchors are matched to ground truth (:func:`sac_minimal.anchors.match_anchors`); positives have IoU > 0.5. The
  official code measures that IoU against the *decoded* predicted boxes with autograd on, so the best IoU, which is
  also the overlap target, carries the gradient of the IoU with respect to (rx, rw);
* hard negatives: not positive, but the raw overlap output says > 0.5; random negatives: every remaining anchor with
  probability ``r = ratio x N_pos / (N - N_pos - N_hard)`` (``r = 0.5`` when the batch has no positive), from one
  uniform number per anchor (:func:`select_negatives`);
* every term is a masked mean over the chosen anchors (:func:`ssad_loss_runs`, which also serves several models
  trained at once);
* classification: cross-entropy over positives and both kinds of negatives (target 0 for negatives);
* overlap: smooth-L1 between the raw overlap output and the IoU target, over the same anchors;
* localisation: the mean smooth-L1 error of the positives' decoded starts **plus** the mean error of their ends;
* total = 1 x classification + 10 x overlap + 10 x localisation (SAC's loss is added by the caller).

:data:`LOSSES` names this loss (``official``) and two departures from it: ``official_detached`` (the overlap target
without its gradient) and ``book_v1``, the loss of the book's first records (one mean over starts and ends, half the
official localisation term; the target without gradient; exactly round(ratio x N_pos) random negatives, none when a
batch has no positive). Every run records which one it was trained with (:class:`sac_minimal.lab.config.TrainConfig`).

Post-processing (what turns a test split's windows into detections, as the official code):

1. per anchor: softmax over 21 classes; score = max over action classes of p_c x sigmoid(overlap); the class is
   the argmax; anchors whose background probability is >= 0.98 are dropped;
2. boxes are decoded, clipped to the window, moved to video frames (``x * 512 + begin_frame``) and to seconds with
   each video's own fps (the official code assumes 30 fps except for six listed videos), and clipped to the
   video's duration when it is known;
3. every CliffDiving detection is duplicated as Diving (THUMOS14 annotates every CliffDiving as Diving too);
4. hard NMS per video and class at tIoU 0.2, keeping at most 200 per class, then the 200 best per video.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sac_minimal.anchors import Anchors, decode, match_anchors
from sac_minimal.data.thumos14 import CLASS_ID, THUMOS14_CLASSES

LOSS_WEIGHTS = {"classification": 1.0, "overlap": 10.0, "localisation": 10.0}


@dataclass(frozen=True)
class LossRecipe:
    """How SSAD's loss is computed, in the three places where the official code and the book's first loss differ.

    Attributes:
        localisation: ``sum`` (official): the mean error of the positives' starts plus the mean error of their
            ends; ``mean``: one mean over both (half of it).
        target_gradient: the overlap target (the best IoU with the decoded boxes) carries its gradient into
            (rx, rw), as in the official code, where matching runs with autograd on.
        negatives: ``bernoulli`` (official): every anchor that is neither positive nor hard is a random negative
            with probability r (:func:`select_negatives`); ``count``: exactly round(ratio x N_pos) of them.
    """

    localisation: str
    target_gradient: bool
    negatives: str
    description: str = ""


LOSSES = {
    "official": LossRecipe("sum", True, "bernoulli", "the official code's loss"),
    "official_detached": LossRecipe("sum", False, "bernoulli",
                                    "the official code's loss with the overlap target detached (no gradient)"),
    "book_v1": LossRecipe("mean", False, "count",
                          "the loss of the book's first records: one mean over starts and ends, the overlap target "
                          "detached, exactly round(ratio x N_pos) random negatives"),
}
"""The SSAD losses a run can be trained with, by name (``TrainConfig.loss``)."""
BACKGROUND_THRESHOLD = 0.98
NMS_IOU = 0.2
MAX_PER_CLASS = 200
MAX_PER_VIDEO = 200


@dataclass(frozen=True)
class SSADPrediction:
    """The raw output ``[B, A, num_classes + 4]`` split into its parts.

    Attributes:
        class_logits: ``[B, A, num_classes + 1]`` (index 0 = background).
        overlap: ``[B, A]`` raw overlap output.
        offsets: ``[B, A, 2]`` (rx, rw).
    """

    class_logits: torch.Tensor
    overlap: torch.Tensor
    offsets: torch.Tensor

    @classmethod
    def from_raw(cls, raw: torch.Tensor) -> SSADPrediction:
        if raw.dim() != 3 or raw.shape[-1] < 5:
            raise ValueError(f"expected SSAD output [B, A, classes + 4], got {tuple(raw.shape)}")
        return cls(class_logits=raw[..., :-3], overlap=raw[..., -3], offsets=raw[..., -2:])


def select_negatives(positive: torch.Tensor, overlap: torch.Tensor, negative_ratio: float,
                     priority: torch.Tensor, rule: str = "bernoulli") -> tuple[torch.Tensor, torch.Tensor]:
    """Hard and random negatives of each run's batch, with no host synchronisation.

    Hard negatives: not positive, but the raw overlap output says > 0.5. Random negatives are drawn from the
    remaining anchors of the run's batch (all its windows together, N anchors), with ``priority``, one uniform number
    per anchor:

    * ``bernoulli`` (official): anchor j is a random negative when ``priority_j > 1 - r``, i.e. with probability
      ``r = min(1, ratio x N_pos / (N - N_pos - N_hard))``; ``r = 0.5`` when the batch has no positive (or no
      remaining anchor), so such a batch trains on about half its anchors as background;
    * ``count``: exactly round(ratio x N_pos) anchors (at most all remaining ones), those of highest priority.

    Args:
        positive, overlap, priority: ``[R, B, A]`` for R runs (independent models) of B windows each.
        rule: ``bernoulli`` or ``count``.

    Returns:
        Two ``[R, B, A]`` masks (hard, random).
    """
    runs = positive.shape[0]
    hard = ~positive & (overlap.detach() > 0.5)
    remaining = (~positive & ~hard).reshape(runs, -1)  # [R, B * A]
    positives = positive.reshape(runs, -1).sum(-1).to(priority.dtype)  # [R]
    if rule == "bernoulli":
        anchors, hard_count = remaining.shape[-1], hard.reshape(runs, -1).sum(-1).to(priority.dtype)
        free = anchors - positives - hard_count
        rate = torch.where((positives > 0) & (free > 0), negative_ratio * positives / free.clamp_min(1.0),
                           torch.full_like(positives, 0.5)).clamp(max=1.0)
        random_negative = remaining & (priority.reshape(runs, -1) > 1.0 - rate[:, None])
        return hard, random_negative.reshape(positive.shape)
    if rule != "count":
        raise ValueError(f"rule must be 'bernoulli' or 'count', got {rule!r}")
    wanted = torch.minimum(torch.round(negative_ratio * positives), remaining.sum(-1).to(priority.dtype))  # [R]
    masked = torch.where(remaining, priority.reshape(runs, -1), torch.full_like(priority.reshape(runs, -1), -1.0))
    order = masked.argsort(dim=-1, descending=True)
    rank = torch.empty_like(order).scatter_(-1, order, torch.arange(order.shape[-1], device=order.device)
                                            .expand_as(order).contiguous())
    random_negative = (rank < wanted[:, None]).reshape(positive.shape)
    return hard, random_negative


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` holds, per run: ``[R, ...]`` -> ``[R]``; 0 for a run with no element."""
    mask = mask.to(values.dtype)
    return (values * mask).flatten(1).sum(-1) / mask.flatten(1).sum(-1).clamp_min(1.0)


def ssad_loss_runs(raw: torch.Tensor, segments: torch.Tensor, labels: torch.Tensor, anchors: Anchors,
                   priority: torch.Tensor, *, matching: str = "decoded", negative_ratio: float = 1.0,
                   loss: str = "official") -> dict:
    """SSAD's loss for R runs at once (R models trained together, each on its own batch), as masked means: no
    boolean indexing, no host synchronisation, so it can be batched across runs and captured in a CUDA graph.

    Args:
        raw: ``[R, B, A, num_classes + 4]`` outputs.
        segments: ``[R, B, S, 2]``; labels: ``[R, B, S]`` (-1 = padding).
        anchors: the default anchors (on the same device).
        priority: ``[R, B, A]`` uniform random numbers that pick the random negatives (see :func:`select_negatives`).
        matching, negative_ratio, loss: as :func:`ssad_loss`.

    Returns:
        ``{"classification", "overlap", "localisation", "total", "positives"}``, each ``[R]``.
    """
    if matching not in ("decoded", "static"):
        raise ValueError(f"matching must be 'decoded' or 'static', got {matching!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
    recipe = LOSSES[loss]
    runs, batch = raw.shape[:2]
    windows = SSADPrediction.from_raw(raw.flatten(0, 1))  # [R * B, A, ...]
    predicted_boxes = decode(windows.offsets, anchors)
    boxes_to_match = (predicted_boxes if matching == "decoded"
                      else anchors.boxes().to(raw.dtype).expand(runs * batch, -1, -1))
    if not recipe.target_gradient:
        boxes_to_match = boxes_to_match.detach()
    targets = match_anchors(boxes_to_match, segments.flatten(0, 1), labels.flatten(0, 1))

    def per_run(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.reshape(runs, batch, *tensor.shape[1:])

    positive = per_run(targets.positive)
    hard, random_negative = select_negatives(positive, per_run(windows.overlap), negative_ratio, priority,
                                             recipe.negatives)
    selected = positive | hard | random_negative
    cross_entropy = F.cross_entropy(windows.class_logits.flatten(0, 1), targets.labels.flatten(), reduction="none")
    classification = masked_mean(cross_entropy.reshape(runs, batch, -1), selected)
    overlap_error = F.smooth_l1_loss(windows.overlap, targets.iou.to(raw.dtype), reduction="none")
    overlap = masked_mean(per_run(overlap_error), selected)
    box_error = per_run(F.smooth_l1_loss(predicted_boxes, targets.boxes, reduction="none"))  # [R, B, A, 2]
    if recipe.localisation == "sum":  # official: mean start error + mean end error
        localisation = masked_mean(box_error[..., 0], positive) + masked_mean(box_error[..., 1], positive)
    else:
        localisation = masked_mean(box_error, positive[..., None].expand(-1, -1, -1, 2))
    total = (LOSS_WEIGHTS["classification"] * classification + LOSS_WEIGHTS["overlap"] * overlap
             + LOSS_WEIGHTS["localisation"] * localisation)
    return {"classification": classification, "overlap": overlap, "localisation": localisation, "total": total,
            "positives": positive.flatten(1).sum(-1)}


def ssad_loss(raw: torch.Tensor, segments: torch.Tensor, labels: torch.Tensor, anchors: Anchors, *,
              matching: str = "decoded", negative_ratio: float = 1.0, loss: str = "official",
              generator: torch.Generator | None = None) -> dict:
    """SSAD's three loss terms and their weighted total for a batch of windows (one model).

    Args:
        raw: ``[B, A, num_classes + 4]`` SSAD output.
        segments: ``[B, S, 2]`` ground truth in window units; ``labels``: ``[B, S]`` class ids, -1 = padding.
        anchors: the default anchors (on the same device).
        matching: ``decoded`` (official: IoU with the decoded predicted boxes) or ``static`` (default anchors).
        negative_ratio: random negatives per positive.
        loss: a name of :data:`LOSSES` (``official`` by default).
        generator: CPU generator for the random negatives (reproducible runs, the same draws on every device).

    Returns:
        ``{"classification", "overlap", "localisation", "total"}`` scalars, every term finite, also for a batch
        without positives, and ``"positives"``, an int.
    """
    priority = torch.rand(raw.shape[:2], generator=generator).to(raw.device)
    losses = ssad_loss_runs(raw[None], segments[None], labels[None], anchors, priority[None], matching=matching,
                            negative_ratio=negative_ratio, loss=loss)
    return {**{name: value[0] for name, value in losses.items() if name != "positives"},
            "positives": int(losses["positives"][0])}


@dataclass(frozen=True)
class Detections:
    """Detections of many videos as flat arrays.

    Attributes:
        videos: video names; ``video_index`` points into it.
        video_index: ``[N]``.
        labels: ``[N]`` class ids into :data:`THUMOS14_CLASSES`.
        segments: ``[N, 2]`` start and end in seconds.
        scores: ``[N]``.
    """

    videos: tuple[str, ...]
    video_index: np.ndarray
    labels: np.ndarray
    segments: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def to_json(self) -> dict:
        """ActivityNet-style ``{"version", "results": {video: [{"label", "segment", "score"}]}, "external_data"}``."""
        results = {video: [] for video in self.videos}
        for video, label, (start, end), score in zip(self.video_index.tolist(), self.labels.tolist(),
                                                     self.segments.tolist(), self.scores.tolist()):
            results[self.videos[video]].append({"label": THUMOS14_CLASSES[label], "segment": [start, end],
                                                "score": score})
        return {"version": "THUMOS14 detections (sac_minimal)", "results": results, "external_data": {}}

    @classmethod
    def from_json(cls, document: dict) -> Detections:
        """Read ActivityNet-style detections; labels must be THUMOS14 class names."""
        if not isinstance(document, dict) or not isinstance(document.get("results"), dict):
            raise TypeError("detections must be a JSON object with 'results': {video: [{label, segment, score}]}")
        videos, video_index, labels, segments, scores = [], [], [], [], []
        for index, (video, entries) in enumerate(document["results"].items()):
            videos.append(video)
            for entry in entries:
                if entry["label"] not in CLASS_ID:
                    raise ValueError(f"video {video}: detection label {entry['label']!r} is not a THUMOS14 class; "
                                     f"expected one of {', '.join(THUMOS14_CLASSES)}")
                video_index.append(index)
                labels.append(CLASS_ID[entry["label"]])
                segments.append(entry["segment"])
                scores.append(entry["score"])
        return cls(videos=tuple(videos), video_index=np.asarray(video_index, dtype=np.int64),
                   labels=np.asarray(labels, dtype=np.int64),
                   segments=np.asarray(segments, dtype=np.float64).reshape(-1, 2),
                   scores=np.asarray(scores, dtype=np.float64))


def _run_starts(groups: np.ndarray) -> np.ndarray:
    """For an array sorted by group: True at the first element of every run of equal values."""
    return np.concatenate([[True], groups[1:] != groups[:-1]]) if len(groups) else np.zeros(0, dtype=bool)


def rank_within_groups(groups: np.ndarray) -> np.ndarray:
    """For an array sorted by group: 0, 1, 2, ... within every run of equal values."""
    starts = _run_starts(groups)
    positions = np.arange(len(groups))
    return positions - np.maximum.accumulate(np.where(starts, positions, 0))


def batched_nms(groups: np.ndarray, segments: np.ndarray, scores: np.ndarray, iou_threshold: float = NMS_IOU,
                max_keep: int = MAX_PER_CLASS) -> np.ndarray:
    """Greedy hard NMS inside every group at once; returns the kept indices.

    Within a group, the best remaining segment is kept and every remaining one with tIoU > ``iou_threshold`` to it
    is removed, until nothing remains or ``max_keep`` are kept. Each round handles all groups together and drops
    what it suppressed, so the number of rounds is at most ``max_keep``, not the number of segments.
    """
    order = np.lexsort((-scores, groups))
    alive_groups, alive_index = groups[order], order
    alive_start, alive_end = segments[order, 0], segments[order, 1]
    kept = []
    for _ in range(max_keep):
        if not len(alive_index):
            break
        leaders = _run_starts(alive_groups)
        positions = np.arange(len(alive_index))
        leader_position = np.maximum.accumulate(np.where(leaders, positions, 0))
        kept.append(alive_index[leaders])
        leader_start, leader_end = alive_start[leader_position], alive_end[leader_position]
        intersection = (np.minimum(alive_end, leader_end) - np.maximum(alive_start, leader_start)).clip(min=0)
        union = (alive_end - alive_start) + (leader_end - leader_start) - intersection
        # Suppressed: tIoU > threshold, i.e. intersection > threshold x union (no division needed).
        survive = ~leaders & ~(intersection > iou_threshold * union)
        alive_groups, alive_index = alive_groups[survive], alive_index[survive]
        alive_start, alive_end = alive_start[survive], alive_end[survive]
    return np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)


def window_candidates(raw: torch.Tensor, anchors: Anchors,
                      background_threshold: float = BACKGROUND_THRESHOLD) -> dict:
    """Scores, classes and boxes (window units, clipped to [0, 1]) of the anchors that pass the background filter.

    Returns ``{"window", "labels", "boxes", "scores"}`` NumPy arrays; ``window`` indexes ``raw``'s first axis.
    """
    with torch.no_grad():
        prediction = SSADPrediction.from_raw(raw.float())
        probabilities = prediction.class_logits.softmax(dim=-1)
        action = probabilities[..., 1:] * torch.sigmoid(prediction.overlap)[..., None]
        scores, labels = action.max(dim=-1)
        boxes = decode(prediction.offsets, anchors.to(raw.device)).clamp(0.0, 1.0)
        keep = probabilities[..., 0] < background_threshold
        window = torch.nonzero(keep, as_tuple=True)[0]
    return {"window": window.cpu().numpy(), "labels": labels[keep].cpu().numpy(),
            "boxes": boxes[keep].double().cpu().numpy(), "scores": scores[keep].double().cpu().numpy()}


def postprocess(raw: torch.Tensor, anchors: Anchors, *, window_video: np.ndarray, begin_frame: np.ndarray,
                videos: Sequence[str], fps: Sequence[float], durations: Sequence[float] | None = None,
                window_frames: int = 512, background_threshold: float = BACKGROUND_THRESHOLD,
                nms_iou: float = NMS_IOU, max_per_class: int = MAX_PER_CLASS, max_per_video: int = MAX_PER_VIDEO,
                duplicate_cliff_diving: bool = True) -> Detections:
    """Raw SSAD outputs of many windows -> video-level detections in seconds (steps 1-4 of the module docstring).

    Args:
        raw: ``[W, A, 24]`` outputs of W windows.
        window_video: ``[W]`` index into ``videos`` of each window's video.
        begin_frame: ``[W]`` first frame of each window.
        videos, fps: per video; ``durations`` (seconds) clips detections to the video when given.
    """
    window_video, begin_frame = np.asarray(window_video), np.asarray(begin_frame)
    if len(window_video) != raw.shape[0] or len(begin_frame) != raw.shape[0]:
        raise ValueError(f"{raw.shape[0]} windows of outputs but {len(window_video)} video indices and "
                         f"{len(begin_frame)} begin frames")
    fps = np.asarray(fps, dtype=np.float64)
    if not (fps > 0).all():
        raise ValueError("every video needs a positive fps")
    candidates = window_candidates(raw, anchors, background_threshold)
    video_index = window_video[candidates["window"]]
    frames = candidates["boxes"] * window_frames + begin_frame[candidates["window"], None]
    segments = frames / fps[video_index, None]
    if durations is not None:
        segments = np.minimum(segments, np.asarray(durations, dtype=np.float64)[video_index, None])
    labels, scores = candidates["labels"].astype(np.int64), candidates["scores"]
    if duplicate_cliff_diving:
        cliff = labels == CLASS_ID["CliffDiving"]
        video_index = np.concatenate([video_index, video_index[cliff]])
        segments = np.concatenate([segments, segments[cliff]])
        scores = np.concatenate([scores, scores[cliff]])
        labels = np.concatenate([labels, np.full(int(cliff.sum()), CLASS_ID["Diving"])])
    groups = video_index * len(THUMOS14_CLASSES) + labels
    kept = batched_nms(groups, segments, scores, nms_iou, max_per_class)
    order = kept[np.lexsort((-scores[kept], video_index[kept]))]
    order = order[rank_within_groups(video_index[order]) < max_per_video]
    return Detections(videos=tuple(videos), video_index=video_index[order], labels=labels[order],
                      segments=segments[order], scores=scores[order])


def postprocess_windows(raw: torch.Tensor, windows, anchors: Anchors | None = None, **options) -> Detections:
    """:func:`postprocess` for the outputs ``[W, A, 24]`` of every window of a
    :class:`~sac_minimal.data.windows.WindowDataset`, with each video's fps and duration and the windows' length
    in frames; ``options`` as :func:`postprocess`."""
    from sac_minimal.anchors import default_anchors

    table, videos = windows.table, windows.table.videos
    return postprocess(raw, anchors if anchors is not None else default_anchors(), window_video=table.video_index,
                       begin_frame=table.begin_frame, videos=[video.video for video in videos],
                       fps=[video.fps for video in videos], durations=[video.duration for video in videos],
                       window_frames=windows.spec.frames, **options)
