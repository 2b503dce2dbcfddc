"""Any PettingZoo-style parallel environment as a gnncomm world, learned from its reward with PPO.

    gnncomm train world=examples.parallel_env_world:make_world algorithm=ppo num_agents=3 topology=full \\
        timesteps=25 batch_size=32 steps=100 recon_weight=0 comm_weight=0 vocab_weight=0 vocab_align_weight=0

``ParallelEnvWorld`` runs ``B`` copies of an environment with PettingZoo's parallel API (``reset(seed=) ->
(obs, infos)``, ``step(actions) -> (obs, rewards, terminations, truncations, infos)`` with dicts keyed by
``possible_agents``) in numpy, outside torch: there is no gradient, so train it with ``algorithm=ppo``. A
PettingZoo or Gymnasium environment plugs in the same way through ``make_env``. ``Rendezvous`` below is a
small such environment where only agent 0 knows where the team must meet.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch


class Rendezvous:
    """``n`` agents on a plane must meet at a point only agent 0 sees; each reward is minus the agent's distance."""

    def __init__(self, n: int = 3, horizon: int = 25) -> None:
        self.possible_agents = [f"agent_{i}" for i in range(n)]
        self.horizon = horizon

    def reset(self, seed: int | None = None) -> tuple[dict, dict]:
        rng = np.random.default_rng(seed)
        self.pos, self.goal, self.t = rng.uniform(-1, 1, (len(self.possible_agents), 2)), rng.uniform(-1, 1, 2), 0
        return self._obs(), {a: {} for a in self.possible_agents}

    def _obs(self) -> dict[str, np.ndarray]:
        seen = [np.concatenate([p, self.goal if i == 0 else np.zeros(2)]) for i, p in enumerate(self.pos)]
        return dict(zip(self.possible_agents, seen))

    def step(self, actions: dict[str, np.ndarray]) -> tuple[dict, dict, dict, dict, dict]:
        self.pos = np.clip(self.pos + 0.1 * np.stack([actions[a] for a in self.possible_agents]), -1.5, 1.5)
        self.t += 1
        dist = np.linalg.norm(self.pos - self.goal, axis=-1)
        flag = {a: self.t >= self.horizon for a in self.possible_agents}
        return self._obs(), dict(zip(self.possible_agents, -dist)), flag, flag, {a: {} for a in self.possible_agents}


KEEP_SLOTS = 8
"""Environment batches kept alive: a run holds its training batch and an evaluation's at once, at most."""


class EnvState(NamedTuple):
    pos: torch.Tensor  # [B, N, 2]: zeros (a parallel env has no common notion of position; use a static topology)
    latent: torch.Tensor  # [B, 0]
    obs: torch.Tensor  # [B, N, obs_dim]
    reward: torch.Tensor  # [B]
    agent_reward: torch.Tensor  # [B, N]
    done: torch.Tensor  # [B]
    slot: torch.Tensor  # [B]: which list of environments these rows are


class ParallelEnvWorld:
    """``B`` copies of ``make_env()`` behind gnncomm's ``World`` protocol (``latent_dim = 0``)."""

    latent_dim = 0

    def __init__(self, make_env: Any) -> None:
        self.make_env, self._slots, self._made = make_env, {}, 0  # slot id -> its B environments
        probe = make_env()
        obs, _ = probe.reset(seed=0)
        self.agents = probe.possible_agents
        self.num_agents, self.obs_dim, self.action_dim = len(self.agents), len(obs[self.agents[0]]), 2

    def _state(self, slot: int, obs: list, rewards: list, dones: list) -> EnvState:
        B, N = len(obs), self.num_agents
        o = torch.tensor(np.array([[x[a] for a in self.agents] for x in obs]), dtype=torch.float32)
        r = torch.tensor(np.array([[x[a] for a in self.agents] for x in rewards]), dtype=torch.float32).view(B, N)
        return EnvState(torch.zeros(B, N, 2), torch.zeros(B, 0), o, r.mean(-1), r,
                        torch.tensor(dones, dtype=torch.float32), torch.full((B,), slot))  # fmt: skip

    def reset(self, batch_size: int, *, generator: torch.Generator | None = None, device: Any = None) -> EnvState:
        envs, slot = [self.make_env() for _ in range(batch_size)], self._made
        self._slots = {k: v for k, v in self._slots.items() if k > slot - KEEP_SLOTS} | {slot: envs}
        self._made += 1
        seeds = torch.randint(0, 2**31, (batch_size,), generator=generator).tolist()
        obs = [env.reset(seed=s)[0] for env, s in zip(envs, seeds)]
        zeros = [dict.fromkeys(self.agents, 0.0)] * batch_size
        return self._state(slot, obs, zeros, [False] * batch_size)

    def sample_noise(self, steps: int, batch_size: int, *, generator: Any = None, device: Any = None) -> torch.Tensor:
        return torch.zeros(steps, batch_size, self.num_agents, 0)

    def observe(self, state: EnvState, noise: torch.Tensor | None = None) -> torch.Tensor:
        return state.obs.reshape(-1, self.obs_dim)

    def step(self, state: EnvState, action: torch.Tensor, edge_index: Any = None) -> EnvState:
        envs, act = (
            self._slots[int(state.slot[0])],
            action.detach().view(len(state.done), self.num_agents, -1).cpu().numpy(),
        )
        out = [env.step(dict(zip(self.agents, a))) for env, a in zip(envs, act)]
        dones = [any(o[2].values()) or any(o[3].values()) for o in out]
        return self._state(int(state.slot[0]), [o[0] for o in out], [o[1] for o in out], dones)

    def reward(self, state: EnvState) -> torch.Tensor:
        return state.reward

    def agent_rewards(self, state: EnvState) -> torch.Tensor:
        return state.agent_reward

    def reset_done(self, state: EnvState, mask: torch.Tensor, generator: torch.Generator | None = None) -> EnvState:
        envs, obs = self._slots[int(state.slot[0])], state.obs.clone()
        for i in mask.nonzero().flatten().tolist():
            fresh = envs[i].reset(seed=int(torch.randint(0, 2**31, (1,), generator=generator)))[0]
            obs[i] = torch.tensor(np.array([fresh[a] for a in self.agents]), dtype=torch.float32)
        keep = ~mask
        return state._replace(obs=obs, done=state.done * keep, reward=state.reward * keep,
                              agent_reward=state.agent_reward * keep.unsqueeze(-1))  # fmt: skip


def make_world(cfg: Any) -> ParallelEnvWorld:
    """The factory a config names (``world=examples.parallel_env_world:make_world``)."""
    return ParallelEnvWorld(lambda: Rendezvous(cfg.num_agents, horizon=cfg.episode_length))
