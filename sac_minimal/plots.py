"""Figures drawn by more than one chapter. Every function draws on a given axis, with a title and labelled axes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def table_boxplot(table: dict, metric: str, axis, *, title: str) -> None:
    """Box plot of per-seed ``metric`` (percent) per variant, every seed drawn as a dot (the paper's Fig. 3)."""
    names = list(table["variants"])
    labels = table.get("labels", {})
    values = [100 * np.asarray(table["variants"][name]["per_seed"][metric]) for name in names]
    axis.boxplot(values, widths=0.5)
    rotate = len(names) > 4
    axis.set_xticks(range(1, len(names) + 1), [labels.get(name, name) for name in names],
                    rotation=30 if rotate else 0, ha="right" if rotate else "center", fontsize=8)
    for position, column in enumerate(values, start=1):
        axis.plot(np.full(len(column), position) + np.linspace(-0.08, 0.08, len(column)), column, "o", ms=3,
                  alpha=0.7)
    axis.set_xlabel("model")
    axis.set_ylabel(f"{metric} mAP (%)")
    axis.set_title(title, fontsize=9)


def paired_differences(table: dict, comparisons: Sequence[str], metric: str, axis, *, title: str) -> None:
    """For each comparison ``"candidate vs baseline"``: the per-seed differences (dots), their mean and a 95 %
    t-interval of the mean (bar), against a zero line; what the paired t-test tests."""
    from scipy.stats import t as student_t

    labels = table.get("labels", {})
    for row, comparison in enumerate(comparisons):
        candidate, baseline = comparison.split(" vs ")
        differences = 100 * (np.asarray(table["variants"][candidate]["per_seed"][metric])
                             - np.asarray(table["variants"][baseline]["per_seed"][metric]))
        half_width = (student_t.ppf(0.975, len(differences) - 1) * differences.std(ddof=1)
                      / np.sqrt(len(differences)))
        axis.plot(differences, np.full(len(differences), row), "o", ms=3, alpha=0.5, color="tab:gray")
        axis.errorbar(differences.mean(), row, xerr=half_width, fmt="D", color="tab:blue", capsize=3)
    axis.axvline(0, color="k", lw=0.8)
    axis.set_yticks(range(len(comparisons)), [
        f"{labels.get(pair.split(' vs ')[0], pair.split(' vs ')[0])} - {labels.get(pair.split(' vs ')[1], '')}"
        for pair in comparisons], fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel(f"difference in {metric} mAP (points), per seed; mean and 95 % interval")
    axis.set_title(title, fontsize=9)


def epoch_curves(histories: dict, column: str, axis, *, title: str, ylabel: str, log: bool = False) -> None:
    """Per-epoch ``column`` of several variants: each seed a faint line, the mean over seeds a bold one.
    ``histories``: ``{label: [metrics of one seed (a list of per-epoch dicts), ...]}``."""
    for (label, runs), color in zip(histories.items(), ("tab:blue", "tab:orange", "tab:green", "tab:red")):
        curves = np.array([[row[column] for row in run] for run in runs])
        epochs = np.arange(1, curves.shape[1] + 1)
        for curve in curves:
            axis.plot(epochs, curve, color=color, lw=0.6, alpha=0.35)
        axis.plot(epochs, curves.mean(0), color=color, lw=2, label=label)
    if log:
        axis.set_yscale("log")
    axis.set_xlabel("epoch")
    axis.set_ylabel(ylabel)
    axis.legend(fontsize=7)
    axis.set_title(title, fontsize=9)


def seed_dots(groups: dict, axis, *, title: str, ylabel: str, reference: float | None = None) -> None:
    """One dot per seed for every group (``{group label: [value per seed]}``), with the group's mean as a bar."""
    for position, (label, values) in enumerate(groups.items()):
        values = np.asarray(values, dtype=np.float64)
        axis.plot(np.full(len(values), position) + np.linspace(-0.12, 0.12, len(values)), values, "o", ms=4,
                  alpha=0.7)
        axis.plot([position - 0.25, position + 0.25], [np.nanmean(values)] * 2, color="k", lw=2)
    if reference is not None:
        axis.axhline(reference, color="k", lw=0.5, ls="--")
    axis.set_xticks(range(len(groups)), list(groups), fontsize=8)
    axis.set_xlabel("group (one dot per seed, bar: mean)")
    axis.set_ylabel(ylabel)
    axis.set_title(title, fontsize=9)
