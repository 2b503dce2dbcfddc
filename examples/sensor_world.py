"""Bring your own world: static sensors that must pool what they measure.

``SensorWorld`` implements the :class:`gnncomm.World` protocol with no dynamics at all. ``N`` sensors
sit on a circle and never move, so the k-nearest-neighbour graph is fixed. Each episode has a hidden
field ``z ~ N(0, I_L)``; sensor ``i`` reads one random linear mixture of it (its own fixed direction),
with noise. No sensor can recover ``z`` alone, so they must talk. Training, the communication
ablation and ``gnncomm evaluate``'s report all work unchanged:

    python examples/sensor_world.py --steps 300 --out runs/sensors

The run names its world by import path (``world=examples.sensor_world:make_world``), so from the repository
root the command line trains, evaluates and animates it like any other run::

    gnncomm train world=examples.sensor_world:make_world cluster_weight=0 --out runs/sensors
    gnncomm evaluate runs/sensors && gnncomm animate runs/sensors
"""

from __future__ import annotations

import argparse
import math
from typing import NamedTuple

import torch
from torch import Tensor

import gnncomm


class SensorState(NamedTuple):
    """Every field is ``[B, ...]``: the trainer slices episodes along the first dimension."""

    pos: Tensor  # [B, N, 2], constant
    latent: Tensor  # [B, L]


class SensorWorld:
    """``N`` fixed sensors, each reading one noisy random projection of an ``L``-dimensional field."""

    independent_episodes = True  # nothing of a batch lives outside its states: evaluations may run it in chunks

    def __init__(self, num_agents: int, latent_dim: int = 4, obs_noise: float = 0.1, seed: int = 0) -> None:
        if num_agents < 2 or latent_dim < 1 or obs_noise < 0:
            raise ValueError(
                f"need num_agents >= 2, latent_dim >= 1, obs_noise >= 0; got {num_agents}, {latent_dim}, {obs_noise}"
            )
        self.num_agents, self.latent_dim, self.obs_noise = num_agents, latent_dim, obs_noise
        directions = torch.randn(num_agents, latent_dim, generator=torch.Generator().manual_seed(seed))
        self.directions = directions / directions.norm(dim=1, keepdim=True)  # [N, L], unit rows
        angle = 2 * math.pi * torch.arange(num_agents) / num_agents
        self.positions = torch.stack([angle.cos(), angle.sin()], dim=-1)  # [N, 2]

    @property
    def obs_dim(self) -> int:
        return 1 + self.latent_dim  # the reading, and the sensor's own direction

    def reset(
        self, batch_size: int, *, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> SensorState:
        latent = torch.randn(batch_size, self.latent_dim, generator=generator, device=device)
        pos = self.positions.to(device).expand(batch_size, -1, -1).contiguous()
        return SensorState(pos, latent)

    def sample_noise(
        self,
        steps: int,
        batch_size: int,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        return torch.randn(steps, batch_size, self.num_agents, generator=generator, device=device)  # [T, B, N]

    def observe(self, state: SensorState, noise: Tensor | None = None) -> Tensor:
        directions = self.directions.to(state.latent.device)
        reading = state.latent @ directions.T  # [B, N]
        if noise is not None:
            reading = reading + self.obs_noise * noise
        B, N = reading.shape
        obs = torch.cat([reading.unsqueeze(-1), directions.expand(B, N, -1)], dim=-1)  # [B, N, 1 + L]
        return obs.reshape(B * N, self.obs_dim)

    def step(self, state: SensorState, action: Tensor, edge_index: Tensor) -> SensorState:
        return state  # sensors do not move: actions have no effect

    def reward(self, state: SensorState) -> Tensor:
        return state.latent.new_zeros(state.latent.size(0))  # nothing to earn but a shared estimate


def make_world(cfg: gnncomm.Config) -> SensorWorld:
    """The factory a config names by import path: ``world=examples.sensor_world:make_world``."""
    return SensorWorld(cfg.num_agents, cfg.latent_dim, cfg.obs_noise, cfg.seed)


gnncomm.register_world("sensors", make_world)  # a short name for this session too


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=8, help="sensors (default: 8)")
    parser.add_argument("--steps", type=int, default=300, help="training steps (default: 300)")
    parser.add_argument("--batch-size", type=int, default=128, help="episodes per step (default: 128)")
    parser.add_argument("--out", default="runs/sensors", help="run folder (default: runs/sensors)")
    parser.add_argument("--quick", action="store_true", help="a few steps on a tiny model, for CI")
    args = parser.parse_args(argv)
    cfg = gnncomm.Config(
        # by import path, saved in config.json: `gnncomm evaluate` and `gnncomm animate` rebuild the world from it
        world="examples.sensor_world:make_world",
        num_agents=args.agents,
        k_neighbors=2,
        steps=args.steps,
        batch_size=args.batch_size,
        cluster_weight=0.0,
        log_every=25,
        eval_episodes=256,
    )
    if args.quick:
        cfg = cfg.with_overrides(
            dict(
                steps=4,
                batch_size=8,
                hidden_dim=16,
                vocab_size=8,
                msg_dim=2,
                timesteps=2,
                log_every=2,
                checkpoint_every=4,
                eval_episodes=8,
            )
        )
    result = gnncomm.train(cfg, args.out, progress=not args.quick)
    report = gnncomm.evaluate(args.out, num_permutations=20 if args.quick else 200)
    ab = result.ablation
    print(
        f"world MSE: real {ab['world_mse']:.3f}, silenced {ab['world_mse_silent']:.3f}, "
        f"shuffled {ab['world_mse_shuffled']:.3f}"
    )
    print(f"report: {args.out}/report.md (hubs {report['hubs']}, relays {report['relays']})")
    return report


if __name__ == "__main__":
    main()
