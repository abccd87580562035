"""Figures drawn by more than one chapter. Every function draws on a given axis, with a title and labelled axes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


MODEL_COLORS = {
    "ssad": "tab:gray", "ssad_theta": "tab:brown", "reference": "tab:orange", "headroom": "tab:olive",
    "privileged": "tab:pink", "composed": "tab:blue", "sac": "tab:red", "sac_stabilised": "tab:green",
    "light_theta": "tab:purple", "joint": "tab:cyan", "modality": "tab:olive", "frame": "tab:pink",
    "sequential": "tab:cyan", "nonlocal": "tab:brown", "privileged_window": "indigo",
    "privileged_video": "darkkhaki", "per_frame": "teal", "light_theta_baseline": "goldenrod",
}
"""One colour per model in every figure of the book (a model not listed is black)."""


def model_color(name: str) -> str:
    """The colour of a model (variant name) in every figure: :data:`MODEL_COLORS`."""
    return MODEL_COLORS.get(name, "black")


def _label(table: dict, name: str) -> str:
    return table.get("labels", {}).get(name, name)


def world_effects(table: dict, keys: Sequence[str], axis, *, title: str, adjusted: bool = False) -> None:
    """For each test of a record (``table["tests"][key]``): one dot per world (its mean over seeds of candidate minus
    baseline, in points), the mean over worlds and its 95 % interval (bar), against a zero line; what the test across
    worlds tests. A trend's dots are per-world slopes (points per unit of h). With ``adjusted`` the bars are the
    table's simultaneous intervals (the level of its Holm verdicts; every key must be a test of its family)."""
    low, high = ("low_adjusted", "high_adjusted") if adjusted else ("low", "high")
    for row, key in enumerate(keys):
        test = table["tests"][key]
        if not np.isfinite(test[low]):
            raise ValueError(f"{key} has no {'simultaneous ' if adjusted else ''}interval (exploratory or not "
                             "testable)")
        values = 100 * np.asarray(test["world_differences"])
        axis.plot(values, np.full(len(values), row) + np.linspace(-0.12, 0.12, len(values)), "o", ms=3, alpha=0.5,
                  color="tab:gray")
        axis.errorbar(100 * test["mean"], row, xerr=[[100 * (test["mean"] - test[low])],
                                                    [100 * (test[high] - test["mean"])]],
                      fmt="D", color="tab:blue", capsize=3)
    axis.axvline(0, color="k", lw=0.8)
    axis.set_yticks(range(len(keys)), [
        f"{_label(table, table['tests'][key]['candidate'])} - {_label(table, table['tests'][key]['baseline'])}"
        + ("" if table["tests"][key]["heterogeneity"] is None and len(keys) < 2 else
           f", h={table['tests'][key]['heterogeneity']:g}" if table["tests"][key]["heterogeneity"] is not None
           else ", trend") for key in keys], fontsize=9)
    axis.invert_yaxis()
    unit = table.get("unit", "world")
    interval = "simultaneous 95 % interval" if adjusted else "95 % interval"
    axis.set_xlabel(f"difference (points), one dot per {unit}; mean and {interval}")
    axis.set_title(title, fontsize=9)


