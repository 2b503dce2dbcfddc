"""gnncomm.metrics.stats: the single permutation test, corrections, ranks, bins, pairs, stratified draws."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
import torch

from gnncomm import metrics
from gnncomm.metrics import stats


# ---------------------------------------------------------------------------- the one p-value
def test_p_value_is_one_plus_exceedances_over_one_plus_k_on_hand_made_nulls():
    null = np.array([0.1, 0.5, 0.9, 1.3, 2.0, -1.0, 0.7, 0.2, 3.0])  # K = 9
    for observed in (-5.0, 0.0, 0.6, 1.0, 2.5, 10.0):
        exceed = int((null >= observed).sum())
        assert stats.p_value(observed, null) == pytest.approx((1 + exceed) / (1 + null.size))


def test_ties_count_as_exceeding_even_with_float_noise():
    assert stats.p_value(1.0, [1.0, 1.0, 0.0, 0.0]) == pytest.approx(3 / 5)
    # The same sum in another order differs in the last bits: still a tie.
    observed = 0.1 + 0.2 + 0.3
    tied = 0.3 + 0.2 + 0.1
    assert observed != tied
    assert stats.p_value(observed, [tied]) == 1.0
    assert stats.p_value(1e6, [1e6 * (1 - 1e-14)]) == 1.0  # relative tolerance for large statistics
    assert stats.p_value(1.0, [1.0 - 1e-6]) == 0.5  # a real difference is no tie


def test_p_value_is_never_zero_and_at_most_one():
    K = 99
    assert stats.p_value(100.0, np.zeros(K)) == pytest.approx(1 / (K + 1))
    assert stats.p_value(-100.0, np.zeros(K)) == 1.0


def test_p_value_tests_several_statistics_at_once():
    null = np.array([[0.0, 5.0, 1.0], [2.0, 0.0, 1.0], [1.0, 1.0, 1.0]])  # [K=3, S=3]
    p = stats.p_value([1.0, 5.0, 1.0], null)
    np.testing.assert_allclose(p, [(1 + 2) / 4, (1 + 1) / 4, (1 + 3) / 4])
    with pytest.raises(ValueError, match="null"):
        stats.p_value([1.0, 2.0], np.zeros((4, 3)))
    with pytest.raises(ValueError, match="null"):
        stats.p_value(1.0, [])
    with pytest.raises(ValueError, match="null"):
        stats.p_value(1.0, [0.0, float("nan")])


def test_permutation_result_summarises_a_null():
    r = stats.PermutationResult.from_null(3.0, [1.0, 2.0, 3.0])
    assert (r.value, r.null_mean, r.p_value) == (3.0, 2.0, 0.5)
    assert r.null_std == pytest.approx(np.std([1.0, 2.0, 3.0]))
    assert r.z == pytest.approx((3.0 - 2.0) / r.null_std)
    degenerate = stats.PermutationResult.from_null(2.0, [2.0, 2.0])
    assert degenerate.z == 0.0 and degenerate.p_value == 1.0  # a constant null: z is 0, not inf or NaN
    with pytest.raises(AttributeError):
        r.value = 0.0  # frozen


def test_permutation_test_runs_the_statistic_on_each_draw():
    rng = np.random.default_rng(0)
    x = np.arange(30.0)
    y = x + rng.normal(size=30)
    r = stats.permutation_test(
        lambda i: stats.spearman(x, y[i]), lambda: rng.permutation(30), 199, identity=np.arange(30)
    )
    assert r.value == pytest.approx(stats.spearman(x, y)) and r.p_value == pytest.approx(1 / 200)
    calls = []
    draws = iter([np.array([1, 0]), np.array([0, 1]), np.array([1, 0])])
    r = stats.permutation_test(
        lambda i: calls.append(i.tolist()) or float(i[0]), lambda: next(draws), 3, identity=np.array([0, 1])
    )
    assert calls == [[0, 1], [1, 0], [0, 1], [1, 0]]  # the identity first, then K draws
    assert r.value == 0.0 and r.p_value == 1.0
    with pytest.raises(ValueError, match="num_permutations"):
        stats.permutation_test(lambda i: 0.0, lambda: np.arange(2), 0, identity=np.arange(2))


def test_every_p_value_of_the_metrics_goes_through_the_single_p_value(monkeypatch):
    """Each public test of the package reports exactly what stats.p_value computed on its null."""
    seen: list[float] = []
    real = stats.p_value

    def spy(observed, null):
        p = real(observed, null)
        seen.append(p)
        return p

    monkeypatch.setattr(stats, "p_value", spy)
    rng = np.random.default_rng(0)
    msgs = rng.integers(0, 4, size=(6, 5, 3))
    calls = {
        "temporal_dependence": lambda: metrics.temporal_dependence(msgs[:, 0, 0].ravel(), num_permutations=5),
        "within_message_dependence": lambda: metrics.within_message_dependence(msgs, num_permutations=5),
        "across_time_dependence": lambda: metrics.across_time_dependence(msgs, num_permutations=5),
        "mutual_information_test": lambda: metrics.mutual_information_test(
            msgs[..., 0].ravel(), msgs[..., 1].ravel(), num_permutations=5
        ),
        "permutation_test": lambda: metrics.permutation_test(
            lambda i: float(i[0]), lambda: rng.permutation(3), 5, identity=np.arange(3)
        ),
    }
    for name, call in calls.items():
        p = call().p_value
        assert seen == [p], name
        seen.clear()
    g = nx.gnp_random_graph(5, 0.6, seed=0, directed=True)
    for u, v in g.edges():
        g[u][v]["weight"] = float(rng.uniform(0.1, 1.0))
    for fn in (metrics.hub_statistics, metrics.attention_relay_statistics):
        tests = fn(g, num_shuffles=5)
        assert [t["p_value"] for t in tests.values()] == seen, fn.__name__  # one call per agent, in order
        seen.clear()
    relays = metrics.relay_statistics(rng.normal(size=(4, 6)), num_permutations=5)  # both nulls at once, [N] each
    assert [s["p_zero"] for s in relays.values()] == seen[0].tolist()
    assert [s["p_others"] for s in relays.values()] == seen[1].tolist()


# ---------------------------------------------------------------------------- multiple testing
def test_holm_matches_the_step_down_definition():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(stats.holm(p), [0.03, 0.06, 0.06, 0.02])
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.uniform(size=7)
        adjusted = stats.holm(q)
        assert np.all(adjusted >= q) and np.all(adjusted <= np.minimum(1.0, 7 * q) + 1e-15)  # raw <= Holm <= Bonferroni
        order = np.argsort(q)
        assert np.all(np.diff(adjusted[order]) >= 0)  # monotone in the raw p-values


def test_adjust_p_values_offers_holm_bonferroni_and_none():
    p = [0.01, 0.2]
    np.testing.assert_allclose(stats.adjust_p_values(p, "holm"), [0.02, 0.2])
    np.testing.assert_allclose(stats.adjust_p_values(p, "bonferroni"), [0.02, 0.4])
    np.testing.assert_allclose(stats.adjust_p_values(p, "none"), p)
    with pytest.raises(ValueError, match="correction"):
        stats.adjust_p_values(p, "fdr")
    with pytest.raises(ValueError, match="p"):
        stats.holm([0.5, 1.5])


def test_min_permutations_is_the_fewest_that_can_reach_alpha():
    for m, alpha in ((1, 0.05), (10, 0.05), (50, 0.05), (7, 0.01), (3, 0.3)):
        K = stats.min_permutations(m, alpha)
        assert m / (K + 1) <= alpha < m / K
    with pytest.raises(ValueError, match="alpha"):
        stats.min_permutations(3, 1.0)
    with pytest.raises(ValueError, match="num_tests"):
        stats.min_permutations(0, 0.05)


# ---------------------------------------------------------------------------- ranks, Spearman, bins, pairs
def test_spearman_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(42)
    for trial in range(5):
        x = rng.normal(size=300)
        y = x + rng.normal(size=300) * (trial + 0.5)
        assert stats.spearman(x, y) == pytest.approx(scipy_stats.spearmanr(x, y).statistic, abs=1e-12)
        xi = rng.integers(0, 5, size=300)  # heavy ties
        yi = xi + rng.integers(0, 3, size=300)
        assert stats.spearman(xi, yi) == pytest.approx(scipy_stats.spearmanr(xi, yi).statistic, abs=1e-12)
        np.testing.assert_allclose(stats.rankdata(xi), scipy_stats.rankdata(xi))


def test_spearman_of_a_constant_is_zero_not_nan():
    assert stats.spearman([1, 1, 1], [1, 2, 3]) == 0.0
    assert stats.spearman([1.0], [2.0]) == 0.0
    with pytest.raises(ValueError, match="y"):
        stats.spearman([1, 2, 3], [1, 2])


def test_quantile_bins_are_balanced():
    x = np.random.default_rng(0).normal(size=(400, 3))
    bins = stats.quantile_bins(x, 4)
    assert bins.shape == (400, 3) and set(np.unique(bins)) == {0, 1, 2, 3}
    assert all(np.bincount(bins[:, f]).tolist() == [100] * 4 for f in range(3))
    with pytest.raises(ValueError, match="num_bins"):
        stats.quantile_bins(x, 0)


def test_sampled_pairs_are_distinct_valid_and_exactly_inverted():
    n = 3001
    i, j = stats.sample_pairs(n, 5000, seed=0)
    assert len(i) == 5000
    assert np.all(i < j) and np.all(i >= 0) and np.all(j < n)
    assert len(set(zip(i.tolist(), j.tolist()))) == 5000
    i, j = stats.sample_pairs(5, 100)  # all pairs at a small size, in condensed order
    assert list(zip(i.tolist(), j.tolist())) == list(itertools.combinations(range(5), 2))
    n = 50  # every condensed index maps back to a valid pair
    total = n * (n - 1) // 2
    i, j = stats.sample_pairs(n, total - 1, seed=1)
    assert set(zip(i.tolist(), j.tolist())) <= set(itertools.combinations(range(n), 2))
    assert len(set(zip(i.tolist(), j.tolist()))) == total - 1


def test_sampled_pairs_are_seeded():
    a = stats.sample_pairs(400, 300, seed=7)
    b = stats.sample_pairs(400, 300, seed=7)
    c = stats.sample_pairs(400, 300, seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert all(np.array_equal(x, y) for x, y in zip(stats.sample_pairs(400, 300, g1), stats.sample_pairs(400, 300, g2)))
    with pytest.raises(ValueError, match="seed"):
        stats.sample_pairs(400, 300, seed=-1)


# ---------------------------------------------------------------------------- stratified permutations
def test_stratified_permutations_move_elements_only_inside_their_stratum():
    rng = np.random.default_rng(0)
    for strata in (np.repeat(np.arange(4), 25), np.array([0] * 10 + [1] * 3 + [2] * 40)):  # equal, unequal
        strata = strata[rng.permutation(strata.size)]
        draw = stats.stratified_permutations(strata, rng)
        index = draw()
        assert sorted(index) == list(range(strata.size))
        assert np.array_equal(strata[index], strata)
        assert not np.array_equal(index, np.arange(strata.size))
        assert not np.array_equal(index, draw())  # a new permutation per call


def test_stratified_permutations_are_seeded():
    strata = np.repeat(np.arange(3), 10)
    a = stats.stratified_permutations(strata, seed=3)
    b = stats.stratified_permutations(strata, seed=3)
    assert all(np.array_equal(a(), b()) for _ in range(3))
    with pytest.raises(ValueError, match="strata"):
        stats.stratified_permutations([])


# ---------------------------------------------------------------------------- the package's namespace
def test_the_package_re_exports_every_public_name_and_none_shadows_a_submodule():
    from gnncomm.metrics import flow, graph, language

    for module in (flow, graph, language, stats):
        missing = [name for name in module.__all__ if getattr(metrics, name, None) is not getattr(module, name)]
        assert missing == [], module.__name__
    assert not {"flow", "graph", "language", "stats"} & set(metrics.__all__)
    old_names = (
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
    )
    assert set(old_names) <= set(metrics.__all__)
