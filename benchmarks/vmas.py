"""gnncomm against BenchMARL on VMAS tasks, on this CPU: return against wall time and against frames.

Each side trains on the same VMAS task (BenchMARL's task configuration, 100-step episodes) and is evaluated on
``--eval-episodes`` held-out episodes (200 by default, BenchMARL's published value) at the start, about every
``--eval-every-s`` seconds of training and at the end; evaluation time is not training time. The return is
BenchMARL's evaluation return: per episode, the sum over its steps of the agents' mean reward, averaged over
episodes (gnncomm's ``episode_return``).

* **gnncomm** learns through the simulator (``world=vmas``): each optimizer step rolls the ``batch_size``
  environments ``timesteps`` steps on from where they stopped and backpropagates the reward through VMAS;
  episodes last ``episode_steps`` and only finished ones restart. Its settings are :data:`GNNCOMM_TASKS`
  (plus ``--set key=value``); its evaluation uses greedy messages and the trained actions.
* **BenchMARL** runs MAPPO with its GNN model: ``python -m benchmarks.vmas_benchmarl`` with the same flags
  (a benchmark-only dependency: ``pip install benchmarl``).

Frames are environment steps (one step of every agent of one environment), BenchMARL's counter: a gnncomm
optimizer step is ``batch_size * timesteps`` frames.

Run from the repository root (one side at a time keeps the timings fair on 2 cores)::

    OMP_NUM_THREADS=1 python -m benchmarks.vmas --side gnncomm --task navigation --budget-s 900 \\
        --out benchmarks/results/vmas_gnncomm_navigation_15min.json
    OMP_NUM_THREADS=1 python -m benchmarks.vmas_benchmarl --task navigation --budget-s 900 --eval-every-s 150 \\
        --out benchmarks/results/vmas_benchmarl_navigation_15min.json
    python -m benchmarks.vmas --plot benchmarks/results/vmas_gnncomm_navigation_15min.json \\
        benchmarks/results/vmas_benchmarl_navigation_15min.json --out benchmarks/results/vmas_navigation.png

Smoke run (seconds)::

    python -m benchmarks.vmas --side gnncomm --task navigation --quick
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/vmas.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from torch import Tensor

from benchmarks.common import metadata, write_json
from gnncomm.config import Config
from gnncomm.evaluation import communication_ablation
from gnncomm.rollout import EVAL_SEED_OFFSET, evaluate_rollout
from gnncomm.trainer import Trainer

BENCHMARL_TASKS: dict[str, dict[str, Any]] = {
    "navigation": {
        "n_agents": 3,
        "collisions": True,
        "agents_with_same_goal": 1,
        "split_goals": False,
        "observe_all_goals": False,
        "shared_rew": False,
        "lidar_range": 0.35,
        "agent_radius": 0.1,
    },
    "simple_speaker_listener": {},
    "discovery": {
        "n_agents": 5,
        "n_targets": 7,
        "lidar_range": 0.35,
        "covering_range": 0.25,
        "agents_per_target": 2,
        "targets_respawn": True,
        "shared_reward": True,
    },
    "flocking": {"n_agents": 4, "n_obstacles": 5, "collision_reward": -0.1},
}
"""BenchMARL's task configurations (``conf/task/vmas/<task>.yaml``), all with ``max_steps: 100``."""
EPISODE_STEPS = 100

