"""Episodes: sampling their randomness, rolling them out, the losses of a rollout and each agent's
share of them, and greedy evaluation rollouts."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from gnncomm.agents import CommSystem, StepOutput
from gnncomm.config import Config
from gnncomm.metrics.live import attention_concentration, symbol_usage
from gnncomm.nn.gumbel import sample_gumbel
from gnncomm.topology import batch_edge_index, build_topology, is_dynamic, knn
from gnncomm.world import World, WorldState

GraphFn = Callable[[Tensor], Tensor]


class Episode(NamedTuple):
    """All the randomness of ``B`` episodes, drawn up front so a rollout is a pure function.

    Attributes:
        state: the initial :class:`~gnncomm.world.WorldState`.
        obs_noise: observation noise ``[T, B, N, L]``.
        gumbel: Gumbel noise ``[T, B * N, M, V]`` for training, ``None`` for greedy evaluation.
    """

    state: WorldState
    obs_noise: Tensor
    gumbel: Tensor | None


class Trace(NamedTuple):
    """What an evaluation rollout records, one entry per step."""

    outputs: list[StepOutput]
    edge_index: list[Tensor]
    states: list[WorldState]
    obs: list[Tensor]


def sample_episode(
    world: World,
    cfg: Config,
    batch_size: int,
    *,
    generator: torch.Generator,
    device: torch.device | str,
    training: bool = True,
) -> Episode:
    """Draws initial states and every noise tensor of ``batch_size`` episodes from ``generator``.

    Drawn on the generator's device (the CPU for a CPU generator) and moved to ``device``, so a
    run's randomness does not depend on where it trains.
    """
    gen_device = generator.device
    state = world.reset(batch_size, generator=generator, device=gen_device)
    T = cfg.timesteps
    obs_noise = world.sample_noise(T, batch_size, generator=generator, device=gen_device)
    gumbel = None
    if training:
        gumbel = sample_gumbel(
            (T, batch_size * cfg.num_agents, cfg.msg_dim, cfg.vocab_size), generator=generator, device=gen_device
        )
    move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
    return Episode(type(state)(*map(move, state)), move(obs_noise), move(gumbel))


def make_graph_fn(
    name: str,
    k: int,
    num_agents: int,
    batch_size: int,
    *,
    device: torch.device | str,
    seed: int = 0,
    edges: list | Tensor | None = None,
) -> GraphFn:
    """Returns ``pos [B, N, 2] -> edge_index [2, E]`` over the ``B * N`` nodes.

    A dynamic topology (``knn``) is rebuilt from the positions at every call; a static one is built
    once (random ones from ``seed``; ``custom`` from ``edges``) and batched as ``B`` disjoint copies.
    """
    if is_dynamic(name):
        return lambda pos: knn(pos, k)
    single = build_topology(name, num_agents, k=k, generator=torch.Generator().manual_seed(seed), edges=edges)
    static = batch_edge_index(single, num_agents, batch_size).to(device)
    return lambda pos: static


RECOMPUTE_MIN_AGENTS = 20_000
"""With ``recompute_steps="auto"``, rollouts over at least this many agents (``B * N``) recompute each step's
activations in the backward pass instead of keeping them."""


def recompute_steps(cfg: Config, num_nodes: int) -> bool:
    """Whether a rollout over ``num_nodes = B * N`` agents recomputes its steps (``cfg.recompute_steps``)."""
    return cfg.recompute_steps == "true" or (cfg.recompute_steps == "auto" and num_nodes >= RECOMPUTE_MIN_AGENTS)


def rollout(
    system: CommSystem,
    world: World,
    episode: Episode,
    graph_fn: GraphFn,
    cfg: Config,
    temperature: float | Tensor = 1.0,
    intervene: Callable[[Tensor], Tensor] | None = None,
    record: bool = False,
    act: Callable[[Tensor, int], Tensor] | None = None,
) -> tuple[Tensor, dict[str, Tensor], Trace | None]:
    r"""Runs ``cfg.timesteps`` steps of talk, attention, action and world dynamics; returns the loss.

    .. math::
        \mathcal{L} = w_r \overline{\lVert \hat{\mathbf{o}} - \mathbf{o} \rVert^2}
        + w_z \sum_t \frac{t+1}{\sum_s (s+1)} \overline{\lVert \hat{\mathbf{z}}_t - \mathbf{z}
        \rVert^2} + w_c \overline{(1 - \mathbf{s}_{\cdot,0})}
        - w_d \overline{\mathrm{reward}}

    The communication cost is the L1 mass of the non-silence symbols per position (``0..1``). The
    cooperative reward (for :class:`~gnncomm.world.SwarmWorld`, minus the swarm's dispersion: the
    clustering incentive) reaches the actions through the differentiable world. With
    ``cfg.actions_learn_from == "reward"`` (the default) it is the only term that does: observations
    are taken from a detached state, so the language losses cannot turn movement into a side channel
    (measured: without this, the reconstruction and world losses pulled on the actions 3-8 times harder
    than the reward, and trained swarms dispersed more than idle ones).

    No host sync happens here: ``logs`` holds detached 0-d tensors. Besides the loss terms they hold the
    live signals of :mod:`gnncomm.metrics.live`: usage, entropy and effective size of the greedy (argmax)
    vocabulary (``vocab_usage``, ``entropy_bits``, ``effective_vocab``), the sampled usage
    (``vocab_usage_sampled``), and attention concentration (``attn_max``, ``attn_uniform``,
    ``attn_hub_share``), each averaged over steps.

    Args:
        intervene: a map applied to the messages before they are heard (silence, shuffles, knock-outs).
        record: keep a :class:`Trace` of every step.
        act: ``(action, t) -> action`` replacing the actions that move the world (switched off, random).

    Returns:
        ``(loss, logs, trace)``, where ``trace`` is a :class:`Trace` if ``record`` else ``None``.
    """
    state = episode.state
    B, N = state.pos.shape[:2]
    T = cfg.timesteps
    agents = system.initial_state(B, device=state.pos.device)
    latent = state.latent.repeat_interleave(N, dim=0)  # [B*N, L]
    step_weight = [(t + 1) / (T * (T + 1) / 2) for t in range(T)]
    recon = world_loss = comm = reward = world_last = dispersion = 0.0
    sampled_counts = greedy_counts = 0.0
    attention = {"max": 0.0, "uniform": 0.0, "hub_share": 0.0}
    trace = Trace([], [], [], []) if record else None
    detach_obs = cfg.actions_learn_from == "reward"
    recompute = torch.is_grad_enabled() and recompute_steps(cfg, B * N)
    for t in range(T):
        edge_index = graph_fn(state.pos)
        seen = type(state)(*(x.detach() for x in state)) if detach_obs else state
        obs = world.observe(seen, episode.obs_noise[t])
        noise = None if episode.gumbel is None else episode.gumbel[t]
        if recompute:  # keep only the step's inputs; the backward pass runs the step again
            out, agents = checkpoint(
                system, obs, agents, edge_index, noise, temperature, intervene, use_reentrant=False
            )
        else:
            out, agents = system(obs, agents, edge_index, noise, temperature, intervene)
        if record:
            trace.outputs.append(out)
            trace.edge_index.append(edge_index)
            trace.states.append(state)
            trace.obs.append(obs)
        recon = recon + (out.recon.float() - obs).pow(2).mean() / T
        world_last = (out.world_pred.float() - latent).pow(2).mean()
        world_loss = world_loss + step_weight[t] * world_last
        comm = comm + (1.0 - out.message[..., 0].float()).mean() / T
        sampled_counts = sampled_counts + out.message.detach().float().sum(dim=(0, 1))  # [V]
        greedy = torch.zeros_like(out.logits, dtype=torch.float32).scatter_(-1, out.logits.argmax(-1, keepdim=True), 1)
        greedy_counts = greedy_counts + greedy.sum(dim=(0, 1))  # [V]
        concentration = attention_concentration(out.alpha.detach(), edge_index[1], B * N)
        attention = {k: attention[k] + v / T for k, v in concentration.items()}
        action = out.action.float() if act is None else act(out.action.float(), t)
        state = world.step(state, action, edge_index)
        reward = reward + world.reward(state).mean() / T
        if hasattr(world, "dispersion"):
            dispersion = dispersion + world.dispersion(state).mean().detach() / T
    loss = (
        cfg.recon_weight * recon + cfg.world_weight * world_loss + cfg.comm_weight * comm - cfg.cluster_weight * reward
    )
    usage = symbol_usage(greedy_counts)
    logs = {
        "loss": loss,
        "recon": recon,
        "world": world_loss,
        "world_last": world_last,
        "comm": comm,
        "reward": reward,
        "vocab_usage": usage["usage"],
        "entropy_bits": usage["entropy_bits"],
        "effective_vocab": usage["effective"],
        "vocab_usage_sampled": (sampled_counts > 0).float().mean(),
        "attn_max": attention["max"],
        "attn_uniform": attention["uniform"],
        "attn_hub_share": attention["hub_share"],
    }
    if hasattr(world, "dispersion"):
        logs["dispersion"] = dispersion
    return loss, {k: v.detach() for k, v in logs.items()}, trace


EVAL_AGENT_BUDGET = 2**13
"""Largest number of agents (episodes x num_agents) in one automatic evaluation rollout (end of run, live
probes): all 512 ``eval_episodes`` at the seed's 10 agents, 8 episodes at 1,000 agents, so that the
evaluation costs about as much as a few training steps. ``gnncomm evaluate RUN --episodes N`` asks for more."""


def capped_episodes(requested: int, num_agents: int, *, floor: int = 2) -> int:
    """``requested`` episodes, at most :data:`EVAL_AGENT_BUDGET` agents' worth, and never fewer than ``floor``
    (nor than 2, since ablations compare episodes).

    >>> capped_episodes(512, 10), capped_episodes(512, 1000), capped_episodes(64, 100_000, floor=4)
    (512, 8, 4)
    """
    return max(min(requested, EVAL_AGENT_BUDGET // num_agents), floor, 2)


EVAL_SEED_OFFSET = 10_007
"""Evaluation episodes are drawn from ``seed + EVAL_SEED_OFFSET``, never from the training stream."""


@torch.no_grad()
def evaluate_rollout(
    system: CommSystem,
    world: World,
    cfg: Config,
    *,
    episodes: int,
    seed: int,
    device: str | torch.device = "cpu",
    intervene: Callable[[Tensor], Tensor] | None = None,
    record: bool = False,
    topology: tuple[str, int] | None = None,
    act: Callable[[Tensor, int], Tensor] | None = None,
) -> tuple[dict[str, float], Trace | None]:
    """Greedy (argmax) messages on ``episodes`` fresh episodes drawn from ``seed``.

    The same ``seed`` gives the same episodes, so conditions compared with different
    interventions see identical worlds. The graph is ``topology = (name, k)``, by default the one
    in force at the end of training. The system's train/eval mode is restored afterwards.

    Returns:
        ``(logs, trace)``: the scalar logs of :func:`rollout` as floats and, with ``record``, the
        :class:`Trace`.
    """
    was_training = system.training
    system.eval()
    generator = torch.Generator().manual_seed(seed)
    episode = sample_episode(world, cfg, episodes, generator=generator, device=device, training=False)
    name, k = topology or cfg.topology_at(cfg.steps)
    graph_fn = make_graph_fn(name, k, cfg.num_agents, episodes, device=device, seed=cfg.seed, edges=cfg.custom_edges)
    _, logs, trace = rollout(system, world, episode, graph_fn, cfg, 1.0, intervene, record, act)
    system.train(was_training)
    return {key: float(value) for key, value in logs.items()}, trace


def agent_losses(trace: Trace, cfg: Config) -> Tensor:
    r"""Each agent's own share of the training loss on a recorded rollout, ``[N]``.

    .. math::
        \ell_a = w_z \sum_t \tfrac{t+1}{\sum_s (s+1)} \overline{\lVert \hat{\mathbf{z}}_{a,t} -
        \mathbf{z} \rVert^2} + w_r \overline{\lVert \hat{\mathbf{o}}_a - \mathbf{o}_a \rVert^2}
        + w_c \overline{(1 - \mathbf{s}_{a,\cdot,0})}

    averaged over the episodes of ``trace`` (the same terms and step weights as :func:`rollout`,
    per agent; the shared reward term is left out since no agent owns it).
    """
    N, T = cfg.num_agents, cfg.timesteps
    world_err = recon_err = comm = 0.0
    for t, (out, state, obs) in enumerate(zip(trace.outputs, trace.states, trace.obs)):
        latent = state.latent.float().repeat_interleave(N, dim=0)  # [B*N, L]
        step_weight = (t + 1) / (T * (T + 1) / 2)
        world_err = world_err + step_weight * (out.world_pred.float() - latent).pow(2).mean(-1)  # [B*N]
        recon_err = recon_err + (out.recon.float() - obs.float()).pow(2).mean(-1) / T  # [B*N]
        comm = comm + (1.0 - out.message[..., 0].float()).mean(-1) / T  # [B*N]
    per_node = cfg.world_weight * world_err + cfg.recon_weight * recon_err + cfg.comm_weight * comm
    return per_node.view(-1, N).mean(0)  # [N]


def no_actions(action: Tensor, t: int) -> Tensor:
    """Actions switched off: the world moves by its own forces alone (for :func:`rollout`'s ``act``)."""
    return torch.zeros_like(action)


def random_actions(seed: int) -> Callable[[Tensor, int], Tensor]:
    """Uniform random actions in ``[-1, 1]``, the same for the same ``seed``, step and shape."""

    def act(action: Tensor, t: int) -> Tensor:
        generator = torch.Generator().manual_seed(seed * 1000 + t)
        return (torch.rand(action.shape, generator=generator) * 2 - 1).to(action)

    return act
