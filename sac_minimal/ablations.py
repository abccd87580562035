"""The paper's ablations (Tables V-VIII, Fig. 6): running them, their tables, and the cost table.

The experiments themselves (which variants, which comparisons) are defined in :mod:`sac_minimal.variants`;
this module runs several of them at once (:func:`run_union`, so that a row shared by several tables is trained
once), builds one experiment's table from runs that include its variants (:func:`ablation_table`), and counts
parameters and FLOPs for Table VIII (:func:`cost_table`, no training). The paper's THUMOS14 numbers for these
tables are here too, always shown as the paper's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from sac_minimal.config import TrainConfig, profile
from sac_minimal.experiments import run_grid, summarize_grid
from sac_minimal.variants import VARIANTS, experiment

PAPER_MAP_AT_05 = {
    "ssad": 45.5, "joint": 48.1, "modality": 47.5, "frame": 47.8, "composed": 48.8, "ot": 50.0, "ot_pooling": 50.9,
    "ot_smooth": 50.8, "sac": 51.4, "sequential": 48.3, "nonlocal": 48.4,
}
"""The paper's THUMOS14 mAP@0.5 (%) for the rows of Tables V-VII (Yang et al. 2022)."""

PAPER_COST = {"SSAD": (4.29, 0.42), "SSAD+SAC": (5.08, 0.62)}
"""Table VIII of the paper: parameters (M) and GFLOPs."""


def run_union(names: Sequence[str], base: TrainConfig, seeds: Sequence[int], results_dir: str | Path, *,
              checkpoints_dir: str | Path, **options) -> list[Path]:
    """Train the union of several experiments' variants once (shared rows such as ``composed`` run once)."""
    union = list(dict.fromkeys(variant for name in names for variant in experiment(name).variants))
    return run_grid(base, [VARIANTS[variant] for variant in union], seeds, results_dir,
                    checkpoints_dir=checkpoints_dir, title=" + ".join(names), **options)


def ablation_table(runs: Sequence, name: str) -> dict:
    """One experiment's table from runs that include its variants (possibly run as part of a union)."""
    chosen = experiment(name)
    table = summarize_grid(runs, list(chosen.variants), chosen.comparisons)
    table["labels"] = {variant: VARIANTS[variant].title for variant in chosen.variants}
    table["title"] = chosen.title
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


def format_cost_table(rows: list[dict]) -> str:
    """Table VIII as text: our counts, then the paper's figures and the increments SAC adds in each."""
    lines = [f"{row['model']:<20} {row['parameters_M']:6.2f} M parameters (Θ {row['theta_parameters_M']:5.2f} M), "
             f"{row['GFLOPs']:.3f} GFLOPs per window; over SSAD +{row['added_parameters_M']:.2f} M, "
             f"+{row['added_GFLOPs']:.3f} GFLOPs" for row in rows]
    ssad, sac = PAPER_COST["SSAD"], PAPER_COST["SSAD+SAC"]
    lines.append(f"paper (Table VIII, THUMOS14): SSAD {ssad[0]} M / {ssad[1]} GFLOPs, SSAD+SAC {sac[0]} M / {sac[1]} "
                 f"GFLOPs; SAC adds +{sac[0] - ssad[0]:.2f} M, +{sac[1] - ssad[1]:.2f} GFLOPs")
    return "\n".join(lines)
