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
from collections.abc import Sequence
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
from gnncomm.rollout import (
    EVAL_SEED_OFFSET,
    Trace,
    capped_episodes,
    evaluate_rollout,
    no_actions,
    random_actions,
)
from gnncomm.world import World, build_world, check_world, message_share

__all__ = [
    "ALPHA",
    "ATTENTION_RELAY_MAX_AGENTS",
    "RELAY_MAX_AGENTS",
    "ConfigFileWarning",
    "KnockoutEffects",
    "LoadedRun",
    "attention_matrix",
    "attention_structure",
    "agent_harm",
    "agent_world_error",
    "communication_ablation",
    "episode_world_error",
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


def communication_ablation(
    system: CommSystem,
    world: World,
    cfg: Config,
    *,
    episodes: int | None = None,
    seed: int | None = None,
    device: str | torch.device = "cpu",
    knockouts: bool = False,
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

    def run(intervene: Any = None, act: Any = None) -> dict[str, float]:
        return evaluate_rollout(
            system, world, cfg, episodes=episodes, seed=seed, device=device, intervene=intervene, act=act
        )[0]

    real = run(None)
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


def _own_harm_reason(trace: Trace) -> str | None:
    """Why the agents of ``trace`` have no harm of their own (:func:`agent_harm`), or ``None`` when they have."""
    if trace.states[-1].latent.size(-1) > 0:
        return None
    if not trace.agent_rewards:
        return _NO_OWN_HARM
    rewards = torch.stack(trace.agent_rewards)  # [T, B, N]
    if bool((rewards == rewards[..., :1]).all()):
        return (
            "the agents' rewards (agent_rewards) are equal at every step: a shared reward gives no agent a return of "
            "its own, so the harm to agents that do not hear a silenced one cannot be told from the harm to those "
            "that do"
        )
    return None


def _harm_scale(trace: Trace, num_agents: int) -> float:
    """The size of the numbers whose differences the receivers' effects are: the mean own world error, or the mean
    over agents of the sum of the magnitudes of their rewards (what float32 rounds)."""
    if trace.states[-1].latent.size(-1) > 0:
        return float(np.abs(agent_world_error(trace, num_agents)).mean())
    return float(torch.stack(trace.agent_rewards).float().abs().sum(0).mean())


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


def knockout_effects(
    system: CommSystem,
    world: World,
    cfg: Config,
    *,
    episodes: int,
    seed: int,
    device: str | torch.device = "cpu",
    real: Trace | None = None,
    receivers: bool | None = None,
) -> KnockoutEffects:
    """Silences each agent in turn (one rollout per agent) and records who it hurts.

    The knock-outs are paired with the unmodified rollout over the same ``episodes`` (drawn from ``seed``), so
    their standard errors over episodes measure the knock-out, not the spread of the episodes. The same rollouts
    give the per-receiver effects of the relay test (:func:`relay_test`): no rollout is run twice.

    Args:
        real: the recorded :func:`~gnncomm.rollout.evaluate_rollout` of the unmodified system on the same episodes;
            run here if ``None``.
        receivers (bool, optional): also keep ``receiver_delta`` and ``far`` (``[N, B, N]`` each). ``None``: when
            each agent has a harm of its own (a latent, or rewards of its own that are not all equal: see
            :func:`agent_harm`) and ``N <= RELAY_MAX_AGENTS``. (default: ``None``)
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 2:
        raise ValueError(f"episodes must be an int >= 2 (a standard error needs two), got {episodes!r}")
    N = cfg.num_agents

    def rollout(intervene: Any) -> Trace:
        return evaluate_rollout(
            system, world, cfg, episodes=episodes, seed=seed, device=device, intervene=intervene, record=True
        )[1]

    real = rollout(None) if real is None else real
    skipped = _own_harm_reason(real)
    if receivers and skipped is not None:
        raise ValueError(f"receivers=True needs each agent's own harm, but {skipped}")
    if receivers is None:
        if skipped is None and N > RELAY_MAX_AGENTS:
            skipped = f"{N} agents > RELAY_MAX_AGENTS={RELAY_MAX_AGENTS}"
        receivers = skipped is None
    elif not receivers:
        skipped = "the knock-outs were run without receivers (knockout_effects(..., receivers=False))"
    real_error = episode_world_error(real, N)  # [B]
    if receivers:
        real_agent_error = agent_harm(real, N)  # [B, N]
        real_heard = metrics.heard_directly(real.edge_index, N, episodes)  # [B, speaker, listener]
        receiver_delta = np.zeros((N, episodes, N))
        far = np.zeros((N, episodes, N), dtype=bool)
    out = np.zeros((N, 2))
    for a in range(N):
        trace = rollout(knockout(a, N))
        delta = episode_world_error(trace, N) - real_error  # [B], same episodes
        out[a] = delta.mean(), delta.std(ddof=1) / math.sqrt(delta.size)
        if receivers:
            receiver_delta[a] = agent_harm(trace, N) - real_agent_error
            heard = real_heard[:, a] | metrics.heard_directly(trace.edge_index, N, episodes)[:, a]  # [B, N]
            far[a] = ~heard
            far[a, :, a] = False  # the silenced agent is no receiver of its own silence
        del trace
    if receivers:
        return KnockoutEffects(out, receiver_delta, far, _harm_scale(real, N))
    return KnockoutEffects(out, None, None, None, skipped)


def knockout_errors(
    system: CommSystem,
    world: World,
    cfg: Config,
    *,
    episodes: int,
    seed: int,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Per agent, the increase of the world error when it alone is silenced: mean and standard error ``[N, 2]``
    (:attr:`KnockoutEffects.delta` of :func:`knockout_effects`)."""
    return knockout_effects(system, world, cfg, episodes=episodes, seed=seed, device=device, receivers=False).delta


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
        effects = knockout_effects(system, world, cfg, episodes=episodes, seed=seed, device=device)
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
"""Largest hub null that is shuffled; above it (Holm over more than ~100 agents) the null's exact moments are used
(:func:`gnncomm.metrics.hub_statistics` with ``method="normal"``)."""


def attention_structure(
    trace: Trace, cfg: Config, *, seed: int = 0, num_shuffles: int | None = None, with_centrality: bool = True
) -> dict[str, Any]:
    """Attention aggregated by agent id over every step and episode of ``trace``, and who stands out.

    The graph points ``speaker -> listener`` and the centralities use the names of
    :mod:`gnncomm.metrics.graph` (``attention_received``, ``attention_paid``, ``pagerank``,
    ``betweenness``). Hubs and attention relays are tested at level :data:`ALPHA`, Holm-corrected over agents,
    against the degree-preserving weight shuffle. An attention relay is what attention adds to the graph; what
    the graph forces is ``graph_betweenness``; the relays, whether information flows through an agent, are the
    causal :func:`relay_test`.

    Args:
        trace: a recorded :func:`~gnncomm.rollout.evaluate_rollout`.
        seed (int): seed of the shuffles. (default: ``0``)
        num_shuffles (int, optional): size of both nulls; ``None`` takes the defaults of
            :func:`gnncomm.metrics.detect_hubs` and :func:`~gnncomm.metrics.detect_attention_relays` (enough to
            reach :data:`ALPHA` after the correction). (default: ``None``)
        with_centrality (bool): also compute every centrality (pagerank, betweenness); the hubs and attention
            relays do not need them. (default: ``True``)

    Returns:
        dict: ``graph`` (networkx.DiGraph), ``centrality``, ``hubs``, ``hub_stats``, ``attention_relays``,
        ``attention_relay_stats``, ``hub_shuffles`` / ``attention_relay_shuffles`` (the null sizes used), and
        ``graph_betweenness`` (per agent, :func:`gnncomm.metrics.graph_betweenness`). With more than
        :data:`ATTENTION_RELAY_MAX_AGENTS` agents the attention relay null and the graph betweenness are too slow
        and skipped: those keys are ``None`` and ``attention_relays_skipped`` says why.
    """
    N = cfg.num_agents
    edge_index = torch.cat(trace.edge_index, dim=1).cpu()
    alpha = torch.cat([o.alpha.float().mean(-1) for o in trace.outputs]).cpu()
    num_nodes = trace.obs[0].size(0)  # B * N
    graph = metrics.attention_graph(edge_index, alpha, num_nodes, node_ids=torch.arange(num_nodes) % N)
    tests = max(graph.number_of_nodes(), 1)
    hub_shuffles = (
        num_shuffles if num_shuffles is not None else max(metrics.HUB_SHUFFLES, metrics.min_permutations(tests, ALPHA))
    )
    method = "permutation" if hub_shuffles <= HUB_PERMUTATION_MAX else "normal"
    hub_stats = metrics.hub_statistics(graph, num_shuffles=hub_shuffles, seed=seed, method=method)
    if method == "normal":
        hub_shuffles = None  # the null's exact moments: nothing was shuffled
    out: dict[str, Any] = {
        "graph": graph,
        "centrality": metrics.centrality(graph) if with_centrality else None,
        "hub_null": method,
        "hubs": sorted(a for a, t in hub_stats.items() if t["p_adjusted"] <= ALPHA),
        "hub_stats": hub_stats,
        "hub_shuffles": hub_shuffles,
    }
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
        graph_betweenness=metrics.graph_betweenness(trace.edge_index, N).tolist(),
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
