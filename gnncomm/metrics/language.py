r"""Metrics of an emergent discrete language: information, vocabulary, compositionality, temporal structure.

Every function here is pure: it takes numpy arrays, torch tensors or nested lists, returns Python
floats, numpy arrays or small frozen dataclasses, and never touches global state. Randomness (pair
sub-sampling, permutation nulls) goes only through an explicit ``seed`` (an ``int``, a
:class:`numpy.random.Generator` or a :class:`torch.Generator`), so two calls with the same seed give
identical numbers.

Conventions:

* A message is ``M`` symbol ids in ``[0, V)``; symbol ``0`` is silence. Message batches have shape
  ``[..., M]``.
* Information quantities are in **bits** and use plug-in (maximum likelihood) estimates with
  :math:`0 \log 0 = 0`; nothing returns NaN. Degenerate inputs (constant languages, constant
  distance vectors) give documented finite values, usually ``0.0``.
* Every permutation null is tested with :func:`gnncomm.metrics.stats.p_value`, the one p-value of
  the package. The mutual-information nulls code the symbols once and then only permute the codes
  (:func:`mutual_information_statistic`), which makes a null of 100k pairs cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gnncomm.metrics.stats import (
    PermutationResult,
    _as_float_array,
    _as_int_array,
    _check_positive_int,
    _rng,
    _to_numpy,
    permutation_test,
    sample_pairs,
    spearman,
    stratified_permutations,
)

__all__ = [
    "TemporalResult",
    "across_time_dependence",
    "bosdis",
    "edit_distance",
    "entropy_bits",
    "mutual_information",
    "mutual_information_statistic",
    "mutual_information_test",
    "posdis",
    "symbol_entropy",
    "symbol_transition_matrix",
    "temporal_dependence",
    "topographic_similarity",
    "vocab_usage",
    "within_message_dependence",
]

ArrayLike = Any  # np.ndarray | torch.Tensor | nested sequences
SeedLike = Any  # int | np.random.Generator | torch.Generator


# ---------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------
def _check_vocab_size(vocab_size: int) -> int:
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)):
        raise ValueError(f"vocab_size must be an int >= 2, got {vocab_size!r}")
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
    return int(vocab_size)


def _messages(
    messages: ArrayLike,
    vocab_size: int | None,
    *,
    min_ndim: int = 1,
    ndim: int | None = None,
    name: str = "messages",
) -> np.ndarray:
    """Validate a message batch: integer ids in ``[0, vocab_size)``, right ndim, non-empty."""
    m = _as_int_array(messages, name)
    if ndim is not None and m.ndim != ndim:
        raise ValueError(f"{name} must have ndim == {ndim}, got shape {tuple(m.shape)}")
    if m.ndim < min_ndim:
        raise ValueError(f"{name} must have ndim >= {min_ndim}, got shape {tuple(m.shape)}")
    if m.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(m.shape)}")
    if vocab_size is not None:
        V = _check_vocab_size(vocab_size)
        lo, hi = int(m.min()), int(m.max())
        if lo < 0 or hi >= V:
            raise ValueError(f"{name} must hold symbol ids in [0, vocab_size={V}), got range [{lo}, {hi}]")
    elif int(m.min()) < 0:
        raise ValueError(f"{name} must hold non-negative symbol ids, got min {int(m.min())}")
    return m


# ---------------------------------------------------------------------------
# Discrete information theory
# ---------------------------------------------------------------------------
def _codes(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Map ``[N]`` or ``[N, D]`` (rows are joint symbols) to ids ``[N]`` in ``[0, K)``."""
    if x.ndim == 1:
        _, inv = np.unique(x, return_inverse=True)
    else:
        _, inv = np.unique(x.reshape(x.shape[0], -1), axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    return inv, int(inv.max()) + 1 if inv.size else 0


def _entropy_from_counts(counts: np.ndarray) -> float:
    """Plug-in entropy in bits of a count vector, ``0 log 0 = 0``; never negative, never NaN."""
    counts = counts[counts > 0].astype(np.float64)
    n = counts.sum()
    if n <= 0:
        return 0.0
    p = counts / n
    h = float(-(p * np.log2(p)).sum())
    return max(h, 0.0) + 0.0  # "+ 0.0" turns -0.0 into 0.0


def _discrete(x: ArrayLike, name: str) -> np.ndarray:
    a = _to_numpy(x)
    if a.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape [N] or [N, D], got shape {tuple(a.shape)}")
    if a.shape[0] == 0:
        raise ValueError(f"{name} must not be empty")
    return _as_int_array(a, name)


def entropy_bits(x: ArrayLike, *, miller_madow: bool = False) -> float:
    r"""Plug-in Shannon entropy, in bits, of a discrete sequence.

    .. math::
        H(X) = -\sum_x \hat p(x) \log_2 \hat p(x), \qquad 0 \log 0 = 0

    Args:
        x: integer sequence ``[N]``, or ``[N, D]`` whose rows are treated as
            joint symbols (e.g. whole messages, giving the message entropy).
        miller_madow (bool, optional): add the Miller-Madow bias correction
            :math:`(K - 1) / (2 N \ln 2)` with :math:`K` the number of
            observed distinct symbols. (default: ``False``)

    Returns:
        float: the entropy in bits, ``>= 0``; ``0.0`` for a constant sequence.

    Example:
        >>> entropy_bits([0, 1, 0, 1])
        1.0
        >>> entropy_bits([3, 3, 3])
        0.0
        >>> entropy_bits([[1, 2], [1, 2], [0, 0], [5, 5]])  # rows are symbols
        1.5
    """
    a = _discrete(x, "x")
    codes, k = _codes(a)
    h = _entropy_from_counts(np.bincount(codes, minlength=k))
    if miller_madow:
        h += (k - 1) / (2.0 * a.shape[0] * math.log(2.0))
    return h


def mutual_information(x: ArrayLike, y: ArrayLike, *, miller_madow: bool = False) -> float:
    r"""Plug-in mutual information, in bits, between two paired discrete sequences.

    .. math::
        I(X; Y) = H(X) + H(Y) - H(X, Y)

    Args:
        x: integer sequence ``[N]`` (or ``[N, D]``, rows are joint symbols).
        y: integer sequence ``[N]`` (or ``[N, D]``), paired with ``x``.
        miller_madow (bool, optional): apply the Miller-Madow correction to
            each entropy, which subtracts
            :math:`(K_{xy} - K_x - K_y + 1) / (2 N \ln 2)`. The corrected value
            is clipped at ``0``. (default: ``False``)

    Returns:
        float: the mutual information in bits, in ``[0, min(H(X), H(Y))]``.

    Example:
        >>> mutual_information([0, 1, 2, 3], [0, 1, 2, 3])  # identical: I = H
        2.0
        >>> mutual_information([0, 0, 1, 1], [0, 1, 0, 1])  # independent
        0.0
    """
    a = _discrete(x, "x")
    b = _discrete(y, "y")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"y must have the same length as x, got len(x)={a.shape[0]} and len(y)={b.shape[0]}")
    cx, kx = _codes(a)
    cy, ky = _codes(b)
    return _mi_codes(cx, kx, cy, ky, miller_madow=miller_madow)


