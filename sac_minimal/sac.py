"""Structured Attention Composition (SAC): the plug-in module, piece by piece.

Inputs are the appearance (RGB) features ``[B, Da, T]`` and motion (flow) features ``[B, Dm, T]`` of a window;
the output is the modulated feature ``[B, C_out, T]`` for any host detector (C_out = Da + Dm, or Theta's width
when the projected features are modulated), plus the attention maps and, in training, SAC's loss terms. Equation
numbers refer to Yang et al., "Structured Attention Composition for Temporal Action Localization", IEEE TIP 2022.
Where the paper and the official code differ, both are named variants of :class:`SACConfig` (presets
:meth:`SACConfig.paper` and :meth:`SACConfig.official`; :meth:`SACConfig.light` is the official one with a Theta
as cheap as the paper's Table VIII).

Pieces (each a small function or module, tested on its own):
    ThetaProjection        Theta_a, Theta_m: Conv1d(k3) + LeakyReLU layers per modality (official: two, full width)
    action_aware_pool      Eq. (1): mean of the floor(T k) steps with the largest L2 norm
    FrameAttention         a_f = sigmoid(conv(F)), ``[B, T]``
    ModalityAttention      a_m = softmax(conv(pool(F))), ``[B, 2]``
    compose_attention      A = a_m a_f^T, ``[B, 2, T]``
    transport_masses       Section III-E: mu = T a_m, nu = T a_f / sum(a_f) (or the raw official masses)
    StructureMatrix        S = conv(F) (optionally sigmoid), ``[B, 2, T]``
    ot_loss                Eq. (2): <S, P*> with P* from sac_minimal.ot
    smoothness_loss        Eqs. (3)-(4), paper and official variants
    fnorm_loss             Eq. (5): -(1 / 2T) ||S||_F
    SAC                    the whole module; Eq. (6) sums the terms.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from sac_minimal.initialisation import official_conv_init
from sac_minimal.ot import entropic_ot_2xT, sinkhorn_log, transport_cost

ATTENTION_MODES = ("none", "joint", "modality", "frame", "composed", "sequential", "nonlocal", "per_frame")
MODES_WITH_COMPOSED_ATTENTION = ("composed", "sequential")


@dataclass(frozen=True)
class SACConfig:
    """Every choice of SAC as a named field, so that an ablation changes one thing at a time.

    Attributes:
        appearance_channels, motion_channels: Da and Dm of the inputs.
        attention: ``none`` | ``joint`` (one conv predicts the 2 x T attention: the paper's "predicted attention")
            | ``modality`` | ``frame`` | ``composed`` (a_m a_f^T) | ``sequential`` (CBAM-style: modality first,
            then frame attention on the modality-weighted features) | ``nonlocal`` (a non-local block over time)
            | ``per_frame`` (ours, not the paper's: a modality split at every frame, softmax over the two
            modalities of a 2 x T map, so the split can change within a window; A = a_m a_f^T cannot).
        projection: apply the Theta projections (conv layers per modality).
        theta_layers: Conv1d(k3) + LeakyReLU layers in each Theta (official: 2).
        theta_reduction: each Theta maps D channels to D // theta_reduction (official: 1, full width). One layer
            at reduction 8 is the "light" Theta whose cost matches the paper's Table VIII (see
            :meth:`SACConfig.light`).
        modulate: what the attention multiplies: ``projected`` (official) or ``raw`` features (paper); ``both``
            (ours) gives the host the raw features modulated with the projected ones appended: with
            ``attention="none"`` it is the light Θ's capacity-matched baseline (the light Θ's parameters in the
            detector's path, no attention).
        pooling: ``action_aware`` (Eq. 1) or ``average`` for the modality attention's input.
        topk_ratio: k in Eq. (1); floor(T k) steps are pooled.
        structure_activation: ``none`` (paper) or ``sigmoid`` (official) on the structure matrix, or ``softmax``
            over the two modalities of each frame (ours, :meth:`SACConfig.stabilised`: S_a,t + S_m,t = 1, so the
            cost of serving a frame cannot shrink to zero for both modalities).
        ot_modality_gradient: let the OT loss's gradient reach the modality attention through the transport
            problem's supplier masses (paper and official code); ``False`` detaches a_m there (ours,
            :meth:`SACConfig.stabilised`), so L_OT can no longer pull a_m to one modality.
        mass_normalisation: paper's Section III-E masses (both of mass T) instead of the raw official ones.
        use_ot: compute L_OT and the regularisers (needs composed or sequential attention).
        solver: ``sinkhorn`` (Algorithm 1, fixed ``n_iter``) or ``entropic`` (exact root-find, any eps).
        eps, n_iter: the entropic regularisation and Sinkhorn iterations.
        sinkhorn_residual: Algorithm 1 in the official code's residual form (default) or as written (the book's
            records made before the official loss; :func:`sac_minimal.ot.sinkhorn_log`'s ``residual``).
        smoothness_reduce: ``max`` (paper) or ``sum`` (official) over the two modalities of S.
        smoothness_difference: ``signed`` (paper) or ``absolute`` (official) temporal differences.
        eta: the smoothness term keeps the floor(T eta) smallest of the T - 1 temporal differences.
        lambda_smooth, lambda_fnorm: weights of Eqs. (3)-(5) in Eq. (6).
    """

    appearance_channels: int = 1024
    motion_channels: int = 1024
    attention: str = "composed"
    projection: bool = True
    theta_layers: int = 2
    theta_reduction: int = 1
    modulate: str = "raw"
    pooling: str = "action_aware"
    topk_ratio: float = 1 / 8
    structure_activation: str = "none"
    ot_modality_gradient: bool = True
    mass_normalisation: bool = True
    use_ot: bool = True
    solver: str = "sinkhorn"
    eps: float = 1e-3
    n_iter: int = 50
    sinkhorn_residual: bool = True
    smoothness_reduce: str = "max"
    smoothness_difference: str = "signed"
    eta: float = 0.8
    lambda_smooth: float = 0.1
    lambda_fnorm: float = 0.01

    def __post_init__(self):
        check_sac_config(self)

    @classmethod
    def preset(cls, name: str, **changes) -> SACConfig:
        """The preset ``name`` of :data:`PRESETS` (``paper``, ``official``, ``light``, ``stabilised``) with
        ``changes``."""
        if name not in PRESETS:
            raise ValueError(f"SAC preset must be one of {sorted(PRESETS)}, got {name!r}")
        return cls(**{**PRESETS[name], **changes})

    @classmethod
    def paper(cls, **changes) -> SACConfig:
        return cls.preset("paper", **changes)

    @classmethod
    def official(cls, **changes) -> SACConfig:
        return cls.preset("official", **changes)

    @classmethod
    def light(cls, **changes) -> SACConfig:
        return cls.preset("light", **changes)

    @classmethod
    def stabilised(cls, **changes) -> SACConfig:
        return cls.preset("stabilised", **changes)

    @property
    def channels(self) -> int:
        """Input channels, Da + Dm."""
        return self.appearance_channels + self.motion_channels

    def projected_width(self, channels: int) -> int:
        """Channels of one modality after its Theta (``channels`` without projection)."""
        return channels // self.theta_reduction if self.projection else channels

    @property
    def projected_channels(self) -> int:
        """Channels the attention heads and the structure matrix read: Theta_a(F_a) and Theta_m(F_m) stacked."""
        return self.projected_width(self.appearance_channels) + self.projected_width(self.motion_channels)

    @property
    def output_channels(self) -> int:
        """Channels of the modulated output the host receives."""
        if self.modulate == "both":
            return self.channels + self.projected_channels
        return self.projected_channels if self.modulate == "projected" else self.channels

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SACConfig:
        values = json.loads(text)
        unknown = set(values) - {field.name for field in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown SACConfig fields in JSON: {sorted(unknown)}")
        return cls(**values)


SAC_CHOICES = {
    "attention": ATTENTION_MODES,
    "modulate": ("raw", "projected", "both"),
    "pooling": ("action_aware", "average"),
    "structure_activation": ("none", "sigmoid", "softmax"),
    "solver": ("sinkhorn", "entropic"),
    "smoothness_reduce": ("max", "sum"),
    "smoothness_difference": ("signed", "absolute"),
}
"""The allowed values of :class:`SACConfig`'s text fields."""


