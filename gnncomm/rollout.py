"""Episodes: sampling their randomness, rolling them out, the losses of a rollout and each agent's
share of them, and greedy evaluation rollouts."""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from gnncomm.agents import AgentState, CommSystem, StepOutput
from gnncomm.config import Config
from gnncomm.metrics.live import (
    attention_concentration,
    marginal_entropy,
    position_information,
    symbol_marginals,
    symbol_usage,
)
from gnncomm.nn.gumbel import gumbel_from_uniform_, sample_gumbel
from gnncomm.topology import batch_edge_index, build_topology, is_dynamic, knn
from gnncomm.world import World, WorldState

GraphFn = Callable[[Tensor], Tensor]


class LazyGumbel:
    r"""The Gumbel noise ``[T, B * N, M, V]`` of an episode, held as one generator state per step.

    Built from a generator, it records the generator's state before each step's draw and advances it
    exactly as drawing the whole ``[T, B * N, M, V]`` tensor would, so what the generator draws next
    does not change. ``lazy[t]`` then draws step ``t`` from its recorded state: bit for bit the ``t``-th
    slice of :func:`~gnncomm.nn.gumbel.sample_gumbel` of the whole shape from the same generator (a CPU
    generator draws serially), and the same tensor however often it is drawn. A rollout that recomputes
    its steps draws each step's noise inside the recomputed unit, so no step's noise is held at all: at
    100,000 agents an episode's noise is 640 MB. Each step's noise costs one more draw when it is
    recomputed, and one when the generator is advanced (of all ``B * N`` rows, even for one rank's
    :meth:`narrow`: the generator draws them in sequence).

    Args:
        generator (torch.Generator): the episode's generator, advanced past the noise.
        shape (tuple): ``(T, B * N, M, V)``.
        device: where ``lazy[t]`` is returned (it is drawn on the generator's device).
    """

    def __init__(self, generator: torch.Generator, shape: tuple[int, ...], device: torch.device | str) -> None:
        if generator.device.type != "cpu":
            raise ValueError(f"LazyGumbel needs a CPU generator (it draws serially), got one on {generator.device}")
        self.shape = tuple(shape)
        self.device = torch.device(device)
        self.gen_device = generator.device
        self.rows = (0, self.shape[1])
        self.states: list[Tensor] = []
        for _ in range(self.shape[0]):
            self.states.append(generator.get_state())
            torch.rand(self.shape[1:], generator=generator, device=self.gen_device)  # what sample_gumbel draws

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, t: int) -> Tensor:
        """The noise of step ``t``, ``[rows, M, V]`` on ``device``."""
        generator = torch.Generator(device=self.gen_device)
        generator.set_state(self.states[t])
        u = torch.rand(self.shape[1:], generator=generator, device=self.gen_device)  # every row, as the full draw
        if self.rows != (0, self.shape[1]):  # one rank's rows: transform only those, in a buffer of their own
            u = u.narrow(0, *self.rows).clone()
        return gumbel_from_uniform_(u).to(self.device)

    def narrow(self, dim: int, start: int, length: int) -> LazyGumbel:
        """Rows ``start .. start + length`` of every step (``dim=1``), as :meth:`torch.Tensor.narrow` would take."""
        if dim != 1 or not 0 <= start <= start + length <= self.rows[1]:
            raise ValueError(f"narrow takes rows of dim 1 within [0, {self.rows[1]}], got dim={dim}, {start}+{length}")
        view = copy.copy(self)
        view.rows = (self.rows[0] + start, length)
        return view

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(shape={list(self.shape)}, rows={self.rows}, device={self.device})"


class Episode(NamedTuple):
    """All the randomness of ``B`` episodes, drawn up front so a rollout is a pure function.

    Attributes:
        state: the initial :class:`~gnncomm.world.WorldState`.
        obs_noise: observation noise ``[T, B, N, L]``.
        gumbel: Gumbel noise ``[T, B * N, M, V]`` for training (a tensor, or a :class:`LazyGumbel` that
            draws each step when it is needed), ``None`` for greedy evaluation.
        agents: the agents' recurrent state to start from (a window of a longer episode, carried over from
            the window before); ``None`` starts from zeros.
    """

    state: WorldState
    obs_noise: Tensor
    gumbel: Tensor | LazyGumbel | None
    agents: AgentState | None = None