def _mi_codes(cx: np.ndarray, kx: int, cy: np.ndarray, ky: int, *, miller_madow: bool = False) -> float:
    hx = _entropy_from_counts(np.bincount(cx, minlength=kx))
    hy = _entropy_from_counts(np.bincount(cy, minlength=ky))
    joint = np.bincount(cx * ky + cy, minlength=kx * ky)
    hxy = _entropy_from_counts(joint)
    mi = hx + hy - hxy
    if miller_madow:
        kxy = int((joint > 0).sum())
        mi -= (kxy - kx - ky + 1) / (2.0 * cx.shape[0] * math.log(2.0))
    return max(mi, 0.0) + 0.0


# ---------------------------------------------------------------------------
# Vocabulary statistics
# ---------------------------------------------------------------------------
def vocab_usage(messages: ArrayLike, vocab_size: int) -> float:
    r"""Fraction of the ``V`` symbols (silence included) used at least once.

    Args:
        messages: integer symbol ids, shape ``[..., M]``, values in ``[0, V)``.
        vocab_size (int): the vocabulary size ``V >= 2``.

    Returns:
        float: in ``[1/V, 1]``; a constant language gives exactly ``1/V``.

    Example:
        >>> vocab_usage([[0, 1], [1, 2]], vocab_size=8)
        0.375
        >>> vocab_usage([[5, 5], [5, 5]], vocab_size=10)
        0.1
    """
    V = _check_vocab_size(vocab_size)
    m = _messages(messages, V)
    used = np.bincount(m.reshape(-1), minlength=V) > 0
    return float(used.sum()) / V


