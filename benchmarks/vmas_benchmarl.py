"""BenchMARL's MAPPO with its GNN model on a VMAS task: the BenchMARL half of the VMAS comparison.

BenchMARL is a benchmark-only dependency (``pip install benchmarl``; its GNN model also needs
``torch-geometric``). It is imported inside the functions that use it, never at module import.

What a run does:

* **Set-up.** BenchMARL's own configurations, not a re-implementation: ``MappoConfig.get_from_yaml()``
  (``conf/algorithm/mappo.yaml``), the task's ``conf/task/vmas/<task>.yaml`` (plus ``task_overrides``), and
  ``conf/experiment/base_experiment.yaml`` overlaid with the VMAS values BenchMARL publishes
  (``fine_tuned/vmas/conf/config.yaml``). Two groups of those published values are changed, and
  :data:`CHANGED` records each with its reason: the on-policy batch is scaled down ten-fold for this CPU
  (6,000 frames from 60 environments per iteration, minibatches of 400), and everything that would write files
  outside a temporary folder, render, or log to wandb is off. The model is a :class:`SequenceModelConfig` of
  a 4-head ``GATv2Conv`` on the full graph followed by a 64-64 MLP, for the policy and (BenchMARL's default)
  the critic.
* **Training.** ``Experiment.run()`` drives BenchMARL's own collection and PPO loop. A callback reads the
  training clock after each iteration's update; it stops the run once ``budget_s`` seconds of training or
  ``max_frames`` environment frames are reached, so the last iteration may overshoot the budget by up to one
  iteration (reported as is in ``wall_s``).
* **Evaluation.** BenchMARL's own evaluation loop (deterministic actions, ``eval_episodes`` vectorized
  environments for ``max_steps`` steps), at the start, after the first iteration that ends past each
  multiple of ``eval_every_s`` seconds of training, and at the end. Every evaluation
  reseeds with ``seed + EVAL_SEED_OFFSET``, so each one plays the same held-out episodes, drawn from a stream
  the training environments never use; the training random state is restored afterwards, so evaluating does
  not change the training run. The training clock is paused while evaluating.
* **Return.** BenchMARL's definition (``benchmarl/experiment/logger.py``, ``log_evaluation``): each episode is
  cut at its first ``done``, its return is the sum over steps of the agents' mean reward, and the reported
  value is the mean over episodes. The per-episode values are read from BenchMARL's own JSON writer (its
  marl-eval output), so the number is BenchMARL's, not a re-computation.
* **Frames** are environment steps (one step of all agents in one environment), BenchMARL's counter.

Run from the repository root::

    OMP_NUM_THREADS=1 python -m benchmarks.vmas_benchmarl --task navigation --budget-s 300 --eval-every-s 60 \\
        --out benchmarks/results/vmas_benchmarl_navigation_5min.json
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

INSTALL_HINT = "the BenchMARL benchmark needs BenchMARL, which is not in the core install: pip install benchmarl"

EVAL_SEED_OFFSET = 1_000_000
"""Evaluation episodes are seeded with ``seed + EVAL_SEED_OFFSET``, a stream training never draws from."""

GNN_HEADS = 4
HIDDEN = 64
MLP_CELLS = (64, 64)

PUBLISHED_VMAS = {
    "gamma": 0.9,
    "exploration_anneal_frames": 1_000_000,
    "max_n_frames": 10_000_000,
    "on_policy_collected_frames_per_batch": 60_000,
    "on_policy_n_envs_per_worker": 600,
    "on_policy_n_minibatch_iters": 45,
    "on_policy_minibatch_size": 4096,
    "off_policy_n_envs_per_worker": 60,
    "evaluation_episodes": 200,
    "sampling_device": "cuda",
    "train_device": "cuda",
    "buffer_device": "cuda",
    "loggers": ["wandb"],
}
"""Where BenchMARL's published VMAS experiment config (``fine_tuned/vmas/conf/config.yaml`` in its repository,
last changed in commit ``f168856``, April 2025) differs from ``base_experiment.yaml``; every other value is the
base one. That file is not shipped in the wheel, hence the copy."""

CHANGED = {
    "sampling_device": ("cpu", "this benchmark runs on the CPU (the published config assumes a GPU)"),
    "train_device": ("cpu", "as sampling_device"),
    "buffer_device": ("cpu", "as sampling_device"),
    "on_policy_collected_frames_per_batch": (
        6000,
        "scaled down 10x so an iteration takes seconds, not minutes, on this CPU (base_experiment's value)",
    ),
    "on_policy_n_envs_per_worker": (
        60,
        "scaled down 10x with the batch: still 100 steps per environment per iteration, as published",
    ),
    "on_policy_minibatch_size": (
        400,
        "scaled down 10x with the batch (base_experiment's value): 15 minibatches per epoch (published: 14.6)",
    ),
    "max_n_frames": (None, "the budget: max_frames, or left to the time budget (then the published 10M)"),
    "evaluation": (False, "BenchMARL's frame-interval evaluation is off; this script calls its loop on a clock"),
    "evaluation_episodes": (None, "eval_episodes (the published value, 200, is the default)"),
    "render": (False, "rendering evaluation videos costs time and needs a display"),
    "loggers": ([], "no wandb/csv/tensorboard files; the curve is returned instead"),
    "save_folder": (None, "a temporary folder, deleted after the run (config.pkl and the marl-eval JSON)"),
}
"""Each published VMAS experiment value this script changes: ``key -> (value used, why)``; ``None`` means set
per run (see :func:`run_benchmarl`)."""


class _BudgetReached(BaseException):
    """Raised by the budget callback to leave ``Experiment.run()`` after an iteration.

    It derives from ``BaseException`` on purpose: ``Experiment.run()`` catches ``Exception`` and closes the
    environments, which the final evaluation still needs. This passes through untouched, and
    :func:`run_benchmarl` closes the experiment itself.
    """


class _TrainClock:
    """Training wall-clock seconds, paused while evaluating."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self._since: float | None = None

    def start(self) -> None:
        self._since = time.perf_counter()

    def stop(self) -> float:
        if self._since is not None:
            self.elapsed += time.perf_counter() - self._since
            self._since = None
        return self.elapsed


