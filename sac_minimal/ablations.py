"""The paper's ablations (Tables V-VIII, Fig. 6) and a few of our own, as named experiment grids.

Every row is a :class:`~sac_minimal.experiments.Variant` of the official preset (the paper preset's unbounded
structure matrix diverges, notebook 08), defined once in :data:`VARIANTS` so that a name always means the same
configuration; an experiment is a list of variant names plus the (baseline, candidate) pairs it t-tests.

========================  =============================================================================
``attention`` (Table V)   SSAD, joint predicted 2 x T attention, modality only, frame only, composed (no OT)
``components`` (Table VI) composed, + OT, + OT + action-aware pooling, + OT + smoothness, complete SAC
``alternatives`` (VII)    sequential (CBAM-style) attention, non-local block, composed, SAC
``variants`` (ours)       official SAC vs paper preset (raw S and with a sigmoid), exact 2 x T solver,
                          mass-T normalisation, light Θ (Table VIII's cost), the capacity-matched SSAD+Θ
``sweep_eta`` ...         Fig. 6: eta, k, lambda_s, lambda_F around their paper values
``cost`` (Table VIII)     parameters and FLOPs per window (:func:`cost_table`; no training)
========================  =============================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from sac_minimal.config import TrainConfig, profile
from sac_minimal.experiments import Variant, run_grid, summarize_grid

NO_OT = (("use_ot", False),)

VARIANTS = {variant.name: variant for variant in (
    Variant("ssad", "ssad", label="SSAD"),
    Variant("ssad_theta", "ssad_theta", label="SSAD+Θ"),
    Variant("joint", "ssad_sac", (("attention", "joint"), *NO_OT), "joint 2xT attention"),
    Variant("modality", "ssad_sac", (("attention", "modality"), *NO_OT), "modality only"),
    Variant("frame", "ssad_sac", (("attention", "frame"), *NO_OT), "frame only"),
    Variant("composed", "ssad_sac", (("attention", "composed"), *NO_OT), "composed"),
    Variant("ot", "ssad_sac", (("pooling", "average"), ("lambda_smooth", 0.0)), "+OT"),
    Variant("ot_pooling", "ssad_sac", (("lambda_smooth", 0.0),), "+OT +pooling"),
    Variant("ot_smooth", "ssad_sac", (("pooling", "average"),), "+OT +smooth"),
    Variant("sac", "ssad_sac", (), "SAC (complete)"),
    Variant("sequential", "ssad_sac", (("attention", "sequential"), *NO_OT), "sequential"),
    Variant("nonlocal", "ssad_sac", (("attention", "nonlocal"), *NO_OT), "non-local"),
    Variant("paper_raw_s", "ssad_sac", (), "paper preset", sac_preset="paper"),
    Variant("paper_sigmoid_s", "ssad_sac", (("structure_activation", "sigmoid"),), "paper + sigmoid S",
            sac_preset="paper"),
    Variant("exact_solver", "ssad_sac", (("solver", "entropic"),), "exact 2xT solver"),
    Variant("mass_t", "ssad_sac", (("mass_normalisation", True),), "mass-T masses"),
    Variant("light_theta", "ssad_sac", (), "SAC, light Θ", sac_preset="light"),
)}

SWEEPS = {
    "sweep_eta": ("eta", (0.5, 0.6, 0.7, 0.8, 0.9), 0.8),
    "sweep_k": ("topk_ratio", (1 / 16, 1 / 8, 1 / 4, 1 / 2), 1 / 8),
    "sweep_lambda_s": ("lambda_smooth", (0.06, 0.08, 0.1, 0.12, 0.14), 0.1),
    "sweep_lambda_f": ("lambda_fnorm", (0.006, 0.008, 0.01, 0.012, 0.014), 0.01),
}


@dataclass(frozen=True)
class Experiment:
    """Variant names in table order and the (baseline, candidate) pairs to t-test."""

    variants: tuple
    comparisons: tuple
    title: str


def _against(baseline: str, names: Sequence[str]) -> tuple:
    return tuple((baseline, name) for name in names if name != baseline)


def _sweep_variants() -> dict:
    variants = {}
    for experiment, (field_name, values, _) in SWEEPS.items():
        for value in values:
            name = f"{experiment.removeprefix('sweep_')}_{value:.4g}"
            variants[name] = Variant(name, "ssad_sac", ((field_name, value),), f"{field_name} = {value:.4g}")
    return variants


VARIANTS.update(_sweep_variants())

_ATTENTION = ("ssad", "joint", "modality", "frame", "composed")
_COMPONENTS = ("composed", "ot", "ot_pooling", "ot_smooth", "sac")
_ALTERNATIVES = ("sequential", "nonlocal", "composed", "sac")
_OURS = ("sac", "paper_raw_s", "paper_sigmoid_s", "exact_solver", "mass_t", "light_theta", "ssad_theta")

EXPERIMENTS = {
    "attention": Experiment(_ATTENTION, _against("ssad", _ATTENTION), "Table V: which attention"),
    "components": Experiment(_COMPONENTS, _against("composed", _COMPONENTS), "Table VI: SAC's components"),
    "alternatives": Experiment(_ALTERNATIVES, _against("composed", _ALTERNATIVES), "Table VII: alternatives"),
    "variants": Experiment(_OURS, _against("sac", _OURS), "Beyond the paper: presets, solver, masses, capacity"),
}
for _name, (_field, _values, _default) in SWEEPS.items():
    _names = tuple(f"{_name.removeprefix('sweep_')}_{value:.4g}" for value in _values)
    _baseline = f"{_name.removeprefix('sweep_')}_{_default:.4g}"
    EXPERIMENTS[_name] = Experiment(_names, _against(_baseline, _names), f"Fig. 6: sweep of {_field}")

PAPER_MAP_AT_05 = {
    "ssad": 45.5, "joint": 48.1, "modality": 47.5, "frame": 47.8, "composed": 48.8, "ot": 50.0, "ot_pooling": 50.9,
    "ot_smooth": 50.8, "sac": 51.4, "sequential": 48.3, "nonlocal": 48.4,
}
"""The paper's THUMOS14 mAP@0.5 (%) for the rows of Tables V-VII (Yang et al. 2022)."""