def symbol_entropy(messages: ArrayLike, vocab_size: int, *, per_position: bool = False) -> float | np.ndarray:
    r"""Entropy, in bits, of the symbol distribution.

    Args:
        messages: integer symbol ids, shape ``[..., M]``, values in ``[0, V)``.
        vocab_size (int): the vocabulary size ``V >= 2``.
        per_position (bool, optional): if ``True``, return one entropy per
            message position, pooling all leading dimensions. Otherwise pool
            every symbol of every message. (default: ``False``)

    Returns:
        float, or ``np.ndarray`` of shape ``[M]`` if ``per_position``; each
        value in ``[0, log2 V]``, ``0.0`` for a constant language.

    Example:
        >>> symbol_entropy([[0, 1], [0, 1]], vocab_size=4)
        1.0
        >>> symbol_entropy([[0, 1], [0, 1]], vocab_size=4, per_position=True)
        array([0., 0.])
        >>> symbol_entropy([[2, 2], [2, 2]], vocab_size=4)
        0.0
    """
    V = _check_vocab_size(vocab_size)
    m = _messages(messages, V)
    if not per_position:
        return _entropy_from_counts(np.bincount(m.reshape(-1), minlength=V))
    flat = m.reshape(-1, m.shape[-1])  # [N, M]
    return np.array([_entropy_from_counts(np.bincount(flat[:, j], minlength=V)) for j in range(flat.shape[1])])


def symbol_transition_matrix(messages: ArrayLike, vocab_size: int, *, normalize: bool = False) -> np.ndarray:
    r"""Counts of symbol ``a`` at position ``j`` followed by ``b`` at ``j + 1``.

    Args:
        messages: integer symbol ids, shape ``[..., M]`` with ``M >= 2``.
        vocab_size (int): the vocabulary size ``V >= 2``.
        normalize (bool, optional): divide each row by its sum, giving
            :math:`\hat P(s_{j+1} = b \mid s_j = a)`. Rows of symbols that never
            occur before the last position stay all zero (no NaN).
            (default: ``False``)

    Returns:
        np.ndarray: shape ``[V, V]``, ``int64`` counts or ``float64``
        probabilities; entry ``[a, b]`` is the transition ``a -> b``.

    Example:
        >>> symbol_transition_matrix([[1, 2, 1]], vocab_size=3)
        array([[0, 0, 0],
               [0, 0, 1],
               [0, 1, 0]])
        >>> symbol_transition_matrix([[1, 2], [1, 1]], vocab_size=3, normalize=True)[1]
        array([0. , 0.5, 0.5])
    """
    V = _check_vocab_size(vocab_size)
    m = _messages(messages, V)
    if m.shape[-1] < 2:
        raise ValueError(f"messages must have at least 2 positions (M >= 2), got M={m.shape[-1]}")
    src = m[..., :-1].reshape(-1)
    dst = m[..., 1:].reshape(-1)
    counts = np.bincount(src * V + dst, minlength=V * V).reshape(V, V)
    if not normalize:
        return counts.astype(np.int64)
    rows = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, rows, out=np.zeros((V, V)), where=rows > 0)


