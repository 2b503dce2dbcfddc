r"""Attention graphs of a communicating population: construction, centrality, hubs and attention relays.

**Orientation and names, used everywhere in gnncomm** (metrics, evaluation, ``report.json``,
``report.md`` and the figures). An attention graph points along **message flow**,
``speaker -> listener`` (= sender -> receiver, PyG's ``edge_index`` row 0 -> row 1), and the weight
of an edge is the attention :math:`\alpha_{ij}` that listener :math:`i` pays speaker :math:`j`.
The per-agent centralities of :func:`centrality` are

* ``attention_received``: the sum over the agent's listeners of the attention they pay it, i.e.
  its weighted out-degree: how much its messages are heard;
* ``attention_paid``: the sum over the agent's speakers of the attention it pays them, its weighted
  in-degree. Each listener's softmax sums to 1, so on a fixed graph it is 1 for every listener that hears
  anyone; on a kNN graph that changes, the per-pair means add up to about (speakers met) / k;
* ``pagerank``: :func:`networkx.pagerank` (damping ``0.85``) on the **reversed** graph, a random
  walk along attention from a listener to a speaker it attends to: high for agents attended to by
  attended agents;
* ``betweenness``: :func:`networkx.betweenness_centrality` (normalised) with edge **length**
  ``1 / weight``, so strong attention is a short path; zero-weight edges are left out.

**Hubs and attention relays** are tested against one null model: the degree-preserving weight shuffle, which
keeps the topology (every in- and out-degree) and permutes the edge weights over the existing edges.
A hub's ``attention_received`` and an attention relay's ``betweenness`` are recomputed on every shuffle; the
one-sided p-value per agent is :func:`gnncomm.metrics.stats.p_value` and the family of agents is
Holm-corrected (:func:`gnncomm.metrics.stats.holm`). With ``K`` shuffles the smallest p-value is
``1 / (K + 1)``, so ``N`` Holm-corrected agents need ``K >= N / alpha - 1``
(:func:`gnncomm.metrics.stats.min_permutations`) before anyone can be flagged; the ``detect_*``
functions pick that many by default.

An **attention relay** is what attention adds to the graph: a betweenness the weights give an agent beyond what
the same graph gives it under shuffled weights. What the graph itself forces is :func:`graph_betweenness` (no
weights), and whether information actually flows through an agent is the causal relay test of
:mod:`gnncomm.metrics.flow` (knock-outs): a cut vertex of the graph has a high graph betweenness, no attention
relay p-value below ``1``, and is a relay exactly when silencing it hurts the agents beyond it.

All functions are pure: randomness goes only through an explicit ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import networkx as nx
import numpy as np
from torch import Tensor

from gnncomm.metrics.stats import (
    TIE_TOLERANCE,
    Correction,
    PermutationResult,
    _as_float_array,
    _as_int_array,
    _check_positive_int,
    _check_probability,
    _rng,
    _to_numpy,
    adjust_p_values,
    min_permutations,
)

__all__ = [
    "HUB_LATTICE",
    "HUB_SHUFFLES",
    "ATTENTION_RELAY_SHUFFLES",
    "attention_graph",
    "centrality",
    "detect_hubs",
    "detect_attention_relays",
    "hub_statistics",
    "attention_relay_statistics",
    "graph_betweenness",
    "pair_hub_statistics",
]

ArrayLike = Any  # np.ndarray | torch.Tensor | nested sequences
SeedLike = Any  # int | np.random.Generator | torch.Generator

HUB_SHUFFLES = 500
"""Default size of the hubs' weight-shuffle null (cheap: one ``bincount`` per shuffle)."""
ATTENTION_RELAY_SHUFFLES = 200
"""Default size of the attention relays' weight-shuffle null (one networkx betweenness per shuffle)."""
PAGERANK_DAMPING = 0.85