REWARD_ONLY = {
    "cluster_weight": 1.0,
    "recon_weight": 0.0,
    "comm_weight": 0.0,
    "vocab_weight": 0.0,
    "vocab_align_weight": 0.0,
}
"""The loss of a task: its reward alone (``cluster_weight`` weighs the reward term), through the simulator."""
GNNCOMM_TASKS: dict[str, dict[str, Any]] = {
    "navigation": {"timesteps": 10, "batch_size": 128, "lr": 3e-3, "vocab_size": 8, "msg_dim": 1, **REWARD_ONLY},
    "simple_speaker_listener": {
        "timesteps": 10,
        "batch_size": 256,
        "lr": 3e-3,
        "vocab_size": 8,
        "msg_dim": 1,
        **REWARD_ONLY,
    },
    "flocking": {"timesteps": 10, "batch_size": 128, "lr": 3e-3, "vocab_size": 8, "msg_dim": 1, **REWARD_ONLY},
}
"""gnncomm's settings per task on top of the library defaults (the gradient path)."""
PPO_COMMON = {
    "algorithm": "ppo",
    "timesteps": EPISODE_STEPS,  # an iteration is one whole episode per environment, as BenchMARL collects
    "batch_size": 60,  # 6,000 frames per iteration: BenchMARL's batch here (60 environments x 100 steps)
    "gamma": 0.9,  # BenchMARL's
    "gae_lambda": 0.9,  # BenchMARL's MAPPO lmbda
    "lr": 1e-3,
    "warmup_steps": 0,
    "ppo_epochs": 4,
    "ppo_sequence": 10,  # 10 sequences of 10 steps per environment and iteration
    "minibatches": 16,  # 64 gradient steps per iteration, 640 sequential replay steps
    "vocab_size": 8,
    "msg_dim": 1,
    **REWARD_ONLY,
}
GNNCOMM_PPO_TASKS: dict[str, dict[str, Any]] = {
    "navigation": {
        **PPO_COMMON,
        "ppo_epochs": 12,
        "lr_decay": "cosine",
        "anneal_steps": 43,  # the learning rate falls to lr_final over 258k frames (43 iterations), then stays
        "gamma": 0.99,  # the return counts distance closed whenever it is closed; 0.9 pays for haste, and collisions
        "encoder_memory": False,  # the observation holds what an agent needs: fewer frames without memory
        "message_noise": 0.0,  # greedy straight-through messages, heard in training as at evaluation
    },
    "discovery": {
        **PPO_COMMON,
        "action_std": 1.0,  # BenchMARL's initial scale
        "critic_input": "observations",  # a separate critic: the reward is the team's
        "message_noise": 0.0,  # greedy straight-through messages, heard in training as at evaluation
    },
}
"""gnncomm-PPO's settings per task (``--algorithm ppo``), on top of the library defaults; other tasks take
:data:`PPO_COMMON`. Discovery's three changes were chosen on seeds 0-4 and held on seeds 5-19, run afterwards;
navigation's were chosen on seed 0 and held on seeds 1-6 (README)."""


def gnncomm_config(task: str, overrides: Sequence[str] = (), *, seed: int = 0, algorithm: str = "gradient") -> Config:
    """The config of the gnncomm side: the task as BenchMARL configures it, and :data:`GNNCOMM_TASKS` (or
    :data:`GNNCOMM_PPO_TASKS` with ``algorithm="ppo"``)."""
    if task not in BENCHMARL_TASKS:
        raise ValueError(f"task must be one of {sorted(BENCHMARL_TASKS)}, got {task!r}")
    kwargs = dict(BENCHMARL_TASKS[task])
    n_agents = kwargs.pop("n_agents", 2)
    data: dict[str, Any] = {
        "world": "vmas",
        "scenario": task,
        "num_agents": n_agents,
        "world_kwargs": kwargs,
        "episode_steps": EPISODE_STEPS,
        "seed": seed,
        "steps": 10**9,  # the budget stops the run; the schedules follow anneal_steps
        "eval_every": 0,
        "log_every": 10**9,
        **(GNNCOMM_PPO_TASKS.get(task, PPO_COMMON) if algorithm == "ppo" else GNNCOMM_TASKS.get(task, {})),
    }
    return Config.from_dict(data).with_overrides(list(overrides))


NAVIGATION_FINAL_REWARD = 0.01
"""VMAS navigation's ``final_reward``: what every agent earns at the step on which all agents are on their goals."""


def navigation_breakdown(rewards: Tensor, collisions: Tensor, reached: Tensor, initial_distance: Tensor) -> dict:
    """Where a navigation policy's return goes, from its evaluation episodes (the first episode of each).

    An agent's navigation return is the distance it closed (VMAS's position shaping), the final reward when all
    agents are on their goals, and -1 per step it touches another agent; BenchMARL's return is the agents' mean.
    The ceiling, every agent on its goal without a collision, is the mean initial distance plus the final reward.

    Args:
        rewards: ``[E, T, N]`` each agent's reward of each step, 0 after its episode ended.
        collisions: ``[E, T, N]`` each agent's collision penalty of each step (0 or -1 per agent touched).
        reached: ``[E]`` whether every agent was on its goal (VMAS's ``done``) before the episode's last step.
        initial_distance: ``[E, N]`` each agent's distance to its goal at the start.

    >>> r = torch.tensor([[[0.5, 0.2], [-1.0, -0.9]]])  # one episode, two steps, two agents touching at step 1
    >>> c = torch.tensor([[[0.0, 0.0], [-1.0, -1.0]]])
    >>> out = navigation_breakdown(r, c, torch.tensor([False]), torch.tensor([[1.0, 1.0]]))
    >>> out["eval_return"], out["collision_return"], out["episodes_with_collision"], out["reached"]
    (-0.6, -1.0, 1.0, 0.0)
    """
    episode_return = rewards.float().mean(-1).sum(-1)  # [E]
    collision_return = collisions.float().mean(-1).sum(-1)  # [E]
    return {
        "eval_return": round(float(episode_return.mean()), 6),
        "ceiling": round(float(initial_distance.float().mean()) + NAVIGATION_FINAL_REWARD, 6),
        "collision_return": round(float(collision_return.mean()), 6),
        "progress_return": round(float((episode_return - collision_return).mean()), 6),
        "episodes_with_collision": round(float((collision_return < 0).float().mean()), 6),
        "reached": round(float(reached.float().mean()), 6),
        "episodes": int(rewards.size(0)),
    }