# ---------------------------------------------------------------------------
# Distances and topographic similarity
# ---------------------------------------------------------------------------
def edit_distance(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    r"""Levenshtein distance between paired messages, vectorised over pairs.

    A dynamic program over the ``M_a x M_b`` positions whose every cell is
    one numpy operation over all pairs, so the cost is
    :math:`O(M_a M_b)` vector operations (``M`` is small).

    Args:
        a: integer messages, shape ``[P, M_a]``.
        b: integer messages, shape ``[P, M_b]``.

    Returns:
        np.ndarray: ``int64`` distances, shape ``[P]``.

    Example:
        >>> edit_distance([[1, 2, 3], [1, 2, 3]], [[1, 3, 0], [1, 2, 3]])
        array([2, 0])
    """
    x = _as_int_array(a, "a")
    y = _as_int_array(b, "b")
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"a and b must be 2-D [P, M], got shapes {x.shape} and {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"b must have as many rows as a, got {x.shape[0]} and {y.shape[0]}")
    P, Ma = x.shape
    Mb = y.shape[1]
    prev = np.broadcast_to(np.arange(Mb + 1, dtype=np.int64), (P, Mb + 1)).copy()  # [P, Mb+1]
    for i in range(1, Ma + 1):
        cur = np.empty_like(prev)
        cur[:, 0] = i
        for j in range(1, Mb + 1):
            sub = prev[:, j - 1] + (x[:, i - 1] != y[:, j - 1])
            cur[:, j] = np.minimum(np.minimum(prev[:, j] + 1, cur[:, j - 1] + 1), sub)
        prev = cur
    return prev[:, Mb]


def topographic_similarity(
    meanings: ArrayLike,
    messages: ArrayLike,
    *,
    meaning_metric: Literal["euclidean", "hamming", "cosine"] = "euclidean",
    message_metric: Literal["hamming", "edit"] = "hamming",
    max_pairs: int = 20000,
    seed: SeedLike = 0,
) -> float:
    r"""Topographic similarity: Spearman correlation of pairwise distances.

    .. math::
        \mathrm{topsim} = \rho_{\mathrm{Spearman}}\big(
            d_{\mathcal{M}}(m_a, m_b),\; d_{\mathcal{L}}(s_a, s_b)\big)_{a < b}

    Args:
        meanings: real meaning vectors ``[S, F]`` (e.g. the world latent) or
            integer attributes ``[S, A]``.
        messages: integer symbol ids ``[S, M]``.
        meaning_metric (str, optional): ``"euclidean"``, ``"hamming"``
            (fraction of differing coordinates; use it for attributes) or
            ``"cosine"`` (``1 - cos``; a zero vector is at distance ``0`` from
            another zero vector and ``1`` from anything else).
            (default: ``"euclidean"``)
        message_metric (str, optional): ``"hamming"`` (fraction of differing
            positions) or ``"edit"`` (Levenshtein distance over the full
            ``M`` symbols, silence included). (default: ``"hamming"``)
        max_pairs (int, optional): if :math:`S(S-1)/2` exceeds it, that many
            distinct pairs are drawn uniformly without replacement.
            (default: ``20000``)
        seed (int, np.random.Generator or torch.Generator, optional): source
            of the pair sub-sampling. (default: ``0``)

    Returns:
        float: in ``[-1, 1]``; ``0.0`` when either distance vector is constant
        (e.g. a constant language), never NaN.

    Example:
        >>> attrs = [[a, b] for a in range(3) for b in range(3)]
        >>> msgs = [[a + 1, b + 4] for a, b in attrs]  # perfectly compositional
        >>> topographic_similarity(attrs, msgs, meaning_metric="hamming")
        1.0
        >>> topographic_similarity(attrs, [[1, 1]] * 9, meaning_metric="hamming")
        0.0
    """
    x = _as_float_array(meanings, "meanings")
    if x.ndim != 2:
        raise ValueError(f"meanings must have shape [S, F], got shape {tuple(x.shape)}")
    m = _messages(messages, None, ndim=2)
    S = x.shape[0]
    if m.shape[0] != S:
        raise ValueError(f"messages must have one row per meaning, got {m.shape[0]} messages for {S} meanings")
    if S < 2:
        raise ValueError(f"meanings must have at least 2 rows to form a pair, got S={S}")
    if meaning_metric not in ("euclidean", "hamming", "cosine"):
        raise ValueError(f"meaning_metric must be one of 'euclidean', 'hamming', 'cosine', got {meaning_metric!r}")
    if message_metric not in ("hamming", "edit"):
        raise ValueError(f"message_metric must be 'hamming' or 'edit', got {message_metric!r}")
    i, j = sample_pairs(S, max_pairs, seed)

    xi, xj = x[i], x[j]  # [P, F]
    if meaning_metric == "euclidean":
        d_mean = np.sqrt(((xi - xj) ** 2).sum(axis=1))
    elif meaning_metric == "hamming":
        d_mean = (xi != xj).mean(axis=1)
    else:
        norm = np.sqrt((x**2).sum(axis=1))  # [S]
        ni, nj = norm[i], norm[j]
        both = (ni > 0) & (nj > 0)
        cos = np.where(both, (xi * xj).sum(axis=1) / np.where(both, ni * nj, 1.0), 0.0)
        cos = np.where((ni == 0) & (nj == 0), 1.0, cos)
        d_mean = 1.0 - np.clip(cos, -1.0, 1.0)

    if message_metric == "hamming":
        d_msg = (m[i] != m[j]).mean(axis=1)
    else:
        d_msg = edit_distance(m[i], m[j]).astype(np.float64)
    return spearman(d_mean, d_msg)


# ---------------------------------------------------------------------------
# Disentanglement: posdis and bosdis (Chaabouni et al., 2020)
# ---------------------------------------------------------------------------
def _information_gap(attributes: np.ndarray, representation: np.ndarray) -> float:
    """Mean over non-constant columns ``j`` of ``(MI_1 - MI_2) / H(rep_j)``."""
    attr_codes = [_codes(attributes[:, a]) for a in range(attributes.shape[1])]
    gaps = []
    for j in range(representation.shape[1]):
        cy, ky = _codes(representation[:, j])
        h = _entropy_from_counts(np.bincount(cy, minlength=ky))
        if h <= 0.0:
            continue  # constant column: carries no information, skipped as in EGG
        mis = sorted((_mi_codes(cx, kx, cy, ky) for cx, kx in attr_codes), reverse=True)
        second = mis[1] if len(mis) > 1 else 0.0
        gaps.append((mis[0] - second) / h)
    return float(np.mean(gaps)) if gaps else 0.0


def _attributes_and_messages(
    attributes: ArrayLike, messages: ArrayLike, vocab_size: int | None
) -> tuple[np.ndarray, np.ndarray]:
    attrs = _as_int_array(attributes, "attributes")
    if attrs.ndim != 2:
        raise ValueError(f"attributes must have shape [S, A], got shape {tuple(attrs.shape)}")
    if attrs.shape[1] < 1:
        raise ValueError("attributes must have at least one column (A >= 1), got A=0")
    m = _messages(messages, vocab_size, ndim=2)
    if m.shape[0] != attrs.shape[0]:
        raise ValueError(
            "messages must have one row per attribute row, got "
            f"{m.shape[0]} messages for {attrs.shape[0]} attribute rows"
        )
    return attrs, m


def posdis(attributes: ArrayLike, messages: ArrayLike, vocab_size: int | None = None) -> float:
    r"""Positional disentanglement (Chaabouni et al., 2020).

    For each message position :math:`j`, let :math:`a^1_j` and :math:`a^2_j`
    be the attributes with the highest and second-highest mutual information
    with the symbol :math:`s_j`:

    .. math::
        \mathrm{posdis} = \frac{1}{|J|} \sum_{j \in J}
            \frac{I(s_j; a^1_j) - I(s_j; a^2_j)}{H(s_j)},
        \qquad J = \{ j : H(s_j) > 0 \}

    as in EGG's ``egg.core.language_analysis.Disent.posdis``.

    Guards (never NaN):

    * constant positions (:math:`H(s_j) = 0`) are skipped; if every position
      is constant the score is ``0.0``;
    * with a single attribute (``A == 1``) there is no runner-up, so
      :math:`I(s_j; a^2_j)` is taken as ``0`` and the gap is
      :math:`I(s_j; a^1_j) / H(s_j)` (the share of the position's entropy that
      is about the attribute).

    Args:
        attributes: integer attribute values ``[S, A]``.
        messages: integer symbol ids ``[S, M]``.
        vocab_size (int, optional): if given, messages are checked to lie in
            ``[0, vocab_size)``. (default: ``None``)

    Returns:
        float: in ``[0, 1]``; ``1`` when each position encodes one attribute
        exactly.

    Example:
        >>> attrs = [[a, b] for a in range(3) for b in range(3)]
        >>> posdis(attrs, [[a + 1, b + 1] for a, b in attrs])
        1.0
        >>> posdis(attrs, [[a + 1, a + 1] for a, b in attrs])
        1.0
        >>> posdis(attrs, [[7, 7]] * 9)
        0.0
    """
    attrs, m = _attributes_and_messages(attributes, messages, vocab_size)
    return _information_gap(attrs, m)


def bosdis(attributes: ArrayLike, messages: ArrayLike, vocab_size: int) -> float:
    r"""Bag-of-symbols disentanglement (Chaabouni et al., 2020).

    The variable for each non-silent symbol :math:`v \in \{1, \dots, V-1\}`
    is its count :math:`n_v` in the message (order ignored). With
    :math:`a^1_v, a^2_v` the attributes of highest and second-highest mutual
    information with :math:`n_v`:

    .. math::
        \mathrm{bosdis} = \frac{1}{|W|} \sum_{v \in W}
            \frac{I(n_v; a^1_v) - I(n_v; a^2_v)}{H(n_v)},
        \qquad W = \{ v \geq 1 : H(n_v) > 0 \}

    Symbol ``0`` (silence) is left out, as EGG's ``Disent.bosdis`` leaves
    out its end-of-sequence symbol ``0``. The guards are those of
    :func:`posdis`: constant counts are skipped, all-constant gives ``0.0``
    and ``A == 1`` uses :math:`I(n_v; a^2_v) = 0`.

    Args:
        attributes: integer attribute values ``[S, A]``.
        messages: integer symbol ids ``[S, M]`` in ``[0, vocab_size)``.
        vocab_size (int): the vocabulary size ``V >= 2``.

    Returns:
        float: in ``[0, 1]``; ``1`` when each symbol's count encodes one
        attribute and nothing else.

    Example:
        >>> attrs = [[a, b] for a in range(3) for b in range(3)]
        >>> bosdis(attrs, [[a + 1, b + 4] for a, b in attrs], vocab_size=7)
        1.0
        >>> bosdis(attrs, [[0, 0]] * 9, vocab_size=7)
        0.0
    """
    V = _check_vocab_size(vocab_size)
    attrs, m = _attributes_and_messages(attributes, messages, V)
    S = m.shape[0]
    hist = np.zeros((S, V), dtype=np.int64)  # [S, V] symbol counts per message
    np.add.at(hist, (np.repeat(np.arange(S), m.shape[1]), m.reshape(-1)), 1)
    return _information_gap(attrs, hist[:, 1:])


# ---------------------------------------------------------------------------
# Mutual information and temporal dependence against permutation nulls
# ---------------------------------------------------------------------------
def mutual_information_statistic(x: ArrayLike, y: ArrayLike) -> Callable[[np.ndarray], float]:
    r"""The statistic ``index -> I(x; y[index])`` in bits, for a permutation null over ``y``.

    The estimator of :func:`mutual_information`, with both sequences coded once: each call only
    gathers and counts the codes, instead of re-sorting the symbols for every permutation.

    Args:
        x: integer sequence ``[N]`` (or ``[N, D]``, rows are joint symbols).
        y: integer sequence ``[N]`` (or ``[N, D]``), paired with ``x``.

    Returns:
        Callable[[np.ndarray], float]: takes an index array ``[N]`` (e.g. a permutation).

    Example:
        >>> statistic = mutual_information_statistic([0, 0, 1, 1], [5, 5, 7, 7])
        >>> statistic(np.arange(4)), statistic(np.array([0, 2, 1, 3]))
        (1.0, 0.0)
    """
    a = _discrete(x, "x")
    b = _discrete(y, "y")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"y must have the same length as x, got len(x)={a.shape[0]} and len(y)={b.shape[0]}")
    cx, kx = _codes(a)
    cy, ky = _codes(b)
    return lambda index: _mi_codes(cx, kx, cy[index], ky)


