"""PPO from reward alone (gnncomm.ppo): GAE, the clipped objective, sequence replay, and learning to signal."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
from typing import NamedTuple

import pytest
import torch

from gnncomm.checkpoint import CheckpointError
from gnncomm.cli import main
from gnncomm.config import Config
from gnncomm.interventions import silence
from gnncomm.ppo import clipped_surrogate, episodes_subgraph, gae, gaussian_entropy, gaussian_log_prob
from gnncomm.rollout import evaluate_rollout
from gnncomm.trainer import Trainer


class SignalState(NamedTuple):
    pos: torch.Tensor
    latent: torch.Tensor
    sign: torch.Tensor
    reward: torch.Tensor
    done: torch.Tensor


class SignalWorld:
    """Two agents: only the speaker (agent 0) sees which way pays (``sign = ±1``); the listener (agent 1) earns
    ``sign * action``. Every step ends the episode, and a new sign is drawn. A listener that ignores the speaker
    earns 0 on average (chance); one that hears the sign earns up to 1."""

    num_agents, latent_dim, obs_dim, action_dim = 2, 0, 3, 1

    def reset(self, batch_size, *, generator=None, device=None):
        sign = torch.randint(0, 2, (batch_size,), generator=generator, device=device).float() * 2 - 1
        zeros = torch.zeros(batch_size, device=device)
        return SignalState(torch.zeros(batch_size, 2, 2, device=device), zeros.new_zeros(batch_size, 0), sign, zeros,
                           zeros)  # fmt: skip

    def sample_noise(self, steps, batch_size, *, generator=None, device=None):
        return torch.zeros(steps, batch_size, 2, 0, device=device)

    def observe(self, state, noise=None):
        B = state.sign.size(0)
        obs = torch.zeros(B, 2, 3, device=state.sign.device)
        obs[:, 0, 0], obs[:, 0, 1], obs[:, 1, 2] = state.sign, 1.0, 1.0
        return obs.view(B * 2, 3)

    def step(self, state, action, edge_index=None):
        reward = action.view(-1, 2, 1)[:, 1, 0] * state.sign
        return state._replace(reward=reward, done=torch.ones_like(reward))

    def reward(self, state):
        return state.reward

    def reset_done(self, state, mask, generator=None):
        fresh = self.reset(mask.numel(), generator=generator, device=mask.device)
        return state._replace(sign=torch.where(mask, fresh.sign, state.sign), done=torch.zeros_like(state.done))

    def episode_metrics(self, state):
        return {"success": (state.reward > 0).float()}


def signal_config(**overrides) -> Config:
    base = dict(
        world="swarm",  # replaced by the SignalWorld instance given to the Trainer
        num_agents=2,
        topology="full",
        algorithm="ppo",
        batch_size=64,
        timesteps=1,
        steps=60,
        vocab_size=4,
        msg_dim=1,
        hidden_dim=16,
        heads=1,
        lr=3e-3,
        warmup_steps=0,
        recon_weight=0.0,
        comm_weight=0.0,
        vocab_weight=0.0,
        vocab_align_weight=0.0,
        entropy_coef=0.0,
        log_every=20,
        eval_every=0,
        latent_dim=1,
    )
    return Config(**{**base, **overrides})


def test_gae_matches_a_hand_computed_example_with_episode_ends_inside_the_batch():
    # two environments, 3 steps; env 0 ends after step 0, env 1 after step 2 (the last)
    rewards = torch.tensor([[1.0, 0.0], [2.0, 1.0], [0.0, 3.0]])
    values = torch.tensor([[0.5, 1.0], [1.0, 2.0], [0.0, 0.5]])
    dones = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    last = torch.tensor([4.0, 9.0])
    gamma, lam = 0.9, 0.8
    adv, ret = gae(rewards, values, dones, last, gamma, lam)
    # env 0: step 2 bootstraps from 4; step 1 continues into step 2; step 0 ends its episode
    d2 = 0.0 + gamma * 4.0 - 0.0
    d1 = 2.0 + gamma * 0.0 - 1.0
    d0 = 1.0 - 0.5
    env0 = [d0, d1 + gamma * lam * d2, d2]
    # env 1: step 2 is terminal, so 9 is never used
    e2 = 3.0 - 0.5
    e1 = 1.0 + gamma * 0.5 - 2.0 + gamma * lam * e2
    e0 = 0.0 + gamma * 2.0 - 1.0 + gamma * lam * e1
    assert adv[:, 0].tolist() == pytest.approx(env0)
    assert adv[:, 1].tolist() == pytest.approx([e0, e1, e2])
    assert torch.allclose(ret, adv + values)


def test_the_clipped_objective_takes_the_pessimistic_side_on_hand_made_ratios():
    ratio = torch.tensor([0.5, 1.0, 1.5, 0.5, 1.5])
    adv = torch.tensor([1.0, 2.0, 1.0, -1.0, -1.0])
    # min(r A, clip(r) A): 0.5 (unclipped below for A > 0), 2, 1.2 (clipped), -0.8 (clipped), -1.5
    expected = -(0.5 + 2.0 + 1.2 - 0.8 - 1.5) / 5
    assert clipped_surrogate(ratio, adv, 0.2).item() == pytest.approx(expected)
    assert clipped_surrogate(torch.ones(3), torch.tensor([1.0, -2.0, 4.0]), 0.2).item() == pytest.approx(-1.0)


def test_the_gaussian_log_density_matches_torch_distributions():
    mean, action, log_std = torch.randn(5, 2), torch.randn(5, 2), torch.tensor([-0.3, 0.2])
    expected = torch.distributions.Normal(mean, log_std.exp()).log_prob(action).sum(-1)
    assert torch.allclose(gaussian_log_prob(action, mean, log_std), expected, atol=1e-6)


def test_masked_action_values_add_nothing_to_the_log_probability_or_the_entropy():
    mean, action, log_std = torch.zeros(3, 2), torch.tensor([[0.1, 5.0]] * 3), torch.tensor([0.0, -1.0])
    mask = torch.tensor([[1.0, 0.0]] * 3)
    only_first = torch.distributions.Normal(0.0, 1.0).log_prob(torch.tensor(0.1))
    assert torch.allclose(gaussian_log_prob(action, mean, log_std, mask), only_first.expand(3))
    assert torch.allclose(gaussian_entropy(log_std, mask), torch.distributions.Normal(0.0, 1.0).entropy().expand(3))


def test_a_minibatch_subgraph_keeps_whole_environments_and_renumbers_them():
    ring = torch.tensor([[0, 1, 2, 1, 2, 0], [1, 2, 0, 0, 1, 2]])  # one environment of 3
    edges = torch.cat([ring + 3 * b for b in range(4)], dim=1)
    sub = episodes_subgraph(edges, torch.tensor([1, 3]), 3, 4)
    assert torch.equal(sub, torch.cat([ring, ring + 3], dim=1))
    assert episodes_subgraph(edges, torch.tensor([], dtype=torch.long), 3, 4).shape == (2, 0)


@pytest.mark.parametrize(
    "mode, sequence, memory",
    [("policy", 0, True), ("policy", 2, True), ("actions", 0, True), ("actions", 2, True), ("policy", 2, False)],
)
def test_replaying_a_stored_sequence_gives_the_log_probabilities_that_were_collected(tmp_path, mode, sequence, memory):
    # 4 steps per iteration, every step ends an episode (the world's done): the replay must zero the recurrent
    # state exactly where collection did; episodes also continue into the next iteration (carried state), and
    # with ppo_sequence=2 each environment's iteration is two sequences, replayed from the stored states
    cfg = signal_config(ppo_messages=mode, timesteps=4, episode_steps=8, batch_size=6, minibatches=2)
    cfg = cfg.with_overrides({"ppo_sequence": sequence, "encoder_memory": memory})
    trainer = Trainer(cfg, tmp_path, world=SignalWorld())
    trainer.loss_module.set_topology("full", 1, 6, trainer.rt.device)
    ppo = trainer.ppo
    for _ in range(2):  # the second iteration starts from carried states
        batch, _ = ppo.collect(trainer.loss_module.graph_fn, torch.tensor(1.0))
        assert batch.first[1:].all() and batch.first.shape == (4, 6)
        S = 4 // (sequence or 4)
        pairs = (torch.arange(6 * S), torch.tensor([1, 4]), torch.tensor([3, 6 + 1, 6 + 4]) if S > 1 else None)
        for chosen in [p for p in pairs if p is not None]:
            envs, chunks = chosen % 6, chosen // 6
            replay = ppo.replay(batch, envs, chunks)
            assert torch.allclose(replay.log_prob, batch.log_prob[ppo.sequences(envs, chunks)], atol=1e-5)
    # the replay is not vacuous: a wrong recurrent state changes the log-probabilities
    broken = batch._replace(first=torch.zeros_like(batch.first))
    envs = torch.arange(6)
    collected = batch.log_prob[ppo.sequences(envs, torch.zeros_like(envs))]
    assert not torch.allclose(ppo.replay(broken, envs).log_prob, collected, atol=1e-3)


def test_message_noise_scales_the_collected_gumbel_noise_and_leaves_the_random_stream_as_it_was(tmp_path):
    def collect(noise):
        cfg = signal_config(timesteps=4, batch_size=6, minibatches=2, message_noise=noise)
        trainer = Trainer(cfg, tmp_path / str(noise), world=SignalWorld())
        trainer.loss_module.set_topology("full", 1, 6, trainer.rt.device)
        return trainer.ppo, trainer.ppo.collect(trainer.loss_module.graph_fn, torch.tensor(1.0))[0]

    _, sampled = collect(1.0)
    _, half = collect(0.5)
    ppo, greedy = collect(0.0)
    assert sampled.gumbel.abs().max() > 1.0
    torch.testing.assert_close(half.gumbel, 0.5 * sampled.gumbel)
    assert torch.equal(half.obs, sampled.obs)  # the episodes drawn after the noise are the same ones
    assert greedy.gumbel.abs().max() == 0 and torch.equal(greedy.obs, sampled.obs)
    envs = torch.arange(6)  # the greedy messages replay to the collected log-probabilities too
    replay = ppo.replay(greedy, envs)
    assert torch.allclose(replay.log_prob, greedy.log_prob[ppo.sequences(envs, torch.zeros_like(envs))], atol=1e-5)


def test_message_noise_is_refused_where_it_would_do_nothing():
    with pytest.raises(ValueError, match=r"message_noise=0.0 applies to algorithm=ppo with ppo_messages=policy only"):
        signal_config(ppo_messages="actions", message_noise=0.0)
    with pytest.raises(ValueError, match=r"message_noise=0.5 applies to algorithm=ppo"):
        Config(message_noise=0.5)
    with pytest.raises(ValueError, match=r"message_noise must be in \[0, 1\], got 1.5"):
        signal_config(message_noise=1.5)


@pytest.mark.parametrize(
    "field, other, saved", [("critic_input", "observations", "'features'"), ("encoder_memory", False, "True")]
)
def test_resuming_a_ppo_run_with_another_architecture_field_names_it(tmp_path, field, other, saved):
    Trainer(signal_config(steps=2), tmp_path, world=SignalWorld()).train(progress=False)
    with pytest.raises(CheckpointError, match=f"checkpoint has {field}={saved} but the config asks for"):
        Trainer(signal_config(steps=4, **{field: other}), tmp_path, world=SignalWorld()).resume()


def train_signal(tmp_path, **overrides):
    world = SignalWorld()
    cfg = signal_config(**overrides)
    trainer = Trainer(cfg, tmp_path, world=world)
    trainer.train(progress=False)

    def score(**kwargs):
        logs, _ = evaluate_rollout(trainer.system, world, cfg, episodes=512, seed=123, **kwargs)
        return logs["reward"]

    return score(), score(intervene=silence())


@pytest.mark.parametrize("mode", ["policy", "actions"])
def test_a_listener_learns_the_speakers_signal_with_each_message_mode_and_falls_to_chance_silenced(tmp_path, mode):
    steps = {"policy": 60, "actions": 80}[mode]
    real, silenced = train_signal(tmp_path, ppo_messages=mode, steps=steps)
    assert real > 0.6  # chance is 0, perfect is 1
    assert abs(silenced) < 0.15  # 512 episodes: the standard error of a blind listener is <= 0.044


def test_an_untrained_listener_is_at_chance(tmp_path):
    real, silenced = train_signal(tmp_path, steps=1)
    assert abs(real) < 0.2 and abs(silenced) < 0.2


def test_ppo_is_refused_under_torchrun_and_selection_is_refused_with_ppo():
    with pytest.raises(ValueError, match="selection_every=5 runs with algorithm=gradient only"):
        Config(algorithm="ppo", selection_every=5, shared_params=False)
    with pytest.raises(ValueError, match=r"minibatches must be in \[1, 4\] \(the sequences of an iteration"):
        Config(algorithm="ppo", batch_size=4, minibatches=5)
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\], got 1.5"):
        Config(gamma=1.5)
    assert math.isclose(Config(algorithm="PPO").action_std, 0.5)


def test_a_resumed_ppo_run_continues_bit_for_bit(tmp_path):
    cfg = signal_config(steps=6, batch_size=8, minibatches=2, log_every=1, checkpoint_every=3)
    straight = Trainer(cfg, tmp_path / "a", world=SignalWorld()).train(progress=False)
    first = Trainer(cfg.with_overrides({"steps": 3}), tmp_path / "b", world=SignalWorld())
    first.train(progress=False)
    second = Trainer(cfg, tmp_path / "b", world=SignalWorld())
    second.resume()
    resumed = second.train(progress=False)
    keys = ("loss", "policy_loss", "value_loss", "reward", "episode_return")
    assert [[row[k] for k in keys] for row in resumed.history] == [[row[k] for k in keys] for row in straight.history]


@pytest.mark.parametrize(
    "world",
    [
        ["world=swarm"],
        ["world=examples.parallel_env_world:make_world", "num_agents=3", "topology=full"],  # numpy, outside torch
        pytest.param(
            ["world=vmas", "scenario=discovery", "num_agents=3", "world_kwargs={n_targets: 2}"],
            marks=pytest.mark.skipif(importlib.util.find_spec("vmas") is None, reason="needs the vmas extra"),
        ),
    ],
)
def test_a_tiny_ppo_run_trains_and_evaluates_from_the_command_line(tmp_path, world):
    run = tmp_path / "run"
    common = ["steps=2", "batch_size=4", "minibatches=2", "timesteps=4", "eval_episodes=4", "eval_every=1"]
    args = ["train", "--out", str(run), "--no-progress", "algorithm=ppo", "log_every=1", *common, *world]
    assert main(args) == 0
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [row["step"] for row in rows] == ["1", "2"]
    assert all(math.isfinite(float(row[key])) for row in rows for key in ("policy_loss", "value_loss", "approx_kl"))
    ablation = json.loads((run / "ablation.json").read_text())
    assert "episode_return_silenced" in ablation or "world_mse_silenced" in ablation
    assert main(["evaluate", str(run), "--episodes", "4"]) == 0
    assert (run / "report.json").exists()
