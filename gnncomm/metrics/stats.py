r"""Statistics shared by the metrics: one permutation test, multiple-testing corrections, ranks.

Every p-value in gnncomm comes from :func:`p_value`, the one-sided permutation p-value

.. math::
    p = \frac{1 + \#\{k : t_k^{\mathrm{null}} \geq t^{\mathrm{obs}}\}}{1 + K}

with ``K`` null draws. It is never ``0``: its smallest reachable value is ``1 / (K + 1)``. A null
value counts as exceeding the observed one when it is within :data:`TIE_TOLERANCE` (relative, at
least absolute) below it: the same counts summed in a different order differ in the last float
bits, and such ties must count as ``null >= observed``.

The building blocks:

* :func:`permutation_test` runs ``statistic(draw())`` ``K`` times and summarises the null as a
  :class:`PermutationResult`; :meth:`PermutationResult.from_null` does the same for a null that
  the caller drew (e.g. one null shared by several statistics);
* :func:`stratified_permutations` draws permutations that only move elements within strata;
* :func:`holm` and :func:`adjust_p_values` correct a family of p-values; :func:`min_permutations`
  is the smallest ``K`` for which a corrected test can reach a level at all;
* :func:`rankdata`, :func:`spearman`, :func:`quantile_bins` and :func:`sample_pairs`.

The functions are pure; randomness goes only through an explicit ``seed`` (an ``int``, a
:class:`numpy.random.Generator` or a :class:`torch.Generator`). The input checks at the bottom of
this file are shared by the other metrics modules.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

__all__ = [
    "TIE_TOLERANCE",
    "PermutationResult",
    "adjust_p_values",
    "holm",
    "min_permutations",
    "p_value",
    "permutation_test",
    "quantile_bins",
    "rankdata",
    "sample_pairs",
    "spearman",
    "stratified_permutations",
]

ArrayLike = Any  # np.ndarray | torch.Tensor | nested sequences
SeedLike = Any  # int | np.random.Generator | torch.Generator
Correction = Literal["holm", "bonferroni", "none"]

TIE_TOLERANCE = 1e-12
"""A null value ``t`` counts as ``>= observed`` when ``t >= observed - TIE_TOLERANCE * max(1, |observed|)``."""


# ---------------------------------------------------------------------------
# The permutation test
# ---------------------------------------------------------------------------
def p_value(observed: ArrayLike, null: ArrayLike) -> float | np.ndarray:
    r"""One-sided permutation p-value, :math:`(1 + \#\{\mathrm{null} \geq \mathrm{observed}\}) / (1 + K)`.

    Args:
        observed: the observed statistic, a float or an array of shape ``S`` (several statistics
            tested at once, e.g. one per agent).
        null: the statistic under the null, ``[K]`` for a float ``observed`` or ``[K, *S]``.

    Returns:
        float, or ``np.ndarray`` of shape ``S``: in ``[1 / (K + 1), 1]``, never ``0``.

    Example:
        >>> p_value(3.0, [1.0, 2.0, 3.0, 4.0])  # 3.0 (a tie) and 4.0 exceed
        0.6
        >>> p_value(10.0, [1.0, 2.0, 3.0, 4.0])
        0.2
        >>> p_value([1.0, 5.0], [[0.0, 5.0], [2.0, 0.0]])
        array([0.66666667, 0.66666667])
    """
    obs = _as_float_array(observed, "observed")
    nul = _as_float_array(null, "null")
    if nul.ndim != obs.ndim + 1 or nul.shape[1:] != obs.shape or nul.shape[0] < 1:
        raise ValueError(
            f"null must have shape [K >= 1, *observed.shape] = [K, {', '.join(map(str, obs.shape))}], "
            f"got shape {tuple(nul.shape)}"
        )
    threshold = obs - TIE_TOLERANCE * np.maximum(1.0, np.abs(obs))
    p = (1.0 + (nul >= threshold).sum(axis=0)) / (1.0 + nul.shape[0])
    return float(p) if obs.ndim == 0 else p


@dataclass(frozen=True)
class PermutationResult:
    """An observed statistic against its permutation null."""

    value: float
    """The observed statistic."""
    null_mean: float
    """Mean of the statistic over the ``K`` null draws."""
    null_std: float
    """Standard deviation of the null statistic."""
    z: float
    """``(value - null_mean) / null_std``; ``0.0`` when ``null_std == 0``."""
    p_value: float
    """One-sided :func:`p_value`, in ``[1 / (K + 1), 1]``."""

    @classmethod
    def from_null(cls, observed: float, null: ArrayLike) -> PermutationResult:
        """Summarises ``K`` null values ``[K]`` drawn by the caller.

        Example:
            >>> PermutationResult.from_null(2.0, [0.0, 1.0, 2.0, 1.0])
            PermutationResult(value=2.0, null_mean=1.0, null_std=0.7071067811865476, z=1.414213562373095, p_value=0.4)
        """
        nul = _as_float_array(null, "null")
        if nul.ndim != 1 or nul.size < 1:
            raise ValueError(f"null must have shape [K >= 1], got shape {tuple(nul.shape)}")
        value = float(_as_float_array(observed, "observed"))
        mean, std = float(nul.mean()), float(nul.std())
        return cls(
            value=value,
            null_mean=mean,
            null_std=std,
            z=(value - mean) / std if std > 0.0 else 0.0,
            p_value=p_value(value, nul),
        )


def permutation_test(
    statistic: Callable[[np.ndarray], float],
    draw: Callable[[], np.ndarray],
    num_permutations: int,
    *,
    identity: np.ndarray,
) -> PermutationResult:
    r"""``statistic(identity)`` against ``num_permutations`` values of ``statistic(draw())``.

    Args:
        statistic: maps an index array (e.g. a permutation of the samples) to a float.
        draw: draws one index array of the null, e.g. ``lambda: rng.permutation(n)`` or
            :func:`stratified_permutations`.
        num_permutations (int): the size ``K >= 1`` of the null.
        identity: the index array of the observed data, usually ``np.arange(n)``.

    Returns:
        PermutationResult: with the one-sided :func:`p_value`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = np.arange(20.0)
        >>> r = permutation_test(lambda i: spearman(x, x[i]), lambda: rng.permutation(20), 99,
        ...                      identity=np.arange(20))
        >>> r.value, r.p_value
        (1.0, 0.01)
    """
    K = _check_positive_int(num_permutations, "num_permutations")
    observed = float(statistic(identity))
    null = np.array([statistic(draw()) for _ in range(K)], dtype=np.float64)
    return PermutationResult.from_null(observed, null)


def stratified_permutations(strata: ArrayLike, seed: SeedLike = 0) -> Callable[[], np.ndarray]:
    r"""A function that draws index permutations moving elements only among those of the same stratum.

    ``x[draw()]`` keeps every element in its stratum (``strata[draw()] == strata``), so a null built on
    it keeps every per-stratum habit and destroys only the pairing within strata.

    Args:
        strata: integer stratum label of each element, ``[n]``.
        seed (int, np.random.Generator or torch.Generator, optional): source of the permutations;
            a Generator is used as is (and advanced by every draw). (default: ``0``)

    Returns:
        Callable[[], np.ndarray]: each call returns a new permutation ``[n]`` of ``0..n-1``.

    Example:
        >>> draw = stratified_permutations([0, 0, 1, 1, 1], seed=0)
        >>> index = draw()
        >>> sorted(index[:2].tolist()), sorted(index[2:].tolist())
        ([0, 1], [2, 3, 4])
    """
    s = _as_int_array(strata, "strata")
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"strata must have shape [n >= 1], got shape {tuple(s.shape)}")
    rng = _rng(seed)
    order = np.argsort(s, kind="stable")
    grouped = s[order]
    sizes = np.unique(grouped, return_counts=True)[1]
    if np.all(sizes == sizes[0]):  # equal strata: one row per stratum, shuffled row-wise (fast path)
        rows = order.reshape(sizes.size, sizes[0])

        def draw() -> np.ndarray:
            index = np.empty_like(order)
            index[order] = rng.permuted(rows, axis=1).reshape(-1)
            return index

        return draw

    def draw_unequal() -> np.ndarray:
        index = np.empty_like(order)
        index[order] = order[np.argsort(grouped + rng.random(order.size), kind="stable")]  # random within stratum
        return index

    return draw_unequal


# ---------------------------------------------------------------------------
# Multiple testing
# ---------------------------------------------------------------------------
def holm(p: ArrayLike) -> np.ndarray:
    r"""Holm's step-down adjusted p-values, in the input order.

    The ``i``-th smallest of ``m`` p-values is multiplied by ``m - i + 1`` (``i = 1..m``), made
    non-decreasing and clipped at ``1``; rejecting every adjusted ``p <= alpha`` keeps the chance of
    any false rejection ``<= alpha``, and never rejects less than Bonferroni.

    Example:
        >>> holm([0.01, 0.04, 0.03])
        array([0.03, 0.06, 0.06])
    """
    q = _probabilities(p, "p")
    m = q.size
    order = np.argsort(q, kind="mergesort")
    adjusted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * q[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def adjust_p_values(p: ArrayLike, correction: Correction = "holm") -> np.ndarray:
    """``p`` corrected for testing them all: ``"holm"`` (:func:`holm`), ``"bonferroni"`` or ``"none"``.

    Example:
        >>> adjust_p_values([0.01, 0.04, 0.03], "bonferroni")
        array([0.03, 0.12, 0.09])
    """
    if correction not in ("holm", "bonferroni", "none"):
        raise ValueError(f"correction must be 'holm', 'bonferroni' or 'none', got {correction!r}")
    q = _probabilities(p, "p")
    if correction == "holm":
        return holm(q)
    if correction == "bonferroni":
        return np.minimum(1.0, q * q.size)
    return q


def min_permutations(num_tests: int, alpha: float) -> int:
    r"""Smallest ``K`` with which ``num_tests`` Holm- or Bonferroni-corrected permutation tests can
    reach ``alpha``: the smallest corrected p-value is ``num_tests / (K + 1)``.

    Example:
        >>> min_permutations(10, 0.05)
        199
        >>> min_permutations(1, 0.05)
        19
    """
    m = _check_positive_int(num_tests, "num_tests")
    a = _check_probability(alpha, "alpha", open_low=True, open_high=True)
    K = max(math.ceil(m / a) - 1, 1)
    while m / (K + 1) > a:  # the float quotient may round either way
        K += 1
    while K > 1 and m / K <= a:
        K -= 1
    return K


# ---------------------------------------------------------------------------
# Ranks, correlation, bins and pairs
# ---------------------------------------------------------------------------
def rankdata(x: ArrayLike) -> np.ndarray:
    """Ranks starting at ``1``; ties get the average of the ranks they span (``scipy.stats.rankdata``).

    Example:
        >>> rankdata([10, 20, 20, 5])
        array([2. , 3.5, 3.5, 1. ])
    """
    a = _as_float_array(x, "x")
    if a.ndim != 1:
        raise ValueError(f"x must be 1-D, got shape {tuple(a.shape)}")
    sorter = np.argsort(a, kind="mergesort")
    inv = np.empty_like(sorter)
    inv[sorter] = np.arange(sorter.size)
    a_sorted = a[sorter]
    first = np.concatenate(([True], a_sorted[1:] != a_sorted[:-1]))
    dense = np.cumsum(first)[inv]  # 1-based id of each value's tie group
    bounds = np.concatenate((np.nonzero(first)[0], [a.size]))
    # A tie group spanning sorted slots [lo, hi) has average rank (lo + 1 + hi) / 2.
    return 0.5 * (bounds[dense] + bounds[dense - 1] + 1)


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    r"""Spearman rank correlation with average ranks for ties.

    It is the Pearson correlation of the (tie-averaged) ranks, identical to
    ``scipy.stats.spearmanr``, except that it returns ``0.0`` instead of NaN
    when either input is constant (no rank variation means no monotone
    association can be measured).

    Args:
        x: real vector ``[N]``.
        y: real vector ``[N]``, paired with ``x``.

    Returns:
        float: in ``[-1, 1]``.

    Example:
        >>> spearman([1, 2, 3, 4], [10, 20, 30, 400])
        1.0
        >>> spearman([1, 2, 3], [3, 2, 1])
        -1.0
        >>> spearman([1, 2, 3], [5, 5, 5])
        0.0
    """
    a = _as_float_array(x, "x")
    b = _as_float_array(y, "y")
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"x and y must be 1-D, got shapes {a.shape} and {b.shape}")
    if a.size != b.size:
        raise ValueError(f"y must have the same length as x, got {a.size} and {b.size}")
    if a.size < 2:
        return 0.0
    ra = rankdata(a)
    rb = rankdata(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = math.sqrt(float(ra @ ra) * float(rb @ rb))
    if den == 0.0:
        return 0.0
    return float(np.clip(float(ra @ rb) / den, -1.0, 1.0))


def quantile_bins(x: ArrayLike, num_bins: int) -> np.ndarray:
    """Each column of ``x [S, F]`` cut at its own quantiles into ``num_bins`` integer bins ``0..num_bins-1``.

    Turns a real factor into a discrete attribute (for mutual information, posdis, bosdis) with
    about ``S / num_bins`` samples per bin.

    Example:
        >>> quantile_bins([[0.1], [0.4], [0.2], [0.9]], 2)[:, 0]
        array([0, 1, 0, 1])
    """
    a = _as_float_array(x, "x")
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"x must have shape [S >= 1, F], got shape {tuple(a.shape)}")
    k = _check_positive_int(num_bins, "num_bins")
    edges = np.quantile(a, np.linspace(0, 1, k + 1)[1:-1], axis=0)  # [num_bins - 1, F]
    return np.stack([np.searchsorted(edges[:, f], a[:, f], side="right") for f in range(a.shape[1])], axis=1)


def sample_pairs(n: int, max_pairs: int, seed: SeedLike = 0) -> tuple[np.ndarray, np.ndarray]:
    r"""All ``i < j`` pairs of ``n`` items in row-major order, or ``max_pairs`` distinct ones drawn uniformly.

    Args:
        n (int): number of items, ``>= 0``.
        max_pairs (int): the most pairs to return, ``>= 1``.
        seed (int, np.random.Generator or torch.Generator, optional): source of the sub-sampling,
            used only when :math:`n(n-1)/2 > \text{max\_pairs}`. (default: ``0``)

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(i, j)``, ``int64`` arrays with ``i < j``, sorted by
        condensed index.

    Example:
        >>> i, j = sample_pairs(3, 10)
        >>> list(zip(i.tolist(), j.tolist()))
        [(0, 1), (0, 2), (1, 2)]
    """
    n = _check_positive_int(n, "n", minimum=0)
    max_pairs = _check_positive_int(max_pairs, "max_pairs")
    total = n * (n - 1) // 2
    if total <= max_pairs:
        i, j = np.triu_indices(n, k=1)
        return i.astype(np.int64), j.astype(np.int64)
    k = np.sort(_rng(seed).choice(total, size=max_pairs, replace=False)).astype(np.int64)
    # Invert the condensed (row-major upper-triangle) index k -> (i, j).
    # Row i starts at c(i) = i*n - i*(i+1)/2; the float guess is fixed up exactly.
    b = 2 * n - 1
    i = np.floor((b - np.sqrt(np.maximum(b * b - 8.0 * k, 0.0))) / 2).astype(np.int64)
    i = np.clip(i, 0, n - 2)

    def start(r: np.ndarray) -> np.ndarray:
        return r * n - r * (r + 1) // 2

    for _ in range(2):
        i = np.where(start(i) > k, i - 1, i)
        i = np.where(start(i + 1) <= k, i + 1, i)
    j = k - start(i) + i + 1
    return i, j


# ---------------------------------------------------------------------------
# Input checks shared by the metrics modules (errors name the parameter and its range)
# ---------------------------------------------------------------------------
def _to_numpy(x: ArrayLike) -> np.ndarray:
    """Convert a tensor, array or nested sequence to a numpy array (no copy if possible)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _as_int_array(x: ArrayLike, name: str) -> np.ndarray:
    """Convert ``x`` to an ``int64`` array; float input must hold whole numbers."""
    a = _to_numpy(x)
    if a.dtype.kind == "b":
        return a.astype(np.int64)
    if a.dtype.kind in "iu":
        return a.astype(np.int64, copy=False)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise ValueError(f"{name} must hold integer symbol ids, got non-integer values")
        return a.astype(np.int64)
    raise ValueError(f"{name} must be an integer array, got dtype {a.dtype}")