def _import_benchmarl() -> Any:
    """The ``benchmarl`` module, or a one-line ``ImportError`` that says how to install it."""
    try:
        import benchmarl
        import torchrl  # noqa: F401
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return benchmarl


def _plain(value: Any) -> Any:
    """``value`` as plain JSON: dataclasses as dicts, classes by qualified name, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _check_args(
    budget_s: float | None, max_frames: int | None, eval_every_s: float, eval_episodes: int, threads: int
) -> None:
    if budget_s is None and max_frames is None:
        raise ValueError("budget_s and max_frames are both None: give at least one budget")
    if budget_s is not None and not budget_s > 0:
        raise ValueError(f"budget_s must be > 0 seconds or None, got {budget_s}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
    if not eval_every_s > 0:
        raise ValueError(f"eval_every_s must be > 0 seconds, got {eval_every_s}")
    if eval_episodes < 1:
        raise ValueError(f"eval_episodes must be >= 1, got {eval_episodes}")
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")


def _experiment_config(max_frames: int | None, eval_episodes: int, folder: str) -> Any:
    """``base_experiment.yaml`` + BenchMARL's published VMAS values + :data:`CHANGED`."""
    config = _base_config()
    per_run = {
        "max_n_frames": max_frames if max_frames is not None else PUBLISHED_VMAS["max_n_frames"],
        "evaluation_episodes": eval_episodes,
        "save_folder": folder,
    }
    for key, value in PUBLISHED_VMAS.items():
        setattr(config, key, value)
    for key, (value, _) in CHANGED.items():
        setattr(config, key, per_run.get(key, value))
    return config


def _model_config() -> Any:
    """A 4-head ``GATv2Conv`` on the full graph (BenchMARL's default topology, no self loops), then a 64-64 MLP.

    BenchMARL reshapes the GNN output to ``out_channels`` features per agent, so the heads are averaged
    (``concat=False``) rather than concatenated; every other ``GATv2Conv`` argument is PyG's default.
    """
    import torch_geometric
    from benchmarl.models import GnnConfig, MlpConfig, SequenceModelConfig

    gnn = GnnConfig.get_from_yaml()  # conf/model/layers/gnn.yaml: topology full, no self loops
    gnn.gnn_class = torch_geometric.nn.conv.GATv2Conv
    gnn.gnn_kwargs = {"heads": GNN_HEADS, "concat": False}
    mlp = MlpConfig.get_from_yaml()  # conf/model/layers/mlp.yaml: Tanh, Linear
    mlp.num_cells = list(MLP_CELLS)
    return SequenceModelConfig(model_configs=[gnn, mlp], intermediate_sizes=[HIDDEN])


