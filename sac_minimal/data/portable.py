"""Arithmetic that gives the same bits on every machine: what the synthetic surrogate is computed with.

A surrogate world must be one dataset everywhere, or a recorded run cannot be re-made exactly anywhere but on the
machine that made it. Three of numpy's operations do not give the same bits everywhere:

* a matrix product (``@``) goes to the BLAS library, whose kernel (chosen per CPU, by ``OPENBLAS_CORETYPE`` and by
  the thread count) sums the terms in its own order, with or without fused multiply-adds;
* ``np.exp``, ``np.log`` and ``np.power`` have vector implementations per instruction set (AVX2, AVX512, ...) that
  round differently in the last bit (``NPY_DISABLE_CPU_FEATURES`` switches between them);
* the C library's ``exp`` and ``log`` pick a variant per CPU too.

The functions here use only operations that IEEE 754 rounds exactly the same way on every machine (elementwise
``+ - * /``, ``sqrt``, ``frexp``, ``ldexp``, ``rint``), in a fixed order. They are accurate to a few units in the last
place, which is all a generator needs; what matters is that they are the same everywhere
(``tests/test_data.py`` regenerates worlds under several BLAS kernels, thread counts and instruction sets).
"""

from __future__ import annotations

import math

import numpy as np

LN2 = 0.6931471805599453
"""ln 2 rounded to float64."""
LN2_HI = 6.93147180369123816490e-01
"""ln 2 rounded to 32 significant bits: ``k * LN2_HI`` is exact for every ``|k| < 2**20``."""
LN2_LO = 1.90821492927058770002e-10
"""ln 2 - LN2_HI."""
EXP_TERMS = tuple(1.0 / math.factorial(n) for n in range(18))
"""Taylor coefficients 1 / n! of exp on ``|r| <= ln(2) / 2``: the 18th term is below 1e-20 there."""
LOG_TERMS = tuple(1.0 / (2 * n + 1) for n in range(14))
"""Coefficients of ``log(m) = 2 s sum_n s^(2n) / (2n + 1)`` with ``s = (m - 1) / (m + 1)``, ``|s| <= 0.172``."""


def weighted_sum(weights: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``[T, n] x [n, D] -> [T, D]`` float32: ``sum_i weights[:, i] vectors[i]``, what ``weights @ vectors`` means.

    Each product is exact in float64 (two float32 factors), the terms are added in index order in float64 and the
    sum is rounded once to float32. Only the rows where a weight is non-zero are touched (the surrogate's weights
    are envelopes, zero away from their instance).

    >>> weights = np.array([[1.0, 0.0], [0.5, 2.0]], dtype=np.float32)
    >>> weighted_sum(weights, np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)).tolist()
    [[1.0, 2.0], [6.5, 9.0]]
    """
    total = np.zeros((weights.shape[0], vectors.shape[1]), dtype=np.float64)
    for index in range(weights.shape[1]):
        rows = np.flatnonzero(weights[:, index])
        total[rows] += weights[rows, index, None].astype(np.float64) * vectors[index].astype(np.float64)
    return total.astype(np.float32)


def exp(values) -> np.ndarray:
    """``e ** values`` (float64, within 2 units in the last place for ``|values| < 700``).

    ``x = k ln 2 + r`` with ``k = rint(x / ln 2)`` and ``|r| <= ln(2) / 2`` (``ln 2`` in two parts, so that ``r`` is
    exact to about 2**-80), then ``e**r`` by its Taylor series in Horner form and ``e**x = 2**k e**r``.

    >>> bool(abs(float(exp(1.0)) - math.e) <= 2 * np.spacing(math.e))
    True
    """
    values = np.asarray(values, dtype=np.float64)
    k = np.rint(values / LN2)
    reduced = (values - k * LN2_HI) - k * LN2_LO
    series = np.full_like(reduced, EXP_TERMS[-1])
    for coefficient in EXP_TERMS[-2::-1]:
        series = series * reduced + coefficient
    return np.ldexp(series, k.astype(np.int64))


def log(values) -> np.ndarray:
    """Natural logarithm of ``values > 0`` (float64, within 2 units in the last place).

    ``x = m 2**e`` with ``m`` in ``[sqrt(1/2), sqrt(2))`` (``frexp``, exact), ``log x = e ln 2 + log m`` and
    ``log m = 2 atanh(s) = 2 s (1 + s^2/3 + s^4/5 + ...)`` with ``s = (m - 1) / (m + 1)``.

    >>> float(log(math.e)) == 1.0, float(log(8.0)) == 3 * math.log(2.0)
    (True, True)
    """
    values = np.asarray(values, dtype=np.float64)
    if np.any(~(values > 0)):
        raise ValueError("log: every value must be > 0")
    mantissa, exponent = np.frexp(values)
    small = mantissa < math.sqrt(0.5)
    mantissa = np.where(small, 2.0 * mantissa, mantissa)
    exponent = (exponent - small).astype(np.float64)
    s = (mantissa - 1.0) / (mantissa + 1.0)
    square = s * s
    series = np.full_like(s, LOG_TERMS[-1])
    for coefficient in LOG_TERMS[-2::-1]:
        series = series * square + coefficient
    return exponent * LN2_HI + (exponent * LN2_LO + 2.0 * s * series)


def power(values, exponent: float) -> np.ndarray:
    """``values ** exponent`` for ``values > 0`` (float64): exactly 1 for an exponent of 0, exactly ``values`` for 1,
    else ``exp(exponent log(values))`` (within
    about 8 units in the last place for exponents near 1).

    >>> power(np.array([0.25, 4.0]), 0.5).tolist()
    [0.5, 2.0]
    """
    values = np.asarray(values, dtype=np.float64)
    if exponent == 0:
        return np.ones_like(values)
    if exponent == 1:
        return values.copy()
    return exp(float(exponent) * log(values))
