"""The statistics of the book's tables: t-tests, intervals, Holm's adjustment, Spearman's rank correlation.

Conclusions are tested across *worlds* (independent surrogate datasets, :mod:`sac_minimal.lab.hypotheses`): the seeds of
a model in one world are averaged, and the per-world differences d_w = candidate_w - baseline_w are tested with a
one-sample t-test, t = mean(d) / (sd(d) / sqrt(n)) with n - 1 degrees of freedom, which is the paired t-test across
worlds. Its 95 % interval is mean(d) +- t_{0.975, n-1} sd(d) / sqrt(n).

A table tests several comparisons at once, so its p-values are adjusted with **Holm's step-down method**: sort the m
raw p-values p_(1) <= ... <= p_(m); the adjusted p_(i) is max_{j <= i} min(1, (m - j + 1) p_(j)). It controls the
family-wise error rate (the chance of any false positive in the table) at the level used, for any dependence
between the tests. Words such as "significant" are written from the adjusted value (:func:`significance_word`).

The paper's Eqs. (9)-(10) are Student's two-sample test with pooled variance (:func:`student_t_test`); matched
seeds call for the paired test (:func:`paired_t_test`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

SIGNIFICANCE, POWER, LEVEL = 0.05, 0.8, 0.95


def _two_sided_p(statistic: float, dof: int) -> float:
    return float(2 * stats.t.sf(abs(statistic), dof))


def _statistic(difference: float, standard_error: float) -> float:
    if standard_error == 0:
        return 0.0 if difference == 0 else math.copysign(math.inf, difference)
    return difference / standard_error


def student_t_test(first: Sequence[float], second: Sequence[float]) -> dict:
    """Two-sample Student's t-test with pooled variance (Eqs. 9-10): ``{"t", "dof", "p", "pooled_std"}``::

        s_p^2 = ((n_1 - 1) s_1^2 + (n_2 - 1) s_2^2) / (n_1 + n_2 - 2),   t = (m_1 - m_2) / (s_p sqrt(1/n_1 + 1/n_2))
    """
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    n1, n2 = len(first), len(second)
    if n1 < 2 or n2 < 2:
        raise ValueError(f"a t-test needs at least two runs per group, got {n1} and {n2}")
    dof = n1 + n2 - 2
    pooled_std = math.sqrt(((n1 - 1) * first.var(ddof=1) + (n2 - 1) * second.var(ddof=1)) / dof)
    statistic = _statistic(first.mean() - second.mean(), pooled_std * math.sqrt(1 / n1 + 1 / n2))
    return {"t": float(statistic), "dof": dof, "p": _two_sided_p(statistic, dof), "pooled_std": pooled_std}


def paired_t_test(candidate: Sequence[float], baseline: Sequence[float]) -> dict:
    """Paired t-test: ``{"t", "dof", "p", "std_difference"}`` of the differences candidate_k - baseline_k (equal to
    ``scipy.stats.ttest_rel(candidate, baseline)``)."""
    differences = np.asarray(candidate, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    if len(differences) < 2:
        raise ValueError(f"a paired t-test needs at least two matched pairs, got {len(differences)}")
    dof = len(differences) - 1
    std_difference = float(differences.std(ddof=1))
    statistic = _statistic(differences.mean(), std_difference / math.sqrt(len(differences)))
    return {"t": float(statistic), "dof": dof, "p": _two_sided_p(statistic, dof), "std_difference": std_difference}


def minimum_detectable_difference(standard_error: float, dof: int, significance: float = SIGNIFICANCE,
                                  power: float = POWER) -> float:
    """The smallest true difference a two-sided t-test detects with the given power:
    (t_{1 - significance / 2, dof} + t_{power, dof}) x standard error."""
    return float((stats.t.ppf(1 - significance / 2, dof) + stats.t.ppf(power, dof)) * standard_error)


def mean_with_interval(values: Sequence[float], level: float = LEVEL) -> dict:
    """The mean of ``values`` (per-world differences), its two-sided t interval and the one-sample t-test against 0:
    ``{"n", "mean", "low", "high", "t", "dof", "p", "mdd", "testable"}`` (``mdd``:
    :func:`minimum_detectable_difference`). Differences without any spread (all equal) are *not testable*: no
    interval and ``p`` NaN, never p = 0. Independent worlds never give identical differences; identical ones mean
    that the same data was counted several times.

    >>> result = mean_with_interval([1.0, 2.0, 3.0])
    >>> result["mean"], round(result["low"], 3), round(result["high"], 3), round(result["p"], 4)
    (2.0, -0.484, 4.484, 0.0742)
    """
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2 or not np.isfinite(values).all():
        raise ValueError(f"an interval needs at least two finite values, got {values.tolist()}")
    dof = len(values) - 1
    standard_error = float(values.std(ddof=1) / math.sqrt(len(values)))
    if standard_error == 0:  # n identical differences: the same data counted n times, or a cell copied
        mean = float(values.mean())
        return {"n": len(values), "mean": mean, "low": mean, "high": mean, "t": math.nan, "dof": dof, "p": math.nan,
                "mdd": math.nan, "testable": False}
    half_width = float(stats.t.ppf(0.5 + level / 2, dof) * standard_error)
    statistic = _statistic(float(values.mean()), standard_error)
    return {"n": len(values), "mean": float(values.mean()), "low": float(values.mean() - half_width),
            "high": float(values.mean() + half_width), "t": statistic, "dof": dof,
            "p": _two_sided_p(statistic, dof), "mdd": minimum_detectable_difference(standard_error, dof),
            "testable": True}


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of ``p_values`` (module docstring), in their order. A NaN (a test that could not
    be made) stays NaN and is not counted in the family.

    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    p_values = np.asarray(p_values, dtype=np.float64)
    testable = ~np.isnan(p_values)
    if not ((p_values[testable] >= 0) & (p_values[testable] <= 1)).all():
        raise ValueError(f"p-values must lie in [0, 1], got {p_values.tolist()}")
    tested = p_values[testable]
    order = np.argsort(tested, kind="stable")
    count = len(tested)
    adjusted = np.minimum(1.0, np.maximum.accumulate((count - np.arange(count)) * tested[order]))
    result = np.full(len(p_values), np.nan)
    within = np.empty(count)
    within[order] = adjusted
    result[testable] = within
    return [float(value) for value in result]


def simultaneous_interval(values: Sequence[float], family: int, level: float = LEVEL) -> tuple[float, float]:
    """The Bonferroni interval of the mean of ``values`` for a table of ``family`` tests: the t interval at level
    ``1 - (1 - level) / family``, so that all ``family`` intervals of a table cover their true differences together
    with probability ``level`` or more. An interval that excludes 0 implies that Holm's adjusted p-value is below
    ``1 - level`` (Holm rejects whatever Bonferroni rejects); Holm can reject where this interval still touches 0.
    ``(nan, nan)`` for differences without spread (:func:`mean_with_interval`).

    >>> low, high = simultaneous_interval([1.0, 2.0, 3.0], family=1)
    >>> round(low, 3), round(high, 3)
    (-0.484, 4.484)
    """
    values = np.asarray(values, dtype=np.float64)
    if family < 1 or len(values) < 2:
        raise ValueError(f"a simultaneous interval needs a family of at least one test and two values, got "
                         f"family {family} and {len(values)} values")
    standard_error = float(values.std(ddof=1) / math.sqrt(len(values)))
    if standard_error == 0:
        return math.nan, math.nan
    half_width = float(stats.t.ppf(1 - (1 - level) / (2 * family), len(values) - 1) * standard_error)
    return float(values.mean() - half_width), float(values.mean() + half_width)


def slope(x: Sequence[float], y: Sequence[float]) -> float:
    """The least-squares slope of ``y`` on ``x``."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    centred = x - x.mean()
    return float((centred * (y - y.mean())).sum() / (centred ** 2).sum())