PAPER_COST = {"SSAD": (4.29, 0.42), "SSAD+SAC": (5.08, 0.62)}
"""Table VIII of the paper: parameters (M) and GFLOPs."""


def variants_of(name: str) -> list[Variant]:
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown ablation {name!r}; choose from {sorted(EXPERIMENTS)} or 'cost'")
    return [VARIANTS[variant] for variant in EXPERIMENTS[name].variants]


def run_ablation(name: str, base: TrainConfig, seeds: Sequence[int], results_dir: str | Path, *,
                 checkpoints_dir: str | Path, shard: str | None = None, verbose: bool = False,
                 seeds_together: bool = False) -> list[Path]:
    """Train one named experiment's grid (see :func:`sac_minimal.experiments.run_grid`)."""
    return run_grid(base, variants_of(name), seeds, results_dir, checkpoints_dir=checkpoints_dir,
                    comparisons=EXPERIMENTS[name].comparisons, shard=shard, verbose=verbose,
                    seeds_together=seeds_together)


def run_union(names: Sequence[str], base: TrainConfig, seeds: Sequence[int], results_dir: str | Path, *,
              checkpoints_dir: str | Path, verbose: bool = False, seeds_together: bool = False) -> list[Path]:
    """Train the union of several experiments' variants once (shared rows such as ``composed`` run once)."""
    union = list(dict.fromkeys(variant for name in names for variant in EXPERIMENTS[name].variants))
    return run_grid(base, [VARIANTS[variant] for variant in union], seeds, results_dir,
                    checkpoints_dir=checkpoints_dir, verbose=verbose, seeds_together=seeds_together)


def ablation_table(runs: Sequence, name: str) -> dict:
    """One experiment's table from runs that include its variants (possibly run as part of a union)."""
    experiment = EXPERIMENTS[name]
    table = summarize_grid(runs, list(experiment.variants), experiment.comparisons)
    table["labels"] = {variant: VARIANTS[variant].label or variant for variant in experiment.variants}
    table["title"] = experiment.title
    return table


COST_MODELS = (("ssad", "official", "SSAD"), ("ssad_theta", "official", "SSAD+Θ"),
               ("ssad_sac", "official", "SSAD+SAC"), ("ssad_sac", "light", "SSAD+SAC (light Θ)"))
"""Table VIII's rows: (model, SAC preset, label)."""


def cost_table(channels: int = 1024, length: int = 128) -> list[dict]:
    """Parameters and FLOPs of one window's inference forward for the :data:`COST_MODELS` at the official widths
    (FLOPs as counted by ``torch.utils.flop_counter``: a multiply-add is 2 FLOPs; convolutions and matmuls only).
    Each row also gives its increments over SSAD, the quantities the paper's Table VIII lets one check."""
    from torch.utils.flop_counter import FlopCounterMode

    from sac_minimal.train import Detector

    rows = []
    appearance, motion = torch.randn(1, channels, length), torch.randn(1, channels, length)
    for model_name, preset, label in COST_MODELS:
        model = Detector(profile("full", model=model_name, sac_preset=preset), channels, channels).eval()
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(appearance, motion)
        parameters = sum(parameter.numel() for parameter in model.parameters())
        theta = sum(parameter.numel() for name, parameter in model.named_parameters() if "theta" in name)
        rows.append({"model": label, "parameters_M": parameters / 1e6, "theta_parameters_M": theta / 1e6,
                     "GFLOPs": counter.get_total_flops() / 1e9})
    for row in rows:
        row["added_parameters_M"] = row["parameters_M"] - rows[0]["parameters_M"]
        row["added_GFLOPs"] = row["GFLOPs"] - rows[0]["GFLOPs"]
    return rows
