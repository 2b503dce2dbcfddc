"""Known-answer tests for gnncomm.metrics."""
from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch

from gnncomm import metrics as M

# ---------------------------------------------------------------------------
# Fixtures: hand-built languages
# ---------------------------------------------------------------------------
N_VALUES = 5


@pytest.fixture
def grid_attributes() -> np.ndarray:
    """All 25 meanings of 2 attributes with 5 values each."""
    return np.array(list(itertools.product(range(N_VALUES), repeat=2)))  # [25, 2]


def _random_language(seed: int, S: int = 2000, A: int = 2, M_: int = 3, V: int = 10):
    rng = np.random.default_rng(seed)
    attrs = rng.integers(0, N_VALUES, size=(S, A))
    msgs = rng.integers(0, V, size=(S, M_))
    return attrs, msgs


def _levenshtein(a, b) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


# ---------------------------------------------------------------------------
# Compositional / random / constant languages
# ---------------------------------------------------------------------------
def test_compositional_language_scores_one(grid_attributes):
    msgs = grid_attributes + 1  # position j = attribute j + 1, shared symbols 1..5
    assert M.topographic_similarity(
        grid_attributes, msgs, meaning_metric="hamming", message_metric="hamming"
    ) == pytest.approx(1.0)
    assert M.posdis(grid_attributes, msgs, vocab_size=6) == pytest.approx(1.0)
    # Shared symbols make each symbol's count symmetric in the two attributes,
    # so the bag of symbols cannot tell them apart: bosdis is exactly 0.
    assert M.bosdis(grid_attributes, msgs, vocab_size=6) == pytest.approx(0.0, abs=1e-12)

    disjoint = np.stack([grid_attributes[:, 0] + 1, grid_attributes[:, 1] + 6], axis=1)
    assert M.bosdis(grid_attributes, disjoint, vocab_size=11) == pytest.approx(1.0)
    assert M.posdis(grid_attributes, disjoint) == pytest.approx(1.0)
    # With disjoint symbol sets per position, edit distance equals Hamming distance.
    assert M.topographic_similarity(
        grid_attributes, disjoint, meaning_metric="hamming", message_metric="edit"
    ) == pytest.approx(1.0)


