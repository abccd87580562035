"""Default anchors, box decoding, temporal IoU and anchor matching, all in window units ([0, 1] = 512 frames).

Anchors (book/recipe.md, Section 4): level ``l`` has ``L`` cells (16, 8, 4); cell ``i`` carries five anchors centred at
``(i + 0.5) / L`` with widths ``r / L``, ``r`` in (0.5, 0.75, 1, 1.5, 2): 140 anchors per window, ordered by level,
then cell, then ratio (the order of :class:`sac_minimal.ssad.SSAD`'s output rows).

Decoding the network's offsets ``(rx, rw)`` against a default anchor ``(x_d, w_d)``::

    x = rx * w_d * 0.1 + x_d,     w = exp(rw * 0.1) * w_d

Matching assigns each anchor the ground-truth segment of highest IoU. The official code measures that IoU against
the *decoded predicted* boxes (``mode="decoded"``), so targets move as the network learns; the static alternative
measures it against the default anchors (``mode="static"``, as in SSD and the original SSAD paper).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

LEVEL_CELLS = (16, 8, 4)
ANCHOR_RATIOS = (0.5, 0.75, 1.0, 1.5, 2.0)
OFFSET_SCALE = 0.1
POSITIVE_IOU = 0.5


@dataclass(frozen=True)
class Anchors:
    """Default anchors of a window.

    Attributes:
        centers, widths: ``[A]`` in window units.
        levels: ``[A]`` pyramid level of each anchor (0 = AL1, finest).
    """

    centers: torch.Tensor
    widths: torch.Tensor
    levels: torch.Tensor

    def __len__(self) -> int:
        return len(self.centers)

    def boxes(self) -> torch.Tensor:
        """``[A, 2]`` (start, end)."""
        return torch.stack([self.centers - self.widths / 2, self.centers + self.widths / 2], dim=-1)

    def to(self, device: torch.device | str) -> Anchors:
        return Anchors(self.centers.to(device), self.widths.to(device), self.levels.to(device))


def default_anchors(level_cells: tuple[int, ...] = LEVEL_CELLS, ratios: tuple[float, ...] = ANCHOR_RATIOS,
                    dtype: torch.dtype = torch.float32) -> Anchors:
    """The 140 default anchors (for the default levels and ratios), ordered level, cell, ratio."""
    centers, widths, levels = [], [], []
    ratio = torch.tensor(ratios, dtype=dtype)
    for level, cells in enumerate(level_cells):
        cell_centers = (torch.arange(cells, dtype=dtype) + 0.5) / cells
        centers.append(cell_centers.repeat_interleave(len(ratios)))
        widths.append((ratio / cells).repeat(cells))
        levels.append(torch.full((cells * len(ratios),), level))
    return Anchors(torch.cat(centers), torch.cat(widths), torch.cat(levels))


def decode(offsets: torch.Tensor, anchors: Anchors) -> torch.Tensor:
    """``[..., A, 2]`` offsets ``(rx, rw)`` -> ``[..., A, 2]`` boxes ``(start, end)`` in window units."""
    center = offsets[..., 0] * anchors.widths * OFFSET_SCALE + anchors.centers
    width = torch.exp(offsets[..., 1] * OFFSET_SCALE) * anchors.widths
    return torch.stack([center - width / 2, center + width / 2], dim=-1)


def temporal_iou(boxes: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """Pairwise tIoU: ``[..., N, 2]`` x ``[..., M, 2]`` -> ``[..., N, M]``. Zero-length pairs give 0."""
    start = torch.maximum(boxes[..., :, None, 0], others[..., None, :, 0])
    end = torch.minimum(boxes[..., :, None, 1], others[..., None, :, 1])
    intersection = (end - start).clamp(min=0)
    union = ((boxes[..., :, 1] - boxes[..., :, 0])[..., :, None] + (others[..., :, 1] - others[..., :, 0])[..., None, :]
             - intersection)
    return torch.where(union > 0, intersection / union.clamp(min=torch.finfo(union.dtype).tiny),
                       torch.zeros_like(union))


@dataclass(frozen=True)
class AnchorTargets:
    """What each anchor should predict after matching.

    Attributes:
        iou: ``[B, A]`` IoU with the best ground truth (0 when the window has none): the overlap target (with the
            gradient of the matched boxes, if they have one).
        labels: ``[B, A]`` network class index: ground-truth class id + 1 when ``iou > 0.5``, else 0.
        boxes: ``[B, A, 2]`` the best ground truth's (start, end).
        positive: ``[B, A]`` ``iou > 0.5``.
    """

    iou: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor
    positive: torch.Tensor


def match_anchors(anchor_boxes: torch.Tensor, segments: torch.Tensor, labels: torch.Tensor,
                  positive_iou: float = POSITIVE_IOU) -> AnchorTargets:
    """Match every anchor of every window to its best ground truth, in one batched operation.

    The official code visits the ground-truth instances in order and gives an anchor instance k's box and label
    when IoU_k > 0.5 and IoU_k exceeds the best IoU so far (strictly: of two equal instances, such as THUMOS14's
    CliffDiving and Diving copies of one segment, the first listed keeps the anchor). That is the *first* instance
    of highest IoU, which ``max`` returns here. The best IoU is the overlap target; when ``anchor_boxes`` carries a
    gradient (the official decoded boxes, matched with autograd on), so does ``iou``: the overlap loss then also
    moves the boxes (chapter 07). Labels, boxes and the positive mask never carry one.

    Args:
        anchor_boxes: ``[B, A, 2]`` boxes to match: decoded predictions (official) or default anchors (static).
        segments: ``[B, S, 2]`` ground truth in window units, padded.
        labels: ``[B, S]`` class ids (0..19), -1 where padded.
        positive_iou: anchors with IoU above this are positives.
    """
    iou = temporal_iou(anchor_boxes, segments.to(anchor_boxes.dtype))  # [B, A, S]
    iou = torch.where((labels >= 0)[:, None, :], iou, torch.full_like(iou, -1.0))
    if iou.shape[-1] == 0:
        best_iou = anchor_boxes.new_zeros(anchor_boxes.shape[:2])
        best = torch.zeros(anchor_boxes.shape[:2], dtype=torch.long, device=anchor_boxes.device)
    else:
        best_iou, best = iou.max(dim=-1)  # the first instance of highest IoU
    best_iou = best_iou.clamp(min=0.0)
    with torch.no_grad():
        positive = best_iou > positive_iou
        matched_labels = torch.gather(labels, 1, best) if labels.shape[-1] else torch.zeros_like(best)
        matched_boxes = (torch.gather(segments.to(anchor_boxes.dtype), 1, best[..., None].expand(-1, -1, 2))
                         if segments.shape[1] else torch.zeros_like(anchor_boxes))
        network_labels = torch.where(positive, matched_labels + 1, torch.zeros_like(matched_labels))
    return AnchorTargets(iou=best_iou, labels=network_labels, boxes=matched_boxes.detach(), positive=positive)
