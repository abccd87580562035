"""The official code's weight initialisation, and matched starts: every module seeded by the run's seed and its name.

The official code calls ``model.apply(weight_init)`` over the whole model: every ``Conv1d`` of the SAC model (SSAD,
Θ, the attention heads and the structure matrix alike) gets a Kaiming-uniform weight (PyTorch's
``kaiming_uniform_`` defaults: a = 0, fan-in, gain sqrt(2), so weights are uniform in
``[-sqrt(6 / fan_in), sqrt(6 / fan_in)]``) and a zero bias. PyTorch's own default for ``Conv1d`` is Kaiming-uniform
with a = sqrt(5) (bound ``1 / sqrt(fan_in)``, about 2.4x narrower) and a non-zero bias, so a module left at
PyTorch's default starts with smaller, bias-dominated outputs than the official recipe.

**Matched starts.** Two models compared at the same seed should start from the same weights in every part they
share, or the comparison measures the initialisation as well as the change. Drawing every weight from one global
random stream breaks that: a model with one more layer (the structure matrix of SAC's OT branch) consumes random
numbers before the rest, and every later layer starts elsewhere. :func:`official_conv_init` with a ``seed`` draws
each convolution from its own generator, seeded by the run's seed and the convolution's qualified name
(``host.base.0``, ``sac.frame_attention.score``, ...), so a layer's start depends on nothing but its name, shape
and the seed.
"""

from __future__ import annotations

import hashlib
import math

import torch
from torch import nn


def module_seed(seed: int, name: str) -> int:
    """A 63-bit seed for the module called ``name`` in a run of ``seed`` (SHA-256 of both: stable across Python
    processes and versions, unlike ``hash``)."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def official_conv_init(module: nn.Module, seed: int | None = None) -> None:
    """Kaiming-uniform weights and zero biases for every ``Conv1d`` inside ``module``.

    With ``seed`` each convolution draws from a generator seeded by :func:`module_seed` of its qualified name in
    ``module`` (matched starts); without it, from torch's global random stream. A submodule that must start in a
    special state (a non-local block starts as the identity) is put back into it afterwards through its
    ``start_as_identity`` method.
    """
    for name, submodule in module.named_modules():
        if isinstance(submodule, nn.Conv1d):
            generator = None if seed is None else torch.Generator().manual_seed(module_seed(seed, name))
            with torch.no_grad():
                nn.init.kaiming_uniform_(submodule.weight, generator=generator)
                if submodule.bias is not None:
                    nn.init.zeros_(submodule.bias)
    for submodule in module.modules():
        if hasattr(submodule, "start_as_identity"):
            submodule.start_as_identity()


def official_bound(conv: nn.Conv1d) -> float:
    """The half-width ``sqrt(6 / fan_in)`` of the official init's uniform distribution for ``conv``."""
    fan_in = conv.in_channels // conv.groups * conv.kernel_size[0]
    return math.sqrt(6 / fan_in)
