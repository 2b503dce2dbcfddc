"""Episodes longer than the backprop window: the world and the agents' recurrent states are carried from one
optimizer step to the next, only finished episodes restart, and returns are counted per whole episode."""

from __future__ import annotations

from typing import NamedTuple

import pytest
import torch
from torch import Tensor

import gnncomm
from gnncomm.agents import AgentState
from gnncomm.config import Config
from gnncomm.rollout import Episode, make_graph_fn, rollout
from gnncomm.trainer import Trainer


class CueState(NamedTuple):
    pos: Tensor
    cue: Tensor
    t: Tensor
    reward: Tensor
    latent: Tensor


class CueWorld:
    """A cue of +-1 is shown to every agent at step 0 only; from step ``pay_from`` on, each step pays
    ``-(action_x - cue)^2`` averaged over agents. With windows of ``pay_from`` steps, what the agents need
    arrives before the window in which it pays: only the carried recurrent state holds it."""

    latent_dim = 0
    obs_dim = 2

    def __init__(self, num_agents: int = 2, pay_from: int = 2) -> None:
        self.num_agents, self.pay_from = num_agents, pay_from

    def reset(self, batch_size: int, *, generator=None, device=None) -> CueState:
        cue = torch.randint(0, 2, (batch_size,), generator=generator, device=device).float() * 2 - 1
        zeros = torch.zeros(batch_size, device=device)
        return CueState(
            torch.zeros(batch_size, self.num_agents, 2, device=device), cue, zeros, zeros, zeros[:, None][:, :0]
        )

    def sample_noise(self, steps: int, batch_size: int, *, generator=None, device=None) -> Tensor:
        return torch.zeros(steps, batch_size, self.num_agents, 0, device=device)

    def observe(self, state: CueState, noise: Tensor | None = None) -> Tensor:
        shown = state.cue * (state.t == 0).float()  # [B]
        obs = torch.stack([shown, state.t / 10], dim=-1)  # [B, 2]
        return obs.repeat_interleave(self.num_agents, dim=0)

    def step(self, state: CueState, action: Tensor, edge_index: Tensor) -> CueState:
        a = action.view(-1, self.num_agents, action.size(-1))[..., 0]  # [B, N]
        pays = (state.t >= self.pay_from).float()
        reward = -pays * (a - state.cue[:, None]).pow(2).mean(-1)
        return CueState(state.pos, state.cue, state.t + 1, reward, state.latent)

    def reward(self, state: CueState) -> Tensor:
        return state.reward


def _cfg(**overrides) -> Config:
    base = dict(
        num_agents=2,
        k_neighbors=1,
        topology="full",
        hidden_dim=16,
        vocab_size=4,
        msg_dim=1,
        timesteps=2,
        episode_steps=4,
        batch_size=32,
        cluster_weight=1.0,
        recon_weight=1.0,
        comm_weight=0.0,
        vocab_weight=0.0,
        vocab_align_weight=0.0,
        eval_every=0,
        log_every=2,
        lr=1e-2,
        warmup_steps=0,
    )
    return Config(**{**base, **overrides})


def test_a_window_starts_where_the_last_one_stopped_and_finished_episodes_restart(tmp_path):
    cfg = _cfg(steps=4)
    trainer = Trainer(cfg, tmp_path, world=CueWorld())
    trainer.loss_module.set_topology("full", 1, cfg.batch_size, trainer.rt.device)
    temperature = torch.tensor(1.0)
    first = trainer.next_window()
    assert first.agents is None and torch.equal(first.state.t, torch.zeros(32))
    logs = trainer.train_step(first, temperature)
    assert float(logs["episodes_done"]) == 0.0
    carried_agents, carried_state = trainer.window.agents, trainer.window.state
    second = trainer.next_window()
    assert torch.equal(second.state.t, torch.full((32,), 2.0))  # the world goes on
    assert torch.equal(second.state.cue, first.state.cue)
    for kept, given in zip(carried_agents, second.agents):
        assert torch.equal(kept.detach(), given) and not given.requires_grad  # carried, detached
    assert any(x.abs().sum() > 0 for x in second.agents)
    logs = trainer.train_step(second, temperature)
    assert float(logs["episodes_done"]) == 32.0  # 4 steps: every episode finished
    total = float(logs["episode_return"]) / 32
    assert total == pytest.approx(float(trainer.window.returns.mean()), rel=1e-6)  # whole-episode returns
    third = trainer.next_window()
    assert torch.equal(third.state.t, torch.zeros(32)) and third.agents is None  # new episodes, fresh agents
    del carried_state


def test_the_carried_state_is_what_lets_agents_use_a_cue_seen_in_an_earlier_window(tmp_path):
    torch.manual_seed(0)
    cfg = _cfg(steps=150)
    world = CueWorld()
    result = gnncomm.train(cfg, tmp_path / "run", world=world, progress=False, evaluate=False)
    assert result.status == "finished"
    system = gnncomm.evaluation.load_run(tmp_path / "run", world=world).system
    generator = torch.Generator().manual_seed(123)
    state = world.reset(256, generator=generator)
    graph = make_graph_fn("full", 1, 2, 256, device="cpu")
    noise = torch.zeros(2, 256, 2, 0)
    with torch.no_grad():
        carry: list = []
        rollout(system, world, Episode(state, noise, None), graph, cfg, carry=carry)
        after, agents, _ = carry

        def paid(start: AgentState | None) -> float:
            logs = rollout(system, world, Episode(after, noise, None, start), graph, cfg)[1]
            return float(logs["reward"])  # mean reward per step of window 2, where every step pays

        kept = paid(agents)
        forgotten = paid(AgentState(*(torch.zeros_like(x) for x in agents)))
    # chance (action 0 whatever the cue) pays -1 per step; the carried state beats it, a zeroed one cannot
    assert kept > -0.5, kept
    assert forgotten < kept - 0.3, (kept, forgotten)