def _as_float_array(x: ArrayLike, name: str) -> np.ndarray:
    """Convert ``x`` to a finite ``float64`` array."""
    a = _to_numpy(x)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return a


def _probabilities(p: ArrayLike, name: str) -> np.ndarray:
    q = _as_float_array(p, name)
    if q.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(q.shape)}")
    if q.size and (float(q.min()) < 0.0 or float(q.max()) > 1.0):
        raise ValueError(f"{name} must hold probabilities in [0, 1], got range [{q.min()}, {q.max()}]")
    return q


def _rng(seed: SeedLike) -> np.random.Generator:
    """Turn an int, numpy Generator or torch Generator into a numpy Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, torch.Generator):
        # Draw one 63-bit seed from the torch stream so it advances deterministically.
        s = int(torch.randint(0, 2**62, (1,), generator=seed, dtype=torch.int64)[0])
        return np.random.default_rng(s)
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return np.random.default_rng(int(seed))
    raise ValueError(f"seed must be a non-negative int, a numpy Generator or a torch.Generator, got {seed!r}")


def _check_positive_int(value: int, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_probability(value: float, name: str, *, open_low: bool, open_high: bool) -> float:
    v = float(value)
    lo_ok = v > 0.0 if open_low else v >= 0.0
    hi_ok = v < 1.0 if open_high else v <= 1.0
    if not (math.isfinite(v) and lo_ok and hi_ok):
        lo = "(0" if open_low else "[0"
        hi = "1)" if open_high else "1]"
        raise ValueError(f"{name} must be in {lo}, {hi}, got {value!r}")
    return v
