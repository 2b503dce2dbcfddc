"""gnncomm.metrics.flow: who heard whom, far effects, and the causal relay test against its two nulls."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnncomm import metrics as M


def test_heard_directly_marks_each_episodes_edges_over_all_steps():
    step0 = torch.tensor([[0, 4], [1, 3]])  # episode 0: 0 -> 1; episode 1: agent 1 -> agent 0
    step1 = torch.tensor([[2], [0]])  # episode 0: 2 -> 0
    heard = M.heard_directly([step0, step1], 3, 2)
    assert heard.shape == (2, 3, 3)
    assert sorted(zip(*np.nonzero(heard[0]))) == [(0, 1), (2, 0)]
    assert sorted(zip(*np.nonzero(heard[1]))) == [(1, 0)]


def test_far_effects_count_only_receivers_that_never_heard_the_silenced_agent():
    delta = np.ones((3, 2, 3))
    far = np.zeros((3, 2, 3), dtype=bool)
    far[1, 0, 2] = True
    out = M.far_effects(delta, far)
    assert out.tolist() == [[0.0, 0.0], [1 / 3, 0.0], [0.0, 0.0]]  # a share of the mean over all 3 receivers
    with pytest.raises(ValueError, match="far must have the shape"):
        M.far_effects(delta, far[:, :1])
    with pytest.raises(ValueError, match=r"receiver_delta must have shape \[N, B, N\]"):
        M.far_effects(np.ones((3, 2)), far)


def test_an_agent_whose_silence_hurts_far_agents_more_than_the_others_is_a_relay():
    rng = np.random.default_rng(0)
    effect = np.abs(rng.normal(0.0, 0.05, (8, 24)))  # everyone hurts far agents a little (real flow)
    effect[5] += rng.exponential(0.5, 24)  # one agent a lot
    assert M.detect_relays(effect) == [5]
    stats = M.relay_statistics(effect, num_permutations=199)
    assert stats[5]["p_adjusted"] == max(stats[5]["p_zero_adjusted"], stats[5]["p_others_adjusted"])
    assert stats[0]["p_zero_adjusted"] <= 0.05 < stats[0]["p_others_adjusted"]  # real, but not above the others


def test_far_effects_that_go_either_way_or_are_equal_for_everyone_make_no_relay():
    rng = np.random.default_rng(1)
    assert M.detect_relays(np.ones((6, 10))) == []  # everyone forwards equally: nobody stands out
    assert M.detect_relays(np.zeros((6, 10))) == []
    flagged = sum(bool(M.detect_relays(rng.normal(size=(10, 16)), seed=s)) for s in range(40))
    assert flagged <= 5  # null data: about 5 % of 40, at most ~2, would be expected


def test_relay_statistics_are_deterministic_given_the_seed_and_check_their_inputs():
    effect = np.random.default_rng(2).normal(size=(5, 6))
    assert M.relay_statistics(effect, num_permutations=20, seed=1) == M.relay_statistics(
        effect, num_permutations=20, seed=1
    )
    assert M.relay_statistics(effect, num_permutations=20, seed=1) != M.relay_statistics(
        effect, num_permutations=20, seed=2
    )
    assert M.relay_statistics(np.zeros((0, 3))) == {}
    with pytest.raises(ValueError, match="far_effect must have shape"):
        M.relay_statistics(np.zeros(4))
    with pytest.raises(ValueError, match="num_permutations"):
        M.relay_statistics(effect, num_permutations=0)
    with pytest.raises(ValueError, match="alpha"):
        M.detect_relays(effect, alpha=1.0)


def test_far_effects_within_the_tolerance_are_no_effect_and_a_bad_tolerance_is_refused():
    delta = np.zeros((3, 2, 3))
    delta[0, :, 2] = [3e-7, 0.3]  # rounding in episode 0, a real effect in episode 1
    far = np.zeros((3, 2, 3), dtype=bool)
    far[0, :, 2] = True
    assert M.far_effects(delta, far)[0].tolist() == pytest.approx([1e-7, 0.1])
    assert M.far_effects(delta, far, tolerance=M.ROUNDING_TOLERANCE)[0].tolist() == pytest.approx([0.0, 0.1])
    assert M.ROUNDING_TOLERANCE == pytest.approx(np.sqrt(np.finfo(np.float32).eps))
    for bad in (-1e-3, float("nan"), True, "0"):
        with pytest.raises(ValueError, match="tolerance must be a finite float >= 0"):
            M.far_effects(delta, far, tolerance=bad)