def gnncomm_navigation_breakdown(trainer: Trainer, *, episodes: int, seed: int) -> dict:
    """:func:`navigation_breakdown` of the trained system's greedy policy on the held-out episodes of ``seed``.
    The collision penalty is read from the reward: navigation's position shaping moves by at most a few tenths
    per step, so a step's reward at or below -0.5 holds one -1 per agent touched."""
    cfg = trainer.cfg
    _, trace = evaluate_rollout(
        trainer.system, trainer.world, cfg, episodes=episodes, seed=seed, device=trainer.rt.device, record=True
    )
    rewards = torch.stack(trace.agent_rewards, dim=1)  # [E, T, N]; 0 once an episode is done
    collisions = torch.where(rewards <= -0.5, -torch.round(-rewards), torch.zeros_like(rewards))
    reached = trace.states[-1].done.bool()  # done before the last step (states are recorded before their step)
    N = cfg.num_agents
    start = trace.obs[0].view(-1, N, trace.obs[0].size(-1))
    return navigation_breakdown(rewards, collisions, reached, start[..., 4:6].norm(dim=-1))  # obs[4:6]: to goal


def run_gnncomm(
    task: str,
    *,
    budget_s: float | None,
    max_frames: int | None,
    eval_every_s: float,
    eval_episodes: int = 200,
    seed: int = 0,
    overrides: Sequence[str] = (),
    algorithm: str = "gradient",
) -> dict[str, Any]:
    """Trains gnncomm on ``task`` until ``budget_s`` training seconds or ``max_frames`` frames; returns the curve."""
    if budget_s is None and max_frames is None:
        raise ValueError("give budget_s or max_frames (or both)")
    cfg = gnncomm_config(task, overrides, seed=seed, algorithm=algorithm)
    eval_seed = seed + EVAL_SEED_OFFSET
    curve: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gnncomm-vmas-") as tmp:
        trainer = Trainer(cfg, tmp)
        frames_per_step = cfg.batch_size * cfg.timesteps

        def evaluate(wall: float, frames: int, full: bool = False) -> dict[str, Any]:
            """Greedy return on the held-out episodes; with ``full``, the whole ablation (silenced, shuffled...)."""
            point = {"wall_s": wall, "frames": frames, "step": trainer.step, "eval_episodes": eval_episodes}
            if full:
                ablation = communication_ablation(
                    trainer.system, trainer.world, cfg, episodes=eval_episodes, seed=eval_seed, device=trainer.rt.device
                )
                point.update(
                    eval_return=ablation["episode_return"],
                    eval_return_silenced=ablation["episode_return_silenced"],
                    eval_return_shuffled=ablation["episode_return_shuffled"],
                    eval_return_no_actions=ablation["episode_return_no_actions"],
                )
                if task == "navigation":
                    point["breakdown"] = gnncomm_navigation_breakdown(trainer, episodes=eval_episodes, seed=eval_seed)
                if ablation.get("success_rate") is not None:
                    point.update(
                        success_rate=ablation["success_rate"],
                        success_rate_silenced=ablation["success_rate_silenced"],
                        goal_distance=ablation["goal_distance"],
                    )
            else:
                logs, _ = evaluate_rollout(
                    trainer.system, trainer.world, cfg, episodes=eval_episodes, seed=eval_seed, device=trainer.rt.device
                )
                point["eval_return"] = logs["reward"] * cfg.episode_length
                if "success" in logs:
                    point["success_rate"] = logs["success"]
            print(
                f"  {wall:7.1f} s  {frames:>9,} frames  return {point['eval_return']:+.4f}"
                + (f" (silenced {point['eval_return_silenced']:+.4f})" if full else "")
                + (f"  success {point['success_rate']:.3f}" if "success_rate" in point else ""),
                flush=True,
            )
            return point

        curve.append(evaluate(0.0, 0))
        wall, frames, next_eval = 0.0, 0, eval_every_s
        trainer.loss_module.set_topology(*cfg.topology_at(0), trainer.local_batch, trainer.rt.device)
        span = trainer.anneal_span = cfg.anneal_steps or 600
        while (budget_s is None or wall < budget_s) and (max_frames is None or frames < max_frames):
            tick = time.perf_counter()
            step = trainer.step
            for group in trainer.optimizer.param_groups:
                group["lr"] = cfg.learning_rate(step, span)
            temperature = torch.tensor(cfg.temperature(step, span), device=trainer.rt.device)
            logs = trainer.iteration(temperature)
            trainer.step += 1
            if not torch.isfinite(logs["loss"]):
                raise FloatingPointError(f"non-finite loss at step {trainer.step}")
            frames += frames_per_step
            wall += time.perf_counter() - tick
            if wall >= next_eval:
                curve.append(evaluate(wall, frames))
                next_eval = (math.floor(wall / eval_every_s) + 1) * eval_every_s
        final = evaluate(wall, frames, full=True)  # the whole ablation at the end, in place of a plain point there
        curve[-1:] = [final] if curve[-1]["frames"] == frames and len(curve) > 1 else [curve[-1], final]
        trainer.close()
    final = dict(curve[-1])
    final["frames_per_s"] = frames / max(wall, 1e-9)
    return {
        "library": "gnncomm" if algorithm == "gradient" else f"gnncomm-{algorithm}",
        "task": task,
        "settings": {**cfg.to_dict(), "frames_per_step": frames_per_step},
        "curve": curve,
        "final": final,
    }


