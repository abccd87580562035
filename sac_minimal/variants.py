"""Every named model configuration of the book's tables, and every experiment as a list of them.

A :class:`Variant` is one row: a model, the SAC preset, and the :class:`~sac_minimal.sac.SACConfig` fields it
changes. :data:`VARIANTS` defines each name once, so that ``composed`` or ``sac`` means the same configuration in
Table I and in every ablation. An :class:`Experiment` is a table: variant names in order and the (baseline,
candidate) pairs it tests.

=========================  ====================================================================================
``table1`` (Table I)       SSAD, SSAD+Θ (capacity), the oracle, SAC (official), composed attention without OT,
                           SAC with the stabilised OT (ours), SAC with the light Θ
``attention`` (Table V)    SSAD, joint predicted 2 x T attention, modality only, frame only, composed (no OT)
``components`` (Table VI)  composed, + OT, + OT + action-aware pooling, + OT + smoothness, complete SAC
``alternatives`` (VII)     sequential (CBAM-style) attention, non-local block, composed, SAC
``variants`` (ours)        official SAC vs the composed attention without OT, the paper preset with a sigmoid S
                           (as written it diverges), the exact 2 x T solver, mass-T normalisation, the light Θ
                           (Table VIII's cost), the stabilised OT and SSAD+Θ
``sweep_eta`` ...          Fig. 6: eta, k, lambda_s, lambda_F around their paper values
=========================  ====================================================================================

Every SAC row is the official preset with one change, unless it names another preset (the paper preset's
unbounded structure matrix diverges, notebook 08).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sac_minimal.config import TrainConfig


@dataclass(frozen=True)
class Variant:
    """One row of an experiment table: a model, the SAC fields it changes from the base config, and optionally
    another SAC preset."""

    name: str
    model: str
    sac_changes: tuple = ()
    label: str = ""
    sac_preset: str | None = None

    def config(self, base: TrainConfig, seed: int) -> TrainConfig:
        """The run of this row for ``seed`` on top of ``base`` (a profile)."""
        return base.replace(model=self.model, seed=seed, sac_preset=self.sac_preset or base.sac_preset,
                            sac_changes=tuple(base.sac_changes) + tuple(self.sac_changes))

    @property
    def title(self) -> str:
        return self.label or self.name


NO_OT = (("use_ot", False),)

VARIANTS = {variant.name: variant for variant in (
    Variant("ssad", "ssad", label="SSAD"),
    Variant("ssad_theta", "ssad_theta", label="SSAD+Θ"),
    Variant("oracle", "oracle", label="oracle gate"),
    Variant("joint", "ssad_sac", (("attention", "joint"), *NO_OT), "joint 2xT attention"),
    Variant("modality", "ssad_sac", (("attention", "modality"), *NO_OT), "modality only"),
    Variant("frame", "ssad_sac", (("attention", "frame"), *NO_OT), "frame only"),
    Variant("composed", "ssad_sac", (("attention", "composed"), *NO_OT), "composed (no OT)"),
    Variant("ot", "ssad_sac", (("pooling", "average"), ("lambda_smooth", 0.0)), "+OT"),
    Variant("ot_pooling", "ssad_sac", (("lambda_smooth", 0.0),), "+OT +pooling"),
    Variant("ot_smooth", "ssad_sac", (("pooling", "average"),), "+OT +smooth"),
    Variant("sac", "ssad_sac", (), "SAC (official)"),
    Variant("sequential", "ssad_sac", (("attention", "sequential"), *NO_OT), "sequential"),
    Variant("nonlocal", "ssad_sac", (("attention", "nonlocal"), *NO_OT), "non-local"),
    Variant("paper_raw_s", "ssad_sac", (), "paper preset", sac_preset="paper"),
    Variant("paper_sigmoid_s", "ssad_sac", (("structure_activation", "sigmoid"),), "paper + sigmoid S",
            sac_preset="paper"),
    Variant("exact_solver", "ssad_sac", (("solver", "entropic"),), "exact 2xT solver"),
    Variant("mass_t", "ssad_sac", (("mass_normalisation", True),), "mass-T masses"),
    Variant("light_theta", "ssad_sac", (), "SAC, light Θ", sac_preset="light"),
    Variant("sac_stabilised", "ssad_sac", (), "SAC, stabilised OT (ours)", sac_preset="stabilised"),
)}

SWEEPS = {
    "sweep_eta": ("eta", (0.5, 0.6, 0.7, 0.8, 0.9), 0.8),
    "sweep_k": ("topk_ratio", (1 / 16, 1 / 8, 1 / 4, 1 / 2), 1 / 8),
    "sweep_lambda_s": ("lambda_smooth", (0.06, 0.08, 0.1, 0.12, 0.14), 0.1),
    "sweep_lambda_f": ("lambda_fnorm", (0.006, 0.008, 0.01, 0.012, 0.014), 0.01),
}
"""Fig. 6's sweeps: (the swept SACConfig field, its values, the paper's value)."""


def sweep_variant_name(sweep: str, value: float) -> str:
    return f"{sweep.removeprefix('sweep_')}_{value:.4g}"


for _sweep, (_field, _values, _) in SWEEPS.items():
    for _value in _values:
        _name = sweep_variant_name(_sweep, _value)
        VARIANTS[_name] = Variant(_name, "ssad_sac", ((_field, _value),), f"{_field} = {_value:.4g}")


@dataclass(frozen=True)
class Experiment:
    """Variant names in table order, the (baseline, candidate) pairs to test, and a title."""

    variants: tuple
    comparisons: tuple
    title: str


def _against(baseline: str, names: Sequence[str]) -> tuple:
    return tuple((baseline, name) for name in names if name != baseline)


_TABLE1 = ("ssad", "ssad_theta", "oracle", "sac", "composed", "sac_stabilised", "light_theta")
_ATTENTION = ("ssad", "joint", "modality", "frame", "composed")
_COMPONENTS = ("composed", "ot", "ot_pooling", "ot_smooth", "sac")
_ALTERNATIVES = ("sequential", "nonlocal", "composed", "sac")
# The paper preset as written (paper_raw_s) is not a row: its unbounded S diverges (NaN within 8 quick epochs,
# notebook 08), so it has no mAP to compare; "paper + sigmoid S" is the paper preset made trainable.
_OURS = ("sac", "composed", "paper_sigmoid_s", "exact_solver", "mass_t", "light_theta", "sac_stabilised",
         "ssad_theta")

EXPERIMENTS = {
    "table1": Experiment(_TABLE1, _against("ssad", _TABLE1) + (("ssad_theta", "sac"), ("composed", "sac"),
                                                                ("composed", "sac_stabilised")),
                         "Table I: SSAD with and without SAC"),
    "attention": Experiment(_ATTENTION, _against("ssad", _ATTENTION), "Table V: which attention"),
    "components": Experiment(_COMPONENTS, _against("composed", _COMPONENTS), "Table VI: SAC's components"),
    "alternatives": Experiment(_ALTERNATIVES, _against("composed", _ALTERNATIVES), "Table VII: alternatives"),
    "variants": Experiment(_OURS, _against("sac", _OURS), "Beyond the paper: presets, solver, masses, capacity"),
}
for _sweep, (_field, _values, _default) in SWEEPS.items():
    _names = tuple(sweep_variant_name(_sweep, value) for value in _values)
    EXPERIMENTS[_sweep] = Experiment(_names, _against(sweep_variant_name(_sweep, _default), _names),
                                     f"Fig. 6: sweep of {_field}")


def experiment(name: str) -> Experiment:
    """The named experiment, with a clear error for an unknown name."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose from {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def variants_of(name: str) -> list[Variant]:
    """The rows of the named experiment, in table order."""
    return [VARIANTS[variant] for variant in experiment(name).variants]