def attention_graph(
    edge_index: ArrayLike,
    alpha: ArrayLike,
    num_nodes: int,
    *,
    node_ids: ArrayLike | None = None,
    keep_self_loops: bool = False,
) -> nx.DiGraph:
    r"""Average attention per directed ``speaker -> listener`` pair of agents (see the module docstring).

    ``edge_index`` may concatenate the edges of many evaluation episodes or time steps (each with its
    own, e.g. dynamic kNN, topology). Node indices are mapped to agent ids by ``node_ids``; every
    observation of the pair ``(speaker_id, listener_id)`` contributes its attention (averaged over
    heads) and the edge weight is the **mean over the observations in which the edge occurred**:

    .. math::
        w_{uv} = \frac{1}{c_{uv}} \sum_{e : \mathrm{id}(j_e) = u,\,
            \mathrm{id}(i_e) = v} \bar\alpha_e

    Args:
        edge_index: ``[2, E]`` integer tensor in PyG's ``source_to_target``
            layout: row 0 is the speaker (sender) ``j``, row 1 the listener (receiver) ``i``.
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
        edges ``speaker -> listener`` with attributes ``weight`` (mean
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
        raise ValueError(f"alpha must have shape [E] or [E, H] with E={E}, got shape {tuple(_to_numpy(alpha).shape)}")
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
            raise ValueError(f"node_ids must have shape [num_nodes={num_nodes}], got shape {tuple(ids.shape)}")

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
    """Sorted node list and edge arrays ``(speaker_idx, listener_idx, weight)``; a missing weight counts as ``1``."""
    if not isinstance(graph, nx.DiGraph):
        raise TypeError(f"graph must be a networkx.DiGraph, got {type(graph).__name__}")
    nodes = sorted(graph.nodes())
    index = {n: k for k, n in enumerate(nodes)}
    edges = list(graph.edges(data="weight", default=1.0))
    src = np.array([index[u] for u, _, _ in edges], dtype=np.int64)
    dst = np.array([index[v] for _, v, _ in edges], dtype=np.int64)
    w = np.array([float(x) for _, _, x in edges], dtype=np.float64)
    if w.size and (not np.all(np.isfinite(w)) or float(w.min()) < 0.0):
        raise ValueError("graph edge attribute 'weight' must be finite and non-negative")
    return nodes, src, dst, w


BETWEENNESS_EXACT_MAX = 200
"""Above this many agents, :func:`centrality` estimates betweenness from :data:`BETWEENNESS_SAMPLES` sampled
sources (networkx's ``k``; exact betweenness costs O(N E log N): 130 s at N = 1,000 on one CPU core)."""
BETWEENNESS_SAMPLES = 64


def _betweenness(
    nodes: list[int], src: np.ndarray, dst: np.ndarray, w: np.ndarray, samples: int | None = None
) -> np.ndarray:
    """Normalised networkx betweenness ``[N]`` in ``nodes`` order, edge length ``1 / w``; zero weights left out.
    ``samples``: estimate it from that many source nodes (seed 0) instead of all."""
    positive = nx.DiGraph()
    positive.add_nodes_from(nodes)
    positive.add_edges_from(
        (nodes[u], nodes[v], {"length": 1.0 / x}) for u, v, x in zip(src.tolist(), dst.tolist(), w.tolist()) if x > 0.0
    )
    k = samples if samples is not None and samples < len(nodes) else None
    btw = nx.betweenness_centrality(positive, weight="length", normalized=True, k=k, seed=0 if k else None)
    return np.array([btw[node] for node in nodes], dtype=np.float64)


def centrality(graph: nx.DiGraph) -> dict[int, dict[str, float]]:
    r"""Per-agent centralities of a weighted ``speaker -> listener`` attention graph.

    The keys of each agent's dict, defined in the module docstring: ``"attention_received"``,
    ``"attention_paid"``, ``"pagerank"`` (networkx, on the reversed graph, damping ``0.85``) and
    ``"betweenness"`` (networkx, edge length ``1 / weight``, normalised; estimated from
    :data:`BETWEENNESS_SAMPLES` sampled sources above :data:`BETWEENNESS_EXACT_MAX` agents).

    Args:
        graph (networkx.DiGraph): e.g. from :func:`attention_graph`; edges ``speaker -> listener``
            with a non-negative ``weight`` (missing weights count as ``1``).

    Returns:
        dict[int, dict[str, float]]: keyed by agent id, in sorted order.

    Example:
        >>> g = nx.DiGraph([(0, 1, {"weight": 1.0}), (0, 2, {"weight": 0.75}), (1, 2, {"weight": 0.25})])
        >>> c = centrality(g)  # 1 and 2 listen mostly to 0
        >>> c[0]["attention_received"], c[2]["attention_paid"], max(c, key=lambda a: c[a]["pagerank"])
        (1.75, 1.0, 0)
    """
    nodes, src, dst, w = _edge_arrays(graph)
    n = len(nodes)
    if n == 0:
        return {}
    along_attention = nx.DiGraph()  # listener -> speaker
    along_attention.add_nodes_from(nodes)
    along_attention.add_weighted_edges_from(
        (nodes[v], nodes[u], x) for u, v, x in zip(src.tolist(), dst.tolist(), w.tolist())
    )
    # tol is per node in L1; max_iter is ample since the damped walk contracts by 0.85 per step.
    pagerank = nx.pagerank(along_attention, alpha=PAGERANK_DAMPING, weight="weight", tol=1e-12, max_iter=1000)
    received = np.bincount(src, weights=w, minlength=n)
    paid = np.bincount(dst, weights=w, minlength=n)
    samples = BETWEENNESS_SAMPLES if len(nodes) > BETWEENNESS_EXACT_MAX else None
    betweenness = _betweenness(nodes, src, dst, w, samples)
    return {
        node: {
            "attention_received": float(received[k]),
            "attention_paid": float(paid[k]),
            "pagerank": float(pagerank[node]),
            "betweenness": float(betweenness[k]),
        }
        for k, node in enumerate(nodes)
    }


def graph_betweenness(edge_indices: Sequence[Tensor], num_agents: int, *, max_graphs: int = 64) -> np.ndarray:
    r"""Each agent's betweenness on the communication graph alone (no weights), averaged over its step graphs ``[N]``.

    What the topology forces, whatever the agents attend to: normalised networkx betweenness of the directed
    ``speaker -> listener`` graph of one episode at one step, averaged over the first ``max_graphs`` (episode,
    step) graphs, episode by episode; identical graphs (a fixed topology) are computed once.

    Args:
        edge_indices: each step's ``edge_index [2, E]`` over ``B * N`` nodes (a trace's ``edge_index``).
        num_agents (int): :math:`N`.
        max_graphs (int, optional): the most (episode, step) graphs averaged. (default: ``64``)

    Example:
        >>> import torch
        >>> path = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])  # 0 - 1 - 2: every path between 0 and 2 crosses 1
        >>> graph_betweenness([path], 3).tolist()
        [0.0, 1.0, 0.0]
    """
    N = _check_positive_int(num_agents, "num_agents")
    limit = _check_positive_int(max_graphs, "max_graphs")
    steps = [e.cpu().numpy() for e in edge_indices]
    if not steps:
        return np.zeros(N)
    episodes = max(int(e.max()) // N + 1 if e.size else 1 for e in steps)
    cache: dict[bytes, np.ndarray] = {}
    total, count = np.zeros(N), 0
    for b in range(episodes):
        for e in steps:
            if count == limit:
                break
            keep = e[1] // N == b
            local = np.unique(e[:, keep] - b * N, axis=1)
            key = local.tobytes()
            if key not in cache:
                graph = nx.DiGraph()
                graph.add_nodes_from(range(N))
                graph.add_edges_from(local.T.tolist())
                btw = nx.betweenness_centrality(graph, normalized=True)
                cache[key] = np.array([btw[a] for a in range(N)])
            total += cache[key]
            count += 1
    return total / max(count, 1)


def _weight_shuffle_tests(
    graph: nx.DiGraph,
    key: str,
    statistic: Callable[[list[int], np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    num_shuffles: int,
    correction: Correction,
    seed: SeedLike,
) -> dict[int, dict[str, float]]:
    """Per-agent ``statistic(nodes, src, dst, weight) -> [N]`` against the degree-preserving weight shuffle."""
    K = _check_positive_int(num_shuffles, "num_shuffles")
    adjust_p_values([], correction)  # checks the name before the (possibly slow) null
    rng = _rng(seed)
    nodes, src, dst, w = _edge_arrays(graph)
    if not nodes:
        return {}
    observed = statistic(nodes, src, dst, w)  # [N]
    null = np.stack([statistic(nodes, src, dst, w[rng.permutation(w.size)]) for _ in range(K)])  # [K, N]
    tests = [PermutationResult.from_null(observed[k], null[:, k]) for k in range(len(nodes))]
    return _per_agent(nodes, key, tests, correction)


def _per_agent(
    nodes: list[int], key: str, tests: list[PermutationResult], correction: Correction
) -> dict[int, dict[str, float]]:
    """``{agent: {key, null_mean, null_std, z, p_value, p_adjusted}}`` from one test per agent, corrected together."""
    adjusted = adjust_p_values([t.p_value for t in tests], correction)
    return {
        node: {
            key: float(t.value),
            "null_mean": float(t.null_mean),
            "null_std": float(t.null_std),
            "z": float(t.z),
            "p_value": float(t.p_value),
            "p_adjusted": float(adjusted[k]),
        }
        for k, (node, t) in enumerate(zip(nodes, tests))
    }


def _num_shuffles(num_shuffles: int | None, floor: int, graph: nx.DiGraph, alpha: float, correction: Correction) -> int:
    """``num_shuffles``, or if ``None`` the larger of ``floor`` and the fewest that let a corrected p reach alpha."""
    if num_shuffles is not None:
        return num_shuffles
    tests = max(graph.number_of_nodes(), 1) if correction != "none" else 1
    return max(floor, min_permutations(tests, alpha))


def hub_statistics(
    graph: nx.DiGraph,
    *,
    num_shuffles: int = HUB_SHUFFLES,
    correction: Correction = "holm",
    seed: SeedLike = 0,
    method: str = "permutation",
) -> dict[int, dict[str, float]]:
    r"""Per-agent ``attention_received`` against the degree-preserving weight-shuffle null.

    The null keeps the topology (hence every in- and out-degree) and permutes the edge weights
    across the existing edges, ``num_shuffles`` times. For each agent the one-sided p-value is

    .. math::
        p = \frac{1 + \#\{k : s_k^{\mathrm{null}} \geq s^{\mathrm{obs}}\}}
                 {1 + K}

    (:func:`gnncomm.metrics.stats.p_value`) and ``p_adjusted`` corrects it across agents (Holm by
    default). ``attention_received`` is the meaningful hub statistic: with softmax attention every
    listener's ``attention_paid`` is fixed by the softmax (1 per step it hears anyone).

    Args:
        graph (networkx.DiGraph): weighted ``speaker -> listener`` graph.
        num_shuffles (int, optional): size ``K`` of the null. The smallest reachable p-value is
            ``1 / (K + 1)``, so ``N`` agents with a Holm correction at level ``alpha`` need
            ``K >= N / alpha - 1``. (default: :data:`HUB_SHUFFLES`)
        correction (str, optional): ``"holm"``, ``"bonferroni"`` or ``"none"``. (default: ``"holm"``)
        seed (int, np.random.Generator or torch.Generator, optional): (default: ``0``)
        method (str, optional): ``"permutation"`` (the shuffles above), ``"exact"`` or ``"normal"``, the
            same null without shuffling. An agent with ``d`` of the ``E`` edges receives a sum of ``d`` of the
            weights. ``"exact"`` draws them with replacement (for ``d << E`` the shuffle's draw without
            replacement) and computes the sum's tail exactly, by convolving the weights' histogram ``d``
            times on a lattice of :data:`HUB_LATTICE` levels between 0 and the largest weight (the observed
            weights are rounded to the same lattice, so ``p`` is exact for the rounded statistic): its tail
            is right where Holm over ``N`` agents looks, ``p ~ alpha / N``. ``"normal"`` takes the normal
            tail with the null's exact mean :math:`d \mu` and variance :math:`d \sigma^2 (E - d) / (E - 1)`;
            the sum of a few skewed weights is not normal far in its tail, and at ``N = 100,000`` (Holm
            looks at ``p ~ 5e-7``) it flags hubs in random attention (``benchmarks/hub_null.py``): kept
            for comparison. Both are what large populations need: Holm over ``N`` agents needs
            ``K >= N / alpha`` shuffles, 20,000 at ``N = 1,000``. (default: ``"permutation"``)

    Returns:
        dict[int, dict[str, float]]: per agent ``"attention_received"``, ``"null_mean"``,
        ``"null_std"``, ``"z"``, ``"p_value"`` and ``"p_adjusted"``.

    Example:
        >>> g = nx.DiGraph([(0, 1, {"weight": 0.5}), (1, 0, {"weight": 0.5})])
        >>> hub_statistics(g, num_shuffles=9)[0]["p_value"]
        1.0
        >>> normal, exact = (hub_statistics(g, method=m)[0]["p_value"] for m in ("normal", "exact"))
        >>> round(normal, 9), round(exact, 9)  # the exact tail goes through an FFT: equal to rounding
        (1.0, 1.0)
    """
    _check_method(method)
    adjust_p_values([], correction)  # checks the name before the (possibly slow) null
    rng = _rng(seed) if method == "permutation" else None
    nodes, src, _, w = _edge_arrays(graph)
    return _hub_tests(nodes, src, w, method, num_shuffles, correction, rng)


def pair_hub_statistics(
    speakers: ArrayLike,
    weights: ArrayLike,
    num_agents: int,
    *,
    num_shuffles: int = HUB_SHUFFLES,
    correction: Correction = "holm",
    seed: SeedLike = 0,
    method: str = "exact",
) -> dict[int, dict[str, float]]:
    """:func:`hub_statistics` of the attention graph given as arrays, one entry per ``speaker -> listener`` pair
    (no networkx graph: at ``N = 100,000`` it holds millions of edges).

    Args:
        speakers: ``[P]`` the speaker (agent id in ``[0, num_agents)``) of each pair.
        weights: ``[P]`` its weight (the pair's mean attention), finite and non-negative.
        num_agents (int): agents ``0..num_agents-1``, each tested (an agent without a pair gets ``p = 1``).
        num_shuffles, correction, seed, method: as for :func:`hub_statistics`. (default method: ``"exact"``)

    Example:
        >>> round(pair_hub_statistics([0, 1], [0.5, 0.5], 2)[1]["p_value"], 9)  # an FFT: 1 to rounding
        1.0
    """
    _check_method(method)
    adjust_p_values([], correction)
    num_agents = _check_positive_int(num_agents, "num_agents", minimum=0)
    src = _as_int_array(speakers, "speakers").reshape(-1)
    w = _as_float_array(weights, "weights").reshape(-1)
    if src.shape != w.shape:
        raise ValueError(f"speakers and weights must have the same length, got {src.size} and {w.size}")
    if src.size and (int(src.min()) < 0 or int(src.max()) >= num_agents):
        raise ValueError(f"speakers must be agent ids in [0, num_agents={num_agents}), got [{src.min()}, {src.max()}]")
    if w.size and (not np.all(np.isfinite(w)) or float(w.min()) < 0.0):
        raise ValueError("weights must be finite and non-negative")
    rng = _rng(seed) if method == "permutation" else None
    return _hub_tests(list(range(num_agents)), src, w, method, num_shuffles, correction, rng)


HUB_METHODS = ("permutation", "exact", "normal")
HUB_LATTICE = 1024
"""Levels of the lattice (0 to the largest weight) on which ``method="exact"`` rounds the weights: a weight moves
by at most 1/2046 of the largest. Fewer when an agent has so many edges that the convolution would pass
:data:`HUB_LATTICE_MAX_POINTS` points."""
HUB_LATTICE_MAX_POINTS = 2**23


def _check_method(method: str) -> None:
    if method not in HUB_METHODS:
        raise ValueError(f"method must be one of {list(HUB_METHODS)}, got {method!r}")


def _hub_tests(
    nodes: list[int],
    src: np.ndarray,
    w: np.ndarray,
    method: str,
    num_shuffles: int,
    correction: Correction,
    rng: np.random.Generator | None,
) -> dict[int, dict[str, float]]:
    """The hub test of :func:`hub_statistics` on edge arrays (speaker index into ``nodes``, weight)."""
    if not nodes:
        return {}
    n = len(nodes)
    observed = np.bincount(src, weights=w, minlength=n)
    if method == "permutation":
        K = _check_positive_int(num_shuffles, "num_shuffles")
        null = np.stack([np.bincount(src, weights=w[rng.permutation(w.size)], minlength=n) for _ in range(K)])
        tests = [PermutationResult.from_null(observed[k], null[:, k]) for k in range(n)]
        return _per_agent(nodes, "attention_received", tests, correction)
    E = w.size
    degree = np.bincount(src, minlength=n)
    mean = degree * (w.mean() if E else 0.0)
    var = degree * (w.var() if E else 0.0) * (E - degree) / max(E - 1, 1)
    std = np.sqrt(np.maximum(var, 0.0))
    z = np.where(std > 0, (observed - mean) / np.where(std > 0, std, 1.0), 0.0)
    if method == "exact":
        p = _lattice_tail(src, w, degree)
    else:
        tol = TIE_TOLERANCE * np.maximum(1.0, np.abs(observed))
        normal_tail = 0.5 * np.vectorize(math.erfc)(z / math.sqrt(2.0)) if n else z
        p = np.where(std > 0, normal_tail, np.where(observed <= mean + tol, 1.0, 0.0))
    tests = [PermutationResult(*values) for values in zip(observed, mean, std, z, p)]
    return _per_agent(nodes, "attention_received", tests, correction)


def _lattice_tail(src: np.ndarray, w: np.ndarray, degree: np.ndarray) -> np.ndarray:
    """Per speaker, ``P(S >= s_obs)`` for ``S`` the sum of ``degree`` weights drawn with replacement from ``w``,
    exactly, on the lattice of :data:`HUB_LATTICE` levels (``[N]``; 1 for an agent without edges).

    The distribution of ``S`` is the histogram's ``d``-fold convolution, one FFT per distinct degree; float64
    round-off leaves its tail accurate to about ``1e-12``, far below the ``alpha / N`` Holm needs."""
    p = np.ones(degree.size)
    top = float(w.max()) if w.size else 0.0
    if top <= 0.0:  # every weight 0: no agent receives more than another
        return p
    levels = int(max(16, min(HUB_LATTICE, HUB_LATTICE_MAX_POINTS // max(int(degree.max()), 1))))
    q = np.rint(w * ((levels - 1) / top)).astype(np.int64)  # [E] lattice levels
    observed = np.rint(np.bincount(src, weights=q, minlength=degree.size)).astype(np.int64)  # [N]
    pmf = np.bincount(q, minlength=levels) / q.size  # [levels] one weight
    for d in np.unique(degree[degree > 0]).tolist():
        size = d * (levels - 1) + 1  # S takes 0..d*(levels-1)
        fft_size = 1 << (size - 1).bit_length()
        spectrum = np.fft.rfft(pmf, fft_size) ** d
        sum_pmf = np.clip(np.fft.irfft(spectrum, fft_size)[:size], 0.0, None)
        tail = np.cumsum(sum_pmf[::-1])[::-1]  # tail[s] = P(S >= s)
        agents = np.flatnonzero(degree == d)
        p[agents] = np.minimum(tail[observed[agents]], 1.0)
    return p


def detect_hubs(
    graph: nx.DiGraph,
    *,
    num_shuffles: int | None = None,
    alpha: float = 0.05,
    correction: Correction = "holm",
    seed: SeedLike = 0,
) -> list[int]:
    r"""Agents whose ``attention_received`` is significantly above the weight-shuffle null.

    An agent is a hub when its corrected p-value from :func:`hub_statistics` is ``<= alpha``.
    Uniform attention (all weights equal) gives ``p = 1`` for everyone and hence no hub.

    Args:
        graph (networkx.DiGraph): weighted ``speaker -> listener`` graph.
        num_shuffles (int, optional): size of the null; ``None`` takes :data:`HUB_SHUFFLES` or, if
            more, the fewest with which a corrected p-value can reach ``alpha``
            (:func:`gnncomm.metrics.stats.min_permutations`). (default: ``None``)
        alpha (float, optional): family-wise significance level in ``(0, 1)``. (default: ``0.05``)
        correction (str, optional): ``"holm"``, ``"bonferroni"`` or ``"none"``. (default: ``"holm"``)
        seed (int, np.random.Generator or torch.Generator, optional): (default: ``0``)

    Returns:
        list[int]: sorted agent ids.

    Example:
        >>> g = nx.DiGraph()
        >>> for r in range(1, 8):  # everyone listens mostly to agent 0
        ...     for s in range(8):
        ...         if s != r:
        ...             g.add_edge(s, r, weight=0.7 if s == 0 else 0.05)
        >>> detect_hubs(g)
        [0]
    """
    a = _check_probability(alpha, "alpha", open_low=True, open_high=True)
    K = _num_shuffles(num_shuffles, HUB_SHUFFLES, graph, a, correction)
    tests = hub_statistics(graph, num_shuffles=K, correction=correction, seed=seed)
    return sorted(node for node, t in tests.items() if t["p_adjusted"] <= a)


def attention_relay_statistics(
    graph: nx.DiGraph,
    *,
    num_shuffles: int = ATTENTION_RELAY_SHUFFLES,
    correction: Correction = "holm",
    seed: SeedLike = 0,
) -> dict[int, dict[str, float]]:
    r"""Per-agent ``betweenness`` against the degree-preserving weight-shuffle null of the hubs.

    Every shuffle permutes the edge weights over the existing edges and recomputes every agent's
    networkx betweenness (edge length ``1 / weight``). An agent that lies on many paths only
    because of the topology (a cut vertex, the centre of a star) keeps its betweenness under the
    shuffle and is no attention relay; an attention relay lies on the short paths because strong attention runs through
    it. The p-values are :func:`gnncomm.metrics.stats.p_value`, corrected across agents.

    Cost: one betweenness per shuffle, :math:`O(N E \log N)` in Python; about 0.5 ms for 10 agents
    and 10 to 40 ms for 50 agents (sparse to complete graphs), per shuffle.

    Args:
        graph (networkx.DiGraph): weighted ``speaker -> listener`` graph.
        num_shuffles (int, optional): size ``K`` of the null; the smallest p-value is
            ``1 / (K + 1)``. (default: :data:`ATTENTION_RELAY_SHUFFLES`)
        correction (str, optional): ``"holm"``, ``"bonferroni"`` or ``"none"``. (default: ``"holm"``)
        seed (int, np.random.Generator or torch.Generator, optional): (default: ``0``)

    Returns:
        dict[int, dict[str, float]]: per agent ``"betweenness"``, ``"null_mean"``, ``"null_std"``,
        ``"z"``, ``"p_value"`` and ``"p_adjusted"``.

    Example:
        >>> chain = nx.DiGraph([(0, 1), (1, 2)])  # 1 is on every path whatever the weights
        >>> attention_relay_statistics(chain, num_shuffles=9)[1]["p_value"]
        1.0
    """
    return _weight_shuffle_tests(graph, "betweenness", _betweenness, num_shuffles, correction, seed)


def detect_attention_relays(
    graph: nx.DiGraph,
    *,
    num_shuffles: int | None = None,
    alpha: float = 0.05,
    correction: Correction = "holm",
    seed: SeedLike = 0,
) -> list[int]:
    r"""Agents on significantly more strong-attention paths than the weight-shuffle null gives them.

    An agent is an attention relay when its betweenness is positive (it both listens and is listened to, on
    some shortest path between two others) and its corrected p-value from
    :func:`attention_relay_statistics` is ``<= alpha``. Uniform attention gives ``p = 1`` for everyone and
    hence no attention relay.

    Args:
        graph (networkx.DiGraph): weighted ``speaker -> listener`` graph.
        num_shuffles (int, optional): size of the null; ``None`` takes :data:`ATTENTION_RELAY_SHUFFLES` or, if
            more, the fewest with which a corrected p-value can reach ``alpha``
            (:func:`gnncomm.metrics.stats.min_permutations`). (default: ``None``)
        alpha (float, optional): family-wise significance level in ``(0, 1)``. (default: ``0.05``)
        correction (str, optional): ``"holm"``, ``"bonferroni"`` or ``"none"``. (default: ``"holm"``)
        seed (int, np.random.Generator or torch.Generator, optional): (default: ``0``)

    Returns:
        list[int]: sorted agent ids.

    Example:
        >>> ring = nx.DiGraph(nx.cycle_graph(6))  # uniform weights: nobody stands out
        >>> detect_attention_relays(ring)
        []
    """
    a = _check_probability(alpha, "alpha", open_low=True, open_high=True)
    K = _num_shuffles(num_shuffles, ATTENTION_RELAY_SHUFFLES, graph, a, correction)
    tests = attention_relay_statistics(graph, num_shuffles=K, correction=correction, seed=seed)
    return sorted(node for node, t in tests.items() if t["betweenness"] > 0.0 and t["p_adjusted"] <= a)
