"""SSAD, the single-shot temporal action detector that hosts SAC (Lin et al., 2017), as in the official SAC code.

Input: a window of features ``[B, C, 128]`` (C = 2048 for two-stream I3D, or SAC's modulated features).
Output: ``[B, 140, 24]``, one row per default anchor (:mod:`sac_minimal.anchors`): 21 class logits (0 =
background), one overlap logit, and the offsets ``rx``, ``rw``.

Layers (book/recipe.md, Section 4)::

    base   Conv1d(C, 256, k9, p4) + LeakyReLU + MaxPool(2)      -> [B, 256, 64]
           Conv1d(256, 256, k9, p4) + LeakyReLU + MaxPool(2)    -> [B, 256, 32]
    main   Conv1d(256, 512, k3, s2, p1) + LeakyReLU             -> AL1 [B, 512, 16]
           Conv1d(512, 512, k3, s2, p1) + LeakyReLU             -> AL2 [B, 512, 8]
           Conv1d(512, 512, k3, s2, p1) + LeakyReLU             -> AL3 [B, 512, 4]
    heads  Conv1d(512, 5 x 24, k3, p1) per level, read as (anchor ratio, value) per cell

Chapter 07 draws the anchors and trains nothing; the training chapters train it.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from sac_minimal.anchors import ANCHOR_RATIOS, LEVEL_CELLS
from sac_minimal.initialisation import official_conv_init

VALUES_PER_ANCHOR_EXTRA = 3  # overlap, rx, rw


class SSAD(nn.Module):
    """The SSAD network. ``num_classes`` excludes background (20 for THUMOS14); heads predict ``num_classes + 1``
    class logits plus overlap, rx, rw per anchor."""

    def __init__(self, in_channels: int = 2048, num_classes: int = 20, base_channels: int = 256,
                 main_channels: int = 512, level_cells: tuple[int, ...] = LEVEL_CELLS,
                 anchor_ratios: tuple[float, ...] = ANCHOR_RATIOS):
        super().__init__()
        if in_channels <= 0 or num_classes <= 0:
            raise ValueError(f"in_channels and num_classes must be positive, got {in_channels}, {num_classes}")
        if any(coarse * 2 != fine for fine, coarse in itertools.pairwise(level_cells)):
            raise ValueError(f"each level must have half the cells of the previous one, got {level_cells}")
        self.in_channels, self.num_classes = in_channels, num_classes
        self.level_cells, self.anchor_ratios = tuple(level_cells), tuple(anchor_ratios)
        self.values_per_anchor = num_classes + 1 + VALUES_PER_ANCHOR_EXTRA
        self.activation = nn.LeakyReLU()
        self.base = nn.ModuleList([nn.Conv1d(in_channels, base_channels, 9, padding=4),
                                   nn.Conv1d(base_channels, base_channels, 9, padding=4)])
        self.pool = nn.MaxPool1d(2)
        self.main = nn.ModuleList([nn.Conv1d(base_channels if level == 0 else main_channels, main_channels, 3,
                                             stride=2, padding=1) for level in range(len(self.level_cells))])
        self.heads = nn.ModuleList([nn.Conv1d(main_channels, len(self.anchor_ratios) * self.values_per_anchor, 3,
                                              padding=1) for _ in self.level_cells])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform weights and zero biases, as the official code (:mod:`sac_minimal.initialisation`)."""
        official_conv_init(self)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, C, T]`` -> ``[B, A, num_classes + 4]`` with A = 5 x (16 + 8 + 4) = 140 for T = 128."""
        if features.dim() != 3 or features.shape[1] != self.in_channels:
            raise ValueError(f"SSAD expects [B, {self.in_channels}, T] features, got {tuple(features.shape)}")
        expected_length = 8 * self.level_cells[0]  # two max-pools, then one stride-2 conv before AL1
        if features.shape[2] != expected_length:
            raise ValueError(f"SSAD's anchor levels {self.level_cells} need T = {expected_length} steps, got "
                             f"{features.shape[2]}")
        hidden = features
        for conv in self.base:
            hidden = self.pool(self.activation(conv(hidden)))
        outputs = []
        for conv, head in zip(self.main, self.heads):
            hidden = self.activation(conv(hidden))
            prediction = head(hidden)  # [B, ratios * values, cells]
            batch, _, cells = prediction.shape
            prediction = prediction.view(batch, len(self.anchor_ratios), self.values_per_anchor, cells)
            outputs.append(prediction.permute(0, 3, 1, 2).reshape(batch, cells * len(self.anchor_ratios), -1))
        return torch.cat(outputs, dim=1)