def _task(task: str, task_overrides: dict | None) -> Any:
    from benchmarl.environments import VmasTask

    try:
        member = VmasTask[task.upper()]
    except KeyError:
        names = ", ".join(t.name.lower() for t in VmasTask)
        raise ValueError(f"task must be one of BenchMARL's VMAS tasks ({names}), got {task!r}") from None
    task_class = member.get_from_yaml()  # conf/task/vmas/<task>.yaml
    if task_overrides:
        unknown = sorted(set(task_overrides) - set(task_class.config))
        if unknown:
            raise ValueError(
                f"task_overrides has keys {unknown} that {task}'s config lacks: {sorted(task_class.config)}"
            )
        task_class.config.update(task_overrides)
    return task_class


def _evaluate(experiment: Any, eval_seed: int) -> tuple[float, int]:
    """BenchMARL's evaluation loop on the held-out episodes of ``eval_seed``: (mean return, episodes).

    The random state is restored afterwards, so training continues as if no evaluation had run.
    """
    from benchmarl.utils import local_seed, seed_everything

    with local_seed():
        seed_everything(eval_seed)  # what evaluation_static does, with the evaluation seed
        experiment.test_env.set_seed(eval_seed)
        experiment._evaluation_loop()
    # log_evaluation's marl-eval JSON writer holds the per-episode returns of the evaluation just run
    run_data = experiment.logger.json_writer.run_data
    step = run_data[f"step_{experiment.total_frames // experiment.config.evaluation_interval}"]
    if step["step_count"] != experiment.total_frames:
        raise RuntimeError(
            f"BenchMARL's evaluation record is at {step['step_count']} frames, expected {experiment.total_frames}"
        )
    returns = step["return"]  # [episodes], the mean over agent groups
    return sum(returns) / len(returns), len(returns)


def _navigation_breakdown(experiment: Any, eval_seed: int) -> dict:
    """:func:`benchmarks.vmas.navigation_breakdown` of BenchMARL's deterministic policy on the held-out episodes
    of ``eval_seed`` (the first episode of each test environment), read from VMAS's own ``agent_collisions``."""
    from benchmarl.utils import local_seed, seed_everything
    from torchrl.envs.utils import ExplorationType, set_exploration_type

    from benchmarks.vmas import navigation_breakdown

    with local_seed(), torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
        seed_everything(eval_seed)
        experiment.test_env.set_seed(eval_seed)
        td = experiment.test_env.rollout(
            max_steps=experiment.max_steps,
            policy=experiment.policy,
            auto_cast_to_device=True,
            break_when_any_done=False,
        )
    group = next(iter(experiment.group_map))
    rewards = td["next", group, "reward"].squeeze(-1).float()  # [E, T, N]
    E, T = rewards.shape[:2]
    done = td["next", "done"].reshape(E, T).float()
    alive = (torch.cumsum(done, 1) - done == 0).float()  # the first episode, its last step included
    collisions = td["next", group, "info", "agent_collisions"].squeeze(-1).float() * alive.unsqueeze(-1)
    terminated = td["next", "terminated"].reshape(E, T).float() * alive
    start = td[group, "observation"][:, 0]  # [E, N, obs]; obs[4:6] is the agent's offset to its goal
    return navigation_breakdown(
        rewards * alive.unsqueeze(-1), collisions, terminated[:, :-1].any(1), start[..., 4:6].norm(dim=-1)
    )