def check_sac_config(config: SACConfig) -> None:
    """Every :class:`SACConfig` is checked on creation: a ``ValueError`` names the field and what it must be."""
    for name, allowed in SAC_CHOICES.items():
        if getattr(config, name) not in allowed:
            raise ValueError(f"SACConfig.{name} must be one of {allowed}, got {getattr(config, name)!r}.")
    if config.appearance_channels < 1 or config.motion_channels < 1:
        raise ValueError("SACConfig channel counts must be positive.")
    if not 0 < config.topk_ratio <= 1:
        raise ValueError(f"SACConfig.topk_ratio must be in (0, 1], got {config.topk_ratio}.")
    if not 0 < config.eta <= 1:
        raise ValueError(f"SACConfig.eta must be in (0, 1], got {config.eta}.")
    if not (config.eps > 0 and config.n_iter >= 1):
        raise ValueError(f"SACConfig needs eps > 0 and n_iter >= 1, got eps={config.eps}, n_iter={config.n_iter}.")
    if config.theta_layers < 1 or config.theta_reduction < 1:
        raise ValueError(f"SACConfig needs theta_layers >= 1 and theta_reduction >= 1, got "
                         f"{config.theta_layers} and {config.theta_reduction}.")
    if config.projection and config.theta_reduction > min(config.appearance_channels, config.motion_channels):
        raise ValueError(f"SACConfig.theta_reduction={config.theta_reduction} leaves no channels of "
                         f"{min(config.appearance_channels, config.motion_channels)}; use a smaller reduction.")
    if config.modulate in ("projected", "both") and not config.projection:
        raise ValueError(f"SACConfig.modulate={config.modulate!r} needs projection=True.")
    if config.use_ot and config.attention not in MODES_WITH_COMPOSED_ATTENTION:
        raise ValueError(
            f"SACConfig.use_ot needs modality and frame attention (attention in {MODES_WITH_COMPOSED_ATTENTION}); "
            f"with attention={config.attention!r} set use_ot=False."
        )