def plot(paths: Sequence[str | Path], out: str | Path) -> None:
    """Return against training wall time and against frames, one line per JSON file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for path in paths:
        data = json.loads(Path(path).read_text())
        label = f"{data['library']} ({Path(path).stem})"
        xs = data["curve"]
        axes[0].plot([p["wall_s"] for p in xs], [p["eval_return"] for p in xs], marker=".", label=label)
        axes[1].plot([p["frames"] for p in xs], [p["eval_return"] for p in xs], marker=".", label=label)
    task = json.loads(Path(paths[0]).read_text())["task"]
    for ax, xlabel in zip(axes, ("training wall time (s, evaluation excluded)", "environment frames")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel("evaluation return (200 held-out episodes)")
        ax.grid(alpha=0.3)
    axes[0].set_title(f"VMAS {task}: return against wall time")
    axes[1].set_xscale("symlog", linthresh=1e4)  # gnncomm's frames/s is ~20x BenchMARL's: both ends stay visible
    axes[1].set_title(f"VMAS {task}: return against frames")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", choices=("gnncomm",), help="gnncomm (BenchMARL: python -m benchmarks.vmas_benchmarl)")
    parser.add_argument("--task", default="navigation", choices=sorted(BENCHMARL_TASKS))
    parser.add_argument(
        "--algorithm", default="gradient", choices=("gradient", "ppo"), help="gnncomm's training algorithm"
    )
    parser.add_argument("--budget-s", type=float, default=None, help="training wall-clock budget (seconds)")
    parser.add_argument("--max-frames", type=int, default=None, help="environment-frame budget")
    parser.add_argument("--eval-every-s", type=float, default=60.0)
    parser.add_argument("--eval-episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="gnncomm config override")
    parser.add_argument("--quick", action="store_true", help="a smoke run: seconds, tiny evaluation")
    parser.add_argument("--plot", nargs="+", default=None, metavar="JSON", help="draw these results instead")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.plot:
        out = args.out or "benchmarks/results/vmas.png"
        plot(args.plot, out)
        print(f"wrote {out}")
        return 0
    if args.side is None:
        parser.error("--side is required unless --plot is given")
    torch.set_num_threads(args.threads)
    if args.quick:
        args.budget_s, args.eval_every_s, args.eval_episodes = 5.0, 5.0, 4
        args.set = ["batch_size=8", "hidden_dim=16", *args.set]
    load_start = os.getloadavg()
    print(f"gnncomm on VMAS {args.task}: budget {args.budget_s} s, {args.max_frames} frames", flush=True)
    result = run_gnncomm(
        args.task,
        budget_s=args.budget_s,
        max_frames=args.max_frames,
        eval_every_s=args.eval_every_s,
        eval_episodes=args.eval_episodes,
        seed=args.seed,
        overrides=args.set,
        algorithm=args.algorithm,
    )
    result["meta"] = {
        **metadata(torch.device("cpu"), sys.argv if argv is None else ["benchmarks.vmas", *argv]),
        "threads": args.threads,
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
    }
    final = result["final"]
    print(
        f"final: {final['wall_s']:.0f} s, {final['frames']:,} frames ({final['frames_per_s']:.0f} frames/s), "
        f"return {final['eval_return']:+.4f}"
    )
    if args.out:
        write_json(args.out, result)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