class Trace(NamedTuple):
    """What an evaluation rollout records, one entry per step."""

    outputs: list[StepOutput]
    edge_index: list[Tensor]
    states: list[WorldState]
    obs: list[Tensor]
    rewards: list[Tensor] | tuple = ()
    """Each episode's reward of every step ``[B]`` (the world's ``reward`` after the step); empty for a trace
    built by hand."""
    agent_rewards: list[Tensor] | tuple = ()
    """Each agent's reward of every step ``[B, N]`` (the world's optional ``agent_rewards`` after the step, as
    :attr:`rewards`); empty for a world without ``agent_rewards`` or a trace built by hand."""


def sample_episode(
    world: World,
    cfg: Config,
    batch_size: int,
    *,
    generator: torch.Generator,
    device: torch.device | str,
    training: bool = True,
    lazy_gumbel: bool = False,
) -> Episode:
    """Draws initial states and every noise tensor of ``batch_size`` episodes from ``generator``.

    Drawn on the generator's device (the CPU for a CPU generator) and moved to ``device``, so a
    run's randomness does not depend on where it trains. With ``lazy_gumbel``, the Gumbel noise is a
    :class:`LazyGumbel`, the same numbers drawn step by step when they are needed.
    """
    state = world.reset(batch_size, generator=generator, device=generator.device)
    obs_noise, gumbel = sample_window_noise(
        world, cfg, batch_size, generator=generator, device=device, training=training, lazy_gumbel=lazy_gumbel
    )
    return Episode(type(state)(*(t.to(device, non_blocking=True) for t in state)), obs_noise, gumbel)


def sample_window_noise(
    world: World,
    cfg: Config,
    batch_size: int,
    *,
    generator: torch.Generator,
    device: torch.device | str,
    training: bool = True,
    lazy_gumbel: bool = False,
) -> tuple[Tensor, Tensor | LazyGumbel | None]:
    """The observation and Gumbel noise of ``cfg.timesteps`` steps (one backprop window), drawn from
    ``generator`` in the order :func:`sample_episode` draws them after the reset."""
    gen_device = generator.device
    T = cfg.timesteps
    obs_noise = world.sample_noise(T, batch_size, generator=generator, device=gen_device)
    shape = (T, batch_size * cfg.num_agents, cfg.msg_dim, cfg.vocab_size)
    move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
    gumbel = None
    if training and lazy_gumbel:
        gumbel = LazyGumbel(generator, shape, device)
    elif training:
        gumbel = move(sample_gumbel(shape, generator=generator, device=gen_device))
    return move(obs_noise), gumbel


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
        return lambda pos: knn(pos, k, check_finite=False)
    single = build_topology(name, num_agents, k=k, generator=torch.Generator().manual_seed(seed), edges=edges)
    static = batch_edge_index(single, num_agents, batch_size).to(device)
    return lambda pos: static


RECOMPUTE_MIN_AGENTS = 20_000
"""With ``recompute_steps="auto"``, rollouts over at least this many agents (``B * N``) recompute each step's
activations in the backward pass instead of keeping them."""


def recompute_steps(cfg: Config, num_nodes: int) -> bool:
    """Whether a rollout over ``num_nodes = B * N`` agents recomputes its steps (``cfg.recompute_steps``)."""
    return cfg.recompute_steps == "true" or (cfg.recompute_steps == "auto" and num_nodes >= RECOMPUTE_MIN_AGENTS)


class StepTerms(NamedTuple):
    """One step's share of the loss and of the live signals (0-d tensors unless noted)."""

    recon: Tensor
    world: Tensor
    comm: Tensor
    marginals: Tensor
    """``[M, V]``: each message position's symbol probabilities averaged over the batch
    (:func:`~gnncomm.metrics.live.symbol_marginals`), differentiable; the vocabulary terms are computed from
    them once the rollout is over (across ranks, under DDP)."""
    reward: Tensor
    env_reward: Tensor
    """``[B]``: each episode's reward of the step (the world's ``reward``), detached: a window's sum is carried
    into whole-episode returns."""
    dispersion: Tensor
    """Mean dispersion of the new state (0 for a world without ``dispersion``), detached."""
    sampled_counts: Tensor
    """Histogram ``[V]`` of the sampled symbols."""
    greedy_counts: Tensor
    """Histogram ``[V]`` of the argmax symbols."""
    attn_max: Tensor
    attn_uniform: Tensor
    attn_hub_share: Tensor