_OFFICIAL = dict(modulate="projected", structure_activation="sigmoid", mass_normalisation=False, eps=0.1, n_iter=50,
                 smoothness_reduce="sum", smoothness_difference="absolute", lambda_smooth=1.0, lambda_fnorm=0.0)
PRESETS = {
    "paper": {},
    "official": _OFFICIAL,
    "light": {**_OFFICIAL, "theta_layers": 1, "theta_reduction": 8, "modulate": "raw"},
    "stabilised": {**_OFFICIAL, "ot_modality_gradient": False, "structure_activation": "softmax",
                   "smoothness_reduce": "max", "smoothness_difference": "signed"},
}
"""Each preset as its changes to :class:`SACConfig`'s defaults:

* ``paper``: the paper's description: mass-T masses, eps 1e-3, lambda_s 0.1, lambda_F 0.01, raw features modulated
  (the defaults).
* ``official``: the official code: eps 0.1, N 50, raw masses, sigmoid S, sum/abs smoothness of weight 1, no F-norm,
  the projected features modulated.
* ``light``: the official preset with a light Theta (one Conv1d(D, D/8, k3) per modality) that only feeds the
  attention heads, while the attention modulates the raw features as in the paper's Fig. 2. At D = 1024, T = 128 it
  adds 0.79 M parameters and 0.20 GFLOPs to SSAD, the paper's Table VIII increments (the official Theta adds 12.6 M
  and 3.2 GFLOPs); the paper does not describe its Theta, so this is our reading of its cost, not its code.
* ``stabilised`` (ours, not the paper's): the official preset with the OT collapse removed (notebook 05). In the
  official code S is a free output minimised jointly with the attention: lowering S where the plan has mass makes
  that modality cheaper, which draws more mass to it, until a_m sits at one modality and S near 0. Two changes break
  that loop: a_m is detached inside the transport problem (L_OT shapes S and the frame attention, never the modality
  shares), and S is a softmax over the two modalities of each frame (serving a frame costs S_a,t or 1 - S_a,t, so
  the costs cannot both shrink to zero). With a softmax the official smoothness (the sum over modalities) would be
  constant, so the paper's max of signed differences is used.
"""


class ThetaProjection(nn.Module):
    """Theta for one modality: ``layers`` x (Conv1d(k3, p1) + LeakyReLU), ``[B, D, T] -> [B, D_out, T]``.

    The official code uses two layers with D_out = D; :meth:`SACConfig.light` one layer with D_out = D / 8.
    """

    def __init__(self, channels: int, out_channels: int | None = None, layers: int = 2):
        super().__init__()
        out_channels = out_channels or channels
        modules = []
        for layer in range(layers):
            modules += [nn.Conv1d(channels if layer == 0 else out_channels, out_channels, kernel_size=3, padding=1),
                        nn.LeakyReLU()]
        self.layers = nn.Sequential(*modules)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


