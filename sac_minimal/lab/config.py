"""Training configurations: one frozen dataclass, two profiles, JSON round-trip.

``full`` is the official recipe (book/recipe.md, Section 4): Adam, lr 1e-4, batch 4, 40 epochs, lr x 0.1 after epoch 30,
SSAD with 256/512 channels, evaluation at the last epoch. ``quick`` is what the book build trains on two CPU cores:
the quick surrogate (2 x 64 channels), a slimmer SSAD (64/128 channels), batch 8, 12 epochs, lr 1e-3 decayed x 0.1
after epoch 9. Its numbers show the pipeline working, not THUMOS14 performance.

The model is one of:

* ``ssad``: SSAD on the concatenated appearance and motion features;
* ``ssad_theta``: SSAD on Θ-projected features with no attention (the capacity-matched baseline the paper skips:
  SSAD+SAC also gains Θ's parameters);
* ``ssad_sac``: SSAD with SAC in front (``sac_preset`` ``official``, ``paper`` or ``light``);
* ``reference``: SSAD on features gated by inverse-variance weights computed from the surrogate's true per-step
  reliabilities (:func:`sac_minimal.data.synthetic.reference_gates`), no learned attention: what a composed
  attention that knew the reliabilities could do by weighting alone. A reference, not a ceiling (a learned
  attention can beat it). Only on the synthetic surrogate.

The data a run sees is set by ``world`` (the surrogate's seed: an independent synthetic world) and
``heterogeneity`` (h: how much modality reliability varies across and within videos, 0 to 1), both part of every
run's key and record.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

from sac_minimal.data.locate import dataset_root
from sac_minimal.data.synthetic import (
    GENERATOR_VERSION,
    GENERATOR_VERSIONS,
    METADATA_FILE,
    read_synthetic_metadata,
    surrogate_label,
    surrogate_problems,
)
from sac_minimal.detection import LOSSES
from sac_minimal.sac import PRESETS, SACConfig

PRIVILEGED_CONTROLS = ("privileged", "privileged_window", "privileged_video")
"""The privileged control at three granularities: the truth (each step's clean share m^2) used per step, averaged
over each window (one weight per modality per window: what SAC's modality attention a_m can express) and averaged
over each video (:func:`sac_minimal.lab.train.load_windows`)."""
MODELS = ("ssad", "ssad_theta", "ssad_sac", "reference", *PRIVILEGED_CONTROLS, "headroom")
"""``reference``, the privileged controls and ``headroom`` are SSAD given the surrogate's truth (positive controls):
:mod:`sac_minimal.data.synthetic` (``reference_gates``, ``privileged_gates``) and :meth:`TrainConfig.data_heterogeneity`."""
HOST_ONLY = ("ssad", "reference", *PRIVILEGED_CONTROLS, "headroom")
"""Models that are SSAD alone (no SAC module)."""
MAX_SCALED_LEARNING_RATE = 0.01
"""Above this, a learning rate scaled by the linear scaling rule is refused unless asked for
(:meth:`TrainConfig.with_batch_size`): ten times the quick profile's rate, a hundred times the official one."""
SAC_PRESETS = tuple(PRESETS)
LOSS_BEFORE_RECORDED = "book_v1"
"""The SSAD loss of a config recorded before configs named their loss (:data:`sac_minimal.detection.LOSSES`): every
such run was trained with it, so it is read back as trained, never relabelled."""
SINKHORN_UPDATES = ("residual", "direct")
"""How Algorithm 1 updates its potentials (:func:`sac_minimal.ot.sinkhorn_log`'s ``residual``): ``residual``, the
official code's form, since the official loss; ``direct``, the form every config recorded before configs named
their loss was trained with (the two arrived together), read back so."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run depends on.

    Attributes:
        model: ``ssad`` | ``ssad_theta`` | ``ssad_sac`` | ``reference``.
        sac_preset: ``official`` | ``paper`` | ``light`` | ``stabilised`` (:meth:`SACConfig.official`,
            :meth:`SACConfig.paper`, :meth:`SACConfig.light`, :meth:`SACConfig.stabilised`).
        sac_changes: extra :class:`SACConfig` fields as ``((name, value), ...)`` (ablations).
        profile: the profile this config came from (``quick`` | ``full``), recorded in results.
        data_root: dataset folder; ``None`` picks the surrogate of ``data_size`` for the quick profile, and for
            the full profile the real THUMOS14 folder when present, else the full surrogate.
        data_size: surrogate size when no real data is used (``quick`` | ``full``).
        data_version: surrogate generator version when no real data is used (:mod:`sac_minimal.data.synthetic`).
        world: the surrogate's seed, an independent synthetic world (ignored with real data).
        heterogeneity: the surrogate's h, 0 (every modality equally reliable everywhere) to 1 (the full spread of
            reliabilities and corruptions); ignored with real data.
        seed: seeds the model's initialisation, the shuffling and the random negatives.
        epochs, learning_rate, lr_decay_epochs, lr_decay_factor: Adam's schedule (lr x factor after each listed
            epoch).
        batch_size: windows per step.
        base_channels, main_channels: SSAD widths (256/512 official).
        matching, negative_ratio: SSAD loss options (:func:`sac_minimal.detection.ssad_loss`).
        loss: SSAD's loss, a name of :data:`sac_minimal.detection.LOSSES`: ``official`` (the official code's),
            ``official_detached`` (its overlap target without gradient) or ``book_v1`` (the book's first records).
        sinkhorn_update: ``residual`` (the official code's) or ``direct`` (:data:`SINKHORN_UPDATES`).
        device: ``auto`` (cuda when present), ``cpu``, ``cuda``.
        amp: bf16 autocast for the SSAD host on CUDA (SAC and its transport problem stay float32; ignored on CPU).
        accept_length_mismatch: train even when a feature file's rows do not fit its video's duration x fps / 4
            (otherwise an error names the file: :class:`~sac_minimal.data.windows.WindowDataset`).

    The model is evaluated once, after the last epoch: a fixed epoch, never one chosen by test mAP.
    """

    model: str = "ssad_sac"
    sac_preset: str = "official"
    sac_changes: tuple = ()
    profile: str = "full"
    data_root: str | None = None
    data_size: str = "full"
    data_version: int = GENERATOR_VERSION
    world: int = 0
    heterogeneity: float = 1.0
    seed: int = 0
    epochs: int = 40
    learning_rate: float = 1e-4
    lr_decay_epochs: tuple = (30,)
    lr_decay_factor: float = 0.1
    batch_size: int = 4
    base_channels: int = 256
    main_channels: int = 512
    matching: str = "decoded"
    negative_ratio: float = 1.0
    loss: str = "official"
    sinkhorn_update: str = "residual"
    device: str = "auto"
    amp: bool = False
    accept_length_mismatch: bool = False

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.sac_preset not in SAC_PRESETS:
            raise ValueError(f"sac_preset must be one of {SAC_PRESETS}, got {self.sac_preset!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError(f"epochs, batch_size and learning_rate must be positive: {self.epochs}, "
                             f"{self.batch_size}, {self.learning_rate}")
        if self.data_version not in GENERATOR_VERSIONS:
            raise ValueError(f"data_version must be one of {GENERATOR_VERSIONS}, got {self.data_version!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {self.loss!r}")
        if self.sinkhorn_update not in SINKHORN_UPDATES:
            raise ValueError(f"sinkhorn_update must be one of {SINKHORN_UPDATES}, got {self.sinkhorn_update!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        for name in ("world", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
        if isinstance(self.heterogeneity, bool) or not isinstance(self.heterogeneity, (int, float)) \
                or not math.isfinite(self.heterogeneity) or self.heterogeneity < 0:
            raise ValueError(f"heterogeneity must be a finite number >= 0, got {self.heterogeneity!r}")
        object.__setattr__(self, "heterogeneity", float(self.heterogeneity))
        object.__setattr__(self, "lr_decay_epochs", tuple(self.lr_decay_epochs))
        object.__setattr__(self, "sac_changes", tuple(tuple(change) for change in self.sac_changes))

    def learning_rate_at(self, epoch: int) -> float:
        """The learning rate of 1-based ``epoch``."""
        decays = sum(epoch > boundary for boundary in self.lr_decay_epochs)
        return self.learning_rate * self.lr_decay_factor ** decays

    @property
    def data_heterogeneity(self) -> float:
        """The h of the data this run trains and is scored on: its own, except for the ``headroom`` control, which
        is SSAD on the same world without the reliability-driven corruption (h = 0: every other draw of a world is
        shared by all h)."""
        return 0.0 if self.model == "headroom" else self.heterogeneity

    def sac_config(self, appearance_channels: int, motion_channels: int) -> SACConfig | None:
        """SAC's config for this model (``None`` for SSAD and the reference gate); ``ssad_theta`` is Θ without
        attention or OT."""
        if self.model in HOST_ONLY:
            return None
        changes = {**dict(self.sac_changes), "sinkhorn_residual": self.sinkhorn_update == "residual"}
        if self.model == "ssad_theta":
            changes.update(attention="none", use_ot=False, modulate="projected", projection=True)
        return SACConfig.preset(self.sac_preset, appearance_channels=appearance_channels,
                                motion_channels=motion_channels, **changes)

    def with_batch_size(self, batch_size: int, allow_large_learning_rate: bool = False) -> TrainConfig:
        """The same run with another batch size and the learning rate scaled linearly with it (the linear scaling
        rule: lr x batch_size / this config's batch size). The epochs and the decay epochs stay as they are.

        A scaled learning rate above :data:`MAX_SCALED_LEARNING_RATE` is refused (``ValueError``) unless
        ``allow_large_learning_rate``, and then still warned about."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        learning_rate = self.learning_rate * batch_size / self.batch_size
        if learning_rate > MAX_SCALED_LEARNING_RATE:
            message = (f"batch size {batch_size} gives a learning rate of {learning_rate:g} by the linear scaling "
                       f"rule ({batch_size / self.batch_size:g} x {self.learning_rate:g}); above "
                       f"{MAX_SCALED_LEARNING_RATE:g} Adam is likely to diverge")
            if not allow_large_learning_rate:
                raise ValueError(f"{message}: use a smaller batch size, or --allow-large-lr to train anyway")
            warnings.warn(message, stacklevel=2)
        return self.replace(batch_size=batch_size, learning_rate=learning_rate)

    def differences(self, other: TrainConfig) -> list[str]:
        """The fields in which ``other`` differs from this config, as ``"name: this -> other"`` lines."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{name}: {mine[name]!r} -> {theirs[name]!r}" for name in mine if mine[name] != theirs[name]]

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """A recorded config; one recorded before configs named their loss was trained with
        :data:`LOSS_BEFORE_RECORDED` and the direct Sinkhorn update (:data:`SINKHORN_UPDATES`), and is read so."""
        if isinstance(values, dict) and "sinkhorn_update" not in values:
            values = {**values, "sinkhorn_update": "residual" if "loss" in values else "direct"}
        if isinstance(values, dict) and "loss" not in values:
            values = {**values, "loss": LOSS_BEFORE_RECORDED}
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}")
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        return cls.from_dict(json.loads(text))


PROFILES = {
    "full": TrainConfig(profile="full"),
    "quick": TrainConfig(profile="quick", data_size="quick", epochs=12, learning_rate=1e-3, lr_decay_epochs=(9,),
                         batch_size=8, base_channels=64, main_channels=128),
}


def profile(name: str, **changes) -> TrainConfig:
    """The ``quick`` or ``full`` profile with ``changes`` applied."""
    if name not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {name!r}")
    return PROFILES[name].replace(**changes)


def resolve_data_root(config: TrainConfig, *, create: bool = True) -> tuple[Path, str]:
    """The dataset folder a config trains on, and its kind (``thumos14``, ``synthetic`` or ``folder``); the
    surrogate is written on first use unless ``create`` is False.

    A surrogate given as ``data_root`` must be of the config's ``data_version``, ``world`` and ``heterogeneity``, so
    that a record never names a generator version, world or h its data did not come from."""
    if config.data_root is None:
        root, kind = dataset_root(prefer_real=config.profile == "full", size=config.data_size, seed=config.world,
                                  version=config.data_version, heterogeneity=config.data_heterogeneity,
                                  create=create)
    else:
        root = Path(config.data_root)
        kind = "synthetic" if (root / METADATA_FILE).exists() else "folder"
        if kind == "folder" and surrogate_label(root) is not None:
            raise ValueError(f"{root} holds a surrogate written by this package ({surrogate_label(root)}) without its "
                             f"{METADATA_FILE}, so its generator, world and truth cannot be checked; copy the whole "
                             "folder, or leave --data out and the package writes that surrogate again")
    if config.model == "headroom" and kind != "synthetic":
        raise ValueError(f"the headroom control is SSAD on the same surrogate world without its corruption; {root} "
                         "is not a surrogate (real videos have no uncorrupted version), so it has no headroom run")
    if config.data_root is None or kind != "synthetic":
        return root, kind
    metadata = read_synthetic_metadata(root)
    problems = surrogate_problems(root, metadata)
    if problems:
        raise ValueError(f"{root} is not the surrogate its {METADATA_FILE} describes: {'; '.join(problems)}. Write it "
                         "again (python -m sac_minimal data synth ...), or leave --data out to use the cache")
    found = (metadata.get("generator_version"), metadata.get("seed"), metadata.get("heterogeneity"))
    asked = (config.data_version, config.world, config.data_heterogeneity)
    if found != asked:
        raise ValueError(f"{root} holds the surrogate of (generator version, world, h) = {found}, but the config "
                         f"asks for {asked}; pass the matching --data-version, --worlds and --heterogeneity, or "
                         "another folder")
    return root, "synthetic"
