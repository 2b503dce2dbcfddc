"""Training-time signals: greedy vocabulary usage, the vocabulary pressure and attention concentration."""

import math

import pytest
import torch

from gnncomm.metrics import (
    attention_concentration,
    marginal_entropy,
    position_information,
    symbol_marginals,
    symbol_usage,
)


def test_greedy_usage_of_a_batch_that_uses_exactly_three_symbols_is_three_over_v():
    V = 64
    symbols = torch.tensor([[3, 7, 7, 9, 3]] * 20)  # [B*N, M]
    counts = torch.nn.functional.one_hot(symbols, V).float().sum((0, 1))
    usage = symbol_usage(counts)
    assert float(usage["usage"]) == 3 / V
    assert 1 / V < float(usage["effective"]) <= 3 / V


def test_one_symbol_has_effective_size_one_over_v_and_uniform_use_has_one():
    assert float(symbol_usage(torch.tensor([0.0, 5.0, 0.0, 0.0]))["effective"]) == 0.25
    assert float(symbol_usage(torch.ones(8))["effective"]) == 1.0


def test_concentration_is_one_over_degree_for_uniform_attention_and_one_for_one_hot():
    degree = torch.tensor([4, 2, 5])
    receivers = torch.repeat_interleave(torch.arange(3), degree)
    uniform = (1.0 / degree.float()).repeat_interleave(degree)
    out = attention_concentration(uniform, receivers, 3)
    expected = float((1.0 / degree.float()).mean())
    assert abs(float(out["max"]) - expected) < 1e-6 and abs(float(out["uniform"]) - expected) < 1e-6
    assert float(out["hub_share"]) == 0.0
    one_hot = torch.cat([torch.eye(int(d))[0] for d in degree])
    out = attention_concentration(one_hot, receivers, 3)
    assert float(out["max"]) == 1.0 and float(out["hub_share"]) == 1.0


def test_concentration_ignores_receivers_without_neighbours_and_averages_heads():
    receivers = torch.tensor([0, 0])
    alpha = torch.tensor([[0.9, 0.7], [0.1, 0.3]])  # mean over heads: 0.8 and 0.2
    out = attention_concentration(alpha, receivers, 4)  # nodes 1..3 hear nobody
    assert abs(float(out["max"]) - 0.8) < 1e-6 and float(out["hub_share"]) == 1.0


def test_marginal_entropy_of_three_equally_used_symbols_is_log_three_over_log_v():
    V = 16
    logits = torch.full((3, 4, V), -40.0)
    for i, symbol in enumerate((2, 7, 11)):
        logits[i, :, symbol] = 40.0  # every position of sender i says one symbol
    assert marginal_entropy(symbol_marginals(logits)).item() == pytest.approx(math.log(3) / math.log(V), abs=1e-5)


def test_marginal_entropy_pushes_rare_symbols_down_and_the_common_one_up():
    logits = torch.zeros(8, 1, 4)
    logits[..., 0] = 2.0  # symbol 0 common everywhere
    logits.requires_grad_()
    marginal_entropy(symbol_marginals(logits)).backward()
    assert (logits.grad[..., 0] < 0).all() and (logits.grad[..., 1:] > 0).all()  # descent raises 0, lowers the rest


def test_positions_that_use_disjoint_symbols_carry_position_information_and_shared_ones_none():
    V = 8
    disjoint = torch.full((5, 2, V), -40.0)
    disjoint[:, 0, 1], disjoint[:, 1, 2] = 40.0, 40.0  # position 0 always says 1, position 1 always says 2
    assert position_information(symbol_marginals(disjoint)).item() == pytest.approx(math.log(2) / math.log(V))
    shared = torch.full((4, 2, V), -40.0)
    shared[:2, :, 1], shared[2:, :, 2] = 40.0, 40.0  # both positions say 1 or 2, equally often
    assert position_information(symbol_marginals(shared)).item() == pytest.approx(0.0, abs=1e-6)
    assert marginal_entropy(symbol_marginals(shared)).item() == pytest.approx(math.log(2) / math.log(V))


def test_an_empty_batch_has_zero_marginals_and_no_nan():
    marginals = symbol_marginals(torch.zeros(0, 3, 8))
    assert marginals.shape == (3, 8) and not marginals.isnan().any()
    assert position_information(marginals).item() == 0.0
