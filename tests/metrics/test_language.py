"""gnncomm.metrics.language: known answers for hand-built languages, and the temporal nulls."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from gnncomm import metrics as M

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


# ---------------------------------------------------------------------------- compositional / random / constant
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


def test_posdis_with_a_single_attribute_uses_zero_as_the_runner_up():
    attrs = np.arange(8)[:, None] % 4  # A == 1
    msgs = np.stack([attrs[:, 0] + 1, np.arange(8) % 2], axis=1)
    # Position 0 determines the attribute: gap = MI/H = 1; position 1 (parity of
    # the row) has MI(attr; parity) = 1 bit of H = 1 bit -> also 1 here.
    assert M.posdis(attrs, msgs) == pytest.approx(1.0)
    noise = np.stack([attrs[:, 0] + 1, np.arange(8) // 4], axis=1)  # position 1 independent of attr
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


def test_silence_only_language_has_zero_bosdis(grid_attributes):
    msgs = np.zeros((25, 3), dtype=np.int64)
    assert M.bosdis(grid_attributes, msgs, vocab_size=4) == 0.0
    assert M.vocab_usage(msgs, 4) == 0.25


# ---------------------------------------------------------------------------- vocabulary statistics
def test_vocab_usage_and_entropy_have_known_values():
    msgs = torch.tensor([[0, 1, 2, 3], [0, 1, 2, 3]])
    assert M.vocab_usage(msgs, 8) == 0.5
    assert M.symbol_entropy(msgs, 8) == pytest.approx(2.0)
    np.testing.assert_allclose(M.symbol_entropy(msgs, 8, per_position=True), np.zeros(4))
    batch = np.array([[[1, 2]], [[2, 1]]])  # leading dims are pooled: [T, S, M]
    np.testing.assert_allclose(M.symbol_entropy(batch, 3, per_position=True), [1.0, 1.0])
    assert M.symbol_entropy(np.arange(16).reshape(4, 4), 16) == pytest.approx(4.0)  # uniform over V: log2 V


def test_symbol_transition_matrix_counts_and_normalises():
    msgs = np.array([[1, 2, 3], [1, 2, 2]])
    counts = M.symbol_transition_matrix(msgs, 4)
    expected = np.zeros((4, 4), dtype=np.int64)
    expected[1, 2] = 2
    expected[2, 3] = 1
    expected[2, 2] = 1
    np.testing.assert_array_equal(counts, expected)
    probs = M.symbol_transition_matrix(msgs, 4, normalize=True)
    np.testing.assert_allclose(probs[2], [0, 0, 0.5, 0.5])
    np.testing.assert_allclose(probs[0], 0.0)  # a never-seen row stays 0


# ---------------------------------------------------------------------------- information theory
def test_mutual_information_of_identical_and_independent_sequences():
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
    assert M.mutual_information([0, 1, 2, 3], [0, 0, 1, 1]) == pytest.approx(1.0)  # Y = X // 2: I = H(Y)


def test_entropy_bits_has_known_values():
    assert M.entropy_bits([0, 0, 1, 1]) == pytest.approx(1.0)
    assert M.entropy_bits([7] * 10) == 0.0
    assert M.entropy_bits([0, 1, 2, 3]) == pytest.approx(2.0)
    assert M.entropy_bits([0, 1], miller_madow=True) == pytest.approx(1.0 + 1 / (4 * math.log(2)))
    assert M.entropy_bits(np.array([[1, 2], [1, 2], [2, 1], [2, 1]])) == pytest.approx(1.0)


def test_mutual_information_statistic_is_mutual_information_of_the_permuted_pairs():
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 5, 300), rng.integers(3, 9, 300)
    statistic = M.mutual_information_statistic(x, y)
    for _ in range(3):
        idx = rng.permutation(300)
        assert statistic(idx) == pytest.approx(M.mutual_information(x, y[idx]), abs=1e-12)


def test_mutual_information_test_keeps_strata_habits():
    """y depends on x only through their shared stratum: significant with a plain null, not within strata."""
    rng = np.random.default_rng(0)
    strata = np.repeat(np.arange(4), 200)
    x = strata * 3 + rng.integers(0, 3, 800)
    y = strata * 3 + rng.integers(0, 3, 800)
    assert M.mutual_information_test(x, y, num_permutations=50, seed=0).p_value < 0.05
    assert M.mutual_information_test(x, y, strata=strata, num_permutations=50, seed=0).p_value > 0.05
    r = M.mutual_information_test(x, y, strata=strata, num_permutations=50, seed=0)
    assert r == M.mutual_information_test(x, y, strata=strata, num_permutations=50, seed=0)  # deterministic
    with pytest.raises(ValueError, match="strata"):
        M.mutual_information_test(x, y, strata=strata[:-1])


# ---------------------------------------------------------------------------- distances and topographic similarity
def test_edit_distance_matches_a_reference_levenshtein():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 3, size=(200, 6))
    b = rng.integers(0, 3, size=(200, 6))
    got = M.edit_distance(a, b)
    expected = [_levenshtein(x.tolist(), y.tolist()) for x, y in zip(a, b)]
    np.testing.assert_array_equal(got, expected)
    assert M.edit_distance([[1, 2, 3]], [[2, 3, 1]]).tolist() == [2]


def test_topsim_subsampling_is_seeded():
    attrs, msgs = _random_language(seed=5, S=400)
    msgs = msgs.copy()
    msgs[:, 0] = attrs[:, 0]  # some structure so the value is not ~0
    kw = {"meaning_metric": "hamming", "max_pairs": 3000}
    a = M.topographic_similarity(attrs, msgs, seed=7, **kw)
    b = M.topographic_similarity(attrs, msgs, seed=7, **kw)
    c = M.topographic_similarity(attrs, msgs, seed=8, **kw)
    full = M.topographic_similarity(attrs, msgs, meaning_metric="hamming", max_pairs=10**6)
    assert a == b
    assert a != c
    assert abs(a - full) < 0.05
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert M.topographic_similarity(attrs, msgs, seed=g1, **kw) == M.topographic_similarity(attrs, msgs, seed=g2, **kw)


def test_topsim_with_float_meanings():
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(200, 3))
    msgs = np.digitize(latent[:, :1], [-1, -0.3, 0.3, 1])  # quantised first latent: monotone in |dx0|
    for metric in ("euclidean", "cosine"):
        val = M.topographic_similarity(latent, msgs, meaning_metric=metric)
        assert 0.1 < val <= 1.0
    assert M.topographic_similarity(latent[:, :1], msgs) > 0.5
    noise = rng.integers(0, 5, size=(200, 1))
    assert abs(M.topographic_similarity(latent[:, :1], noise)) < 0.1
    z = np.zeros((4, 2))  # zero vectors under cosine do not produce NaN
    z[0] = [1.0, 0.0]
    assert math.isfinite(M.topographic_similarity(z, [[0], [1], [1], [2]], meaning_metric="cosine"))


# ---------------------------------------------------------------------------- temporal dependence
def test_planted_transitions_beat_the_null_and_iid_symbols_do_not():
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

    seq = np.empty(400, dtype=np.int64)  # plain sequence form: a_{t+1} = f(a_t) vs i.i.d.
    seq[0] = 1
    for t in range(1, 400):
        seq[t] = f[seq[t - 1]] if rng.random() < 0.8 else rng.integers(0, V)
    assert M.temporal_dependence(seq, num_permutations=200, seed=1).p_value < 0.05
    iid_seq = rng.integers(0, V, 400)
    assert M.temporal_dependence(iid_seq, num_permutations=200, seed=1).p_value > 0.05


def test_position_and_speaker_habits_are_not_grammar_but_planted_transitions_are():
    """Symbols drawn independently with a different alphabet per position (and per speaker): the pooled
    I(s_j; s_j+1) is large, but the null that permutes within (speaker, position) does not call it significant."""
    rng = np.random.default_rng(0)
    T, B, N, M_ = 2, 100, 2, 3
    speaker = np.broadcast_to(np.arange(N), (T, B, N))
    habits = np.stack([rng.integers(1 + 4 * j, 5 + 4 * j, (T, B, N)) + 12 * speaker for j in range(M_)], axis=-1)
    r = M.within_message_dependence(habits, speakers=speaker, num_permutations=50, seed=0)
    assert r.mi_bits > 0.5 and r.p_value > 0.05
    pooled_speakers = M.within_message_dependence(habits, num_permutations=50, seed=0)  # position strata only
    assert pooled_speakers.p_value < 0.05  # the speakers' alphabets alone look like dependence
    planted = habits.copy()
    planted[..., 1] = planted[..., 0] + 4  # symbol at j=1 determined by symbol at j=0
    assert M.within_message_dependence(planted, speakers=speaker, num_permutations=50, seed=0).p_value < 0.05
    with pytest.raises(ValueError, match="speakers"):
        M.within_message_dependence(habits, speakers=np.arange(N))


def test_across_time_dependence_of_a_deterministic_update():
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


def test_across_time_null_keeps_what_each_speaker_says_at_each_step():
    """Each speaker repeats its own fixed message: pooled over speakers that is dependence, within a speaker
    (the report's null) it is not."""
    rng = np.random.default_rng(0)
    T, B, N = 4, 60, 3
    own = rng.integers(0, 5, size=(N, 2))  # each speaker's message, fixed
    msgs = np.broadcast_to(own, (T, B, N, 2)).copy()
    msgs[..., 1] = rng.integers(0, 2, size=(T, B, N))  # plus one free position
    speakers = np.tile(np.arange(N), B)
    flat = msgs.reshape(T, B * N, 2)
    assert M.across_time_dependence(flat, num_permutations=50, seed=0).p_value < 0.05
    assert M.across_time_dependence(flat, speakers=speakers, num_permutations=50, seed=0).p_value > 0.05
    with pytest.raises(ValueError, match="speakers"):
        M.across_time_dependence(flat, speakers=np.arange(N))


# ---------------------------------------------------------------------------- bad input
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
    with pytest.raises(ValueError, match="meaning_metric"):
        M.topographic_similarity(grid_attributes, msgs, meaning_metric="manhattan")
    with pytest.raises(ValueError, match="max_pairs"):
        M.topographic_similarity(grid_attributes, msgs, max_pairs=0)
    with pytest.raises(ValueError, match="num_permutations"):
        M.temporal_dependence([0, 1, 0], num_permutations=0)
    with pytest.raises(ValueError, match="messages"):
        M.vocab_usage([[0.5, 1.0]], 4)  # non-integer symbol ids
    with pytest.raises(ValueError, match="seed"):
        M.temporal_dependence([0, 1, 0], seed=-1)
