"""The official code's weight initialisation: ``model.apply(weight_init)`` over the whole model.

Every ``Conv1d`` of the official SAC model (SSAD, Θ, the attention heads and the structure matrix alike) gets a
Kaiming-uniform weight (PyTorch's ``kaiming_uniform_`` defaults: a = 0, fan-in, gain sqrt(2), so weights are
uniform in ``[-sqrt(6 / fan_in), sqrt(6 / fan_in)]``) and a zero bias. PyTorch's own default for ``Conv1d`` is
Kaiming-uniform with a = sqrt(5) (bound ``1 / sqrt(fan_in)``, about 2.4x narrower) and a non-zero bias, so a module
left at PyTorch's default starts with smaller, bias-dominated outputs than the official recipe.
"""

from __future__ import annotations

import math

from torch import nn


def official_conv_init(module: nn.Module) -> None:
    """Kaiming-uniform weights and zero biases for every ``Conv1d`` inside ``module``."""
    for submodule in module.modules():
        if isinstance(submodule, nn.Conv1d):
            nn.init.kaiming_uniform_(submodule.weight)
            if submodule.bias is not None:
                nn.init.zeros_(submodule.bias)


def official_bound(conv: nn.Conv1d) -> float:
    """The half-width ``sqrt(6 / fan_in)`` of the official init's uniform distribution for ``conv``."""
    fan_in = conv.in_channels // conv.groups * conv.kernel_size[0]
    return math.sqrt(6 / fan_in)
