r"""Metrics for emergent discrete languages and for attention graphs.

Every function here is pure: it takes numpy arrays, torch tensors or nested
lists, returns Python floats, numpy arrays or small frozen dataclasses, and
never touches global state. Randomness (pair sub-sampling, permutation nulls)
goes only through an explicit ``seed`` (an ``int``, a
:class:`numpy.random.Generator` or a :class:`torch.Generator`), so two calls
with the same seed give identical numbers.

Conventions:

* A message is ``M`` symbol ids in ``[0, V)``; symbol ``0`` is silence.
  Message batches have shape ``[..., M]``.
* Information quantities are in **bits** and use plug-in (maximum likelihood)
  estimates with :math:`0 \log 0 = 0`; nothing returns NaN. Degenerate inputs
  (constant languages, constant distance vectors) give documented finite
  values, usually ``0.0``.
* Attention graphs (:func:`attention_graph`) point in the direction of
  **message flow**, ``sender -> receiver``, exactly like PyG's ``edge_index``
  (row 0 is the source/sender ``j``, row 1 the target/receiver ``i``), and the
  edge weight is the attention ``alpha_ij`` that receiver ``i`` pays to sender
  ``j``. Hence an agent's ``out_strength`` is the attention its messages
  attract and its ``in_strength`` is the attention it pays (close to its
  number of in-neighbours when attention is a softmax over senders).

The library does not depend on scipy; Spearman correlation, PageRank and the
multiple-testing corrections are implemented here in numpy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import networkx as nx
import numpy as np
import torch

__all__ = [
    "TemporalResult",
    "across_time_dependence",
    "attention_graph",
    "bosdis",
    "centrality",
    "detect_hubs",
    "detect_relays",
    "edit_distance",
    "entropy_bits",
    "hub_statistics",
    "mutual_information",
    "posdis",
    "spearman",
    "symbol_entropy",
    "symbol_transition_matrix",
    "temporal_dependence",
    "topographic_similarity",
    "vocab_usage",
    "within_message_dependence",
]

ArrayLike = Any  # np.ndarray | torch.Tensor | nested sequences
SeedLike = Any  # int | np.random.Generator | torch.Generator

# Tolerance used when comparing a permutation statistic with the observed one:
# equal counts evaluated in a different order can differ in the last float bits,
# and such ties must count as "null >= observed".
_TIE_TOL = 1e-12


# ---------------------------------------------------------------------------
# Input helpers
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
    a = _to_numpy(x)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return a


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
            raise ValueError(
                f"{name} must hold symbol ids in [0, vocab_size={V}), got range [{lo}, {hi}]"
            )
    elif int(m.min()) < 0:
        raise ValueError(f"{name} must hold non-negative symbol ids, got min {int(m.min())}")
    return m


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
    raise ValueError(
        "seed must be a non-negative int, a numpy Generator or a torch.Generator, "
        f"got {seed!r}"
    )


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
        raise ValueError(
            f"y must have the same length as x, got len(x)={a.shape[0]} and len(y)={b.shape[0]}"
        )
    cx, kx = _codes(a)
    cy, ky = _codes(b)
    return _mi_codes(cx, kx, cy, ky, miller_madow=miller_madow)


def _mi_codes(
    cx: np.ndarray, kx: int, cy: np.ndarray, ky: int, *, miller_madow: bool = False
) -> float:
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


def symbol_entropy(
    messages: ArrayLike, vocab_size: int, *, per_position: bool = False
) -> float | np.ndarray:
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
    return np.array(
        [_entropy_from_counts(np.bincount(flat[:, j], minlength=V)) for j in range(flat.shape[1])]
    )


def symbol_transition_matrix(
    messages: ArrayLike, vocab_size: int, *, normalize: bool = False
) -> np.ndarray:
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
# Rank correlation and topographic similarity
# ---------------------------------------------------------------------------
def _rankdata(a: np.ndarray) -> np.ndarray:
    """Ranks starting at 1, ties get the average of the ranks they span."""
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
    ra = _rankdata(a)
    rb = _rankdata(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = math.sqrt(float(ra @ ra) * float(rb @ rb))
    if den == 0.0:
        return 0.0
    return float(np.clip(float(ra @ rb) / den, -1.0, 1.0))


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


def _pair_indices(
    n: int, max_pairs: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """All ``i < j`` pairs, or ``max_pairs`` of them drawn without replacement."""
    total = n * (n - 1) // 2
    if total <= max_pairs:
        return np.triu_indices(n, k=1)
    k = np.sort(rng.choice(total, size=max_pairs, replace=False)).astype(np.int64)
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
        raise ValueError(
            f"messages must have one row per meaning, got {m.shape[0]} messages for {S} meanings"
        )
    if S < 2:
        raise ValueError(f"meanings must have at least 2 rows to form a pair, got S={S}")
    if meaning_metric not in ("euclidean", "hamming", "cosine"):
        raise ValueError(
            "meaning_metric must be one of 'euclidean', 'hamming', 'cosine', "
            f"got {meaning_metric!r}"
        )
    if message_metric not in ("hamming", "edit"):
        raise ValueError(f"message_metric must be 'hamming' or 'edit', got {message_metric!r}")
    max_pairs = _check_positive_int(max_pairs, "max_pairs")
    i, j = _pair_indices(S, max_pairs, _rng(seed))

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
# Temporal dependence with a permutation null
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class TemporalResult:
    """Mutual information of paired discrete sequences against a shuffled null."""

    mi_bits: float
    """Observed plug-in mutual information, in bits."""
    null_mean_bits: float
    """Mean mutual information over the permutations of the pairing."""
    null_std_bits: float
    """Standard deviation of the null mutual information."""
    z_score: float
    """``(mi - null_mean) / null_std``; ``0.0`` when ``null_std == 0``."""
    p_value: float
    """``(1 + #{null >= observed}) / (1 + num_permutations)``."""


def temporal_dependence(
    seq_a: ArrayLike,
    seq_b: ArrayLike | None = None,
    *,
    num_permutations: int = 200,
    seed: SeedLike = 0,
) -> TemporalResult:
    r"""Mutual information between paired symbols, tested against a shuffled null.

    The observed statistic is :math:`I(A; B)` over the pairs
    :math:`(a_n, b_n)`. The null re-computes it after permuting ``seq_b``
    (which destroys the pairing but keeps both marginals), ``num_permutations``
    times with a seeded generator. The one-sided permutation p-value is

    .. math::
        p = \frac{1 + \#\{k : I_k^{\mathrm{null}} \geq I^{\mathrm{obs}}\}}
                 {1 + K}

    so it is never ``0`` and lies in ``[1 / (K + 1), 1]``.

    Args:
        seq_a: integer sequence ``[N]`` (or ``[N, D]``, rows are joint symbols).
        seq_b: the paired sequence, same length. If ``None``, the pairs are
            consecutive elements of ``seq_a``: :math:`(a_t, a_{t+1})`.
            (default: ``None``)
        num_permutations (int, optional): size of the null. (default: ``200``)
        seed (int, np.random.Generator or torch.Generator, optional): source
            of the permutations. (default: ``0``)

    Returns:
        TemporalResult: all fields finite. A constant sequence gives
        ``mi_bits = 0``, ``z_score = 0`` and ``p_value = 1``.

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
            raise ValueError(
                f"seq_a must have at least 2 elements when seq_b is None, got {a.shape[0]}"
            )
        a, b = a[:-1], a[1:]
    else:
        b = _discrete(seq_b, "seq_b")
        if b.shape[0] != a.shape[0]:
            raise ValueError(
                "seq_b must have the same length as seq_a, got "
                f"len(seq_a)={a.shape[0]} and len(seq_b)={b.shape[0]}"
            )
    K = _check_positive_int(num_permutations, "num_permutations")
    rng = _rng(seed)
    cx, kx = _codes(a)
    cy, ky = _codes(b)
    observed = _mi_codes(cx, kx, cy, ky)
    null = np.array([_mi_codes(cx, kx, cy[rng.permutation(cy.size)], ky) for _ in range(K)])
    mean = float(null.mean())
    std = float(null.std())
    z = (observed - mean) / std if std > 0.0 else 0.0
    exceed = int((null >= observed - _TIE_TOL).sum())
    return TemporalResult(
        mi_bits=observed,
        null_mean_bits=mean,
        null_std_bits=std,
        z_score=float(z),
        p_value=(1.0 + exceed) / (1.0 + K),
    )


def within_message_dependence(
    messages: ArrayLike, *, num_permutations: int = 200, seed: SeedLike = 0
) -> TemporalResult:
    r"""Dependence between consecutive symbols inside messages.

    Pools the pairs :math:`(s_j, s_{j+1})` over all positions ``j`` and all
    messages and calls :func:`temporal_dependence` on them.

    Args:
        messages: integer symbol ids ``[..., M]`` with ``M >= 2``.
        num_permutations (int, optional): size of the null. (default: ``200``)
        seed (int, np.random.Generator or torch.Generator, optional):
            (default: ``0``)

    Returns:
        TemporalResult

    Example:
        >>> msgs = [[s, (s + 1) % 4, (s + 2) % 4] for s in [0, 1, 2, 3] * 10]
        >>> within_message_dependence(msgs, num_permutations=50).p_value < 0.05
        True
    """
    m = _messages(messages, None, min_ndim=2)
    if m.shape[-1] < 2:
        raise ValueError(f"messages must have at least 2 positions (M >= 2), got M={m.shape[-1]}")
    return temporal_dependence(
        m[..., :-1].reshape(-1),
        m[..., 1:].reshape(-1),
        num_permutations=num_permutations,
        seed=seed,
    )


def across_time_dependence(
    messages: ArrayLike, *, num_permutations: int = 200, seed: SeedLike = 0
) -> TemporalResult:
    r"""Dependence between an agent's whole message at step ``t`` and at ``t + 1``.

    Each whole message is encoded as one discrete id (its row in
    ``np.unique(..., axis=0)``), and the pairs
    :math:`(\mathrm{msg}_{t, s}, \mathrm{msg}_{t+1, s})` are pooled over
    ``t`` and over the agents/episodes ``s`` before calling
    :func:`temporal_dependence`.

    Args:
        messages: integer symbol ids ``[T, S, M]`` with ``T >= 2`` (time,
            agent or episode, position).
        num_permutations (int, optional): size of the null. (default: ``200``)
        seed (int, np.random.Generator or torch.Generator, optional):
            (default: ``0``)

    Returns:
        TemporalResult

    Example:
        >>> msgs = [[[t % 2, 1]] * 3 for t in range(21)]  # [T=21, S=3, M=2]
        >>> r = across_time_dependence(msgs, num_permutations=50)
        >>> r.mi_bits, r.p_value < 0.05
        (1.0, True)
    """
    m = _messages(messages, None, ndim=3)
    T, S, M = m.shape
    if T < 2:
        raise ValueError(f"messages must have at least 2 time steps (T >= 2), got T={T}")
    ids, _ = _codes(m.reshape(T * S, M))
    ids = ids.reshape(T, S)  # [T, S] one id per whole message
    return temporal_dependence(
        ids[:-1].reshape(-1),
        ids[1:].reshape(-1),
        num_permutations=num_permutations,
        seed=seed,
    )


# ---------------------------------------------------------------------------
# Attention graphs: construction, centrality, hubs and relays
# ---------------------------------------------------------------------------
def attention_graph(
    edge_index: ArrayLike,
    alpha: ArrayLike,
    num_nodes: int,
    *,
    node_ids: ArrayLike | None = None,
    keep_self_loops: bool = False,
) -> nx.DiGraph:
    r"""Average attention per directed ``sender -> receiver`` pair of agents.

    ``edge_index`` may concatenate the edges of many evaluation episodes or
    time steps (each with its own, e.g. dynamic kNN, topology). Node indices
    are mapped to agent ids by ``node_ids``; every observation of the pair
    ``(sender_id, receiver_id)`` contributes its attention (averaged over
    heads) and the edge weight is the **mean over the observations in which
    the edge occurred**:

    .. math::
        w_{uv} = \frac{1}{c_{uv}} \sum_{e : \mathrm{id}(j_e) = u,\,
            \mathrm{id}(i_e) = v} \bar\alpha_e

    Args:
        edge_index: ``[2, E]`` integer tensor in PyG's ``source_to_target``
            layout: row 0 is the sender ``j``, row 1 the receiver ``i``.
        alpha: attention ``[E]`` or ``[E, H]`` (averaged over the ``H`` heads),
            finite and non-negative.
        num_nodes (int): number of node indices; every index in
            ``edge_index`` must be ``< num_nodes``.
        node_ids: ``[num_nodes]`` agent id of each node index; ``None`` means
            node index ``n`` is agent ``n``. (default: ``None``)
        keep_self_loops (bool, optional): keep edges from an agent to itself.
            They are dropped by default because attending to one's own state
            is not communication and would inflate the strengths.
            (default: ``False``)

    Returns:
        networkx.DiGraph: one node per agent id (isolated agents included),
        edges ``sender -> receiver`` with attributes ``weight`` (mean
        attention) and ``count`` (number of observations).

    Example:
        >>> ei = [[0, 1, 2, 3], [1, 0, 3, 2]]  # two episodes of 2 agents each
        >>> g = attention_graph(ei, [1.0, 0.5, 0.0, 0.5], 4, node_ids=[0, 1, 0, 1])
        >>> sorted(g.edges(data=True))
        [(0, 1, {'weight': 0.5, 'count': 2}), (1, 0, {'weight': 0.5, 'count': 2})]
    """
    num_nodes = _check_positive_int(num_nodes, "num_nodes", minimum=0)
    ei = _as_int_array(edge_index, "edge_index")
    if ei.ndim != 2 or ei.shape[0] != 2:
        raise ValueError(f"edge_index must have shape [2, E], got shape {tuple(ei.shape)}")
    E = ei.shape[1]
    w = _as_float_array(alpha, "alpha")
    if w.ndim == 2:
        w = w.mean(axis=1)  # [E, H] -> [E]
    if w.ndim != 1 or w.shape[0] != E:
        raise ValueError(
            f"alpha must have shape [E] or [E, H] with E={E}, "
            f"got shape {tuple(_to_numpy(alpha).shape)}"
        )
    if E and float(w.min()) < 0.0:
        raise ValueError(f"alpha must be non-negative, got min {float(w.min())}")
    if E and (int(ei.min()) < 0 or int(ei.max()) >= num_nodes):
        raise ValueError(
            f"edge_index must hold node indices in [0, num_nodes={num_nodes}), "
            f"got range [{int(ei.min())}, {int(ei.max())}]"
        )
    if node_ids is None:
        ids = np.arange(num_nodes, dtype=np.int64)
    else:
        ids = _as_int_array(node_ids, "node_ids")
        if ids.shape != (num_nodes,):
            raise ValueError(
                f"node_ids must have shape [num_nodes={num_nodes}], got shape {tuple(ids.shape)}"
            )

    g = nx.DiGraph()
    g.add_nodes_from(int(a) for a in np.unique(ids))
    if E == 0:
        return g
    src, dst = ids[ei[0]], ids[ei[1]]  # [E] agent ids
    if not keep_self_loops:
        keep = src != dst
        src, dst, w = src[keep], dst[keep], w[keep]
    if src.size == 0:
        return g
    pairs, inv, counts = np.unique(
        np.stack([src, dst], axis=1), axis=0, return_inverse=True, return_counts=True
    )  # pairs: [P, 2] distinct (sender_id, receiver_id)
    sums = np.bincount(inv.reshape(-1), weights=w, minlength=pairs.shape[0])
    for (u, v), s, c in zip(pairs.tolist(), sums.tolist(), counts.tolist()):
        g.add_edge(u, v, weight=s / c, count=int(c))
    return g


def _edge_arrays(graph: nx.DiGraph) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    """Sorted node list and edge arrays ``(src_idx, dst_idx, weight)``."""
    if not isinstance(graph, nx.DiGraph):
        raise ValueError(f"graph must be a networkx.DiGraph, got {type(graph).__name__}")
    nodes = sorted(graph.nodes())
    index = {n: k for k, n in enumerate(nodes)}
    edges = list(graph.edges(data="weight", default=1.0))
    src = np.array([index[u] for u, _, _ in edges], dtype=np.int64)
    dst = np.array([index[v] for _, v, _ in edges], dtype=np.int64)
    w = np.array([float(x) for _, _, x in edges], dtype=np.float64)
    if w.size and (not np.all(np.isfinite(w)) or float(w.min()) < 0.0):
        raise ValueError("graph edge attribute 'weight' must be finite and non-negative")
    return nodes, src, dst, w


def _pagerank(
    n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray, damping: float = 0.85
) -> np.ndarray:
    """Weighted PageRank by power iteration (same definition as ``nx.pagerank``)."""
    if n == 0:
        return np.zeros(0)
    out_w = np.bincount(src, weights=w, minlength=n)
    dangling = out_w == 0
    share = np.divide(w, out_w[src], out=np.zeros_like(w), where=out_w[src] > 0)
    x = np.full(n, 1.0 / n)
    for _ in range(1000):
        flow = np.bincount(dst, weights=x[src] * share, minlength=n)
        new = damping * (flow + x[dangling].sum() / n) + (1.0 - damping) / n
        done = np.abs(new - x).sum() < 1e-13 * n
        x = new
        if done:
            break
    return x / x.sum()


def centrality(graph: nx.DiGraph) -> dict[int, dict[str, float]]:
    r"""Per-agent centralities of a weighted attention graph.

    Keys of each agent's dict:

    * ``"pagerank"``: weighted PageRank (damping ``0.85``) on the graph as
      given, i.e. a random walk along message flow; it is high for agents
      where information accumulates.
    * ``"influence"``: the same PageRank on the reversed graph, a random walk
      along attention (a receiver steps to a sender with probability
      proportional to the attention it pays); high for agents whose messages
      are attended to by attended agents.
    * ``"betweenness"``: normalised weighted betweenness with edge **length**
      ``1 / weight`` (strong attention = short path); zero-weight edges are
      treated as absent.
    * ``"in_strength"``: sum of incoming weights (attention the agent pays).
    * ``"out_strength"``: sum of outgoing weights (attention its messages get).

    Args:
        graph (networkx.DiGraph): e.g. from :func:`attention_graph`; edges
            ``sender -> receiver`` with a non-negative ``weight`` (missing
            weights count as ``1``).

    Returns:
        dict[int, dict[str, float]]: keyed by agent id, in sorted order.

    Example:
        >>> g = nx.DiGraph([(0, 1, {"weight": 1.0}), (1, 2, {"weight": 1.0})])
        >>> c = centrality(g)
        >>> c[1]["betweenness"], c[1]["in_strength"], c[1]["out_strength"]
        (0.5, 1.0, 1.0)
    """
    nodes, src, dst, w = _edge_arrays(graph)
    n = len(nodes)
    if n == 0:
        return {}
    pr = _pagerank(n, src, dst, w)
    infl = _pagerank(n, dst, src, w)
    in_s = np.bincount(dst, weights=w, minlength=n)
    out_s = np.bincount(src, weights=w, minlength=n)

    positive = nx.DiGraph()
    positive.add_nodes_from(nodes)
    positive.add_edges_from(
        (nodes[u], nodes[v], {"length": 1.0 / x}) for u, v, x in zip(src, dst, w) if x > 0.0
    )
    btw = nx.betweenness_centrality(positive, weight="length", normalized=True)
    return {
        node: {
            "pagerank": float(pr[k]),
            "influence": float(infl[k]),
            "betweenness": float(btw[node]),
            "in_strength": float(in_s[k]),
            "out_strength": float(out_s[k]),
        }
        for k, node in enumerate(nodes)
    }


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values, in the input order."""
    m = p.size
    order = np.argsort(p, kind="mergesort")
    adj = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adj = np.maximum.accumulate(adj)
    out = np.empty(m)
    out[order] = adj
    return out


def hub_statistics(
    graph: nx.DiGraph,
    *,
    num_shuffles: int = 500,
    direction: Literal["out", "in"] = "out",
    correction: Literal["holm", "bonferroni", "none"] = "holm",
    seed: SeedLike = 0,
) -> dict[int, dict[str, float]]:
    r"""Per-agent strength against a weight-shuffling, degree-preserving null.

    The null keeps the topology (hence every in- and out-degree) and
    permutes the edge weights across the existing edges, ``num_shuffles``
    times. For each agent the one-sided p-value is

    .. math::
        p = \frac{1 + \#\{k : s_k^{\mathrm{null}} \geq s^{\mathrm{obs}}\}}
                 {1 + K}

    and ``p_adjusted`` corrects it across agents (Holm by default).

    ``direction="out"`` (the default) tests the **attention an agent's
    messages receive** (its out-strength in the ``sender -> receiver``
    graph). That is the meaningful hub statistic: with softmax attention
    every receiver's in-strength is about its number of senders, so
    ``direction="in"`` mostly measures how many agents it listens to.

    Args:
        graph (networkx.DiGraph): weighted ``sender -> receiver`` graph.
        num_shuffles (int, optional): size of the null. The smallest
            reachable p-value is ``1 / (num_shuffles + 1)``, so with ``N``
            agents and a Bonferroni/Holm correction at level ``alpha`` one
            needs ``num_shuffles >= N / alpha``. (default: ``500``)
        direction (str, optional): ``"out"`` or ``"in"``. (default: ``"out"``)
        correction (str, optional): ``"holm"``, ``"bonferroni"`` or
            ``"none"``. (default: ``"holm"``)
        seed (int, np.random.Generator or torch.Generator, optional):
            (default: ``0``)

    Returns:
        dict[int, dict[str, float]]: per agent ``"strength"``,
        ``"null_mean"``, ``"null_std"``, ``"p_value"`` and ``"p_adjusted"``.

    Example:
        >>> g = nx.DiGraph([(0, 1, {"weight": 0.5}), (1, 0, {"weight": 0.5})])
        >>> hub_statistics(g, num_shuffles=9)[0]["p_value"]
        1.0
    """
    K = _check_positive_int(num_shuffles, "num_shuffles")
    if direction not in ("out", "in"):
        raise ValueError(f"direction must be 'out' or 'in', got {direction!r}")
    if correction not in ("holm", "bonferroni", "none"):
        raise ValueError(f"correction must be 'holm', 'bonferroni' or 'none', got {correction!r}")
    rng = _rng(seed)
    nodes, src, dst, w = _edge_arrays(graph)
    n = len(nodes)
    if n == 0:
        return {}
    owner = src if direction == "out" else dst
    observed = np.bincount(owner, weights=w, minlength=n)  # [N]
    null = np.empty((K, n))  # [K, N]
    for k in range(K):
        null[k] = np.bincount(owner, weights=w[rng.permutation(w.size)], minlength=n)
    exceed = (null >= observed[None, :] - _TIE_TOL * np.maximum(1.0, observed[None, :])).sum(axis=0)
    p = (1.0 + exceed) / (1.0 + K)
    if correction == "holm":
        p_adj = _holm(p)
    elif correction == "bonferroni":
        p_adj = np.minimum(1.0, p * n)
    else:
        p_adj = p
    mean = null.mean(axis=0)
    std = null.std(axis=0)
    return {
        node: {
            "strength": float(observed[k]),
            "null_mean": float(mean[k]),
            "null_std": float(std[k]),
            "p_value": float(p[k]),
            "p_adjusted": float(p_adj[k]),
        }
        for k, node in enumerate(nodes)
    }


def detect_hubs(
    graph: nx.DiGraph,
    *,
    num_shuffles: int = 500,
    alpha: float = 0.05,
    direction: Literal["out", "in"] = "out",
    correction: Literal["holm", "bonferroni", "none"] = "holm",
    seed: SeedLike = 0,
) -> list[int]:
    r"""Agents whose strength is significantly above the shuffled-weight null.

    An agent is a hub when its corrected p-value from :func:`hub_statistics`
    is ``<= alpha``. Uniform attention (all weights equal) gives ``p = 1``
    for everyone and hence no hub.

    Args:
        graph (networkx.DiGraph): weighted ``sender -> receiver`` graph.
        num_shuffles (int, optional): size of the null. (default: ``500``)
        alpha (float, optional): family-wise significance level in
            ``(0, 1)``. (default: ``0.05``)
        direction (str, optional): ``"out"`` (attention received by the
            agent's messages) or ``"in"``. (default: ``"out"``)
        correction (str, optional): ``"holm"``, ``"bonferroni"`` or
            ``"none"``. (default: ``"holm"``)
        seed (int, np.random.Generator or torch.Generator, optional):
            (default: ``0``)

    Returns:
        list[int]: sorted agent ids.

    Example:
        >>> g = nx.DiGraph()
        >>> for r in range(1, 8):  # everyone listens mostly to agent 0
        ...     for s in range(8):
        ...         if s != r:
        ...             g.add_edge(s, r, weight=0.7 if s == 0 else 0.05)
        >>> detect_hubs(g, num_shuffles=200)
        [0]
    """
    a = _check_probability(alpha, "alpha", open_low=True, open_high=True)
    stats = hub_statistics(
        graph, num_shuffles=num_shuffles, direction=direction, correction=correction, seed=seed
    )
    return sorted(node for node, s in stats.items() if s["p_adjusted"] <= a)


def detect_relays(graph: nx.DiGraph, *, quantile: float = 0.8) -> list[int]:
    r"""Agents that sit on many strong attention paths and pass information on.

    Rule: agent ``v`` is a relay when

    * its weighted betweenness (edge length ``1 / weight``, see
      :func:`centrality`) is ``> 0`` and **strictly above** the
      ``quantile``-quantile of all agents' betweenness, and
    * it both receives (``in_strength > 0``) and sends
      (``out_strength > 0``). Positive betweenness already implies this,
      since zero-weight edges are left out of the shortest paths; the check
      is kept explicit so the rule reads as stated.

    The strict inequality means that when the top agents tie (e.g. every
    agent of a symmetric ring) nobody stands out and no relay is reported.

    Args:
        graph (networkx.DiGraph): weighted ``sender -> receiver`` graph.
        quantile (float, optional): in ``[0, 1)``. (default: ``0.8``)

    Returns:
        list[int]: sorted agent ids.

    Example:
        >>> g = nx.DiGraph([(0, 1), (1, 2), (2, 3), (3, 4)])  # a chain
        >>> detect_relays(g)
        [2]
    """
    q = _check_probability(quantile, "quantile", open_low=False, open_high=True)
    c = centrality(graph)
    if not c:
        return []
    btw = np.array([s["betweenness"] for s in c.values()])
    threshold = float(np.quantile(btw, q))
    return sorted(
        node
        for node, s in c.items()
        if s["betweenness"] > 0.0
        and s["betweenness"] > threshold
        and s["in_strength"] > 0.0
        and s["out_strength"] > 0.0
    )
