"""gnncomm.memory: the memory estimate against real training steps, its scaling, and the check before a run."""

import re

import pytest
import torch

from gnncomm import Config
from gnncomm.bench import bench_config, build_trainer
from gnncomm.memory import (
    InsufficientMemoryError,
    LiveTensorBytes,
    MemoryEstimate,
    available_memory,
    check_memory,
    estimate_memory,
)


def measured_step_peak(cfg: Config) -> int:
    """Peak bytes of the tensors a real training step allocates (after a warm-up step, so the moments exist)."""
    trainer = build_trainer(cfg)
    temperature = torch.tensor(cfg.temperature(0))
    trainer.train_step(trainer.next_episode(), temperature)
    episode = trainer.next_episode()
    with LiveTensorBytes() as live:
        trainer.train_step(episode, temperature)
    return live.peak


@pytest.mark.parametrize("agents, batch", [(1000, 2), (10_000, 1)])
def test_the_estimate_is_within_30_percent_of_the_peak_of_a_real_training_step(agents, batch):
    cfg = bench_config(agents, batch)
    estimate = estimate_memory(cfg)
    # the step frees last step's gradients and allocates them again: they are part of what it allocates
    predicted = estimate.gradients + max(estimate.activations, estimate.update)
    measured = measured_step_peak(cfg)
    assert abs(predicted / measured - 1) < 0.30, (predicted, measured)


@pytest.mark.parametrize("agents, batch, minibatches", [(1000, 4, 4), (200, 16, 8)])
def test_a_ppo_estimate_is_within_30_percent_of_a_real_iteration_and_holds_one_minibatch(agents, batch, minibatches):
    cfg = bench_config(agents, batch).with_overrides({"algorithm": "ppo", "minibatches": minibatches, "ppo_epochs": 1})
    estimate = estimate_memory(cfg)
    trainer = build_trainer(cfg)
    temperature = torch.tensor(cfg.temperature(0))
    trainer.iteration(temperature)  # the moments exist after it
    with LiveTensorBytes() as live:
        trainer.iteration(temperature)
    # the iteration allocates the collected batch, one minibatch's replay at a time, and the gradients
    predicted = estimate.gradients + estimate.noise + max(estimate.activations, estimate.update)
    assert abs(predicted / live.peak - 1) < 0.30, (predicted, live.peak)
    whole = estimate_memory(cfg.with_overrides({"minibatches": 1}))  # one minibatch replays every sequence
    assert whole.activations > 0.8 * minibatches * estimate.activations
    assert whole.noise == estimate.noise


def test_check_memory_advises_more_ppo_minibatches_or_a_smaller_batch():
    cfg = bench_config(1000, 4).with_overrides({"algorithm": "ppo", "minibatches": 1})
    budget = estimate_memory(cfg.with_overrides({"minibatches": 4})).peak + 1
    with pytest.raises(InsufficientMemoryError, match=r"; batch_size=\d+ or minibatches=4 would fit$"):
        check_memory(cfg, available=budget)


def test_the_live_tensor_count_sees_what_a_block_allocates_and_frees():
    with LiveTensorBytes() as live:
        a = torch.ones(1000)  # 4,000 bytes
        b = a * 2  # 8,000 bytes live at most
        del a, b
        c = torch.ones(10)
    assert live.peak == 8000
    del c


def test_the_activation_estimate_grows_linearly_in_the_agents_per_rollout():
    cfg = bench_config(1000, 2).with_overrides({"recompute_steps": "false"})
    at = {(n, b): estimate_memory(cfg.with_overrides({"num_agents": n, "batch_size": b})).activations
          for n, b in [(1000, 2), (1000, 4), (1000, 8), (2000, 2)]}  # fmt: skip
    step = at[1000, 4] - at[1000, 2]
    assert step > 0
    assert at[1000, 8] - at[1000, 4] == pytest.approx(2 * step, rel=0.01)
    assert at[2000, 2] == pytest.approx(at[1000, 4], rel=0.05)  # the same B * N


def test_recomputing_steps_lowers_the_activation_estimate():
    cfg = bench_config(1000, 4)
    kept = estimate_memory(cfg.with_overrides({"recompute_steps": "false"}))
    recomputed = estimate_memory(cfg.with_overrides({"recompute_steps": "true"}))
    assert recomputed.activations < 0.7 * kept.activations
    assert recomputed.parameters == kept.parameters


def test_lazy_noise_with_cpu_memory_release_drops_the_held_gumbel_noise():
    cfg = bench_config(1000, 4).with_overrides({"recompute_steps": "true"})
    held = estimate_memory(cfg)
    lazy = estimate_memory(cfg.with_overrides({"cpu_memory": "release"}))
    gumbel = cfg.timesteps * 4 * 1000 * cfg.msg_dim * cfg.vocab_size * 4
    assert held.noise - lazy.noise == pytest.approx(gumbel, rel=0.01)


def test_per_agent_weights_grow_with_the_number_of_agents():
    small = estimate_memory(bench_config(100, 1, shared=False))
    large = estimate_memory(bench_config(1000, 1, shared=False))
    assert large.parameters == pytest.approx(10 * small.parameters, rel=0.05)
    assert large.optimizer == 2 * large.parameters


def test_check_memory_refuses_ten_million_agents_with_the_estimate_and_what_is_available():
    cfg = Config(num_agents=10_000_000, steps=1)
    with pytest.raises(InsufficientMemoryError) as info:
        check_memory(cfg, device="cpu")
    message = str(info.value)
    assert "\n" not in message
    assert "num_agents=10000000" in message and "needs about peak" in message
    assert re.search(r"but [\d,.]+ (GiB|MB) is available on cpu", message)


def test_check_memory_names_the_largest_batch_size_that_fits_and_recomputation_when_it_helps():
    cfg = bench_config(1000, 64).with_overrides({"recompute_steps": "false"})
    budget = estimate_memory(cfg.with_overrides({"batch_size": 16})).peak + 1
    advice = r"; batch_size=16 or recompute_steps=true( batch_size=\d+)?( or [^;]+)? would fit$"
    with pytest.raises(InsufficientMemoryError, match=advice):
        check_memory(cfg, available=budget)


def test_a_tiny_config_fits_in_the_memory_available():
    cfg = Config(num_agents=10, batch_size=8, timesteps=2)
    available = available_memory()
    assert available is not None and available > 0
    estimate = check_memory(cfg)
    assert isinstance(estimate, MemoryEstimate)
    assert 0 < estimate.parameters < estimate.peak < available
    assert "\n" not in str(estimate) and str(estimate).startswith("peak ")


def test_estimating_leaves_the_global_random_stream_as_it_was():
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    estimate_memory(Config(num_agents=10, batch_size=2, timesteps=2))
    assert torch.equal(torch.rand(3), expected)


def test_the_estimated_end_of_run_evaluation_is_one_chunk_of_episodes_and_below_the_training_step():
    cfg = Config(num_agents=2000, batch_size=1, recompute_steps="true", eval_episodes=64)
    estimate = estimate_memory(cfg)
    assert 0 < estimate.evaluation < estimate.training - estimate.state
    more = estimate_memory(cfg.with_overrides({"batch_size": 4}))  # chunks of 4 episodes instead of 2: about twice
    assert 1.6 < more.evaluation / estimate.evaluation < 2.4