def mutual_information_test(
    x: ArrayLike,
    y: ArrayLike,
    *,
    strata: ArrayLike | None = None,
    num_permutations: int = 200,
    seed: SeedLike = 0,
) -> PermutationResult:
    r"""Plug-in :math:`I(X; Y)` in bits against the null that permutes ``y`` (within strata).

    The null recomputes the mutual information after permuting ``y``, which destroys the pairing
    but keeps both marginals; with ``strata``, ``y`` is permuted only among the samples of the same
    stratum, which also keeps every per-stratum distribution (e.g. each speaker's habits) and
    tests only the pairing within strata. The p-value is
    :func:`gnncomm.metrics.stats.p_value`.

    Args:
        x: integer sequence ``[N]`` (or ``[N, D]``, rows are joint symbols).
        y: integer sequence ``[N]`` (or ``[N, D]``), paired with ``x``.
        strata: integer label ``[N]`` of each pair, or ``None`` for one stratum. (default: ``None``)
        num_permutations (int, optional): size ``K`` of the null. (default: ``200``)
        seed (int, np.random.Generator or torch.Generator, optional): source of the permutations.
            (default: ``0``)

    Returns:
        PermutationResult: ``value`` and ``null_mean`` in bits.

    Example:
        >>> r = mutual_information_test([0, 1, 2, 3] * 25, [0, 1, 2, 3] * 25, num_permutations=99)
        >>> r.value, r.p_value
        (2.0, 0.01)
    """
    statistic = mutual_information_statistic(x, y)
    n = _discrete(x, "x").shape[0]
    K = _check_positive_int(num_permutations, "num_permutations")
    rng = _rng(seed)
    if strata is None:

        def draw() -> np.ndarray:
            return rng.permutation(n)
    else:
        labels = _as_int_array(strata, "strata")
        if labels.shape != (n,):
            raise ValueError(f"strata must have shape [N={n}] (one label per pair), got shape {tuple(labels.shape)}")
        draw = stratified_permutations(labels, rng)
    return permutation_test(statistic, draw, K, identity=np.arange(n))


