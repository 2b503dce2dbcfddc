"""Training-time signals: greedy vocabulary usage and attention concentration."""

import torch

from gnncomm.metrics import attention_concentration, symbol_usage


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