def topk_count(length: int, ratio: float) -> int:
    """floor(T k) steps for action-aware pooling (16 of 128 at k = 1/8)."""
    return math.floor(length * ratio + 1e-9)


def action_aware_pool(features: torch.Tensor, ratio: float) -> torch.Tensor:
    """Eq. (1): the mean of the floor(T k) time steps with the largest L2 norm over channels.

    Action steps carry larger features than background, so this pools "where the action is".

    Args:
        features: ``[B, C, T]``.
        ratio: k, the share of steps kept.

    Returns:
        ``[B, C]``.
    """
    count = topk_count(features.shape[-1], ratio)
    if count < 1:
        raise ValueError(
            f"action-aware pooling keeps floor(T * k) = floor({features.shape[-1]} * {ratio:.4g}) = 0 steps; "
            f"use windows of at least {math.ceil(1 / ratio)} steps or a larger topk_ratio."
        )
    norms = features.norm(dim=1)  # [B, T]
    chosen = norms.topk(count, dim=-1).indices  # [B, k]
    gathered = features.gather(-1, chosen.unsqueeze(1).expand(-1, features.shape[1], -1))  # [B, C, k]
    return gathered.mean(-1)


class FrameAttention(nn.Module):
    """a_f = sigmoid(Conv1d(C, 1, k1)(F)): how much each time step matters, ``[B, C, T] -> [B, T]`` in (0, 1)."""

    def __init__(self, channels: int):
        super().__init__()
        self.score = nn.Conv1d(channels, 1, kernel_size=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.score(features)).squeeze(1)


class ModalityAttention(nn.Module):
    """a_m = softmax(Conv1d(C, 2, k1)(pooled F)): the share of each modality, ``[B, C] -> [B, 2]``, sums to 1."""

    def __init__(self, channels: int):
        super().__init__()
        self.score = nn.Conv1d(channels, 2, kernel_size=1)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.score(pooled.unsqueeze(-1)).squeeze(-1), dim=-1)


def compose_attention(modality_attention: torch.Tensor, frame_attention: torch.Tensor) -> torch.Tensor:
    """A = a_m a_f^T, the frame-modality attention: ``[B, 2]`` x ``[B, T]`` -> ``[B, 2, T]``.

    Each column sums to a_f,t (the modality shares split each frame's attention).
    """
    return modality_attention.unsqueeze(-1) * frame_attention.unsqueeze(1)


def transport_masses(modality_attention, frame_attention, mass_normalisation: bool):
    """Supplier and receiver masses of Eq. (2).

    Paper (Section III-E): mu = T a_m ``[B, 2]`` and nu = T a_f / sum_t a_f ``[B, T]``, both of mass T.
    Official code: mu = a_m (mass 1) and nu = a_f (mass sum_t a_f); fixed-iteration Sinkhorn then solves the
    balanced problem for (a_m, a_f / sum a_f), i.e. the paper's plan divided by T.
    """
    if not mass_normalisation:
        return modality_attention, frame_attention
    length = frame_attention.shape[-1]
    return length * modality_attention, length * frame_attention / frame_attention.sum(-1, keepdim=True)


class StructureMatrix(nn.Module):
    """S = Conv1d(C, 2, k1)(F), raw, through a sigmoid, or through a softmax over the two modalities: the cost of
    serving frame t by modality m, ``[B, 2, T]``."""

    def __init__(self, channels: int, activation: str):
        super().__init__()
        self.cost = nn.Conv1d(channels, 2, kernel_size=1)
        self.activation = activation

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        structure = self.cost(features)
        if self.activation == "sigmoid":
            return torch.sigmoid(structure)
        if self.activation == "softmax":
            return torch.softmax(structure, dim=1)
        return structure


def ot_loss(structure, supplier, receiver, config: SACConfig, stop_early: bool = True) -> torch.Tensor:
    """Eq. (2): L_OT = <S, P*>, averaged over the batch; P* from Algorithm 1 or the exact root-find.

    Args:
        structure: S ``[B, 2, T]``; supplier: ``[B, 2]``; receiver: ``[B, T]``.
        stop_early: let the exact solver stop once converged (a host synchronisation every 4 steps); without it,
            its fixed number of steps runs.
    """
    if config.solver == "sinkhorn":
        plan = sinkhorn_log(structure, supplier, receiver, config.eps, n_iter=config.n_iter, check_inputs=False,
                            residual=config.sinkhorn_residual).plan
    else:
        receiver = receiver * supplier.sum(-1, keepdim=True) / receiver.sum(-1, keepdim=True)  # official masses
        plan = entropic_ot_2xT(structure, supplier, receiver, config.eps, check_inputs=False,
                               stop_early=stop_early).plan
    return transport_cost(structure, plan).mean()


