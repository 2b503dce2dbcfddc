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
from gnncomm.world import World, build_world, check_world, message_share

__all__ = [
    "ALPHA",
    "ATTENTION_RELAY_MAX_AGENTS",
    "RELAY_MAX_AGENTS",
    "AttentionTally",
    "ConfigFileWarning",
    "EpisodeHarm",
    "KnockoutEffects",
    "LoadedRun",
    "attention_matrix",
    "attention_structure",
    "agent_harm",
    "agent_world_error",
    "communication_ablation",
    "episode_world_error",
    "evaluate_episodes",
    "evaluation_chunk",
    "knockout_effects",
    "knockout_errors",
    "knockout_vs_centrality",
    "load_run",
    "relay_test",
]

ALPHA = 0.05
"""Family-wise level of the hub, relay and attention relay tests (Holm-corrected over agents)."""
RELAY_MAX_AGENTS = 100
"""Largest population whose relays :func:`relay_test` tests: it silences each agent in turn, ``N`` rollouts of
the evaluation's episodes (whose agents are capped at :data:`~gnncomm.rollout.EVAL_AGENT_BUDGET`), so its cost
grows as ``N`` evaluation rollouts, and keeps ``[N, episodes, N]`` per-receiver effects."""
ATTENTION_RELAY_MAX_AGENTS = 50
"""Largest population whose attention relays and graph betweenness :func:`attention_structure` computes: the
attention relay null recomputes a networkx betweenness per shuffle (10-40 ms at 50 agents, 60-200 ms at 100) and
needs about ``N / ALPHA`` shuffles, so it grows as ``N^3`` or faster."""
GRAPH_BETWEENNESS_GRAPHS = 64
"""(episode, step) graphs that :func:`gnncomm.metrics.graph_betweenness` averages (its ``max_graphs``)."""


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
    episodes of a chunk. Only a world with ``independent_episodes`` (:class:`~gnncomm.world.SwarmWorld`) is cut into
    chunks; any other (a simulator that holds its batch, VMAS) runs its episodes at once. The logs are means over
    all the episodes (each chunk weighted by its episodes), and the vocabulary usage, entropy and effective size
    come from the symbol counts of every chunk together, as they would from one rollout. ``act`` sees the actions of
    every episode at once (the chunk's rows, zeros elsewhere), so a seeded random ``act`` gives each episode its
    own actions whatever the chunk.

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
    if not getattr(world, "independent_episodes", False):  # a simulator's batch (VMAS) cannot be cut into chunks
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

    def __init__(self, num_agents: int, *, graph_episodes: int = 0) -> None:
        if isinstance(num_agents, bool) or not isinstance(num_agents, int) or num_agents < 1:
            raise ValueError(f"num_agents must be an int >= 1, got {num_agents!r}")
        if isinstance(graph_episodes, bool) or not isinstance(graph_episodes, int) or graph_episodes < 0:
            raise ValueError(f"graph_episodes must be an int >= 0, got {graph_episodes!r}")
        self.num_agents = num_agents
        self.graph_episodes = graph_episodes
        """Episodes (the first) whose step graphs :meth:`add_step` keeps for
        :func:`gnncomm.metrics.graph_betweenness`."""
        self._keys: list[np.ndarray] = []
        self._weights: list[np.ndarray] = []
        self._graphs: list[list[torch.Tensor]] = []  # per step, the kept episodes' edges (ids over all episodes)

    @classmethod
    def for_structure(cls, cfg: Config) -> AttentionTally:
        """The tally :func:`attention_structure` needs for ``cfg``: with the step graphs of enough episodes for
        :func:`gnncomm.metrics.graph_betweenness` (its first ``GRAPH_BETWEENNESS_GRAPHS`` graphs) where it is
        computed, up to :data:`ATTENTION_RELAY_MAX_AGENTS` agents; none above."""
        N = cfg.num_agents
        keep = math.ceil(GRAPH_BETWEENNESS_GRAPHS / cfg.episode_length) if N <= ATTENTION_RELAY_MAX_AGENTS else 0
        return cls(N, graph_episodes=keep)

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
        """:meth:`add` as a :data:`StepHook`; also keeps the step graphs of the first :attr:`graph_episodes`."""
        self.add(step.edge_index, step.out.alpha)
        if first < self.graph_episodes:
            N = self.num_agents
            edges = step.edge_index.detach().cpu()
            keep = edges[1] // N < self.graph_episodes - first  # listeners of the kept episodes of this chunk
            while len(self._graphs) <= t:
                self._graphs.append([])
            self._graphs[t].append(edges[:, keep] + first * N)

    def step_graphs(self) -> list[torch.Tensor]:
        """Each step's ``edge_index [2, E]`` over the kept episodes (a trace's ``edge_index``, cut to them)."""
        return [torch.cat(edges, dim=1) for edges in self._graphs]

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
        tally = cls(num_agents, graph_episodes=trace.obs[0].size(0) // num_agents if trace.obs else 0)
        for edge_index, out in zip(trace.edge_index, trace.outputs):
            tally.add(edge_index, out.alpha)
            tally._graphs.append([edge_index.detach().cpu()])
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
    return agent_world_error(trace, num_agents).mean(-1)


def agent_harm(trace: Trace, num_agents: int) -> np.ndarray:
    """Each agent's own harm measure ``[B, N]`` (episode, agent), whose rise is a knock-out's effect on that agent:
    its world error at the last step (:func:`agent_world_error`) or, in a world without a latent whose agents have
    rewards of their own (``agent_rewards``, recorded in :attr:`~gnncomm.rollout.Trace.agent_rewards`), minus its
    own return (the sum of its rewards over the episode's steps), so that the rise is the fall of its return. A
    world with neither gives its agents no harm of their own: ``ValueError``."""
    if trace.states[-1].latent.size(-1) > 0:
        return agent_world_error(trace, num_agents)
    if not trace.agent_rewards:
        raise ValueError(_NO_OWN_HARM)
    return -torch.stack(trace.agent_rewards).float().sum(0).cpu().numpy()  # [T, B, N] -> [B, N]


_NO_OWN_HARM = (
    "the world has no latent and no agent_rewards(state) -> [B, N]: its agents have neither a world error nor a "
    "return of their own, so the harm to agents that do not hear a silenced one cannot be told from the harm to "
    "those that do"
)


_SHARED_REWARDS = (
    "the agents' rewards (agent_rewards) are equal at every step: a shared reward gives no agent a return of its "
    "own, so the harm to agents that do not hear a silenced one cannot be told from the harm to those that do"
)


def agent_world_error(trace: Trace, num_agents: int) -> np.ndarray:
    """Each agent's own world-latent MSE at the last step, ``[B, N]`` (episode, agent); its mean over agents is
    :func:`episode_world_error`. A world without a latent has no per-agent error: ``ValueError``."""
    latent = trace.states[-1].latent.float()  # [B, L]
    if latent.size(-1) == 0:
        raise ValueError("the world has no latent (latent_dim = 0): its agents have no world error of their own")
    pred = trace.outputs[-1].world_pred.float().view(-1, num_agents, latent.size(-1))  # [B, N, L]
    return (pred - latent.unsqueeze(1)).pow(2).mean(-1).cpu().numpy()


class KnockoutEffects(NamedTuple):
    """What silencing each agent in turn does, on the same held-out episodes (:func:`knockout_effects`)."""

    delta: np.ndarray
    """``[N, 2]``: per silenced agent, the mean and standard error over episodes of the rise of the episode's world
    error (:func:`episode_world_error`; for a world without a latent, the fall of its return)."""
    receiver_delta: np.ndarray | None
    """``[N, B, N]``, ``[silenced agent, episode, receiver]``: the rise of the receiver's own harm (:func:`agent_harm`:
    its world error, or without a latent the fall of its own return); ``None`` when not recorded
    (:attr:`receivers_skipped` says why)."""
    far: np.ndarray | None
    """``[N, B, N]`` booleans: the receiver is not the silenced agent and heard it directly at no step of that
    episode, neither in the unmodified rollout nor in the knock-out (:func:`gnncomm.metrics.heard_directly`)."""
    scale: float | None = None
    """The size of the receivers' harm in the unmodified rollout (their mean world error, or the mean over agents of
    the summed magnitudes of their rewards), which the relay test's rounding tolerance is relative to; ``None``
    without receivers."""
    receivers_skipped: str | None = None
    """Why ``receiver_delta`` and ``far`` were not recorded, ``None`` when they were."""


class EpisodeHarm:
    """A :data:`StepHook` that keeps, per episode, what the knock-outs compare and nothing else (never a trace).

    ``error [B]`` is :func:`episode_world_error`; with ``receivers`` it also keeps each agent's own harm
    ``harm [B, N]`` (:func:`agent_harm`), its size (``scale``, :attr:`KnockoutEffects.scale`) and who heard whom
    directly at some step (:func:`gnncomm.metrics.heard_directly`): ``heard [B, N, N]``, or ``[B, N]`` (the
    listeners of ``speaker``) when only one speaker's are needed. The same numbers come from a recorded rollout
    with :meth:`of_trace`.
    """

    def __init__(
        self, world: World, cfg: Config, episodes: int, *, receivers: bool = True, speaker: int | None = None
    ) -> None:
        N = cfg.num_agents
        self.num_agents, self.last, self.receivers, self.speaker = N, cfg.episode_length - 1, receivers, speaker
        self._world = world if receivers and hasattr(world, "agent_rewards") else None
        self.world_error = np.zeros(episodes)
        self.returns = np.zeros(episodes)
        self.has_latent = True
        self.agent_world_error = np.zeros((episodes, N)) if receivers else None
        self.agent_returns = np.zeros((episodes, N)) if self._world is not None else None
        self.agent_reward_size = np.zeros((episodes, N)) if self._world is not None else None
        self.shared_rewards = True
        """Whether every agent got the same reward at every step so far (a shared reward: no harm of its own)."""
        self.heard: np.ndarray | None = None
        if receivers:
            self.heard = np.zeros((episodes, N, N) if speaker is None else (episodes, N), dtype=bool)

    def __call__(self, t: int, first: int, step: StepResult) -> None:
        N = self.num_agents
        b = step.terms.env_reward.numel()
        rows = slice(first, first + b)
        self.returns[rows] += step.terms.env_reward.float().cpu().numpy()
        if self._world is not None:
            rewards = self._world.agent_rewards(step.state).detach().float()  # [b, N]
            self.shared_rewards &= bool((rewards == rewards[..., :1]).all())
            self.agent_returns[rows] += rewards.cpu().numpy()
            self.agent_reward_size[rows] += rewards.abs().cpu().numpy()
        if self.heard is not None:
            src, dst = step.edge_index.cpu().numpy()
            if self.speaker is None:
                self.heard.reshape(-1)[(first + dst // N) * N * N + (src % N) * N + dst % N] = True
            else:
                said = src % N == self.speaker
                self.heard[first + dst[said] // N, dst[said] % N] = True
        if t == self.last:
            latent = step.state.latent.float()  # [b, L]
            self.has_latent = latent.size(-1) > 0
            if self.has_latent:
                pred = step.out.world_pred.float().view(b, N, latent.size(-1))  # [b, N, L]
                error = (pred - latent.unsqueeze(1)).pow(2).mean(-1).cpu().numpy()  # [b, N]
                self.world_error[rows] = error.mean(-1)
                if self.agent_world_error is not None:
                    self.agent_world_error[rows] = error

    @classmethod
    def of_trace(cls, trace: Trace, world: World, cfg: Config, *, receivers: bool = True) -> EpisodeHarm:
        """The same numbers from a recorded :func:`~gnncomm.rollout.evaluate_rollout`."""
        N, episodes = cfg.num_agents, trace.obs[0].size(0) // cfg.num_agents
        harm = cls(world, cfg, episodes, receivers=False)
        harm.receivers = receivers
        harm.has_latent = trace.states[-1].latent.size(-1) > 0
        harm.returns = -episode_world_error(trace, N) if not harm.has_latent else harm.returns
        harm.world_error = episode_world_error(trace, N) if harm.has_latent else harm.world_error
        if receivers:
            if harm.has_latent:
                harm.agent_world_error = agent_world_error(trace, N)
            if trace.agent_rewards:
                rewards = torch.stack(trace.agent_rewards)  # [T, B, N]
                harm.shared_rewards = bool((rewards == rewards[..., :1]).all())
                harm.agent_returns = rewards.sum(0).cpu().numpy()
                harm.agent_reward_size = rewards.abs().sum(0).cpu().numpy()
            harm.heard = metrics.heard_directly(trace.edge_index, N, episodes)
        return harm

    @property
    def error(self) -> np.ndarray:
        """:func:`episode_world_error` per episode ``[B]``: the world error, or minus the return without a latent."""
        return self.world_error if self.has_latent else -self.returns

    @property
    def own_harm_reason(self) -> str | None:
        """Why the agents have no harm of their own (:func:`agent_harm`), or ``None`` when they have."""
        if self.has_latent:
            return None
        if self.agent_returns is None:
            return _NO_OWN_HARM
        if self.shared_rewards:
            return _SHARED_REWARDS
        return None

    @property
    def harm(self) -> np.ndarray:
        """Each agent's own harm ``[B, N]`` (:func:`agent_harm`)."""
        if not self.receivers:
            raise ValueError("the harm was not kept (EpisodeHarm(..., receivers=False))")
        if self.has_latent:
            return self.agent_world_error
        if self.agent_returns is None:
            raise ValueError(_NO_OWN_HARM)
        return -self.agent_returns

    @property
    def scale(self) -> float:
        """:attr:`KnockoutEffects.scale`: the mean own world error, or the mean summed magnitude of own rewards."""
        if self.has_latent:
            return float(np.abs(self.agent_world_error).mean())
        return float(self.agent_reward_size.mean())


def knockout_effects(
    system: CommSystem,
    world: World,
    cfg: Config,
    *,
    episodes: int,
    seed: int,
    device: str | torch.device = "cpu",
    real: Trace | EpisodeHarm | None = None,
    receivers: bool | None = None,
    chunk: int | None = None,
) -> KnockoutEffects:
    """Silences each agent in turn (one rollout per agent) and records who it hurts.

    The knock-outs are paired with the unmodified rollout over the same ``episodes`` (drawn from ``seed``), so
    their standard errors over episodes measure the knock-out, not the spread of the episodes. The same rollouts
    give the per-receiver effects of the relay test (:func:`relay_test`): no rollout is run twice. Each rollout
    runs ``chunk`` episodes at a time (:func:`evaluate_episodes`) through an :class:`EpisodeHarm` hook that keeps
    per episode only the error, each receiver's harm and whom the silenced agent reached, never a trace.

    Args:
        real: the unmodified system on the same episodes: its recorded :func:`~gnncomm.rollout.evaluate_rollout`,
            or the :class:`EpisodeHarm` of its rollout with the same ``chunk`` (run with ``receivers`` when they
            are wanted); run here if ``None``.
        receivers (bool, optional): also keep ``receiver_delta`` and ``far`` (``[N, B, N]`` each). ``None``: when
            each agent has a harm of its own (a latent, or rewards of its own that are not all equal: see
            :func:`agent_harm`) and ``N <= RELAY_MAX_AGENTS``. (default: ``None``)
        chunk (int, optional): episodes per rollout; ``None``: :func:`evaluation_chunk`, or all ``episodes`` at
            once when ``real`` is a recorded trace (which ran them at once), so that the pairs are bit for bit.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 2:
        raise ValueError(f"episodes must be an int >= 2 (a standard error needs two), got {episodes!r}")
    N = cfg.num_agents
    if chunk is None:
        chunk = episodes if isinstance(real, Trace) else evaluation_chunk(cfg)

    def run(intervene: Any, keep: bool, speaker: int | None = None) -> EpisodeHarm:
        hook = EpisodeHarm(world, cfg, episodes, receivers=keep, speaker=speaker)
        evaluate_episodes(
            system, world, cfg, episodes=episodes, seed=seed, device=device, intervene=intervene, chunk=chunk,
            on_step=hook,
        )  # fmt: skip
        return hook

    if isinstance(real, Trace):
        real = EpisodeHarm.of_trace(real, world, cfg, receivers=receivers is not False)
    elif real is None:
        real = run(None, receivers is not False)
    skipped = real.own_harm_reason
    if receivers and skipped is not None:
        raise ValueError(f"receivers=True needs each agent's own harm, but {skipped}")
    if receivers is None:
        if skipped is None and N > RELAY_MAX_AGENTS:
            skipped = f"{N} agents > RELAY_MAX_AGENTS={RELAY_MAX_AGENTS}"
        receivers = skipped is None
    elif not receivers:
        skipped = "the knock-outs were run without receivers (knockout_effects(..., receivers=False))"
    if receivers and (not real.receivers or real.heard is None or real.heard.ndim != 3):
        raise ValueError("real must be an EpisodeHarm kept with receivers (every speaker's listeners) to test them")
    real_error = real.error  # [B]
    if receivers:
        real_harm = real.harm  # [B, N]
        receiver_delta = np.zeros((N, episodes, N))
        far = np.zeros((N, episodes, N), dtype=bool)
    out = np.zeros((N, 2))
    for a in range(N):
        silenced = run(knockout(a, N), receivers, speaker=a)
        delta = silenced.error - real_error  # [B], same episodes
        out[a] = delta.mean(), delta.std(ddof=1) / math.sqrt(delta.size)
        if receivers:
            receiver_delta[a] = silenced.harm - real_harm
            far[a] = ~(real.heard[:, a] | silenced.heard)  # [B, N]: heard it directly in neither rollout
            far[a, :, a] = False  # the silenced agent is no receiver of its own silence
    if receivers:
        return KnockoutEffects(out, receiver_delta, far, real.scale)
    return KnockoutEffects(out, None, None, None, skipped)


def knockout_errors(
    system: CommSystem,
    world: World,
    cfg: Config,
    *,
    episodes: int,
    seed: int,
    device: str | torch.device = "cpu",
    chunk: int | None = None,
) -> np.ndarray:
    """Per agent, the increase of the world error when it alone is silenced: mean and standard error ``[N, 2]``
    (:attr:`KnockoutEffects.delta` of :func:`knockout_effects`, ``chunk`` episodes at a time)."""
    return knockout_effects(
        system, world, cfg, episodes=episodes, seed=seed, device=device, receivers=False, chunk=chunk
    ).delta


def relay_test(
    system: CommSystem,
    world: World,
    cfg: Config,
    *,
    episodes: int,
    seed: int,
    device: str | torch.device = "cpu",
    effects: KnockoutEffects | None = None,
    num_permutations: int | None = None,
    real: EpisodeHarm | None = None,
    chunk: int | None = None,
) -> dict[str, Any]:
    """The causal relays: agents whose silencing hurts the agents that do not hear them directly.

    From the knock-outs of :func:`knockout_effects` (run here unless ``effects`` are given), each agent's far
    effect (:func:`gnncomm.metrics.far_effects`: the rise of the harm of receivers that never heard it directly,
    as a share of the knock-out effect) is tested per episode against both nulls of
    :func:`gnncomm.metrics.relay_statistics` (no effect: random signs; no more than the others: agents permuted
    within episodes), Holm-corrected over agents at level :data:`ALPHA`. A receiver's harm is its own world error
    (:func:`agent_world_error`) or, in a world without a latent, the fall of its own return (its
    ``agent_rewards`` summed over the episode; :func:`agent_harm`). Per-episode far effects no larger than
    ``relay_tolerance`` = :data:`gnncomm.metrics.ROUNDING_TOLERANCE` times the receivers' harm scale
    (:attr:`KnockoutEffects.scale`) are float32 rounding and count as ``0``.

    Args:
        effects: knock-outs already run on these ``episodes`` and ``seed``, with ``receivers``.
        real, chunk: passed to :func:`knockout_effects` when it runs them here: the unmodified rollout's
            :class:`EpisodeHarm` (e.g. kept by :func:`communication_ablation`'s ``on_real_step``), and the episodes
            per rollout.
        num_permutations (int, optional): size of both nulls; ``None``: :data:`gnncomm.metrics.RELAY_PERMUTATIONS`
            or the fewest with which ``N`` Holm-corrected p-values can reach :data:`ALPHA`. (default: ``None``)

    Returns:
        dict: ``relays`` (sorted agent ids), ``relay_stats`` (per agent, :func:`gnncomm.metrics.relay_statistics`),
        ``relay_permutations``, ``relay_tolerance`` and ``relays_skipped``, ``None`` or why the test did not run: a
        world without a latent whose agents have no rewards of their own (no ``agent_rewards``, or rewards equal
        for every agent at every step), or more than :data:`RELAY_MAX_AGENTS` agents. Then the other four are
        ``None``.
    """
    N = cfg.num_agents
    reason = None
    if getattr(world, "latent_dim", 1) == 0 and not hasattr(world, "agent_rewards"):
        reason = _NO_OWN_HARM
    elif N > RELAY_MAX_AGENTS and (effects is None or effects.receiver_delta is None):
        reason = (
            f"{N} agents > RELAY_MAX_AGENTS={RELAY_MAX_AGENTS}: the relay test silences each agent in turn (N "
            "rollouts) and keeps [N, episodes, N] effects; call gnncomm.evaluation.relay_test with "
            "knockout_effects(..., receivers=True) to test them"
        )
    if reason is None and effects is None:
        effects = knockout_effects(
            system, world, cfg, episodes=episodes, seed=seed, device=device, real=real, chunk=chunk
        )
    if reason is None and effects.receiver_delta is None:
        reason = effects.receivers_skipped or "the knock-outs were run without receivers"
    if reason is not None:
        return dict.fromkeys(("relays", "relay_stats", "relay_permutations", "relay_tolerance"), None) | {
            "relays_skipped": reason
        }
    K = num_permutations
    if K is None:
        K = max(metrics.RELAY_PERMUTATIONS, metrics.min_permutations(N, ALPHA))
    tolerance = 0.0 if effects.scale is None else metrics.ROUNDING_TOLERANCE * effects.scale
    far = metrics.far_effects(effects.receiver_delta, effects.far, tolerance=tolerance)  # [N, B]
    stats = metrics.relay_statistics(far, num_permutations=K, seed=seed)
    return {
        "relays": sorted(a for a, t in stats.items() if t["far_effect"] > 0.0 and t["p_adjusted"] <= ALPHA),
        "relay_stats": stats,
        "relay_permutations": K,
        "relay_tolerance": tolerance,
        "relays_skipped": None,
    }


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
    ``betweenness``). Hubs and attention relays are tested at level :data:`ALPHA`, Holm-corrected over agents,
    against the degree-preserving weight shuffle. An attention relay is what attention adds to the graph; what
    the graph forces is ``graph_betweenness``; the relays, whether information flows through an agent, are the
    causal :func:`relay_test`.

    Args:
        trace: a recorded :func:`~gnncomm.rollout.evaluate_rollout`, or the :class:`AttentionTally` of one
            (which is all the hub test and the graph need).
        seed (int): seed of the shuffles. (default: ``0``)
        num_shuffles (int, optional): size of both nulls; ``None`` takes the defaults of
            :func:`gnncomm.metrics.detect_hubs` and :func:`~gnncomm.metrics.detect_attention_relays` (enough to
            reach :data:`ALPHA` after the correction). (default: ``None``)
        with_centrality (bool): also compute every centrality (pagerank, betweenness); the hubs and attention
            relays do not need them. Without them and above :data:`ATTENTION_RELAY_MAX_AGENTS` agents the networkx
            graph (millions of edges at N = 100,000) is not built either: ``graph`` is ``None``. (default: ``True``)

    Returns:
        dict: ``graph`` (networkx.DiGraph), ``centrality``, ``hubs``, ``hub_stats``, ``hub_null`` (the method of
        :func:`~gnncomm.metrics.hub_statistics`), ``attention_relays``, ``attention_relay_stats``, ``hub_shuffles``
        / ``attention_relay_shuffles`` (the null sizes used; ``hub_shuffles`` is ``None`` when nothing was
        shuffled), and ``graph_betweenness`` (per agent, :func:`gnncomm.metrics.graph_betweenness`, on the step
        graphs of the trace or those the tally kept). With more than :data:`ATTENTION_RELAY_MAX_AGENTS` agents the
        attention relay null and the graph betweenness are too slow and skipped: those keys are ``None`` and
        ``attention_relays_skipped`` says why.
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
    graph = tally.graph() if with_centrality or N <= ATTENTION_RELAY_MAX_AGENTS else None
    tests = N
    out: dict[str, Any] = {
        "graph": graph,
        "centrality": metrics.centrality(graph) if with_centrality else None,
        "hub_null": method,
        "hubs": sorted(a for a, t in hub_stats.items() if t["p_adjusted"] <= ALPHA),
        "hub_stats": hub_stats,
        "hub_shuffles": hub_shuffles,
    }
    if N <= ATTENTION_RELAY_MAX_AGENTS and not tally.graph_episodes:
        raise ValueError(
            "the tally kept no step graphs for the graph betweenness: build it with AttentionTally.for_structure(cfg)"
        )
    if N > ATTENTION_RELAY_MAX_AGENTS:
        out.update(
            attention_relays=None,
            attention_relay_stats=None,
            attention_relay_shuffles=None,
            graph_betweenness=None,
            attention_relays_skipped=f"{N} agents > ATTENTION_RELAY_MAX_AGENTS={ATTENTION_RELAY_MAX_AGENTS}: the "
            "attention relay null (one networkx betweenness per shuffle) would take too long; call "
            "gnncomm.metrics.attention_relay_statistics on out['graph'] to test them",
        )
        return out
    shuffles = (
        num_shuffles
        if num_shuffles is not None
        else max(metrics.ATTENTION_RELAY_SHUFFLES, metrics.min_permutations(tests, ALPHA))
    )
    stats = metrics.attention_relay_statistics(graph, num_shuffles=shuffles, seed=seed)
    out.update(
        attention_relays=sorted(a for a, t in stats.items() if t["betweenness"] > 0.0 and t["p_adjusted"] <= ALPHA),
        attention_relay_stats=stats,
        attention_relay_shuffles=shuffles,
        graph_betweenness=metrics.graph_betweenness(
            tally.step_graphs(), N, max_graphs=GRAPH_BETWEENNESS_GRAPHS
        ).tolist(),
        attention_relays_skipped=None,
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