@dataclass(frozen=True)
class TemporalResult:
    """Mutual information of paired symbols against a permutation null (a :class:`PermutationResult` in bits)."""

    mi_bits: float
    """Observed plug-in mutual information, in bits."""
    null_mean_bits: float
    """Mean mutual information over the permutations of the pairing."""
    null_std_bits: float
    """Standard deviation of the null mutual information."""
    z_score: float
    """``(mi - null_mean) / null_std``; ``0.0`` when ``null_std == 0``."""
    p_value: float
    """``(1 + #{null >= observed}) / (1 + num_permutations)``, :func:`gnncomm.metrics.stats.p_value`."""


def _temporal(result: PermutationResult) -> TemporalResult:
    return TemporalResult(
        mi_bits=result.value,
        null_mean_bits=result.null_mean,
        null_std_bits=result.null_std,
        z_score=result.z,
        p_value=result.p_value,
    )


def temporal_dependence(
    seq_a: ArrayLike,
    seq_b: ArrayLike | None = None,
    *,
    strata: ArrayLike | None = None,
    num_permutations: int = 200,
    seed: SeedLike = 0,
) -> TemporalResult:
    r"""Mutual information between paired symbols, tested against a shuffled null.

    The observed statistic is :math:`I(A; B)` over the pairs :math:`(a_n, b_n)`. The null
    re-computes it after permuting ``seq_b`` (within ``strata`` if given), ``num_permutations``
    times with a seeded generator; see :func:`mutual_information_test`. The one-sided permutation
    p-value is

    .. math::
        p = \frac{1 + \#\{k : I_k^{\mathrm{null}} \geq I^{\mathrm{obs}}\}}
                 {1 + K}

    so it is never ``0`` and lies in ``[1 / (K + 1), 1]``.

    Args:
        seq_a: integer sequence ``[N]`` (or ``[N, D]``, rows are joint symbols).
        seq_b: the paired sequence, same length. If ``None``, the pairs are consecutive elements of
            ``seq_a``: :math:`(a_t, a_{t+1})`. (default: ``None``)
        strata: integer label of each pair (``[N]``, or ``[N - 1]`` when ``seq_b`` is ``None``);
            ``None`` permutes all pairs. (default: ``None``)
        num_permutations (int, optional): size of the null. (default: ``200``)
        seed (int, np.random.Generator or torch.Generator, optional): source of the permutations.
            (default: ``0``)

    Returns:
        TemporalResult: all fields finite. A constant sequence gives ``mi_bits = 0``,
        ``z_score = 0`` and ``p_value = 1``.

    Example:
        >>> r = temporal_dependence([0, 1, 2, 3] * 25, num_permutations=99)
        >>> round(r.mi_bits, 3), r.p_value
        (2.0, 0.01)
        >>> temporal_dependence([4] * 10).p_value
        1.0
    """
    a = _discrete(seq_a, "seq_a")
    if seq_b is None:
        if a.shape[0] < 2:
            raise ValueError(f"seq_a must have at least 2 elements when seq_b is None, got {a.shape[0]}")
        a, b = a[:-1], a[1:]
    else:
        b = _discrete(seq_b, "seq_b")
        if b.shape[0] != a.shape[0]:
            raise ValueError(
                f"seq_b must have the same length as seq_a, got len(seq_a)={a.shape[0]} and len(seq_b)={b.shape[0]}"
            )
    return _temporal(mutual_information_test(a, b, strata=strata, num_permutations=num_permutations, seed=seed))