def smoothness_loss(structure, eta: float, reduce: str, difference: str) -> torch.Tensor:
    """Eqs. (3)-(4): the structure matrix should change slowly over time, except at a few boundaries.

    First S is reduced over its two modalities to one profile s^f ``[B, T]``: the paper max-pools (``max``,
    s^f_t = max_m S_{m,t}), the official code sums (``sum``). Then the temporal differences d_t = s^f_{t+1} - s^f_t
    are taken, signed (paper) or ``absolute`` (official code), and the mean q of the min(T - 1, floor(T eta))
    smallest is penalised by -log(1 - q) (the official code's BCE(q, 0)), so the largest (1 - eta) share of
    changes, the action boundaries, are left free. (Taking the differences of each modality first and the maximum
    after is a different function: notebook 05 shows an S where the two disagree.)

    Args:
        structure: S ``[B, 2, T]``.

    Returns:
        the batch mean, a scalar.
    """
    pooled = structure.sum(1) if reduce == "sum" else structure.amax(1)  # s^f [B, T]
    changes = pooled.diff(dim=-1)  # d_t [B, T - 1]
    if difference == "absolute":
        changes = changes.abs()
    length = structure.shape[-1]
    kept = max(1, min(length - 1, math.floor(length * eta + 1e-9)))  # 102 of 127 at T = 128, eta 0.8
    q = changes.topk(kept, dim=-1, largest=False).values.mean(-1)  # [B]
    # BCE's convention: log clamped at -100, so a q >= 1 gives a large finite loss instead of NaN
    return -torch.log((1 - q).clamp_min(math.exp(-100))).mean()


def fnorm_loss(structure: torch.Tensor) -> torch.Tensor:
    """Eq. (5): L_F = -(1 / 2T) ||S||_F per window, batch mean. Rewards a non-trivial S (prevents S -> 0)."""
    length = structure.shape[-1]
    return -(structure.flatten(1).norm(dim=-1) / (2 * length)).mean()


