"""Figures drawn by more than one chapter."""

from __future__ import annotations

import numpy as np

MODEL_LABELS = {"ssad": "SSAD", "ssad_theta": "SSAD+Θ", "ssad_sac": "SSAD+SAC", "ssad_sac_light": "SSAD+SAC (light Θ)"}


def table1_boxplot(table: dict, metric: str, axis, *, title: str = "") -> None:
    """Box plot of per-seed ``metric`` (percent) per variant, every seed drawn as a dot (the paper's Fig. 3)."""
    names = list(table["variants"])
    labels = table.get("labels", {})
    values = [100 * np.asarray(table["variants"][name]["per_seed"][metric]) for name in names]
    axis.boxplot(values, widths=0.5)
    axis.set_xticks(range(1, len(names) + 1), [labels.get(name, MODEL_LABELS.get(name, name)) for name in names],
                    rotation=30 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center")
    for position, column in enumerate(values, start=1):
        axis.plot(np.full(len(column), position) + np.linspace(-0.08, 0.08, len(column)), column, "o", ms=4,
                  alpha=0.7)
    axis.set_ylabel(f"{metric} (%)")
    if title:
        axis.set_title(title)
