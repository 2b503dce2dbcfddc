"""gnncomm.metrics.graph: attention graphs, centrality names and orientation, hubs and attention relays against the
null, graph betweenness."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
import torch

from gnncomm import metrics as M

CENTRALITY_KEYS = {"attention_received", "attention_paid", "pagerank", "betweenness"}


def _complete_edge_index(n: int) -> np.ndarray:
    pairs = [(s, r) for r in range(n) for s in range(n) if s != r]
    return np.array(pairs, dtype=np.int64).T  # [2, E] speaker, listener


def _star_attention(n: int = 6, hub: int = 3, focus: float = 0.8):
    ei = _complete_edge_index(n)
    alpha = np.empty(ei.shape[1])
    for e, (s, r) in enumerate(ei.T):
        if r == hub:
            alpha[e] = 1 / (n - 1)
        else:
            alpha[e] = focus if s == hub else (1 - focus) / (n - 2)
    return ei, alpha


def _bridge_graph() -> nx.DiGraph:
    """Clusters {0,1,2} and {4,5,6}, joined only through agent 3, uniform attention."""
    g = nx.DiGraph()
    for cluster in ((0, 1, 2), (4, 5, 6)):
        for u, v in itertools.permutations(cluster, 2):
            g.add_edge(u, v, weight=0.5)
    for u, v in ((2, 3), (3, 2), (3, 4), (4, 3)):
        g.add_edge(u, v, weight=0.5)
    return g


def _barbell(cross: float) -> nx.DiGraph:
    """Cliques {0..3} and {6..9} joined by the path 3 - 4 - 5 - 6 whose edges carry strong attention (0.9),
    clique edges 0.3, and (if ``cross > 0``) weak direct edges between every pair of the two cliques."""
    g = nx.DiGraph()
    A, B = (0, 1, 2, 3), (6, 7, 8, 9)
    for clique in (A, B):
        for u, v in itertools.permutations(clique, 2):
            g.add_edge(u, v, weight=0.3)
    for u, v in ((3, 4), (4, 5), (5, 6)):
        g.add_edge(u, v, weight=0.9)
        g.add_edge(v, u, weight=0.9)
    if cross > 0:
        for a, b in itertools.product(A, B):
            g.add_edge(a, b, weight=cross)
            g.add_edge(b, a, weight=cross)
    return g


# ---------------------------------------------------------------------------- attention graphs
def test_attention_graph_aggregates_by_agent_id_and_heads():
    # Two episodes of 3 agents; node_ids map 6 node indices to agents 0..2.
    ei = np.array([[0, 1, 3, 4, 3], [1, 2, 4, 5, 5]])
    alpha = np.array([[0.2, 0.4], [1.0, 1.0], [0.6, 0.8], [0.5, 0.5], [0.0, 0.2]])  # [E, H]
    ids = [0, 1, 2, 0, 1, 2]
    g = M.attention_graph(torch.as_tensor(ei), torch.as_tensor(alpha), 6, node_ids=ids)
    assert sorted(g.nodes()) == [0, 1, 2]
    assert g[0][1]["weight"] == pytest.approx((0.3 + 0.7) / 2) and g[0][1]["count"] == 2
    assert g[1][2]["weight"] == pytest.approx(0.75) and g[1][2]["count"] == 2
    assert g[0][2]["weight"] == pytest.approx(0.1) and g[0][2]["count"] == 1
    # Self loops are dropped by default, kept on request; isolated agents are kept.
    g2 = M.attention_graph([[0, 1], [0, 0]], [0.5, 0.5], 3)
    assert list(g2.edges()) == [(1, 0)] and sorted(g2.nodes()) == [0, 1, 2]
    g3 = M.attention_graph([[0, 1], [0, 0]], [0.5, 0.5], 3, keep_self_loops=True)
    assert sorted(g3.edges()) == [(0, 0), (1, 0)]
    assert M.attention_graph(np.zeros((2, 0), dtype=int), np.zeros(0), 2).number_of_edges() == 0


# ---------------------------------------------------------------------------- centrality: names and orientation
def test_centrality_names_and_orientation_on_three_agents():
    """Agent 0 is attended strongly by 1 and 2 (edges 0 -> 1, 0 -> 2: speaker -> listener)."""
    g = M.attention_graph([[0, 0, 2, 1], [1, 2, 1, 2]], [0.9, 0.8, 0.1, 0.2], 3)
    c = M.centrality(g)
    assert all(set(values) == CENTRALITY_KEYS for values in c.values())
    assert max(c, key=lambda a: c[a]["attention_received"]) == 0
    assert max(c, key=lambda a: c[a]["pagerank"]) == 0
    assert c[0]["attention_received"] == pytest.approx(0.9 + 0.8)
    assert c[0]["attention_paid"] == 0.0  # 0 listens to nobody
    assert c[2]["attention_paid"] == pytest.approx(0.8 + 0.2)  # 2 listens to 0 and 1
    assert sum(v["pagerank"] for v in c.values()) == pytest.approx(1.0)


def test_centrality_matches_networkx():
    rng = np.random.default_rng(0)
    g = nx.gnp_random_graph(12, 0.3, seed=1, directed=True)
    for u, v in g.edges():
        g[u][v]["weight"] = float(rng.uniform(0.05, 1.0))
    g.add_node(99)  # an isolated agent (dangling in the walk)
    c = M.centrality(g)
    pagerank = nx.pagerank(g.reverse(copy=True), weight="weight", tol=1e-12)
    h = g.copy()
    for u, v in h.edges():
        h[u][v]["length"] = 1 / h[u][v]["weight"]
    btw = nx.betweenness_centrality(h, weight="length")
    for node in g.nodes():
        assert c[node]["pagerank"] == pytest.approx(pagerank[node], abs=1e-8)
        assert c[node]["betweenness"] == pytest.approx(btw[node])
        assert c[node]["attention_received"] == pytest.approx(g.out_degree(node, weight="weight"))
        assert c[node]["attention_paid"] == pytest.approx(g.in_degree(node, weight="weight"))
    assert M.centrality(nx.DiGraph()) == {}


def test_a_pure_sink_has_no_betweenness():
    g = _bridge_graph()
    c = M.centrality(g)
    assert c[3]["betweenness"] > c[2]["betweenness"] > c[0]["betweenness"] == 0.0
    g.remove_edges_from([(3, 2), (3, 4)])  # 3 now only listens: it passes nothing on
    assert M.centrality(g)[3]["betweenness"] == 0.0


# ---------------------------------------------------------------------------- hubs
def test_star_attention_flags_hub_three():
    ei, alpha = _star_attention()
    g = M.attention_graph(ei, alpha, 6)
    assert M.detect_hubs(g, seed=0) == [3]
    stats = M.hub_statistics(g, seed=0)
    assert stats[3]["p_adjusted"] <= 0.05
    assert all(stats[a]["p_value"] > 0.5 for a in stats if a != 3)
    assert stats[3]["attention_received"] == pytest.approx(4.0)
    assert M.hub_statistics(g, seed=0) == stats  # deterministic given the seed
    # Same hub when the edges come from many episodes of a dynamic topology.
    ei2 = np.concatenate([ei, ei + 6], axis=1)
    g2 = M.attention_graph(ei2, np.concatenate([alpha, alpha]), 12, node_ids=np.arange(12) % 6)
    assert M.detect_hubs(g2, correction="bonferroni") == [3]


def test_uniform_attention_has_no_hub():
    ei = _complete_edge_index(6)
    g = M.attention_graph(ei, np.full(ei.shape[1], 0.2), 6)
    assert M.detect_hubs(g) == []
    assert all(s["p_value"] == 1.0 for s in M.hub_statistics(g).values())  # every shuffle ties: p = 1
    # Softmax-uniform attention on an irregular graph (a star topology) has no hub either.
    star = nx.DiGraph()
    for leaf in range(1, 6):
        star.add_edge(0, leaf, weight=1.0)  # each leaf listens only to 0
        star.add_edge(leaf, 0, weight=0.2)  # 0 listens to 5 leaves uniformly
    assert M.detect_hubs(star) == []


def test_hub_p_values_never_reach_zero():
    ei, alpha = _star_attention()
    stats = M.hub_statistics(M.attention_graph(ei, alpha, 6), num_shuffles=49)
    assert stats[3]["p_value"] == pytest.approx(1 / 50)
    assert min(s["p_adjusted"] for s in stats.values()) >= 1 / 50


def test_detect_hubs_takes_enough_shuffles_for_many_agents():
    """With 60 agents Holm needs K >= 60 / 0.05 - 1 shuffles before anyone can be flagged."""
    n = 60
    g = nx.DiGraph()
    for r in range(1, n):
        for s in range(n):
            if s != r:
                g.add_edge(s, r, weight=0.5 if s == 0 else 0.5 / (n - 2))
    assert M.detect_hubs(g, num_shuffles=500) == []  # too small a null: Holm cannot reach 0.05
    assert M.detect_hubs(g) == [0]


# ---------------------------------------------------------------------------- attention relays
def test_uniform_attention_on_a_symmetric_ring_has_no_attention_relay():
    ring = nx.DiGraph()
    for a in range(8):
        for b in ((a + 1) % 8, (a - 1) % 8):
            ring.add_edge(a, b, weight=0.5)
    assert M.detect_attention_relays(ring) == []
    assert all(s["p_value"] == 1.0 for s in M.attention_relay_statistics(ring).values())


def test_bridge_agents_carrying_strong_attention_are_attention_relays():
    g = _barbell(cross=0.02)
    assert M.detect_attention_relays(g) == [4, 5]
    stats = M.attention_relay_statistics(g)
    for a in (4, 5):
        assert stats[a]["betweenness"] > stats[a]["null_mean"] and stats[a]["p_value"] == pytest.approx(1 / 201)
    assert all(stats[a]["betweenness"] == 0.0 for a in (0, 1, 2, 7, 8, 9))


def test_agents_on_every_path_only_because_of_the_topology_are_no_attention_relays():
    """Without the weak cross edges the bridge is the only route: its betweenness does not depend on the
    weights, so the shuffle null reproduces it (p = 1). A uniform-attention bridge is no relay either."""
    assert M.detect_attention_relays(_barbell(cross=0.0)) == []
    assert M.attention_relay_statistics(_barbell(cross=0.0))[4]["p_value"] == 1.0
    assert M.detect_attention_relays(_bridge_graph()) == []


def test_random_attention_on_a_random_graph_has_no_attention_relay():
    found = []
    for seed in range(5):
        g = nx.gnp_random_graph(10, 0.4, seed=seed, directed=True)
        rng = np.random.default_rng(seed)
        for u, v in g.edges():
            g[u][v]["weight"] = float(rng.uniform(0.05, 1.0))
        found += M.detect_attention_relays(g, seed=0)
    assert found == []


def test_attention_relay_statistics_are_deterministic_given_the_seed():
    g = _barbell(cross=0.02)
    assert M.attention_relay_statistics(g, num_shuffles=20, seed=1) == M.attention_relay_statistics(
        g, num_shuffles=20, seed=1
    )
    assert M.attention_relay_statistics(g, num_shuffles=20, seed=1) != M.attention_relay_statistics(
        g, num_shuffles=20, seed=2
    )
    assert M.attention_relay_statistics(nx.DiGraph()) == {}


def test_graph_betweenness_counts_the_paths_the_topology_forces_through_each_agent():
    barbell = torch.tensor(list(nx.DiGraph(nx.barbell_graph(3, 0)).edges)).T  # cliques 0-2 and 3-5, bridge 2 - 3
    btw = M.graph_betweenness([barbell, barbell], 6)
    assert btw[2] == btw[3] > 0 and (btw[[0, 1, 4, 5]] == 0).all()
    two_episodes = torch.cat([barbell, barbell + 6], dim=1)
    np.testing.assert_allclose(M.graph_betweenness([two_episodes], 6), btw)  # a mean over episodes and steps
    assert M.graph_betweenness([], 4).tolist() == [0.0] * 4


# ---------------------------------------------------------------------------- bad input
def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="edge_index"):
        M.attention_graph([0, 1], [0.5, 0.5], 2)
    with pytest.raises(ValueError, match="edge_index"):
        M.attention_graph([[0], [5]], [0.5], 2)
    with pytest.raises(ValueError, match="alpha"):
        M.attention_graph([[0], [1]], [0.5, 0.5], 2)
    with pytest.raises(ValueError, match="alpha"):
        M.attention_graph([[0], [1]], [-0.5], 2)
    with pytest.raises(ValueError, match="node_ids"):
        M.attention_graph([[0], [1]], [0.5], 2, node_ids=[0])
    with pytest.raises(ValueError, match="alpha"):
        M.detect_hubs(_bridge_graph(), alpha=1.5)
    with pytest.raises(ValueError, match="alpha"):
        M.detect_attention_relays(_bridge_graph(), alpha=0.0)
    with pytest.raises(ValueError, match="num_shuffles"):
        M.attention_relay_statistics(_bridge_graph(), num_shuffles=0)
    with pytest.raises(ValueError, match="correction"):
        M.hub_statistics(_bridge_graph(), correction="fdr")
    with pytest.raises(TypeError, match="graph"):
        M.centrality(nx.Graph([(0, 1)]))
    with pytest.raises(ValueError, match="weight"):
        M.centrality(nx.DiGraph([(0, 1, {"weight": -1.0})]))


def test_the_normal_hub_null_has_the_permutation_nulls_moments_and_finds_the_same_hub():
    g = nx.DiGraph()
    rng = np.random.default_rng(0)
    for r in range(1, 12):
        for s in rng.choice([x for x in range(12) if x != r], size=4, replace=False):
            g.add_edge(int(s), r, weight=0.7 if s == 0 else float(rng.uniform(0.05, 0.15)))
    shuffled = M.hub_statistics(g, num_shuffles=4000, seed=1)
    normal = M.hub_statistics(g, method="normal")
    for a in g.nodes:
        assert normal[a]["null_mean"] == pytest.approx(shuffled[a]["null_mean"], rel=0.02, abs=1e-3)
        assert normal[a]["null_std"] == pytest.approx(shuffled[a]["null_std"], rel=0.1, abs=1e-3)
    hubs = lambda stats: sorted(a for a, t in stats.items() if t["p_adjusted"] <= 0.05)  # noqa: E731
    assert hubs(normal) == hubs(shuffled) == [0]


def test_hub_statistics_rejects_an_unknown_method():
    with pytest.raises(ValueError, match=r"method must be one of \['permutation', 'exact', 'normal'\], got 'saddle'"):
        M.hub_statistics(nx.DiGraph([(0, 1)]), method="saddle")


def test_the_exact_hub_null_agrees_with_the_shuffles_and_finds_the_same_hub():
    g = nx.DiGraph()
    rng = np.random.default_rng(0)
    for r in range(1, 12):
        for s in rng.choice([x for x in range(12) if x != r], size=4, replace=False):
            g.add_edge(int(s), r, weight=0.7 if s == 0 else float(rng.uniform(0.05, 0.15)))
    shuffled = M.hub_statistics(g, num_shuffles=4000, seed=1)
    exact = M.hub_statistics(g, method="exact")
    for a in g.nodes:  # with and without replacement differ a little at 44 edges; the shuffles' p is noisy too
        assert exact[a]["p_value"] == pytest.approx(shuffled[a]["p_value"], abs=0.05)
    hubs = lambda stats: sorted(a for a, t in stats.items() if t["p_adjusted"] <= 0.05)  # noqa: E731
    assert hubs(exact) == hubs(shuffled) == [0]


def test_the_exact_hub_tail_is_the_exact_tail_of_a_sum_of_weights_drawn_with_replacement():
    # weights 0 and 1 (on the lattice): a speaker of d edges receives Binomial(d, 1/4); speaker 0 received 3 of 3
    speakers = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    weights = [1.0, 1.0, 1.0] + [0.0] * 9
    stats = M.pair_hub_statistics(speakers, weights, 5, correction="none")
    assert stats[0]["p_value"] == pytest.approx(0.25**3, rel=1e-9)
    assert stats[1]["p_value"] == pytest.approx(1.0)  # P(S >= 0)
    assert stats[4]["p_value"] == 1.0 and stats[4]["attention_received"] == 0.0  # no edge: tested, never a hub


def test_pair_hub_statistics_match_hub_statistics_of_the_same_graph():
    rng = np.random.default_rng(3)
    g = nx.DiGraph()
    for s in range(30):
        for r in rng.choice(30, size=5, replace=False):
            if r != s:
                g.add_edge(s, int(r), weight=float(rng.uniform()))
    speakers = [u for u, _ in g.edges]
    weights = [w for _, _, w in g.edges(data="weight")]
    for method in ("exact", "normal"):
        assert M.pair_hub_statistics(speakers, weights, 30, method=method) == M.hub_statistics(g, method=method)
    assert M.pair_hub_statistics(speakers, weights, 30, method="permutation", seed=2) == M.hub_statistics(g, seed=2)


def test_pair_hub_statistics_reject_speakers_out_of_range_and_negative_weights():
    with pytest.raises(ValueError, match=r"speakers must be agent ids in \[0, num_agents=2\)"):
        M.pair_hub_statistics([0, 2], [0.5, 0.5], 2)
    with pytest.raises(ValueError, match="weights must be finite and non-negative"):
        M.pair_hub_statistics([0, 1], [0.5, -0.5], 2)
    with pytest.raises(ValueError, match="same length"):
        M.pair_hub_statistics([0, 1], [0.5], 2)