class StepResult(NamedTuple):
    """What :func:`rollout_step` returns."""

    out: StepOutput
    agents: AgentState
    state: WorldState
    """The world after the step."""
    obs: Tensor
    edge_index: Tensor
    terms: StepTerms


def rollout_step(
    system: CommSystem,
    world: World,
    graph_fn: GraphFn,
    cfg: Config,
    state: WorldState,
    agents: AgentState,
    latent: Tensor,
    obs_noise: Tensor,
    gumbel: Tensor | Callable[[], Tensor] | None,
    temperature: float | Tensor,
    intervene: Callable[[Tensor], Tensor] | None = None,
    act: Callable[[Tensor], Tensor] | None = None,
    recompute: bool = False,
) -> StepResult:
    """One step of :func:`rollout`: build the graph, observe, talk and listen, act, move the world.

    The step does not depend on its index, so ``torch.compile`` traces it once and the ``T`` steps of
    an episode reuse that graph (compile time does not grow with ``T``).

    Args:
        state: the world before the step; ``latent`` its latent per agent ``[B * N, L]``.
        obs_noise: ``[B, N, L]``; ``gumbel``: ``[B * N, M, V]``, ``None`` (greedy), or a function that
            draws it inside the step (inside the recomputed unit, so it is drawn again instead of kept;
            eager steps only: a generator's draw would break a compiled graph).
        act: ``action -> action`` replacing the actions that move the world.
        recompute: keep only the step's inputs for the backward pass, which runs the step again.
    """
    BN = latent.shape[0]
    edge_index = graph_fn(state.pos)
    seen = type(state)(*(x.detach() for x in state)) if cfg.actions_learn_from == "reward" else state
    obs = world.observe(seen, obs_noise)
    talk_args = (system, obs, agents, edge_index, gumbel, temperature, intervene, vocab_terms_weighted(cfg))
    if recompute:  # the symbol marginals' softmax is recomputed too: it is [B*N, M, V] per step
        out, agents, marginals = checkpoint(_talk, *talk_args, use_reentrant=False)
    else:
        out, agents, marginals = _talk(*talk_args)
    symbols = out.logits.detach().argmax(-1).flatten()  # greedy symbols [B*N*M]
    greedy_counts = out.logits.new_zeros(out.logits.size(-1), dtype=torch.float32).index_add_(
        0, symbols, torch.ones_like(symbols, dtype=torch.float32)
    )  # [V]
    concentration = attention_concentration(out.alpha.detach(), edge_index[1], BN)
    action = out.action.float() if act is None else act(out.action.float())
    next_state = world.step(state, action, edge_index)
    dispersion = world.dispersion(next_state).mean().detach() if hasattr(world, "dispersion") else latent.new_zeros(())
    reward = world.reward(next_state)  # [B]
    terms = StepTerms(
        recon=(out.recon.float() - obs).pow(2).mean(),
        world=(out.world_pred.float() - latent).pow(2).mean() if latent.size(-1) else latent.new_zeros(()),
        comm=(1.0 - out.message[..., 0].float()).mean(),
        marginals=marginals,
        reward=reward.mean(),
        env_reward=reward.detach().float(),
        dispersion=dispersion,
        sampled_counts=out.message.detach().float().sum(dim=(0, 1)),  # [V]
        greedy_counts=greedy_counts,
        attn_max=concentration["max"],
        attn_uniform=concentration["uniform"],
        attn_hub_share=concentration["hub_share"],
    )
    return StepResult(out, agents, next_state, obs, edge_index, terms)


def vocab_terms_weighted(cfg: Config) -> bool:
    """Whether the vocabulary terms are in the loss (otherwise they are only logged, from detached logits)."""
    return cfg.vocab_weight > 0 or cfg.vocab_align_weight > 0


def _talk(
    system: CommSystem,
    obs: Tensor,
    agents: AgentState,
    edge_index: Tensor,
    gumbel: Tensor | Callable[[], Tensor] | None,
    temperature: float | Tensor,
    intervene: Callable[[Tensor], Tensor] | None,
    weighted: bool,
) -> tuple[StepOutput, AgentState, Tensor]:
    """The agents' step and the symbol marginals ``[M, V]`` of its messages, one unit for recomputation."""
    if callable(gumbel):
        gumbel = gumbel()
    out, agents = system(obs, agents, edge_index, gumbel, temperature, intervene)
    return out, agents, symbol_marginals(out.logits if weighted else out.logits.detach())