def test_holistic_language_has_low_posdis(grid_attributes):
    # Each message position encodes both attributes jointly (a + 5 b as 2 digits
    # of a different base), so neither attribute dominates any position.
    code = grid_attributes[:, 0] * N_VALUES + grid_attributes[:, 1]  # 0..24
    msgs = np.stack([code % 7, code // 7], axis=1)
    assert M.posdis(grid_attributes, msgs) < 0.5
    assert M.posdis(grid_attributes, grid_attributes + 1) == pytest.approx(1.0)


def test_posdis_single_attribute_guard():
    attrs = np.arange(8)[:, None] % 4  # A == 1
    msgs = np.stack([attrs[:, 0] + 1, np.arange(8) % 2], axis=1)
    # Position 0 determines the attribute: gap = MI/H = 1; position 1 (parity of
    # the row) has MI(attr; parity) = 1 bit of H = 1 bit -> also 1 here.
    assert M.posdis(attrs, msgs) == pytest.approx(1.0)
    noise = np.stack([attrs[:, 0] + 1, np.arange(8) // 4], axis=1)  # position 1 ⟂ attr
    assert M.posdis(attrs, noise) == pytest.approx(0.5)


def test_random_language_scores_near_zero():
    attrs, msgs = _random_language(seed=123)
    topsim = M.topographic_similarity(attrs, msgs, meaning_metric="hamming", seed=0)
    assert abs(topsim) < 0.1
    assert abs(M.topographic_similarity(attrs, msgs, message_metric="edit", seed=1)) < 0.1
    assert abs(M.posdis(attrs, msgs, vocab_size=10)) < 0.1
    assert abs(M.bosdis(attrs, msgs, vocab_size=10)) < 0.1


def test_constant_language_is_finite_everywhere(grid_attributes):
    V = 8
    msgs = np.full((grid_attributes.shape[0], 4), 3)
    assert M.vocab_usage(msgs, V) == pytest.approx(1 / V)
    assert M.symbol_entropy(msgs, V) == 0.0
    per_pos = M.symbol_entropy(msgs, V, per_position=True)
    assert per_pos.shape == (4,) and np.all(per_pos == 0.0)
    values = [
        M.topographic_similarity(grid_attributes, msgs),
        M.topographic_similarity(grid_attributes, msgs, message_metric="edit"),
        M.topographic_similarity(grid_attributes, msgs, meaning_metric="cosine"),
        M.posdis(grid_attributes, msgs, V),
        M.bosdis(grid_attributes, msgs, V),
        M.entropy_bits(msgs),
        M.mutual_information(msgs[:, 0], grid_attributes[:, 0]),
    ]
    assert values == [0.0] * len(values)
    for r in (
        M.within_message_dependence(msgs, num_permutations=20),
        M.across_time_dependence(np.stack([msgs] * 5), num_permutations=20),
        M.temporal_dependence(msgs[:, 0], num_permutations=20),
    ):
        fields = [r.mi_bits, r.null_mean_bits, r.null_std_bits, r.z_score, r.p_value]
        assert all(math.isfinite(f) for f in fields)
        assert r.mi_bits == 0.0 and r.z_score == 0.0 and r.p_value == 1.0
    trans = M.symbol_transition_matrix(msgs, V, normalize=True)
    assert np.all(np.isfinite(trans)) and trans[3, 3] == 1.0 and trans.sum() == 1.0


def test_silence_only_language_bosdis_zero(grid_attributes):
    msgs = np.zeros((25, 3), dtype=np.int64)
    assert M.bosdis(grid_attributes, msgs, vocab_size=4) == 0.0
    assert M.vocab_usage(msgs, 4) == 0.25


# ---------------------------------------------------------------------------
# Vocabulary statistics
# ---------------------------------------------------------------------------
def test_vocab_usage_and_entropy_known_values():
    msgs = torch.tensor([[0, 1, 2, 3], [0, 1, 2, 3]])
    assert M.vocab_usage(msgs, 8) == 0.5
    assert M.symbol_entropy(msgs, 8) == pytest.approx(2.0)
    np.testing.assert_allclose(M.symbol_entropy(msgs, 8, per_position=True), np.zeros(4))
    # Leading dims are pooled: [T, S, M].
    batch = np.array([[[1, 2]], [[2, 1]]])
    np.testing.assert_allclose(M.symbol_entropy(batch, 3, per_position=True), [1.0, 1.0])
    # Uniform over V symbols -> log2 V.
    assert M.symbol_entropy(np.arange(16).reshape(4, 4), 16) == pytest.approx(4.0)


def test_symbol_transition_matrix_counts():
    msgs = np.array([[1, 2, 3], [1, 2, 2]])
    counts = M.symbol_transition_matrix(msgs, 4)
    expected = np.zeros((4, 4), dtype=np.int64)
    expected[1, 2] = 2
    expected[2, 3] = 1
    expected[2, 2] = 1
    np.testing.assert_array_equal(counts, expected)
    probs = M.symbol_transition_matrix(msgs, 4, normalize=True)
    np.testing.assert_allclose(probs[2], [0, 0, 0.5, 0.5])
    np.testing.assert_allclose(probs[0], 0.0)  # never-seen row stays 0


# ---------------------------------------------------------------------------
# Information theory
# ---------------------------------------------------------------------------
def test_mutual_information_identical_and_independent():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, size=5000)
    assert M.mutual_information(x, x) == pytest.approx(M.entropy_bits(x))
    assert M.mutual_information(x, (x * 7) % 6 + 10) == pytest.approx(M.entropy_bits(x))
    y = rng.integers(0, 6, size=5000)
    mi = M.mutual_information(x, y)
    assert 0.0 <= mi < 0.01
    mm = M.mutual_information(x, y, miller_madow=True)
    assert 0.0 <= mm < mi
    assert M.mutual_information(x, y) == pytest.approx(M.mutual_information(y, x))
    # Exact small case: X uniform on 4, Y = X // 2 -> I = H(Y) = 1 bit.
    assert M.mutual_information([0, 1, 2, 3], [0, 0, 1, 1]) == pytest.approx(1.0)


def test_entropy_bits_known_values():
    assert M.entropy_bits([0, 0, 1, 1]) == pytest.approx(1.0)
    assert M.entropy_bits([7] * 10) == 0.0
    assert M.entropy_bits([0, 1, 2, 3]) == pytest.approx(2.0)
    assert M.entropy_bits([0, 1], miller_madow=True) == pytest.approx(1.0 + 1 / (4 * math.log(2)))
    assert M.entropy_bits(np.array([[1, 2], [1, 2], [2, 1], [2, 1]])) == pytest.approx(1.0)


# ---------------------------------------------------------------------------
# Spearman / distances / pair sampling
# ---------------------------------------------------------------------------
def test_spearman_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(42)
    for trial in range(5):
        x = rng.normal(size=300)
        y = x + rng.normal(size=300) * (trial + 0.5)
        assert M.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
        xi = rng.integers(0, 5, size=300)  # heavy ties
        yi = xi + rng.integers(0, 3, size=300)
        assert M.spearman(xi, yi) == pytest.approx(stats.spearmanr(xi, yi).statistic, abs=1e-12)


def test_spearman_constant_is_zero_not_nan():
    assert M.spearman([1, 1, 1], [1, 2, 3]) == 0.0
    assert M.spearman([1.0], [2.0]) == 0.0


def test_edit_distance_matches_reference():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 3, size=(200, 6))
    b = rng.integers(0, 3, size=(200, 6))
    got = M.edit_distance(a, b)
    expected = [_levenshtein(x.tolist(), y.tolist()) for x, y in zip(a, b)]
    np.testing.assert_array_equal(got, expected)
    assert M.edit_distance([[1, 2, 3]], [[2, 3, 1]]).tolist() == [2]


def test_pair_sampling_is_distinct_and_valid():
    rng = np.random.default_rng(0)
    n = 3001
    i, j = M._pair_indices(n, 5000, rng)
    assert len(i) == 5000
    assert np.all(i < j) and np.all(i >= 0) and np.all(j < n)
    assert len(set(zip(i.tolist(), j.tolist()))) == 5000
    # All pairs at a small size, in condensed order.
    i, j = M._pair_indices(5, 100, rng)
    assert list(zip(i.tolist(), j.tolist())) == list(itertools.combinations(range(5), 2))
    # The inversion is exact: map every condensed index back for n = 50.
    n = 50
    total = n * (n - 1) // 2
    i, j = M._pair_indices(n, total - 1, np.random.default_rng(1))
    combos = set(itertools.combinations(range(n), 2))
    assert set(zip(i.tolist(), j.tolist())) <= combos


def test_topsim_subsampling_is_seeded():
    attrs, msgs = _random_language(seed=5, S=400)
    msgs = msgs.copy()
    msgs[:, 0] = attrs[:, 0]  # some structure so the value is not ~0
    kw = dict(meaning_metric="hamming", max_pairs=3000)
    a = M.topographic_similarity(attrs, msgs, seed=7, **kw)
    b = M.topographic_similarity(attrs, msgs, seed=7, **kw)
    c = M.topographic_similarity(attrs, msgs, seed=8, **kw)
    full = M.topographic_similarity(attrs, msgs, meaning_metric="hamming", max_pairs=10**6)
    assert a == b
    assert a != c
    assert abs(a - full) < 0.05
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert M.topographic_similarity(attrs, msgs, seed=g1, **kw) == M.topographic_similarity(
        attrs, msgs, seed=g2, **kw
    )


def test_topsim_metrics_with_float_meanings():
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(200, 3))
    # Message = quantised first latent coordinate: monotone in |dx0|.
    msgs = np.digitize(latent[:, :1], [-1, -0.3, 0.3, 1])
    for metric in ("euclidean", "cosine"):
        val = M.topographic_similarity(latent, msgs, meaning_metric=metric)
        assert 0.1 < val <= 1.0
    assert M.topographic_similarity(latent[:, :1], msgs) > 0.5
    noise = rng.integers(0, 5, size=(200, 1))
    assert abs(M.topographic_similarity(latent[:, :1], noise)) < 0.1
    # Zero vectors under cosine do not produce NaN.
    z = np.zeros((4, 2))
    z[0] = [1.0, 0.0]
    assert math.isfinite(M.topographic_similarity(z, [[0], [1], [1], [2]], meaning_metric="cosine"))


# ---------------------------------------------------------------------------
# Temporal dependence
# ---------------------------------------------------------------------------
def test_planted_transitions_beat_null_iid_does_not():
    rng = np.random.default_rng(11)
    V, S, L = 8, 300, 5
    f = rng.permutation(V)  # s_{j+1} = f(s_j)
    planted = np.empty((S, L), dtype=np.int64)
    planted[:, 0] = rng.integers(0, V, size=S)
    for j in range(1, L):
        planted[:, j] = f[planted[:, j - 1]]
    r = M.within_message_dependence(planted, num_permutations=200, seed=0)
    assert r.p_value < 0.05 and r.p_value == pytest.approx(1 / 201)
    assert r.z_score > 10
    assert r.mi_bits == pytest.approx(M.entropy_bits(planted[:, :-1].ravel()), abs=1e-9)

    iid = rng.integers(0, V, size=(S, L))
    r0 = M.within_message_dependence(iid, num_permutations=200, seed=0)
    assert r0.p_value > 0.05
    assert r0 == M.within_message_dependence(iid, num_permutations=200, seed=0)  # deterministic

    # Plain sequence form: a_{t+1} = f(a_t) vs i.i.d.
    seq = np.empty(400, dtype=np.int64)
    seq[0] = 1
    for t in range(1, 400):
        seq[t] = f[seq[t - 1]] if rng.random() < 0.8 else rng.integers(0, V)
    assert M.temporal_dependence(seq, num_permutations=200, seed=1).p_value < 0.05
    iid_seq = rng.integers(0, V, 400)
    assert M.temporal_dependence(iid_seq, num_permutations=200, seed=1).p_value > 0.05


def test_across_time_dependence():
    rng = np.random.default_rng(2)
    T, S, L, V = 30, 20, 3, 4
    msgs = np.empty((T, S, L), dtype=np.int64)
    msgs[0] = rng.integers(0, V, size=(S, L))
    for t in range(1, T):
        msgs[t] = (msgs[t - 1] + 1) % V  # next message is a function of the previous one
    r = M.across_time_dependence(msgs, num_permutations=100, seed=0)
    assert r.p_value < 0.05
    iid = rng.integers(0, V, size=(T, S, L))
    assert M.across_time_dependence(iid, num_permutations=100, seed=0).p_value > 0.05


# ---------------------------------------------------------------------------
# Attention graphs
# ---------------------------------------------------------------------------
def _complete_edge_index(n: int) -> np.ndarray:
    pairs = [(s, r) for r in range(n) for s in range(n) if s != r]
    return np.array(pairs, dtype=np.int64).T  # [2, E] sender, receiver


def _star_attention(n: int = 6, hub: int = 3, focus: float = 0.8):
    ei = _complete_edge_index(n)
    alpha = np.empty(ei.shape[1])
    for e, (s, r) in enumerate(ei.T):
        if r == hub:
            alpha[e] = 1 / (n - 1)
        else:
            alpha[e] = focus if s == hub else (1 - focus) / (n - 2)
    return ei, alpha


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


def test_star_attention_flags_hub_three():
    ei, alpha = _star_attention()
    g = M.attention_graph(ei, alpha, 6)
    assert M.detect_hubs(g, seed=0) == [3]
    stats = M.hub_statistics(g, seed=0)
    assert stats[3]["p_adjusted"] <= 0.05
    assert all(stats[a]["p_value"] > 0.5 for a in stats if a != 3)
    assert stats[3]["strength"] == pytest.approx(4.0)
    # Deterministic given the seed.
    assert M.hub_statistics(g, seed=0) == stats
    # Same hub when the edges come from many episodes of a dynamic topology.
    ei2 = np.concatenate([ei, ei + 6], axis=1)
    g2 = M.attention_graph(ei2, np.concatenate([alpha, alpha]), 12, node_ids=np.arange(12) % 6)
    assert M.detect_hubs(g2, correction="bonferroni") == [3]


def test_uniform_attention_has_no_hub():
    ei = _complete_edge_index(6)
    g = M.attention_graph(ei, np.full(ei.shape[1], 0.2), 6)
    assert M.detect_hubs(g) == []
    assert M.detect_hubs(g, direction="in") == []
    assert all(s["p_value"] == 1.0 for s in M.hub_statistics(g).values())
    # Softmax-uniform attention on an irregular graph (a star topology) has no hub either.
    star = nx.DiGraph()
    for leaf in range(1, 6):
        star.add_edge(0, leaf, weight=1.0)  # each leaf listens only to 0
        star.add_edge(leaf, 0, weight=0.2)  # 0 listens to 5 leaves uniformly
    assert M.detect_hubs(star) == []


def _bridge_graph() -> nx.DiGraph:
    """Clusters {0,1,2} and {4,5,6}, joined only through agent 3."""
    g = nx.DiGraph()
    for cluster in ((0, 1, 2), (4, 5, 6)):
        for u, v in itertools.permutations(cluster, 2):
            g.add_edge(u, v, weight=0.5)
    for u, v in ((2, 3), (3, 2), (3, 4), (4, 3)):
        g.add_edge(u, v, weight=0.5)
    return g


def test_bridge_relay_is_flagged():
    g = _bridge_graph()
    assert M.detect_relays(g) == [3]
    c = M.centrality(g)
    assert c[3]["betweenness"] > c[2]["betweenness"] > c[0]["betweenness"] == 0.0
    # A pure sink on the bridge position passes nothing on, so it is no relay
    # (its neighbours 2 and 4 now carry the most paths).
    g.remove_edges_from([(3, 2), (3, 4)])
    assert M.centrality(g)[3]["betweenness"] == 0.0
    assert M.detect_relays(g) == [2, 4]
    # A symmetric ring has no agent that stands out.
    assert M.detect_relays(nx.DiGraph(nx.cycle_graph(6))) == []


def test_centrality_matches_networkx():
    pytest.importorskip("scipy")  # nx.pagerank uses scipy
    rng = np.random.default_rng(0)
    g = nx.gnp_random_graph(12, 0.3, seed=1, directed=True)
    for u, v in g.edges():
        g[u][v]["weight"] = float(rng.uniform(0.05, 1.0))
    g.add_node(99)  # isolated agent (dangling)
    c = M.centrality(g)
    pr = nx.pagerank(g, weight="weight", tol=1e-12)
    infl = nx.pagerank(g.reverse(copy=True), weight="weight", tol=1e-12)
    h = g.copy()
    for u, v in h.edges():
        h[u][v]["length"] = 1 / h[u][v]["weight"]
    btw = nx.betweenness_centrality(h, weight="length")
    for node in g.nodes():
        assert c[node]["pagerank"] == pytest.approx(pr[node], abs=1e-8)
        assert c[node]["influence"] == pytest.approx(infl[node], abs=1e-8)
        assert c[node]["betweenness"] == pytest.approx(btw[node])
        assert c[node]["in_strength"] == pytest.approx(g.in_degree(node, weight="weight"))
        assert c[node]["out_strength"] == pytest.approx(g.out_degree(node, weight="weight"))
    assert M.centrality(nx.DiGraph()) == {}


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------
def test_bad_inputs_name_the_parameter(grid_attributes):
    msgs = grid_attributes + 1
    with pytest.raises(ValueError, match="vocab_size"):
        M.vocab_usage(msgs, 1)
    with pytest.raises(ValueError, match="vocab_size"):
        M.symbol_entropy(msgs, 0)
    with pytest.raises(ValueError, match="vocab_size"):
        M.bosdis(grid_attributes, msgs, vocab_size=1)
    with pytest.raises(ValueError, match="vocab_size"):
        M.vocab_usage(msgs, 3)  # symbols up to 5 are out of range
    with pytest.raises(ValueError, match="y"):
        M.mutual_information([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="messages"):
        M.topographic_similarity(grid_attributes, msgs[:-1])
    with pytest.raises(ValueError, match="messages"):
        M.posdis(grid_attributes, msgs[:-1])
    with pytest.raises(ValueError, match="seq_b"):
        M.temporal_dependence([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="meanings"):
        M.topographic_similarity(grid_attributes[:, 0], msgs)
    with pytest.raises(ValueError, match="messages"):
        M.topographic_similarity(grid_attributes, msgs[:, 0])
    with pytest.raises(ValueError, match="attributes"):
        M.posdis(grid_attributes[:, 0], msgs)
    with pytest.raises(ValueError, match="messages"):
        M.across_time_dependence(msgs)
    with pytest.raises(ValueError, match="messages"):
        M.within_message_dependence(msgs[:, :1])
    with pytest.raises(ValueError, match="edge_index"):
        M.attention_graph([0, 1], [0.5, 0.5], 2)
    with pytest.raises(ValueError, match="edge_index"):
        M.attention_graph([[0], [5]], [0.5], 2)
    with pytest.raises(ValueError, match="alpha"):
        M.attention_graph([[0], [1]], [0.5, 0.5], 2)
    with pytest.raises(ValueError, match="node_ids"):
        M.attention_graph([[0], [1]], [0.5], 2, node_ids=[0])
    with pytest.raises(ValueError, match="meaning_metric"):
        M.topographic_similarity(grid_attributes, msgs, meaning_metric="manhattan")
    with pytest.raises(ValueError, match="max_pairs"):
        M.topographic_similarity(grid_attributes, msgs, max_pairs=0)
    with pytest.raises(ValueError, match="num_permutations"):
        M.temporal_dependence([0, 1, 0], num_permutations=0)
    with pytest.raises(ValueError, match="alpha"):
        M.detect_hubs(_bridge_graph(), alpha=1.5)
    with pytest.raises(ValueError, match="quantile"):
        M.detect_relays(_bridge_graph(), quantile=1.0)
    with pytest.raises(ValueError, match="messages"):
        M.vocab_usage([[0.5, 1.0]], 4)  # non-integer symbol ids
    with pytest.raises(ValueError, match="seed"):
        M.temporal_dependence([0, 1, 0], seed=-1)


def test_metrics_module_does_not_import_scipy():
    # Load the file directly so other package modules cannot pull scipy in.
    path = Path(M.__file__)
    code = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("metrics_only", {str(path)!r})
m = importlib.util.module_from_spec(spec); sys.modules["metrics_only"] = m
spec.loader.exec_module(m)
import networkx as nx, numpy as np
g = nx.DiGraph([(0, 1, {{"weight": 0.5}}), (1, 2, {{"weight": 0.7}})])
m.centrality(g); m.detect_hubs(g, num_shuffles=5); m.detect_relays(g)
x = np.arange(20).reshape(10, 2) % 3
m.topographic_similarity(x, x); m.posdis(x, x); m.within_message_dependence(x, num_permutations=3)
print("scipy" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
