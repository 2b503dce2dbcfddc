"""Evaluation of a trained system: loading a run, causal ablations and knock-outs, attention structure.

Everything here returns numbers; nothing is written to disk (that is :mod:`gnncomm.report`). The
rollouts are greedy (argmax messages) on held-out episodes from :func:`gnncomm.rollout.evaluate_rollout`,
and the same ``seed`` gives the same episodes, so conditions compared with different interventions see
identical worlds. The world may be any :class:`~gnncomm.world.World`: nothing here needs more than the
protocol.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import networkx as nx
import numpy as np
import torch

from gnncomm import metrics
from gnncomm.agents import CommSystem
from gnncomm.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint
from gnncomm.config import Config
from gnncomm.interventions import knockout, shuffle_episodes, silence
from gnncomm.metrics.live import symbol_usage
from gnncomm.rollout import (
    EVAL_SEED_OFFSET,
    Episode,
    StepResult,
    Trace,
    capped_episodes,
    make_graph_fn,
    no_actions,
    random_actions,
    rollout,
    rollout_step,
    sample_episode,
)
from gnncomm.world import SwarmWorld, World, build_world, check_world, message_share

__all__ = [
    "ALPHA",
    "RELAY_MAX_AGENTS",
    "AttentionTally",
    "ConfigFileWarning",
    "LoadedRun",
    "attention_matrix",
    "attention_structure",
    "communication_ablation",
    "episode_world_error",
    "evaluate_episodes",
    "evaluation_chunk",
    "knockout_errors",
    "knockout_vs_centrality",
    "load_run",
]

ALPHA = 0.05
"""Family-wise level of the hub and relay tests (Holm-corrected over agents)."""
RELAY_MAX_AGENTS = 50
"""Largest population whose relays :func:`attention_structure` tests: the relay null recomputes a
networkx betweenness per shuffle (10-40 ms at 50 agents, 60-200 ms at 100) and needs about
``N / ALPHA`` shuffles, so it grows as ``N^3`` or faster."""


class LoadedRun(NamedTuple):
    """A trained run, as :func:`load_run` returns it."""

    cfg: Config
    """The run's configuration."""
    system: CommSystem
    """The trained system, in eval mode."""
    world: World
    """The world it was trained in (or the one passed to :func:`load_run`)."""
    state: dict[str, Any]
    """The raw checkpoint: ``step``, ``history``, optimizer state..."""


def load_run(run_dir: str | Path, device: str | torch.device = "cpu", *, world: World | None = None) -> LoadedRun:
    """The config, trained system (in eval mode), world and raw checkpoint of a run folder.

    Args:
        run_dir: a run folder holding ``checkpoint.pt``.
        device: where to load the system.
        world (World, optional): the world the run trained in. Needed when the config names a world
            that is not registered in this session (:func:`gnncomm.world.register_world`); checked
            against the config with :func:`gnncomm.world.check_world`. ``None`` builds the config's
            world. (default: ``None``)

    Raises:
        CheckpointError: the folder, the checkpoint, its config or its weights are missing, unreadable or
            incompatible, or the world cannot be built or does not fit the config.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run folder {str(run_dir)!r} does not exist or is not a folder")
    path = run_dir / CHECKPOINT_NAME
    state = load_checkpoint(path, map_location=device)
    try:
        cfg = Config.from_saved(state["config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} holds an invalid config: {exc}") from None
    _check_config_file(run_dir / "config.json", cfg)
    try:
        world = build_world(cfg) if world is None else check_world(world, cfg)
    except ValueError as exc:
        if world is None:
            raise CheckpointError(
                f"cannot build the world of {str(path)!r} ({exc}); pass world=, the World the run "
                "trained in, or register its name with gnncomm.world.register_world"
            ) from None
        raise CheckpointError(f"world= does not fit the run {str(path)!r}: {exc}") from None
    except TypeError as exc:
        raise CheckpointError(f"world= does not fit the run {str(path)!r}: {exc}") from None
    system = CommSystem.for_world(cfg, world).to(device)
    try:
        system.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} does not fit its own config: {exc}") from None
    return LoadedRun(cfg, system.eval(), world, state)


class ConfigFileWarning(UserWarning):
    """A run folder's ``config.json`` is unreadable or disagrees with its checkpoint, whose config is used."""