def dose_response(table: dict, comparisons: Sequence[tuple[str, str]], axis, *, title: str) -> None:
    """Each (baseline, candidate) comparison's mean difference over worlds at every h of the record (points), with
    its 95 % interval, and the per-world values as faint dots; in the candidate's colour (dashed when a candidate
    appears twice)."""
    hs = np.asarray(table["heterogeneities"], dtype=float)
    drawn = []
    for index, (baseline, candidate) in enumerate(comparisons):
        color, style = model_color(candidate), "o--" if candidate in drawn else "o-"  # the candidate's colour
        drawn.append(candidate)
        tests = [table["tests"][f"{candidate} vs {baseline}, h={h:g}"] for h in hs]
        offset = 0.012 * (index - (len(comparisons) - 1) / 2)
        means = np.array([100 * test["mean"] for test in tests])
        errors = np.array([[100 * (test["mean"] - test["low"]) for test in tests],
                           [100 * (test["high"] - test["mean"]) for test in tests]])
        axis.errorbar(hs + offset, means, yerr=errors, fmt=style, color=color, capsize=3,
                      label=f"{_label(table, candidate)} - {_label(table, baseline)}")
        for h, test in zip(hs, tests):
            values = 100 * np.asarray(test["world_differences"])
            axis.plot(np.full(len(values), h + offset), values, ".", color=color, alpha=0.3)
    axis.axhline(0, color="k", lw=0.8)
    axis.set_xticks(hs)
    axis.set_xlabel("heterogeneity h (0: every modality equally reliable)")
    axis.set_ylabel(f"difference in {table['metric']} mAP (points)")
    axis.legend(fontsize=9)
    axis.set_title(title, fontsize=9)


def variant_means(table: dict, heterogeneity: float, axis, *, title: str, metric: str | None = None) -> None:
    """Each variant's mAP at one h: one dot per world (mean over its seeds), a bar at the mean over worlds."""
    metric = metric or table["metric"]
    names = list(table["variants"])
    for position, name in enumerate(names):
        by_world = table["cells"][name][f"{heterogeneity:g}"]
        values = 100 * np.array([entry["mean"][metric] for entry in by_world.values()])
        axis.plot(np.full(len(values), position) + np.linspace(-0.1, 0.1, len(values)), values, "o", ms=4,
                  alpha=0.7, color=model_color(name))
        axis.plot([position - 0.25, position + 0.25], [values.mean()] * 2, color="k", lw=2)
    rotate = len(names) > 4
    axis.set_xticks(range(len(names)), [_label(table, name) for name in names], rotation=25 if rotate else 0,
                    ha="right" if rotate else "center", fontsize=9)
    axis.set_xlabel("model (one dot per world, bar: mean)")
    axis.set_ylabel(f"{metric} mAP (%)")
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
    axis.legend(fontsize=9)
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
    axis.set_xticks(range(len(groups)), list(groups), fontsize=9)
    axis.set_xlabel("group (one dot per seed, bar: mean)")
    axis.set_ylabel(ylabel)
    axis.set_title(title, fontsize=9)


def sweep_curve(table: dict, values: dict, default: str, axis, *, title: str, xlabel: str) -> None:
    """One hyper-parameter sweep (the paper's Fig. 6): for each swept value (``values``: ``{variant: value}``), its
    mAP minus the paper's value's (``default``, a variant of ``values``) in points, world by world (faint dots) and
    as the mean over worlds with the table's simultaneous 95 % interval; the paper's value sits at 0 by definition
    (star; the caption says so). Every other variant must have a test ``"<variant> vs <default>, h=<h>"`` in
    ``table["tests"]``."""
    order = sorted(values, key=values.get)
    positions = np.arange(len(order))
    for position, name in zip(positions, order):
        if name == default:
            axis.plot(position, 0.0, "*", ms=12, color="tab:red", zorder=3)
            continue
        test = next(test for test in table["tests"].values()
                    if test["candidate"] == name and test["baseline"] == default)
        dots = 100 * np.asarray(test["world_differences"])
        axis.plot(np.full(len(dots), position) + np.linspace(-0.12, 0.12, len(dots)), dots, "o", ms=3, alpha=0.5,
                  color="tab:gray")
        axis.errorbar(position, 100 * test["mean"], yerr=[[100 * (test["mean"] - test["low_adjusted"])],
                                                         [100 * (test["high_adjusted"] - test["mean"])]],
                      fmt="D", color="tab:blue", capsize=3)
    axis.axhline(0, color="k", lw=0.8)
    axis.set_xticks(positions, [f"{values[name]:.3g}" for name in order], fontsize=9)
    axis.set_xlabel(xlabel)
    axis.set_ylabel("mAP difference (points)")
    axis.set_title(title, fontsize=9)