def _requiring_grad(tensors: tuple) -> tuple:
    """``tensors`` (a NamedTuple) with every floating-point tensor that does not require grad made a leaf that does.

    The initial state, and any state field the dynamics never differentiate, would otherwise differ from the other
    steps' inputs in ``requires_grad`` and make ``torch.compile`` compile the step twice. It costs the backward
    only the gradient of those leaves, which nothing reads.
    """
    return type(tensors)(
        *(x.detach().requires_grad_() if x.is_floating_point() and not x.requires_grad else x for x in tensors)
    )


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
    step_fn: Callable[..., StepResult] = rollout_step,
    reduce_marginals: Callable[[Tensor], Tensor] | None = None,
    carry: list | None = None,
) -> tuple[Tensor, dict[str, Tensor], Trace | None]:
    r"""Runs ``cfg.timesteps`` steps of talk, attention, action and world dynamics; returns the loss.

    .. math::
        \mathcal{L} = w_r \overline{\lVert \hat{\mathbf{o}} - \mathbf{o} \rVert^2}
        + w_z \sum_t \frac{t+1}{\sum_s (s+1)} \overline{\lVert \hat{\mathbf{z}}_t - \mathbf{z}
        \rVert^2} + w_c \overline{(1 - \mathbf{s}_{\cdot,0})}
        + \overline{w_v \frac{H(\bar{\mathbf{p}})}{\log V} + w_a \frac{I(m; s)}{\log V}}
        - w_d \overline{\mathrm{reward}}

    The communication cost is the L1 mass of the non-silence symbols per position (``0..1``). The
    vocabulary terms act on the batch's symbol probabilities at each step, both over :math:`\log V`:
    :math:`H(\bar{\mathbf{p}})` narrows the language (``vocab_weight``,
    :func:`~gnncomm.metrics.live.marginal_entropy`) and :math:`I(m; s)`, the information a symbol's position
    :math:`m` in its message holds about the symbol :math:`s`, makes positions share their symbols
    (``vocab_align_weight``, :func:`~gnncomm.metrics.live.position_information`). The
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
        step_fn: runs one step, :func:`rollout_step` or a compiled copy of it (see
            :class:`~gnncomm.trainer.RolloutLoss`).
        reduce_marginals: maps the local symbol marginals ``[T, M, V]`` to those of the whole batch before
            the vocabulary terms are taken (a differentiable mean over DDP ranks), so that a run split over
            ranks optimises the same loss as one process with the total batch. ``None``: this batch only.
        carry: a list that receives ``(state, agents, window_reward)`` after the last step: the world and the
            agents' recurrent state to continue from (not detached), and each episode's summed reward over the
            window ``[B]``, for windows of a longer episode.

    A world without a latent (``latent_dim = 0``) has no world-estimation term and no ``world``/``world_last``
    logs. A world with ``episode_metrics(state) -> {name: [B]}`` logs their means on the last state.

    Returns:
        ``(loss, logs, trace)``, where ``trace`` is a :class:`Trace` if ``record`` else ``None``.
    """
    state = episode.state
    B, N = state.pos.shape[:2]
    T = cfg.timesteps
    agents = episode.agents if episode.agents is not None else system.initial_state(B, device=state.pos.device)
    latent = state.latent.repeat_interleave(N, dim=0)  # [B*N, L]
    has_latent = latent.size(-1) > 0
    window_reward = 0.0
    trace = Trace([], [], [], [], [], []) if record else None
    own_rewards = record and hasattr(world, "agent_rewards")
    recompute = torch.is_grad_enabled() and recompute_steps(cfg, B * N)
    total: dict[str, Tensor | float] = {}
    marginals: list[Tensor] = []
    world_loss = 0.0
    for t in range(T):
        if torch.is_grad_enabled():  # every step shows torch.compile the same autograd signature: one graph for all T
            state, agents = _requiring_grad(state), _requiring_grad(agents)
        if isinstance(episode.gumbel, LazyGumbel) and recompute:  # drawn in the recomputed unit, never kept
            noise = functools.partial(episode.gumbel.__getitem__, t)
        else:
            noise = None if episode.gumbel is None else episode.gumbel[t]
        act_t = None if act is None else (lambda action, t=t: act(action, t))
        step = step_fn(
            system, world, graph_fn, cfg, state, agents, latent, episode.obs_noise[t], noise, temperature,
            intervene, act_t, recompute,
        )  # fmt: skip
        if record:
            trace.outputs.append(step.out)
            trace.edge_index.append(step.edge_index)
            trace.states.append(state)
            trace.obs.append(step.obs)
            trace.rewards.append(step.terms.env_reward)
            if own_rewards:
                trace.agent_rewards.append(world.agent_rewards(step.state).detach().float())
        state, agents, terms = step.state, step.agents, step.terms
        # The step's outputs are let go before the next step runs (a trace keeps what it records): without
        # autograd nothing else holds them, and they are about a quarter of a greedy step's memory.
        del step
        world_loss = world_loss + (t + 1) / (T * (T + 1) / 2) * terms.world
        marginals.append(terms.marginals)
        window_reward = window_reward + terms.env_reward
        for key, value in terms._asdict().items():
            if key not in ("marginals", "env_reward"):
                total[key] = total.get(key, 0.0) + value
    mean = {key: value / T for key, value in total.items() if not key.endswith("_counts")}
    batch_marginals = torch.stack(marginals)  # [T, M, V]
    if reduce_marginals is not None and vocab_terms_weighted(cfg):  # unweighted, they are only logged
        batch_marginals = reduce_marginals(batch_marginals)
    vocab = vocab_align = 0.0
    for t in range(T):  # step by step, in the order the other terms are summed
        vocab = vocab + marginal_entropy(batch_marginals[t])
        vocab_align = vocab_align + position_information(batch_marginals[t])
    mean["vocab"], mean["vocab_align"] = vocab / T, vocab_align / T
    loss = (
        cfg.recon_weight * mean["recon"]
        + cfg.world_weight * world_loss
        + cfg.comm_weight * mean["comm"]
        + cfg.vocab_weight * mean["vocab"]
        + cfg.vocab_align_weight * mean["vocab_align"]
        - cfg.cluster_weight * mean["reward"]
    )
    usage = symbol_usage(total["greedy_counts"])
    logs = {
        "loss": loss,
        "recon": mean["recon"],
        "comm": mean["comm"],
        "vocab_term": mean["vocab"],
        "vocab_align_term": mean["vocab_align"],
        "reward": mean["reward"],
        "vocab_usage": usage["usage"],
        "entropy_bits": usage["entropy_bits"],
        "effective_vocab": usage["effective"],
        "vocab_usage_sampled": (total["sampled_counts"] > 0).float().mean(),
        "attn_max": mean["attn_max"],
        "attn_uniform": mean["attn_uniform"],
        "attn_hub_share": mean["attn_hub_share"],
    }
    if has_latent:
        logs.update(world=world_loss, world_last=terms.world)
    if hasattr(world, "dispersion"):
        logs["dispersion"] = mean["dispersion"]
    if hasattr(world, "episode_metrics"):
        logs.update({key: value.float().mean() for key, value in world.episode_metrics(state).items()})
    if carry is not None:
        carry[:] = [state, agents, window_reward]
    return loss, {k: v.detach() for k, v in logs.items()}, trace