class NonLocalBlock(nn.Module):
    """A non-local (self-attention) block over time, the alternative of Table VII: ``[B, C, T] -> [B, C, T]``."""

    def __init__(self, channels: int, inner: int | None = None):
        super().__init__()
        inner = inner or max(1, channels // 2)
        self.query = nn.Conv1d(channels, inner, kernel_size=1)
        self.key = nn.Conv1d(channels, inner, kernel_size=1)
        self.value = nn.Conv1d(channels, inner, kernel_size=1)
        self.out = nn.Conv1d(inner, channels, kernel_size=1)
        self.start_as_identity()

    def start_as_identity(self) -> None:
        """Zero output layer: the block starts as the identity, like the original non-local block."""
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        query, key, value = self.query(features), self.key(features), self.value(features)
        weights = torch.softmax(query.transpose(1, 2) @ key / math.sqrt(query.shape[1]), dim=-1)  # [B, T, T]
        return features + self.out((weights @ value.transpose(1, 2)).transpose(1, 2))


@dataclass
class SACOutput:
    """What :class:`SAC` returns.

    Attributes:
        features: modulated features for the host ``[B, C_out, T]`` (:attr:`SACConfig.output_channels`).
        attention: the frame-modality attention A ``[B, 2, T]`` (ones for ``none`` and ``nonlocal``).
        frame_attention: a_f ``[B, T]`` or None; modality_attention: a_m ``[B, 2]`` or None.
        structure: S ``[B, 2, T]`` when the OT branch ran, else None.
        losses: named loss terms (``ot``, ``smooth``, ``fnorm``, ``total``) in training with ``use_ot``, else {}.
        monitors: in training, detached scalars to log: ``appearance_share`` and ``modality_max`` (batch means of
            a_m[:, 0] and max(a_m)) when there is a modality attention, ``structure_mean`` when S was computed.
    """

    features: torch.Tensor
    attention: torch.Tensor
    frame_attention: torch.Tensor | None
    modality_attention: torch.Tensor | None
    structure: torch.Tensor | None
    losses: dict
    monitors: dict = dataclasses.field(default_factory=dict)


class SAC(nn.Module):
    """The SAC plug-in: ``(appearance [B, Da, T], motion [B, Dm, T]) -> SACOutput``.

    In eval mode no transport problem is solved (the attention alone modulates the features).
    """

    def __init__(self, config: SACConfig = SACConfig()):
        super().__init__()
        self.config = config
        # Steps that make the host read a device value: the NaN/Inf check of the inputs and the exact solver's early
        # stop. A trainer that maps SAC over several runs with vmap (or captures CUDA graphs) turns them off, after
        # checking its data once.
        self.allow_host_sync = True
        channels = config.projected_channels
        if config.projection:
            self.theta_appearance = ThetaProjection(config.appearance_channels,
                                                    config.projected_width(config.appearance_channels),
                                                    config.theta_layers)
            self.theta_motion = ThetaProjection(config.motion_channels, config.projected_width(config.motion_channels),
                                                config.theta_layers)
        mode = config.attention
        if mode == "joint":
            self.joint_attention = nn.Conv1d(channels, 2, kernel_size=1)
        if mode in ("frame", "composed", "sequential"):
            self.frame_attention = FrameAttention(channels)
        if mode in ("modality", "composed", "sequential"):
            self.modality_attention = ModalityAttention(channels)
        if mode == "per_frame":
            self.per_frame_attention = nn.Conv1d(channels, 2, kernel_size=1)
        if mode == "nonlocal":
            self.nonlocal_block = NonLocalBlock(config.output_channels)
        if config.use_ot:
            self.structure_matrix = StructureMatrix(channels, config.structure_activation)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialisation for every convolution (:mod:`sac_minimal.initialisation`), in every preset:
        the paper states none, and using the code's keeps the presets apart only where paper and code disagree.
        The non-local block's output layer alone stays zero, so the block starts as the identity."""
        official_conv_init(self)

    def _check_inputs(self, appearance: torch.Tensor, motion: torch.Tensor):
        config = self.config
        for name, tensor, channels in (("appearance", appearance, config.appearance_channels),
                                       ("motion", motion, config.motion_channels)):
            if tensor.dim() != 3 or tensor.shape[1] != channels:
                raise ValueError(
                    f"{name} features must be [B, {channels}, T] (SACConfig.{name}_channels={channels}); "
                    f"got {tuple(tensor.shape)}. Check the feature width and the channel order (RGB first)."
                )
        dtype = next(self.parameters()).dtype if any(True for _ in self.parameters()) else torch.float32
        for name, tensor in (("appearance", appearance), ("motion", motion)):
            if tensor.dtype != dtype:
                raise ValueError(f"{name} features are {tensor.dtype} but SAC's weights are {dtype}; convert them "
                                 f"with .to({dtype}) (SAC and its transport problem run in float32 even when the "
                                 "host detector uses bf16 autocast)")
        if appearance.shape[0] != motion.shape[0] or appearance.shape[-1] != motion.shape[-1]:
            raise ValueError(
                f"appearance {tuple(appearance.shape)} and motion {tuple(motion.shape)} must share batch size and "
                "length T; both modalities describe the same window."
            )
        if config.pooling == "action_aware" and topk_count(appearance.shape[-1], config.topk_ratio) < 1:
            raise ValueError(
                f"T = {appearance.shape[-1]} is too short for action-aware pooling with topk_ratio "
                f"{config.topk_ratio:.4g}: needs T >= {math.ceil(1 / config.topk_ratio)}."
            )
        if self.allow_host_sync and not (torch.isfinite(appearance).all() and torch.isfinite(motion).all()):
            raise ValueError("the input features contain NaN or Inf; check the feature files (data check).")

    def forward(self, appearance: torch.Tensor, motion: torch.Tensor) -> SACOutput:
        """Fig. 2: project (Θ), attend (the config's :data:`ATTENTIONS` variant; the paper's is ``composed``),
        modulate each modality by its row of the 2 x T attention, and in training add Eq. (6)'s SAC terms."""
        self._check_inputs(appearance, motion)
        config = self.config
        if config.projection:
            projected_appearance, projected_motion = self.theta_appearance(appearance), self.theta_motion(motion)
        else:
            projected_appearance, projected_motion = appearance, motion
        projected = torch.cat([projected_appearance, projected_motion], dim=1)  # [B, C, T]
        variant = ATTENTIONS[config.attention]
        attended = variant.attend(self, projected_appearance, projected_motion, projected)
        first, second = ((projected_appearance, projected_motion) if config.modulate == "projected"
                         else (appearance, motion))
        features = torch.cat([first * attended.attention[:, :1], second * attended.attention[:, 1:]], dim=1)
        if config.modulate == "both":  # the light Θ's capacity-matched baseline: its output read by the host too
            features = torch.cat([features, projected], dim=1)
        features = variant.after(self, features)
        structure, losses = None, {}
        if config.use_ot and self.training:
            structure, losses = self._transport_terms(projected, attended)
        monitors = self._monitors(attended.modality_attention, structure) if self.training else {}
        return SACOutput(features, attended.attention, attended.frame_attention, attended.modality_attention,
                         structure, losses, monitors)

    def _transport_terms(self, projected: torch.Tensor, attended: Attended) -> tuple[torch.Tensor, dict]:
        """The structure matrix S and Eq. (6)'s SAC terms: L_OT (Eq. 2), the smoothness (Eqs. 3-4) and the
        F-norm (Eq. 5) regularisers, and their weighted sum."""
        config = self.config
        structure = self.structure_matrix(projected)
        shares = attended.modality_attention if config.ot_modality_gradient else attended.modality_attention.detach()
        supplier, receiver = transport_masses(shares, attended.frame_attention, config.mass_normalisation)
        losses = {"ot": ot_loss(structure, supplier, receiver, config, stop_early=self.allow_host_sync),
                  "smooth": smoothness_loss(structure, config.eta, config.smoothness_reduce,
                                            config.smoothness_difference),
                  "fnorm": fnorm_loss(structure)}
        losses["total"] = losses["ot"] + config.lambda_smooth * losses["smooth"] + config.lambda_fnorm * losses["fnorm"]
        return structure, losses

    @staticmethod
    def _monitors(modality_attention: torch.Tensor | None, structure: torch.Tensor | None) -> dict:
        """Detached batch means that show the OT collapse while training (notebook 05): the appearance share of
        a_m, the larger of its two shares, and the mean of S."""
        monitors = {}
        if modality_attention is not None:
            monitors["appearance_share"] = modality_attention[:, 0].mean().detach()
            monitors["modality_max"] = modality_attention.amax(-1).mean().detach()
        if structure is not None:
            monitors["structure_mean"] = structure.mean().detach()
        return monitors

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """The modality attention's input: Eq. (1)'s action-aware pooling, or the mean over time."""
        if self.config.pooling == "average":
            return features.mean(-1)
        return action_aware_pool(features, self.config.topk_ratio)


@dataclasses.dataclass(frozen=True)
class Attended:
    """What an attention variant gives: the frame-modality attention ``[B, 2, T]`` and, where the variant has them,
    a_m ``[B, 2]`` and a_f ``[B, T]`` (the OT branch needs both)."""

    attention: torch.Tensor
    modality_attention: torch.Tensor | None = None
    frame_attention: torch.Tensor | None = None


def composed_attention(sac: SAC, appearance, motion, projected) -> Attended:
    """The paper's attention (Fig. 2): a_m from the pooled projected features, a_f per step, A = a_m a_f^T."""
    modality_attention = sac.modality_attention(sac.pool(projected))
    frame_attention = sac.frame_attention(projected)
    return Attended(compose_attention(modality_attention, frame_attention), modality_attention, frame_attention)


def modality_only_attention(sac: SAC, appearance, motion, projected) -> Attended:
    """Table V's modality attention alone: a_m, with every frame counting fully (a_f = 1)."""
    modality_attention = sac.modality_attention(sac.pool(projected))
    frame_attention = projected.new_ones(projected.shape[0], projected.shape[-1])
    return Attended(compose_attention(modality_attention, frame_attention), modality_attention, frame_attention)


def frame_only_attention(sac: SAC, appearance, motion, projected) -> Attended:
    """Table V's frame attention alone: a_f, shared equally by the two modalities (a_m = 1/2, 1/2)."""
    modality_attention = projected.new_full((projected.shape[0], 2), 0.5)
    frame_attention = sac.frame_attention(projected)
    return Attended(compose_attention(modality_attention, frame_attention), modality_attention, frame_attention)


def sequential_attention(sac: SAC, appearance, motion, projected) -> Attended:
    """Table VII's CBAM-style order: a_m first, then a_f on the modality-weighted features."""
    modality_attention = sac.modality_attention(sac.pool(projected))
    weighted = torch.cat([appearance * modality_attention[:, :1, None], motion * modality_attention[:, 1:, None]],
                         dim=1)
    frame_attention = sac.frame_attention(weighted)
    return Attended(compose_attention(modality_attention, frame_attention), modality_attention, frame_attention)


def joint_attention(sac: SAC, appearance, motion, projected) -> Attended:
    """Table V's predicted attention: one convolution gives the whole 2 x T map (no a_m, no a_f)."""
    return Attended(torch.sigmoid(sac.joint_attention(projected)))


def per_frame_attention(sac: SAC, appearance, motion, projected) -> Attended:
    """Ours, not the paper's: a modality split at every frame, ``A[:, :, t] = softmax(Conv1d(C, 2, k1)(F)[:, :, t])``
    over the two modalities, ``[B, 2, T]`` with columns summing to 1. Unlike A = a_m a_f^T (one modality split per
    window) it can trust appearance at one frame and motion at the next."""
    return Attended(torch.softmax(sac.per_frame_attention(projected), dim=1))


def no_attention(sac: SAC, appearance, motion, projected) -> Attended:
    """No attention: every modality and frame counts fully (SSAD+Θ; the non-local block's input)."""
    return Attended(projected.new_ones(projected.shape[0], 2, projected.shape[-1]))


class AttentionVariant(NamedTuple):
    """One attention of the paper's Tables V and VII: ``attend(sac, appearance, motion, projected) -> Attended`` on
    the projected features, and ``after(sac, features)``, what is applied to the modulated features (the non-local
    block; else nothing)."""

    attend: Callable[..., Attended]
    after: Callable[[SAC, torch.Tensor], torch.Tensor] = lambda sac, features: features


ATTENTIONS = {
    "composed": AttentionVariant(composed_attention),
    "modality": AttentionVariant(modality_only_attention),
    "frame": AttentionVariant(frame_only_attention),
    "sequential": AttentionVariant(sequential_attention),
    "joint": AttentionVariant(joint_attention),
    "per_frame": AttentionVariant(per_frame_attention),
    "none": AttentionVariant(no_attention),
    "nonlocal": AttentionVariant(no_attention, lambda sac, features: sac.nonlocal_block(features)),
}
"""Every attention by its :attr:`SACConfig.attention` name; the paper's is ``composed``."""


class WithSAC(nn.Module):
    """A host detector with SAC in front: the one composition of SAC and its host, Eq. (6) included.

    ``forward(appearance [B, Da, T], motion [B, Dm, T]) -> (host output, sac_terms)``. In training ``sac_terms``
    holds SAC's loss terms (``ot``, ``smooth``, ``fnorm``, ``total``) and its monitors; in eval mode it is empty.
    With ``sac=None`` the host reads the concatenated features and ``sac_terms`` is empty (the baselines), so every
    model of the book's tables is one of these. :meth:`total_loss` adds SAC's part to the host's loss (Eq. 6).
    """

    def __init__(self, sac: SAC | None, host: nn.Module):
        super().__init__()
        self.sac, self.host = sac, host

    def forward(self, appearance: torch.Tensor, motion: torch.Tensor) -> tuple[torch.Tensor, dict]:
        if self.sac is None:
            features, sac_terms = torch.cat([appearance, motion], dim=1), {}
        else:
            output = self.sac(appearance, motion)
            features, sac_terms = output.features, {**output.losses, **output.monitors}
        return self.run_host(features), sac_terms

    def run_host(self, features: torch.Tensor) -> torch.Tensor:
        """The host on the (modulated) features; a subclass may wrap it (e.g. in autocast)."""
        return self.host(features)

    @staticmethod
    def total_loss(host_loss: torch.Tensor, sac_terms: dict) -> torch.Tensor:
        """Eq. (6): the host's loss plus SAC's ``L_OT + lambda_s L_s + lambda_F L_F`` (when SAC computed it)."""
        return host_loss + sac_terms["total"] if "total" in sac_terms else host_loss


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters of a module."""
    return sum(parameter.numel() for parameter in module.parameters() if parameter.requires_grad)


def parameter_counts(config: SACConfig) -> dict:
    """SAC's parameters by part for a config: Theta projections, attention heads, structure matrix, total."""
    sac = SAC(config)
    theta = sum(count_parameters(getattr(sac, name)) for name in ("theta_appearance", "theta_motion")
                if hasattr(sac, name))
    structure = count_parameters(sac.structure_matrix) if hasattr(sac, "structure_matrix") else 0
    total = count_parameters(sac)
    return {"theta": theta, "attention": total - theta - structure, "structure": structure, "total": total}