def _check_config_file(path: Path, cfg: Config) -> None:
    """Warns (one line) when ``config.json`` cannot be read or differs from the checkpoint's config ``cfg``: the
    checkpoint is what the weights were trained with, so it is what evaluation uses."""
    if not path.is_file():
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its own warnings were given when the run started
            saved = Config.from_saved(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        warnings.warn(
            f"{path} is not a valid config ({reason}); the checkpoint's config is used", ConfigFileWarning, stacklevel=3
        )
        return
    differ = [f.name for f in dataclasses.fields(Config) if getattr(saved, f.name) != getattr(cfg, f.name)]
    if differ:
        warnings.warn(
            f"{path} differs from the checkpoint's config in {differ[:8]}; the checkpoint's config is used",
            ConfigFileWarning,
            stacklevel=3,
        )


def end_of_run_episodes(cfg: Config) -> int:
    """Held-out episodes of the end-of-run evaluation (and of ``gnncomm evaluate``'s default):
    ``eval_episodes``, capped at about :data:`~gnncomm.rollout.EVAL_AGENT_BUDGET` agents per rollout."""
    return capped_episodes(cfg.eval_episodes, cfg.num_agents, floor=4)


def evaluation_chunk(cfg: Config, batch_size: int | None = None) -> int:
    """Episodes that an evaluation rollout (:func:`evaluate_episodes`) runs at once: those of one training batch
    (``batch_size``, by default ``cfg.batch_size``; a DDP rank's share where it trains), and at least 2, since the
    shuffled condition swaps messages between episodes.

    A greedy rollout under ``no_grad`` keeps one step's tensors at a time, a training step every step's (or, with
    ``recompute_steps``, every step's inputs and one step with its backward pass), so a chunk costs less than the
    training step it follows: measured in live tensor bytes, 13.5 kB per agent against 31 kB (recomputed, N =
    100,000) to 91 kB (N = 2,000 to 10,000); 2 episodes at ``batch_size=1`` stay below too
    (``tests/test_evaluation.py``).

    >>> evaluation_chunk(Config(num_agents=10, batch_size=32)), evaluation_chunk(Config(batch_size=1))
    (32, 2)
    """
    return max(2, batch_size or cfg.batch_size)


StepHook = Callable[[int, int, StepResult], None]
"""``(t, first_episode, step)``: called after every step of :func:`evaluate_episodes` with the step's index, the
index of the chunk's first episode and its :class:`~gnncomm.rollout.StepResult` (``[b * N]`` rows for the chunk's
``b`` episodes), which is freed once the hook returns."""


@torch.no_grad()
def evaluate_episodes(
    system: CommSystem,
    world: World,
    cfg: Config,
    *,
    episodes: int,
    seed: int,
    device: str | torch.device = "cpu",
    intervene: Any = None,
    act: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
    topology: tuple[str, int] | None = None,
    chunk: int | None = None,
    on_step: StepHook | None = None,
) -> dict[str, float]:
    """The logs of :func:`~gnncomm.rollout.evaluate_rollout` over ``episodes`` greedy episodes, run ``chunk`` at a
    time so that memory holds one chunk's step, never a trace.

    The episodes are those of :func:`~gnncomm.rollout.evaluate_rollout` with the same ``seed``, drawn at once
    (their initial states and noise are small) and cut into chunks, so that every condition and every chunk size
    sees the same worlds; only the shuffled condition depends on the chunk, since it swaps messages between the
    episodes of a chunk. A world other than :class:`~gnncomm.world.SwarmWorld` (a simulator's batch, VMAS) runs
    its episodes at once: its state cannot be cut. The logs are means over all the episodes (each chunk weighted
    by its episodes), and the vocabulary usage, entropy and effective size come from the symbol counts of every
    chunk together, as they would from one rollout. ``act`` sees the actions of every episode at once (the chunk's
    rows, zeros elsewhere), so a seeded random ``act`` gives each episode its own actions whatever the chunk.

    Args:
        intervene: a message intervention; one made for this call (a shuffle draws a derangement per step and
            chunk, within the chunk's episodes).
        chunk (int, optional): episodes per rollout; :func:`evaluation_chunk` if ``None``.
        on_step (optional): a :data:`StepHook`, to keep what a diagnostic needs from each step.
    """
    chunk = chunk or evaluation_chunk(cfg)
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be an int >= 1, got {episodes!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be an int >= 1, got {chunk!r}")
    was_training = system.training
    system.eval()
    if cfg.episode_length != cfg.timesteps:  # whole episodes, not one backprop window
        cfg = dataclasses.replace(cfg, timesteps=cfg.episode_length)
    N = cfg.num_agents
    name, k = topology or cfg.topology_at(cfg.steps)
    generator = torch.Generator().manual_seed(seed)
    everything = sample_episode(world, cfg, episodes, generator=generator, device=device, training=False)
    if not isinstance(world, SwarmWorld):  # a simulator's state (VMAS) is one batch: it cannot be cut into chunks
        chunk = episodes
    sums: dict[str, float] = {}
    counts: list[torch.Tensor] = []
    try:
        for first in range(0, episodes, chunk):
            b = min(chunk, episodes - first)
            state = type(everything.state)(*(x.narrow(0, first, b) for x in everything.state))  # every field [B, ...]
            episode = Episode(state, everything.obs_noise.narrow(1, first, b), None)
            graph_fn = make_graph_fn(name, k, N, b, device=device, seed=cfg.seed, edges=cfg.custom_edges)
            steps = iter(range(cfg.timesteps))

            def step_fn(*args: Any, first: int = first, steps: Any = steps) -> StepResult:
                result = rollout_step(*args)
                counts.append(result.terms.greedy_counts)
                if on_step is not None:
                    on_step(next(steps), first, result)
                return result

            chunk_act = None if act is None else _rows_of(act, first * N, episodes * N)
            logs = rollout(system, world, episode, graph_fn, cfg, 1.0, intervene, False, chunk_act, step_fn)[1]
            for key, value in logs.items():
                sums[key] = sums.get(key, 0.0) + float(value) * b
            del episode, state, logs
    finally:
        system.train(was_training)
    out = {key: value / episodes for key, value in sums.items()}
    usage = symbol_usage(torch.stack(counts).sum(0))
    out.update(
        vocab_usage=float(usage["usage"]),
        entropy_bits=float(usage["entropy_bits"]),
        effective_vocab=float(usage["effective"]),
    )
    return out


def _rows_of(
    act: Callable[[torch.Tensor, int], torch.Tensor], start: int, total: int
) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """``act`` applied to all ``total`` rows of actions, of which a chunk's are ``start:start + len(action)``."""

    def chunk_act(action: torch.Tensor, t: int) -> torch.Tensor:
        full = action.new_zeros(total, *action.shape[1:])
        full[start : start + action.size(0)] = action
        return act(full, t)[start : start + action.size(0)]

    return chunk_act


class AttentionTally:
    """Attention of every ``speaker -> listener`` observation, by agent id, gathered step by step: what the hub
    test and the attention graph need from a rollout, without its trace (:data:`StepHook` ``add_step``).

    >>> tally = AttentionTally(2)
    >>> tally.add(torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]]), torch.tensor([1.0, 0.5, 0.0, 0.5]))
    >>> speakers, listeners, weight, count = tally.pairs()
    >>> speakers.tolist(), listeners.tolist(), weight.tolist(), count.tolist()
    ([0, 1], [1, 0], [0.5, 0.5], [2, 2])
    """

    def __init__(self, num_agents: int) -> None:
        if isinstance(num_agents, bool) or not isinstance(num_agents, int) or num_agents < 1:
            raise ValueError(f"num_agents must be an int >= 1, got {num_agents!r}")
        self.num_agents = num_agents
        self._keys: list[np.ndarray] = []
        self._weights: list[np.ndarray] = []

    def add(self, edge_index: torch.Tensor, alpha: torch.Tensor) -> None:
        """One step's ``edge_index [2, E]`` (node ``n`` is agent ``n % num_agents``) and attention ``[E]`` or
        ``[E, H]`` (averaged over heads); self-loops are left out, as :func:`gnncomm.metrics.attention_graph` does."""
        N = self.num_agents
        ids = (edge_index.detach().cpu() % N).numpy()
        weight = (alpha.detach().float().mean(-1) if alpha.dim() == 2 else alpha.detach().float()).cpu().numpy()
        keep = ids[0] != ids[1]
        self._keys.append(ids[0, keep] * N + ids[1, keep])  # [E'] int64: speaker * N + listener
        self._weights.append(weight[keep])

    def add_step(self, t: int, first: int, step: StepResult) -> None:
        """:meth:`add` as a :data:`StepHook`."""
        self.add(step.edge_index, step.out.alpha)

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(speakers, listeners, weight, count)`` per distinct pair ``[P]``, sorted by speaker then listener:
        ``weight`` is the mean attention over the ``count`` observations of the pair."""
        keys = np.concatenate(self._keys) if self._keys else np.zeros(0, dtype=np.int64)
        weights = np.concatenate(self._weights).astype(np.float64) if self._weights else np.zeros(0)
        unique, inverse, count = np.unique(keys, return_inverse=True, return_counts=True)
        sums = np.bincount(inverse.reshape(-1), weights=weights, minlength=unique.size)
        return unique // self.num_agents, unique % self.num_agents, sums / np.maximum(count, 1), count

    def graph(self) -> nx.DiGraph:
        """The attention graph of :func:`gnncomm.metrics.attention_graph`: one node per agent, an edge per pair."""
        speakers, listeners, weight, count = self.pairs()
        graph = nx.DiGraph()
        graph.add_nodes_from(range(self.num_agents))
        graph.add_edges_from(
            (u, v, {"weight": w, "count": c})
            for u, v, w, c in zip(speakers.tolist(), listeners.tolist(), weight.tolist(), count.tolist())
        )
        return graph

    @classmethod
    def of_trace(cls, trace: Trace, num_agents: int) -> AttentionTally:
        """The tally of every step of a recorded rollout."""
        tally = cls(num_agents)
        for edge_index, out in zip(trace.edge_index, trace.outputs):
            tally.add(edge_index, out.alpha)
        return tally


def communication_ablation(
    system: CommSystem,
    world: World,
    cfg: Config,
    *,
    episodes: int | None = None,
    seed: int | None = None,
    device: str | torch.device = "cpu",
    knockouts: bool = False,
    chunk: int | None = None,
    on_real_step: StepHook | None = None,
) -> dict[str, Any]:
    """World-estimation error (MSE at the last step) with real, silenced and shuffled messages, and the
    cooperative reward with trained, switched-off and random actions, all on the same held-out episodes.

    * ``silent``: every message replaced by silence, so agents rely on their own view alone;
    * ``shuffled``: each agent's message replaced by the same agent's message in another episode,
      which keeps the symbol statistics but breaks their link with this episode's world;
    * ``no_actions``: the world moves by its own forces alone; ``random_actions``: uniform actions in
      ``[-1, 1]`` from a seeded generator. For worlds with a ``dispersion`` (the swarm), the mean
      dispersion over the steps is reported for the three cases too.
    * ``own_view`` and ``floor`` (worlds with ``reference_errors``): the Bayes errors of one agent's own
      view and of every view pooled, and ``message_share``, the share of that gap the messages close.

    Args:
        episodes (int, optional): held-out episodes; ``cfg.eval_episodes`` if ``None``.
        seed (int, optional): seed of the episodes; ``cfg.seed + EVAL_SEED_OFFSET`` if ``None``.
        knockouts (bool): also silence each agent in turn: ``knockout_delta[a]`` is the increase in
            world error when agent ``a`` says nothing (its causal importance). (default: ``False``)
        chunk (int, optional): episodes per rollout (:func:`evaluate_episodes`); :func:`evaluation_chunk` if
            ``None``. Memory holds one chunk's step at a time.
        on_real_step (optional): a :data:`StepHook` called on every step of the unmodified rollout, e.g.
            :meth:`AttentionTally.add_step`, so that the hub test needs no rollout of its own.

    Returns:
        dict: ``world_mse``, ``world_mse_silent``, ``world_mse_shuffled``, ``world_mse_ratio`` (real /
        silent), ``recon_mse``, ``vocab_usage``, ``symbol_entropy_bits``, ``comm_cost``, ``reward``,
        ``reward_no_actions``, ``reward_random_actions``, ``episodes``; for the swarm ``dispersion``,
        ``dispersion_no_actions``, ``dispersion_random_actions`` and ``dispersion_ratio`` (trained / no
        actions); with references ``world_mse_own_view``, ``world_mse_floor`` and ``message_share``; and
        with ``knockouts`` ``knockout_delta`` (a list over agents).
    """
    episodes = episodes or cfg.eval_episodes
    seed = cfg.seed + EVAL_SEED_OFFSET if seed is None else seed

    def run(intervene: Any = None, act: Any = None, on_step: StepHook | None = None) -> dict[str, float]:
        return evaluate_episodes(
            system, world, cfg, episodes=episodes, seed=seed, device=device, intervene=intervene, act=act,
            chunk=chunk, on_step=on_step,
        )  # fmt: skip

    real = run(None, on_step=on_real_step)
    silent = run(silence())
    shuffled = run(shuffle_episodes(cfg.num_agents, generator=torch.Generator().manual_seed(seed + 1)))
    length = cfg.episode_length
    report: dict[str, Any] = {}
    latent = "world_last" in real  # a world without a latent (a task) is judged by its return alone
    if latent:
        report.update(
            world_mse=real["world_last"],
            world_mse_silent=silent["world_last"],
            world_mse_shuffled=shuffled["world_last"],
            world_mse_ratio=real["world_last"] / max(silent["world_last"], 1e-12),
        )
    report.update(
        episode_return=real["reward"] * length,
        episode_return_silenced=silent["reward"] * length,
        episode_return_shuffled=shuffled["reward"] * length,
        episode_steps=length,
        recon_mse=real["recon"],
        vocab_usage=real["vocab_usage"],
        symbol_entropy_bits=real["entropy_bits"],
        comm_cost=real["comm"],
        reward=real["reward"],
        episodes=episodes,
    )
    if "success" in real:
        report.update(
            success_rate=real["success"],
            success_rate_silenced=silent["success"],
            success_rate_shuffled=shuffled["success"],
            success_definition=world.success_definition() if hasattr(world, "success_definition") else None,
        )
    else:
        report.update(
            success_rate=None,
            success_rate_silenced=None,
            success_rate_reason="the world defines no success (its episode_metrics has no 'success')",
        )
    if "goal_distance" in real:
        report.update(goal_distance=real["goal_distance"], goal_distance_silenced=silent["goal_distance"])
    idle, rand = run(act=no_actions), run(act=random_actions(seed + 2))
    report.update(
        reward_no_actions=idle["reward"],
        reward_random_actions=rand["reward"],
        episode_return_no_actions=idle["reward"] * length,
        episode_return_random_actions=rand["reward"] * length,
    )
    if "dispersion" in real:
        report.update(
            dispersion=real["dispersion"],
            dispersion_no_actions=idle["dispersion"],
            dispersion_random_actions=rand["dispersion"],
            dispersion_ratio=real["dispersion"] / max(idle["dispersion"], 1e-12),
        )
    if latent and hasattr(world, "reference_errors"):
        reference = world.reference_errors(cfg.timesteps)
        report.update(
            world_mse_own_view=reference["own_view"],
            world_mse_floor=reference["floor"],
            message_share=message_share(world, cfg.timesteps, real["world_last"]),
        )
    if knockouts:
        # From the logs, not from knockout_errors: no trace is recorded, which keeps large populations in memory.
        # With a latent: the rise in world error; without: the fall in episode return.
        def harm(logs: dict[str, float]) -> float:
            if latent:
                return logs["world_last"] - real["world_last"]
            return (real["reward"] - logs["reward"]) * length

        report["knockout_delta"] = [harm(run(knockout(a, cfg.num_agents))) for a in range(cfg.num_agents)]
    return report


def episode_world_error(trace: Trace, num_agents: int) -> np.ndarray:
    """World-latent MSE at the last step, per episode ``[B]`` (its mean is the rollout logs' ``world_last``).

    For a world without a latent, the harm measure is minus the episode's return (the sum of its rewards), so
    that a knock-out's increase of it is the fall in return."""
    if trace.states[-1].latent.size(-1) == 0:
        return -torch.stack(trace.rewards).float().sum(0).cpu().numpy()
    pred = trace.outputs[-1].world_pred.float()  # [B*N, L]
    latent = trace.states[-1].latent.float().repeat_interleave(num_agents, dim=0)  # [B*N, L]
    return (pred - latent).pow(2).view(-1, num_agents * latent.size(-1)).mean(-1).cpu().numpy()


def knockout_errors(
    system: CommSystem,
    world: World,
    cfg: Config,
    *,
    episodes: int,
    seed: int,
    device: str | torch.device = "cpu",
    real_error: np.ndarray | None = None,
    chunk: int | None = None,
) -> np.ndarray:
    """Per agent, the increase of the world error when it alone is silenced: mean and standard error ``[N, 2]``.

    The increase is paired over the same ``episodes`` (drawn from ``seed``), so its standard error over
    episodes measures the knock-out effect, not the spread of the episodes. Each rollout runs ``chunk`` episodes
    at a time (:func:`evaluate_episodes`) and keeps only each episode's error, never a trace.

    Args:
        real_error: :func:`episode_world_error` of the unmodified rollout on the same episodes; computed if
            ``None``.
        chunk (int, optional): episodes per rollout; :func:`evaluation_chunk` if ``None``.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 2:
        raise ValueError(f"episodes must be an int >= 2 (a standard error needs two), got {episodes!r}")
    N = cfg.num_agents

    def error(intervene: Any) -> np.ndarray:
        per_episode = _EpisodeError(episodes, N, cfg.episode_length)
        evaluate_episodes(
            system, world, cfg, episodes=episodes, seed=seed, device=device, intervene=intervene, chunk=chunk,
            on_step=per_episode,
        )  # fmt: skip
        return per_episode.error

    real_error = error(None) if real_error is None else np.asarray(real_error)
    out = np.zeros((N, 2))
    for a in range(N):
        delta = error(knockout(a, N)) - real_error  # [B], same episodes
        out[a] = delta.mean(), delta.std(ddof=1) / math.sqrt(delta.size)
    return out


class _EpisodeError:
    """A :data:`StepHook` that keeps :func:`episode_world_error` of each episode ``[B]`` and nothing else."""

    def __init__(self, episodes: int, num_agents: int, steps: int) -> None:
        self.num_agents, self.last = num_agents, steps - 1
        self.world = np.zeros(episodes)
        self.returns = np.zeros(episodes)
        self.has_latent = True

    def __call__(self, t: int, first: int, step: StepResult) -> None:
        rows = slice(first, first + step.terms.env_reward.numel())
        self.returns[rows] += step.terms.env_reward.float().cpu().numpy()
        if t == self.last:
            latent = step.state.latent
            self.has_latent = latent.size(-1) > 0
            if self.has_latent:
                pred = step.out.world_pred.float()  # [b*N, L]
                target = latent.float().repeat_interleave(self.num_agents, dim=0)  # [b*N, L]
                error = (pred - target).pow(2).view(-1, self.num_agents * latent.size(-1)).mean(-1)
                self.world[rows] = error.cpu().numpy()

    @property
    def error(self) -> np.ndarray:
        return self.world if self.has_latent else -self.returns


HUB_PERMUTATION_MAX = 2000
"""Largest hub null that is shuffled; above it (Holm over more than ~100 agents) the null's tail is computed
exactly instead (:func:`gnncomm.metrics.hub_statistics` with ``method="exact"``)."""
HUB_LARGE_METHOD = "exact"
"""The hub null used above :data:`HUB_PERMUTATION_MAX` shuffles. The normal approximation it replaced flagged hubs
in random attention at N = 100,000 (``benchmarks/hub_null.py``)."""


def attention_structure(
    trace: Trace | AttentionTally,
    cfg: Config,
    *,
    seed: int = 0,
    num_shuffles: int | None = None,
    with_centrality: bool = True,
) -> dict[str, Any]:
    """Attention aggregated by agent id over every step and episode of ``trace``, and who stands out.

    The graph points ``speaker -> listener`` and the centralities use the names of
    :mod:`gnncomm.metrics.graph` (``attention_received``, ``attention_paid``, ``pagerank``,
    ``betweenness``). Hubs and relays are tested at level :data:`ALPHA`, Holm-corrected over agents,
    against the degree-preserving weight shuffle.

    Args:
        trace: a recorded :func:`~gnncomm.rollout.evaluate_rollout`, or the :class:`AttentionTally` of one
            (which is all the hub test and the graph need).
        seed (int): seed of the shuffles. (default: ``0``)
        num_shuffles (int, optional): size of both nulls; ``None`` takes the defaults of
            :func:`gnncomm.metrics.detect_hubs` and :func:`~gnncomm.metrics.detect_relays` (enough to
            reach :data:`ALPHA` after the correction). (default: ``None``)
        with_centrality (bool): also compute every centrality (pagerank, betweenness); the hubs and relays
            do not need them. Without them and above :data:`RELAY_MAX_AGENTS` agents the networkx graph
            (millions of edges at N = 100,000) is not built either: ``graph`` is ``None``. (default: ``True``)

    Returns:
        dict: ``graph`` (networkx.DiGraph), ``centrality``, ``hubs``, ``hub_stats``, ``hub_null`` (the method of
        :func:`~gnncomm.metrics.hub_statistics`), ``relays``, ``relay_stats``, and ``hub_shuffles`` /
        ``relay_shuffles`` (the null sizes used; ``hub_shuffles`` is ``None`` when nothing was shuffled). With
        more than :data:`RELAY_MAX_AGENTS` agents the relay null is too slow and is skipped: ``relays``,
        ``relay_stats`` and ``relay_shuffles`` are ``None`` and ``relays_skipped`` says why.
    """
    N = cfg.num_agents
    tally = trace if isinstance(trace, AttentionTally) else AttentionTally.of_trace(trace, N)
    speakers, _, weight, _ = tally.pairs()
    hub_shuffles = (
        num_shuffles if num_shuffles is not None else max(metrics.HUB_SHUFFLES, metrics.min_permutations(N, ALPHA))
    )
    method = "permutation" if hub_shuffles <= HUB_PERMUTATION_MAX else HUB_LARGE_METHOD
    hub_stats = metrics.pair_hub_statistics(speakers, weight, N, num_shuffles=hub_shuffles, seed=seed, method=method)
    del speakers, weight
    if method != "permutation":
        hub_shuffles = None  # the null's tail: nothing was shuffled
    graph = tally.graph() if with_centrality or N <= RELAY_MAX_AGENTS else None
    tests = N
    out: dict[str, Any] = {
        "graph": graph,
        "centrality": metrics.centrality(graph) if with_centrality else None,
        "hub_null": method,
        "hubs": sorted(a for a, t in hub_stats.items() if t["p_adjusted"] <= ALPHA),
        "hub_stats": hub_stats,
        "hub_shuffles": hub_shuffles,
    }
    if N > RELAY_MAX_AGENTS:
        out.update(
            relays=None,
            relay_stats=None,
            relay_shuffles=None,
            relays_skipped=f"{N} agents > RELAY_MAX_AGENTS={RELAY_MAX_AGENTS}: the relay null (one networkx "
            "betweenness per shuffle) would take too long; call "
            "gnncomm.metrics.relay_statistics on out['graph'] to test them",
        )
        return out
    relay_shuffles = (
        num_shuffles
        if num_shuffles is not None
        else max(metrics.RELAY_SHUFFLES, metrics.min_permutations(tests, ALPHA))
    )
    relay_stats = metrics.relay_statistics(graph, num_shuffles=relay_shuffles, seed=seed)
    out.update(
        relays=sorted(a for a, t in relay_stats.items() if t["betweenness"] > 0.0 and t["p_adjusted"] <= ALPHA),
        relay_stats=relay_stats,
        relay_shuffles=relay_shuffles,
    )
    return out


def attention_matrix(graph: nx.DiGraph, num_agents: int) -> np.ndarray:
    """``[listener, speaker]`` mean attention by agent id, from a ``speaker -> listener`` graph; NaN where the
    pair never met (the heatmap leaves those blank)."""
    matrix = np.full((num_agents, num_agents), np.nan)
    for speaker, listener, weight in graph.edges(data="weight"):
        matrix[listener, speaker] = weight
    return matrix


def knockout_vs_centrality(
    knockout_delta: Sequence[float] | np.ndarray,
    centralities: dict[str, Sequence[float]],
    hubs: Sequence[int],
    *,
    num_permutations: int = 200,
    seed: int | np.random.Generator = 0,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Does an agent's causal importance follow its centrality, and do hubs matter more than the others?

    Args:
        knockout_delta: per agent id ``0..N-1``, the world-error increase when it is silenced.
        centralities: name -> per-agent values (e.g. ``"attention_received"``, ``"pagerank"``).
        hubs: the hub agent ids.
        num_permutations (int): size of the null of each correlation, which permutes agents. (default: ``200``)
        seed (int or np.random.Generator): source of the permutations. (default: ``0``)

    Returns:
        ``(result, undefined)``: ``result["spearman"][name]`` is ``{"rho", "p_value"}`` (Spearman rho over
        agents and its one-sided permutation p-value), and ``hub_mean_knockout``, ``non_hub_mean_knockout``
        and ``hub_minus_non_hub`` compare the groups; a number that is undefined is ``None`` and
        ``undefined`` maps its key (``"spearman.<name>"`` or the group key) to the reason.
    """
    knock = np.asarray(knockout_delta, dtype=np.float64)
    n = knock.size
    rng = np.random.default_rng(seed) if not isinstance(seed, np.random.Generator) else seed
    out: dict[str, Any] = {"spearman": {}}
    undefined: dict[str, str] = {}
    for key, values in centralities.items():
        value = np.asarray(values, dtype=np.float64)
        if value.shape != knock.shape:
            raise ValueError(f"centralities[{key!r}] must have one value per agent ({n}), got shape {value.shape}")
        reason = (
            f"needs >= 3 agents, got {n}"
            if n < 3
            else "knockout_delta is constant over agents"
            if np.ptp(knock) == 0
            else f"{key} is constant over agents"
            if np.ptp(value) == 0
            else None
        )
        if reason:
            out["spearman"][key] = {"rho": None, "p_value": None}
            undefined[f"spearman.{key}"] = reason
            continue
        test = metrics.permutation_test(
            lambda i, value=value: metrics.spearman(knock[i], value),
            lambda: rng.permutation(n),
            num_permutations,
            identity=np.arange(n),
        )
        out["spearman"][key] = {"rho": test.value, "p_value": test.p_value}
    is_hub = np.isin(np.arange(n), list(hubs))
    if is_hub.any() and not is_hub.all():
        out.update(hub_mean_knockout=float(knock[is_hub].mean()), non_hub_mean_knockout=float(knock[~is_hub].mean()))
        out["hub_minus_non_hub"] = out["hub_mean_knockout"] - out["non_hub_mean_knockout"]
    else:
        out.update(hub_mean_knockout=None, non_hub_mean_knockout=None, hub_minus_non_hub=None)
        reason = "no hub was detected" if not is_hub.any() else "every agent is a hub"
        undefined.update(dict.fromkeys(("hub_mean_knockout", "non_hub_mean_knockout", "hub_minus_non_hub"), reason))
    return out, undefined
