"""The paper's ablations (Tables V-VIII, Fig. 6): running them, their tables, and the cost table.

The experiments themselves (which variants, which comparisons, which hypotheses) are defined in
:mod:`sac_minimal.lab.variants` and run by :mod:`sac_minimal.lab.experiments` (a row shared by several tables, such as the
composed attention, is trained once: its checkpoint is found by config and dataset). This module counts parameters
and FLOPs for Table VIII (:func:`cost_table`, no training). The paper's THUMOS14 numbers for these
tables are here too, always shown as the paper's.
"""

from __future__ import annotations

import torch

from sac_minimal.lab.config import profile

PAPER_MAP_AT_05 = {
    "ssad": 45.5, "joint": 48.1, "modality": 47.5, "frame": 47.8, "composed": 48.8, "ot": 50.0, "ot_pooling": 50.9,
    "ot_smooth": 50.8, "sac": 51.4, "sequential": 48.3, "nonlocal": 48.4,
}
"""The paper's THUMOS14 mAP@0.5 (%) for the rows of Tables V-VII (Yang et al. 2022)."""

PAPER_COST = {"SSAD": (4.29, 0.42), "SSAD+SAC": (5.08, 0.62)}
"""Table VIII of the paper: parameters (M) and GFLOPs."""


COST_MODELS = (("ssad", "official", "SSAD"), ("ssad_theta", "official", "SSAD+Θ"),
               ("ssad_sac", "official", "SAC (official)"), ("ssad_sac", "light", "SAC, light Θ"))
"""Table VIII's rows: (model, SAC preset, label); the labels are the rows' display names in every other table
(:data:`sac_minimal.lab.variants.VARIANTS`), so SSAD+SAC with the official preset is "SAC (official)"."""


def cost_table(channels: int = 1024, length: int = 128) -> list[dict]:
    """Parameters and FLOPs of one window's inference forward for the :data:`COST_MODELS` at the official widths
    (FLOPs as counted by ``torch.utils.flop_counter``: a multiply-add is 2 FLOPs; convolutions and matmuls only).
    Each row also gives its increments over SSAD, the quantities the paper's Table VIII lets one check."""
    from torch.utils.flop_counter import FlopCounterMode

    from sac_minimal.lab.train import Detector

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