def _speaker_codes(speakers: ArrayLike | None, shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """Dense speaker ids of ``shape`` (all ``0`` if ``speakers`` is ``None``) and their number."""
    if speakers is None:
        return np.zeros(shape, dtype=np.int64), 1
    s = _as_int_array(speakers, "speakers")
    if s.shape != shape:
        raise ValueError(f"speakers must have shape {list(shape)} (one id per message), got shape {list(s.shape)}")
    _, codes = np.unique(s.reshape(-1), return_inverse=True)
    return codes.reshape(shape), int(codes.max()) + 1 if codes.size else 1


def within_message_dependence(
    messages: ArrayLike,
    *,
    speakers: ArrayLike | None = None,
    num_permutations: int = 200,
    seed: SeedLike = 0,
) -> TemporalResult:
    r"""Dependence between consecutive symbols inside messages: :math:`I(s_j; s_{j+1})`.

    Pools the pairs :math:`(s_j, s_{j+1})` over all positions ``j`` and all messages. The null
    permutes :math:`s_{j+1}` only among the pairs of the same position ``j`` (and the same speaker,
    if ``speakers`` is given), so per-position and per-speaker symbol habits are kept and only the
    link between the two symbols is destroyed: a language whose positions use different alphabets
    has a large pooled mutual information but no transition structure, and is not significant.

    Args:
        messages: integer symbol ids ``[..., M]`` with ``M >= 2``.
        speakers: integer id of the speaker of each message, shape ``messages.shape[:-1]``; ``None``
            means one speaker. (default: ``None``)
        num_permutations (int, optional): size of the null. (default: ``200``)
        seed (int, np.random.Generator or torch.Generator, optional): (default: ``0``)

    Returns:
        TemporalResult

    Example:
        >>> msgs = [[s, (s + 1) % 4, (s + 2) % 4] for s in [0, 1, 2, 3] * 10]
        >>> within_message_dependence(msgs, num_permutations=50).p_value < 0.05
        True
    """
    m = _messages(messages, None, min_ndim=2)
    M = m.shape[-1]
    if M < 2:
        raise ValueError(f"messages must have at least 2 positions (M >= 2), got M={M}")
    speaker, _ = _speaker_codes(speakers, m.shape[:-1])
    strata = speaker[..., None] * (M - 1) + np.arange(M - 1)  # [..., M - 1]: one stratum per (speaker, j)
    return temporal_dependence(
        m[..., :-1].reshape(-1),
        m[..., 1:].reshape(-1),
        strata=strata.reshape(-1),
        num_permutations=num_permutations,
        seed=seed,
    )


def across_time_dependence(
    messages: ArrayLike,
    *,
    speakers: ArrayLike | None = None,
    num_permutations: int = 200,
    seed: SeedLike = 0,
) -> TemporalResult:
    r"""Dependence between a sequence's whole message at step ``t`` and at ``t + 1``.

    Each whole message is encoded as one discrete id (its row in ``np.unique(..., axis=0)``), and
    the pairs :math:`(\mathrm{msg}_{t, s}, \mathrm{msg}_{t+1, s})` are pooled over ``t`` and over the
    sequences ``s`` (e.g. every agent of every episode). The null permutes
    :math:`\mathrm{msg}_{t+1}` only among the sequences with the same ``t`` (and the same speaker,
    if ``speakers`` is given), so what a speaker says at each step is kept and only the link
    between its consecutive messages is destroyed.

    Args:
        messages: integer symbol ids ``[T, S, M]`` with ``T >= 2`` (time, sequence, position).
        speakers: integer id ``[S]`` of the speaker of each sequence; ``None`` means one speaker.
            (default: ``None``)
        num_permutations (int, optional): size of the null. (default: ``200``)
        seed (int, np.random.Generator or torch.Generator, optional): (default: ``0``)

    Returns:
        TemporalResult

    Example:
        >>> msgs = [[[t % 2, 1]] * 3 + [[(t + 1) % 2, 1]] * 3 for t in range(21)]  # [T=21, S=6, M=2]
        >>> r = across_time_dependence(msgs, num_permutations=50)
        >>> r.mi_bits, r.p_value < 0.05
        (1.0, True)
    """
    m = _messages(messages, None, ndim=3)
    T, S, M = m.shape
    if T < 2:
        raise ValueError(f"messages must have at least 2 time steps (T >= 2), got T={T}")
    speaker, P = _speaker_codes(speakers, (S,))
    ids, _ = _codes(m.reshape(T * S, M))
    ids = ids.reshape(T, S)  # [T, S] one id per whole message
    strata = np.arange(T - 1)[:, None] * P + speaker[None, :]  # [T - 1, S]: one stratum per (t, speaker)
    return temporal_dependence(
        ids[:-1].reshape(-1),
        ids[1:].reshape(-1),
        strata=strata.reshape(-1),
        num_permutations=num_permutations,
        seed=seed,
    )