def _budget_callback(
    clock: _TrainClock,
    budget_s: float | None,
    max_frames: int | None,
    eval_every_s: float,
    evaluate: Callable[[], None],
) -> Any:
    """A BenchMARL callback that evaluates on the training clock and stops the run at the budget."""
    from benchmarl.experiment.callback import Callback

    class BudgetCallback(Callback):
        """After each iteration's update: stop at the budget, else evaluate when ``eval_every_s`` has passed."""

        def __init__(self) -> None:
            super().__init__()
            self.next_eval_s = eval_every_s

        def on_train_end(self, training_td: Any, group: str) -> None:
            if group != list(self.experiment.train_group_map)[-1]:
                return  # the iteration is over once the last group has trained
            wall_s = clock.stop()
            frames = self.experiment.total_frames
            if (budget_s is not None and wall_s >= budget_s) or (max_frames is not None and frames >= max_frames):
                raise _BudgetReached
            if wall_s >= self.next_eval_s:
                evaluate()
                self.next_eval_s = (wall_s // eval_every_s + 1) * eval_every_s
            clock.start()

    return BudgetCallback()


def _count(params: Any) -> int:
    return int(sum(p.numel() for p in params))


def run_benchmarl(
    task: str,
    *,
    budget_s: float | None,
    max_frames: int | None,
    eval_every_s: float,
    eval_episodes: int = 200,
    seed: int = 0,
    threads: int = 1,
    task_overrides: dict | None = None,
) -> dict:
    """Trains BenchMARL's MAPPO with its GNN model on a VMAS task, on a training-time budget.

    Args:
        task: a BenchMARL VMAS task name, e.g. ``"navigation"``.
        budget_s: seconds of training (evaluation excluded) after which the run stops, or ``None``.
        max_frames: environment frames after which the run stops, or ``None``. BenchMARL collects whole
            iterations, so the run stops at the first multiple of 6,000 frames at or above it.
        eval_every_s: seconds of training between evaluations.
        eval_episodes: held-out evaluation episodes (default 200, BenchMARL's published VMAS value).
        seed: BenchMARL's experiment seed; evaluation uses ``seed + EVAL_SEED_OFFSET``.
        threads: ``torch.set_num_threads(threads)``.
        task_overrides: values that replace the task's BenchMARL config entries, e.g. ``{"n_agents": 4}``.

    Returns:
        ``{"library", "version", "task", "settings", "curve", "final"}``: every setting used as plain JSON; the
        curve as ``{"wall_s", "frames", "eval_return", "eval_episodes", "eval_s"}`` points (training seconds
        and frames so far, BenchMARL's evaluation return, evaluation seconds); the final point with
        ``frames_per_s`` (frames over training seconds).
    """
    benchmarl = _import_benchmarl()
    _check_args(budget_s, max_frames, eval_every_s, eval_episodes, threads)
    from benchmarl.algorithms import MappoConfig
    from benchmarl.experiment import Experiment

    torch.set_num_threads(threads)
    eval_seed = seed + EVAL_SEED_OFFSET
    clock = _TrainClock()
    curve: list[dict[str, Any]] = []

    with tempfile.TemporaryDirectory(prefix="benchmarl_") as folder:
        config = _experiment_config(max_frames, eval_episodes, folder)
        algorithm = MappoConfig.get_from_yaml()  # conf/algorithm/mappo.yaml
        model = _model_config()
        task_class = _task(task, task_overrides)

        def evaluate() -> None:
            start = time.perf_counter()
            mean_return, episodes = _evaluate(experiment, eval_seed)
            curve.append(
                {
                    "wall_s": clock.elapsed,
                    "frames": experiment.total_frames,
                    "eval_return": mean_return,
                    "eval_episodes": episodes,
                    "eval_s": time.perf_counter() - start,
                }
            )
            print(
                f"  {clock.elapsed:7.1f} s  {experiment.total_frames:>9,} frames  eval return {mean_return:+.3f}",
                flush=True,
            )

        callback = _budget_callback(clock, budget_s, max_frames, eval_every_s, evaluate)
        experiment = Experiment(
            task=task_class,
            algorithm_config=algorithm,
            model_config=model,  # the critic gets a copy: BenchMARL's default when critic_model_config is None
            seed=seed,
            config=config,
        )
        # Attached after construction: Experiment pickles its callbacks into config.pkl (for reloading from a
        # checkpoint, unused here), and this one closes over the clock and the evaluation.
        callback.experiment = experiment
        experiment.callbacks.append(callback)
        try:
            loss = experiment.losses[next(iter(experiment.group_map))]
            published = {**_plain(_base_config()), **PUBLISHED_VMAS}
            settings = {
                "algorithm": {"name": "mappo", **_plain(algorithm)},
                "model": _plain(experiment.model_config),
                "critic_model": _plain(experiment.critic_model_config),
                "experiment": _experiment_settings(config),
                "task": {"name": f"vmas/{task}", **_plain(task_class.config)},
                "differs_from_base_experiment": _differences(config),
                "changed_from_published_vmas": {
                    key: {"published": _plain(published[key]), "used": _experiment_settings(config)[key], "why": why}
                    for key, (_, why) in CHANGED.items()
                },
                "seed": seed,
                "eval_seed": eval_seed,
                "threads": torch.get_num_threads(),
                "budget_s": budget_s,
                "max_frames": max_frames,
                "eval_every_s": eval_every_s,
                "continuous_actions": experiment.continuous_actions,
                "group_map": _plain(experiment.group_map),
                "max_steps": experiment.max_steps,
                "policy_parameters": _count(experiment.policy.parameters()),
                "critic_parameters": _count(loss.critic_network_params.values(True, True)),
                "gradient_steps_per_iteration": config.on_policy_n_minibatch_iters
                * -(-config.on_policy_collected_frames_per_batch // config.on_policy_minibatch_size),
                "frames_unit": "environment steps (one step of all agents in one environment)",
            }
            evaluate()  # the untrained policy, at 0 s and 0 frames
            clock.start()
            try:
                experiment.run()
            except _BudgetReached:
                pass
            else:  # BenchMARL's loop ended on its own max_n_frames first and closed its environments
                raise RuntimeError("BenchMARL's loop ended before the budget callback stopped it")
            clock.stop()
            evaluate()
            breakdown = _navigation_breakdown(experiment, eval_seed) if task == "navigation" else None
        finally:
            experiment.close()

    final = curve[-1]
    return {
        "library": "benchmarl",
        "version": benchmarl.__version__,
        "task": task,
        "settings": settings,
        "curve": curve,
        "final": {
            "wall_s": final["wall_s"],
            "frames": final["frames"],
            "eval_return": final["eval_return"],
            "frames_per_s": final["frames"] / final["wall_s"] if final["wall_s"] > 0 else None,
            **({"breakdown": breakdown} if breakdown else {}),
        },
    }


def _base_config() -> Any:
    """BenchMARL's ``conf/experiment/base_experiment.yaml``."""
    from benchmarl.experiment import ExperimentConfig

    return ExperimentConfig.get_from_yaml()


def _experiment_settings(config: Any) -> dict[str, Any]:
    """The experiment config as plain JSON, the temporary folder's random name replaced by a placeholder."""
    return {**_plain(config), "save_folder": "<temporary folder>"}


def _differences(config: Any) -> dict[str, dict[str, Any]]:
    """Each experiment value that differs from ``base_experiment.yaml``: ``{key: {"base", "used"}}``."""
    base, used = _plain(_base_config()), _experiment_settings(config)
    return {key: {"base": base[key], "used": used[key]} for key in used if used[key] != base[key]}


def _versions() -> dict[str, str]:
    import benchmarl
    import tensordict
    import torch_geometric
    import torchrl
    import vmas

    return {
        "benchmarl": benchmarl.__version__,
        "torchrl": torchrl.__version__,
        "tensordict": tensordict.__version__,
        "vmas": vmas.__version__,
        "torch_geometric": torch_geometric.__version__,
    }


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks import common

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--task", default="navigation", help="BenchMARL VMAS task (default: navigation)")
    parser.add_argument("--budget-s", type=float, default=None, help="training seconds, evaluation excluded")
    parser.add_argument("--max-frames", type=int, default=None, help="environment frames")
    parser.add_argument("--eval-every-s", type=float, default=60.0, help="training seconds between evaluations")
    parser.add_argument("--eval-episodes", type=int, default=200, help="held-out evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: benchmarks/results/...)")
    args = parser.parse_args(argv)
    if args.budget_s is None and args.max_frames is None:
        parser.error("give --budget-s, --max-frames or both")
    try:
        _import_benchmarl()
    except ImportError as err:
        raise SystemExit(f"error: {err}") from None

    device = common.setup("cpu", args.threads)
    meta = common.metadata(device, argv)
    meta["command"] = " ".join(["python -m benchmarks.vmas_benchmarl", *(sys.argv[1:] if argv is None else argv)])
    meta.update(_versions())
    meta["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")
    result = run_benchmarl(
        args.task,
        budget_s=args.budget_s,
        max_frames=args.max_frames,
        eval_every_s=args.eval_every_s,
        eval_episodes=args.eval_episodes,
        seed=args.seed,
        threads=args.threads,
    )
    meta["load_avg_1_5_15_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    out = args.out or common.RESULTS / f"vmas_benchmarl_{args.task}.json"
    common.write_json(out, {"meta": meta, **result})

    rows = [[f"{p['wall_s']:.1f}", f"{p['frames']:,}", f"{p['eval_return']:+.3f}"] for p in result["curve"]]
    print(common.format_table(["training s", "frames", "eval return"], rows))
    final = result["final"]
    print(
        f"benchmarl {result['version']} MAPPO+GNN on {args.task}: {final['frames']:,} frames "
        f"in {final['wall_s']:.0f} s ({final['frames_per_s']:,.0f} frames/s), "
        f"final eval return {final['eval_return']:+.3f} over {result['curve'][-1]['eval_episodes']} episodes; "
        f"load {meta['load_avg_1_5_15']} -> {meta['load_avg_1_5_15_end']}"
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