def spearman(first: Sequence[float], second: Sequence[float]) -> dict:
    """Spearman's rank correlation and its two-sided p-value: ``{"rho", "p", "n"}``."""
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if len(first) != len(second) or len(first) < 3:
        raise ValueError(f"Spearman's rho needs two equally long series of at least 3 values, got "
                         f"{len(first)} and {len(second)}")
    result = stats.spearmanr(first, second)
    return {"rho": float(result.statistic), "p": float(result.pvalue), "n": len(first)}


def significance_word(p_adjusted: float, significance: float = SIGNIFICANCE) -> str:
    """``"significant"`` when the Holm-adjusted p-value is below the level, ``"not testable"`` when it is NaN (see
    :func:`mean_with_interval`), else ``"not significant"``."""
    if math.isnan(p_adjusted):
        return "not testable"
    return "significant" if p_adjusted < significance else "not significant"


def format_p(p: float) -> str:
    """``0.012``, ``< 0.001``, or ``n/a`` for a test that could not be made (NaN)."""
    if math.isnan(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def share_recovered(candidate: Sequence[float], control: Sequence[float], level: float = LEVEL,
                    resamples: int = 20000, seed: int = 0) -> dict:
    """How much of a positive control's gain a model recovers: ``share = mean(candidate) / mean(control)``, with
    ``candidate`` and ``control`` the per-world gains over the same baseline (matched worlds), and a percentile
    bootstrap interval that resamples worlds (both gains of a world together; a fixed ``seed``, so the interval is
    reproducible). ``{"share", "low", "high", "n"}``; share and interval are NaN when the control's gain is not
    shown to be positive (its interval over worlds, :func:`mean_with_interval`, reaches 0): a share of a gain that
    may be nothing would be arbitrarily large, not a measurement.

    >>> result = share_recovered([1.0, 2.0, 3.0], [3.0, 4.0, 5.0])
    >>> result["share"], result["n"]
    (0.5, 3)
    >>> math.isnan(share_recovered([0.01, 0.02], [1e-7, 1e-7])["share"])
    True
    """
    candidate, control = np.asarray(candidate, dtype=np.float64), np.asarray(control, dtype=np.float64)
    if len(candidate) != len(control) or len(candidate) < 2:
        raise ValueError(f"a share needs matched gains in at least two worlds, got {len(candidate)} and "
                         f"{len(control)}")
    gained = mean_with_interval(control, level)
    if not gained["testable"] or not gained["low"] > 0:
        return {"share": math.nan, "low": math.nan, "high": math.nan, "n": len(candidate)}
    rows = np.random.default_rng(seed).integers(0, len(candidate), (resamples, len(candidate)))
    denominators = control[rows].mean(axis=1)
    shares = candidate[rows].mean(axis=1)[denominators > 0] / denominators[denominators > 0]
    low, high = np.quantile(shares, [(1 - level) / 2, (1 + level) / 2])
    return {"share": float(candidate.mean() / control.mean()), "low": float(low), "high": float(high),
            "n": len(candidate)}