def restart_episodes(
    world: World, state: WorldState, agents: AgentState, mask: Tensor, generator: torch.Generator
) -> tuple[WorldState, AgentState]:
    """Starts the episodes where ``mask [B]`` is true again: the world's ``reset_done(state, mask, generator)``,
    and those episodes' agents' recurrent states zeroed; the other episodes go on untouched."""
    if not hasattr(world, "reset_done"):
        raise ValueError(
            f"{type(world).__name__} ended some episodes early but has no reset_done(state, mask, generator) to "
            "start them again"
        )
    state = world.reset_done(state, mask, generator)
    rows = mask.repeat_interleave(agents.enc_h.size(0) // mask.numel()).unsqueeze(-1)  # [B*N, 1]
    return state, AgentState(*(torch.where(rows, torch.zeros_like(x), x) for x in agents))


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
    interventions see identical worlds. Episodes are whole: ``cfg.episode_length`` steps. The graph is
    ``topology = (name, k)``, by default the one in force at the end of training. The system's train/eval
    mode is restored afterwards.

    Returns:
        ``(logs, trace)``: the scalar logs of :func:`rollout` as floats and, with ``record``, the
        :class:`Trace`.
    """
    was_training = system.training
    system.eval()
    if cfg.episode_length != cfg.timesteps:  # whole episodes, not one backprop window
        cfg = dataclasses.replace(cfg, timesteps=cfg.episode_length)
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
    per agent; the shared reward and the vocabulary terms, which are properties of the whole batch, are left
    out since no agent owns them).
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
