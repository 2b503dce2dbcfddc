"""Learning from the world's reward alone: clipped PPO with gnncomm's communication inside the policy.

For worlds whose reward has no gradient (VMAS discovery, transport, a simulator outside torch). One training
step is one iteration, in CleanRL's order:

1. **collect** (no gradients): ``B = batch_size`` environments roll ``T = timesteps`` steps. Every agent speaks,
   listens and acts as in the gradient path (:func:`~gnncomm.rollout.rollout_step`), its action drawn from a
   Gaussian around the action head's output (``action_log_std``, learnt) and clamped to ``[-1, 1]`` before the
   world sees it. Observations, graphs, Gumbel noise, actions, log-probabilities, values and rewards are stored
   as ``[T, B * N, ...]``, with the agents' recurrent state at the start. An episode that ends (its
   ``episode_length`` steps, or the world's ``done``) starts again at once, and its agents' states are zeroed;
   episodes that outlast an iteration (``episode_steps > timesteps``) continue into the next one.
2. **advantages:** :func:`gae` per agent, with each agent's own reward where the world gives one
   (``agent_rewards(state) -> [B, N]``) and the episode's reward otherwise, bootstrapped from the values after
   the last step. An episode's end, whether the world's ``done`` or its horizon, is terminal.
3. **update:** ``ppo_epochs`` passes over the data in ``minibatches`` sets of sequences: an environment's whole
   iteration, or ``ppo_sequence`` steps of it (every agent of every step together: the graph is whole). Each
   minibatch replays its sequences from the recurrent states stored at their starts, zeroing them where episodes
   started, and minimises
   :math:`-\\mathcal{L}^{\\mathrm{clip}} + c_v \\mathcal{L}^{V} - c_e H` (:func:`clipped_surrogate`,
   advantages normalised per minibatch), plus the library's language and world-estimation terms with their
   weights (``recon_weight``, ``world_weight``, ``comm_weight``: 0 turns them off).

The messages learn in one of two ways (``ppo_messages``):

* ``policy``: the replay draws the stored Gumbel noise again, so it says what was said at collection, and each
  listener's log-probability is differentiated through its speakers' straight-through messages within the step
  (DIAL, MADDPG). The ratio is over actions. ``message_noise`` scales that noise: 0 makes each message the
  greedy symbol at collection as at evaluation, still differentiated straight through the softmax.
* ``actions``: the symbols are sampled actions (the Gumbel-max sample of the encoder's logits). Listeners hear
  the stored symbols, and each symbol's log-probability enters the ratio beside the action's (EGG's REINFORCE
  sender); the entropy bonus covers the symbols too.

The value head (:class:`~gnncomm.nn.ValueHead`) is centralised: it pools each agent's input with its episode's
mean. The input (``critic_input``) is the policy's own state (``features``: one trunk, which the value loss
trains too) or the raw observations through the critic's own MLP (``observations``: a separate critic, as
MAPPO's). Evaluation, ablations and ``gnncomm evaluate``/``animate`` use the deterministic policy: greedy
symbols and the action head's output.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from gnncomm.agents import AgentState, CommSystem
from gnncomm.config import Config
from gnncomm.metrics.live import symbol_usage
from gnncomm.rollout import GraphFn, restart_episodes, rollout_step, sample_window_noise
from gnncomm.world import World

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def gae(
    rewards: Tensor, values: Tensor, dones: Tensor, last_value: Tensor, gamma: float, lam: float
) -> tuple[Tensor, Tensor]:
    r"""Generalised advantage estimation over ``T`` steps, one backwards pass.

    .. math::
        \delta_t = r_t + \gamma (1 - d_t) V_{t+1} - V_t, \qquad
        A_t = \delta_t + \gamma \lambda (1 - d_t) A_{t+1}

    where :math:`d_t = 1` when the episode ended with step :math:`t` (the next state belongs to a new episode)
    and :math:`V_T` is ``last_value``, the value of the state after the last step.

    Args:
        rewards, values, dones: ``[T, ...]``, the reward and done of step ``t``'s transition and the value of
            the state it started from.
        last_value: ``[...]``.

    Returns:
        ``(advantages, returns)``, both ``[T, ...]``, with ``returns = advantages + values``.

    >>> adv, ret = gae(torch.tensor([1.0, 1.0, 1.0]), torch.zeros(3), torch.tensor([0.0, 1.0, 0.0]),
    ...                torch.tensor(10.0), gamma=0.5, lam=1.0)
    >>> adv.tolist()  # the episode ends after step 1: step 2 starts a new one and bootstraps from 10
    [1.5, 1.0, 6.0]
    """
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(last_value)
    next_value = last_value
    for t in reversed(range(rewards.size(0))):
        alive = 1.0 - dones[t]
        delta = rewards[t] + gamma * alive * next_value - values[t]
        running = delta + gamma * lam * alive * running
        advantages[t] = running
        next_value = values[t]
    return advantages, advantages + values


def clipped_surrogate(ratio: Tensor, advantages: Tensor, clip: float) -> Tensor:
    r"""PPO's clipped policy loss (to minimise), the mean of
    :math:`-\min(\rho A, \operatorname{clip}(\rho, 1 - \epsilon, 1 + \epsilon) A)`.

    >>> round(clipped_surrogate(torch.tensor([1.5, 0.5]), torch.tensor([1.0, 1.0]), 0.2).item(), 6)  # -(1.2 + 0.5) / 2
    -0.85
    """
    return -torch.minimum(ratio * advantages, ratio.clamp(1.0 - clip, 1.0 + clip) * advantages).mean()


def gaussian_log_prob(action: Tensor, mean: Tensor, log_std: Tensor, mask: Tensor | None = None) -> Tensor:
    """Log-density of ``action [..., A]`` under independent Gaussians ``N(mean, exp(log_std)^2)``, summed over
    the ``A`` values where ``mask [..., A]`` is 1 (all without a mask): ``[...]``."""
    z = (action - mean) * torch.exp(-log_std)
    density = -0.5 * z.pow(2) - log_std - LOG_SQRT_2PI
    return (density if mask is None else density * mask).sum(-1)


def gaussian_entropy(log_std: Tensor, mask: Tensor | None = None) -> Tensor:
    """Entropy of independent Gaussians with ``log_std [A]``, summed over the values where ``mask [..., A]`` is
    1: a 0-d tensor without a mask, else ``[...]``."""
    entropy = log_std + 0.5 + LOG_SQRT_2PI
    return entropy.sum() if mask is None else (entropy * mask).sum(-1)


def symbol_log_prob(logits: Tensor, symbols: Tensor) -> tuple[Tensor, Tensor]:
    """Log-probability of ``symbols [R, M]`` under ``logits [R, M, V]``, summed over the ``M`` positions, and the
    symbols' entropy summed the same way: ``([R], [R])``."""
    log_p = F.log_softmax(logits.float(), dim=-1)  # [R, M, V]
    chosen = log_p.gather(-1, symbols.unsqueeze(-1)).squeeze(-1).sum(-1)
    return chosen, -(log_p.exp() * log_p).sum(-1).sum(-1)


def episodes_subgraph(edge_index: Tensor, episodes: Tensor, num_agents: int, num_episodes: int) -> Tensor:
    """The edges of ``episodes`` (sorted ids ``[b]``) out of ``num_episodes`` disjoint graphs of ``num_agents``
    nodes, renumbered as ``b`` disjoint graphs in that order.

    >>> ei = torch.tensor([[0, 1, 2, 3, 4], [1, 0, 3, 2, 5]])  # 3 episodes of 2 agents
    >>> episodes_subgraph(ei, torch.tensor([1, 2]), 2, 3).tolist()
    [[0, 1, 2], [1, 0, 3]]
    """
    position = torch.full((num_episodes,), -1, dtype=torch.long, device=edge_index.device)
    position[episodes] = torch.arange(episodes.numel(), device=edge_index.device)
    new = position[edge_index[0] // num_agents]  # [E]
    keep = new >= 0
    return new[keep] * num_agents + edge_index[:, keep] % num_agents


class Batch(NamedTuple):
    """One iteration's data, ``T`` steps of ``B * N`` agents (row ``b * N + i``: agent ``i`` of environment ``b``)."""

    obs: Tensor
    """``[T, B * N, obs_dim]``."""
    latent: Tensor
    """``[T, B * N, L]``: the world latent each agent estimates (``L = 0``: none)."""
    edge_index: list[Tensor]
    """Each step's graph ``[2, E_t]`` over the ``B * N`` agents."""
    gumbel: Tensor | None
    """``[T, B * N, M, V]``: the noise the messages were drawn with (``ppo_messages=policy``), else ``None``."""
    symbols: Tensor | None
    """``[T, B * N, M]``: the symbols said (``ppo_messages=actions``), else ``None``."""
    actions: Tensor
    """``[T, B * N, A]``: the sampled actions, before clamping."""
    log_prob: Tensor
    """``[T, B * N]``: their log-probability at collection (and the symbols' with ``actions``)."""
    values: Tensor
    """``[T, B * N]``."""
    advantages: Tensor
    """``[T, B * N]``."""
    returns: Tensor
    """``[T, B * N]``: advantages plus values, the value head's target."""
    first: Tensor
    """``[T, B]``: whether the environment's episode starts at step ``t`` (its agents' states are zeroed)."""
    agents: AgentState
    """The agents' recurrent state at the start of each replayed sequence, ``[S, B * N, hidden]`` per field: at
    steps ``0, L, 2L, ...`` for sequences of ``L = ppo_sequence`` steps (``S = T / L``)."""
    temperature: Tensor
    """The Gumbel temperature the messages were drawn with."""


class Replay(NamedTuple):
    """What replaying a minibatch's sequences gives, each ``[T, b * N]`` unless noted (``values`` as the value
    head gives them: normalised)."""

    log_prob: Tensor
    entropy: Tensor
    values: Tensor
    aux: Tensor
    """0-d: the language and world-estimation terms, weighted as in the gradient path."""
    terms: dict[str, Tensor]
    """Those terms unweighted (``recon``, ``comm`` and, with a latent, ``world``), detached."""


class _Episodes:
    """The environments an iteration rolls on: the world's state, the agents' recurrent states, and each episode's
    steps and return so far. Carried into the next iteration when episodes outlast one (``episode_steps >
    timesteps``); otherwise every iteration starts new episodes, so a run resumes bit for bit."""

    def __init__(self, world: World, cfg: Config, system: CommSystem, batch_size: int, device: torch.device) -> None:
        self.world, self.cfg, self.batch_size, self.device = world, cfg, batch_size, device
        self.system = system
        self.state: Any = None
        self.agents: AgentState | None = None
        self.steps = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.returns = torch.zeros(batch_size, device=device)
        self.first = torch.ones(batch_size, dtype=torch.bool, device=device)

    def start(self, generator: torch.Generator) -> None:
        """New episodes in every environment (the old ones let go first: a simulator can reuse its batch)."""
        self.state = self.agents = None
        state = self.world.reset(self.batch_size, generator=generator, device=generator.device)
        self.state = type(state)(*(t.to(self.device, non_blocking=True) for t in state))
        self.agents = self.system.initial_state(self.batch_size, device=self.device)
        self.steps.zero_()
        self.returns.zero_()
        self.first.fill_(True)

    def restart(self, done: Tensor, generator: torch.Generator) -> None:
        """Starts the episodes where ``done [B]`` again; host syncs, once per step that ends episodes."""
        if bool(done.all()) and not hasattr(self.world, "reset_done"):
            self.start(generator)
            return
        self.state, self.agents = restart_episodes(self.world, self.state, self.agents, done, generator)
        self.steps.masked_fill_(done, 0)
        self.returns.masked_fill_(done, 0.0)
        self.first = done.clone()


class PPO:
    """Clipped PPO for a :class:`~gnncomm.agents.CommSystem` built with ``action_std`` (see the module docstring).

    Args:
        system: the agents, with a value head and ``action_log_std``.
        world: any world with a reward.
        cfg: the run's config (``algorithm=ppo``).
        optimizer, scaler: the trainer's, over ``system.parameters()``.
        generator: the run's generator: episodes, noise, sampled actions and minibatches all come from it.
        autocast: a context-manager factory (the runtime's AMP).
        batch_size: environments this process rolls.
        device: where the system runs.
    """

    def __init__(
        self,
        system: CommSystem,
        world: World,
        cfg: Config,
        optimizer: torch.optim.Optimizer,
        scaler: Any,
        generator: torch.Generator,
        autocast: Callable[[], Any],
        batch_size: int,
        device: torch.device,
    ) -> None:
        if system.value_head is None or system.action_log_std is None:
            raise ValueError("PPO needs a CommSystem built with action_std (cfg.algorithm='ppo')")
        self.system, self.world, self.cfg = system, world, cfg
        self.optimizer, self.scaler, self.generator, self.autocast = optimizer, scaler, generator, autocast
        self.batch_size, self.device = batch_size, torch.device(device)
        self.episodes = _Episodes(world, cfg, system, batch_size, self.device)
        self.carry = cfg.episode_length > cfg.timesteps
        mask = getattr(world, "action_mask", None)
        self.action_mask = None if mask is None else torch.as_tensor(mask, dtype=torch.float32, device=self.device)
        """``[N, A]``: which action values move their agent (the world's ``action_mask``); the others are left out
        of the log-probabilities and the entropy, since no reward can depend on them."""

    def _mask(self, rows: Tensor) -> Tensor | None:
        """The action mask of agent rows ``b * N + i`` ``[R]``: ``[R, A]``."""
        return None if self.action_mask is None else self.action_mask[rows % self.cfg.num_agents]

    # ------------------------------------------------------------------ one iteration
    def step(self, graph_fn: GraphFn, temperature: Tensor) -> dict[str, Tensor]:
        """Collects an iteration, computes its advantages and updates the system; returns detached logs."""
        batch, logs = self.collect(graph_fn, temperature)
        logs.update(self.update(batch))
        return logs

    @torch.no_grad()
    def collect(self, graph_fn: GraphFn, temperature: Tensor) -> tuple[Batch, dict[str, Tensor]]:
        """Rolls the environments ``cfg.timesteps`` steps with the sampling policy; returns the :class:`Batch`
        (advantages included) and the iteration's live signals."""
        cfg, world, system, episodes, gen = self.cfg, self.world, self.system, self.episodes, self.generator
        critic = system.value_head
        B, N, T = self.batch_size, cfg.num_agents, cfg.timesteps
        if not self.carry or episodes.state is None:
            episodes.start(gen)
        L = cfg.ppo_sequence or T
        starts: list[AgentState] = []  # the agents' state at each sequence start (after any restart)
        obs_noise, gumbel = sample_window_noise(world, cfg, B, generator=gen, device=self.device)
        if cfg.message_noise != 1.0:  # drawn all the same, so the run's random stream does not depend on it
            gumbel = gumbel * cfg.message_noise
        log_std = system.action_log_std.detach().float()
        eps = torch.randn((T, B * N, system.action_dim), generator=gen, device=gen.device).to(self.device)
        mask = self._mask(torch.arange(B * N, device=self.device))
        keep_gumbel, keep_symbols = cfg.ppo_messages == "policy", cfg.ppo_messages == "actions"
        obs, latent, edges, symbols, actions, log_prob, values, rewards, dones, first = ([] for _ in range(10))
        signals: dict[str, Tensor] = {}
        finished_return = torch.zeros((), device=self.device)
        finished = torch.zeros((), device=self.device)
        ended: dict[str, Tensor] = {}
        for t in range(T):
            first.append(episodes.first)
            if t % L == 0:
                starts.append(episodes.agents)
            state = episodes.state
            noise_t = eps[t] * log_std.exp()
            latent_t = state.latent.repeat_interleave(N, dim=0)  # [B*N, L]
            step = rollout_step(
                system, world, graph_fn, cfg, state, episodes.agents, latent_t, obs_noise[t], gumbel[t], temperature,
                act=lambda mean, d=noise_t: (mean + d).clamp(-1.0, 1.0),
            )  # fmt: skip
            out = step.out
            mean = out.action.float()
            action = mean + noise_t
            lp = gaussian_log_prob(action, mean, log_std, mask)
            if keep_symbols:
                said = out.message.argmax(-1)  # [B*N, M]: the Gumbel-max sample of the logits
                lp = lp + symbol_log_prob(out.logits, said)[0]
                symbols.append(said)
            obs.append(step.obs)
            latent.append(latent_t)
            edges.append(step.edge_index)
            actions.append(action)
            log_prob.append(lp)
            values.append(critic.denormalize(out.value.float()))
            if hasattr(world, "agent_rewards"):
                rewards.append(world.agent_rewards(step.state).float().reshape(B * N))
            else:
                rewards.append(step.terms.env_reward.repeat_interleave(N))
            for key in ("sampled_counts", "greedy_counts", "attn_max", "attn_uniform", "attn_hub_share", "reward"):
                signals[key] = signals.get(key, 0.0) + getattr(step.terms, key)
            episodes.state, episodes.agents = step.state, step.agents
            episodes.first = torch.zeros_like(episodes.first)
            episodes.steps += 1
            episodes.returns += step.terms.env_reward.float()
            done = episodes.steps >= cfg.episode_length
            if isinstance(getattr(step.state, "done", None), Tensor):
                done = done | step.state.done.bool().to(done.device)
            dones.append(done)
            if bool(done.any()):
                weight = done.float()
                finished = finished + weight.sum()
                finished_return = finished_return + (episodes.returns * weight).sum()
                if hasattr(world, "episode_metrics"):
                    for key, value in world.episode_metrics(step.state).items():
                        ended[key] = ended.get(key, 0.0) + (value.float() * weight).sum()
                if t < T - 1 or self.carry:  # the last step's episodes are let go with the iteration
                    episodes.restart(done, gen)
        # the value of the state after the last step (greedy messages; nothing is sampled or kept)
        last = system(world.observe(episodes.state), episodes.agents, graph_fn(episodes.state.pos))[0].value
        last = critic.denormalize(last.float())
        done_t = torch.stack(dones).float().repeat_interleave(N, dim=1)  # [T, B*N]
        values_t = torch.stack(values)
        advantages, returns = gae(torch.stack(rewards), values_t, done_t, last, cfg.gamma, cfg.gae_lambda)
        critic.update(returns)  # the value head learns the returns normalised with these statistics
        batch = Batch(
            obs=torch.stack(obs),
            latent=torch.stack(latent),
            edge_index=edges,
            gumbel=gumbel if keep_gumbel else None,
            symbols=torch.stack(symbols) if keep_symbols else None,
            actions=torch.stack(actions),
            log_prob=torch.stack(log_prob),
            values=values_t,
            advantages=advantages,
            returns=returns,
            first=torch.stack(first),
            agents=AgentState(*(torch.stack(x) for x in zip(*starts))),
            temperature=torch.as_tensor(temperature),
        )
        usage = symbol_usage(signals["greedy_counts"])
        logs = {
            "reward": signals["reward"] / T,
            "episode_return": finished_return,
            "episodes_done": finished,
            "vocab_usage": usage["usage"],
            "entropy_bits": usage["entropy_bits"],
            "effective_vocab": usage["effective"],
            "vocab_usage_sampled": (signals["sampled_counts"] > 0).float().mean(),
            "attn_max": signals["attn_max"] / T,
            "attn_uniform": signals["attn_uniform"] / T,
            "attn_hub_share": signals["attn_hub_share"] / T,
            "value_explained": 1.0 - (returns - values_t).var() / returns.var().clamp_min(1e-8),
        }
        for key, value in ended.items():  # summed like episode_return: the log row divides by episodes_done
            logs[f"episode_{key}"] = value
        return batch, logs

    def sequences(self, envs: Tensor, chunks: Tensor) -> tuple[Tensor, Tensor]:
        """The ``[L, K * N]`` step and row indices into the batch's ``[T, B * N]`` tensors of the ``K`` sequences
        ``(envs[k], chunks[k])``: environment ``envs[k]`` over steps ``chunks[k] * L .. chunks[k] * L + L - 1``."""
        N, L = self.cfg.num_agents, self.cfg.ppo_sequence or self.cfg.timesteps
        agent = torch.arange(N, device=envs.device)
        rows = (envs.unsqueeze(-1) * N + agent).flatten()  # [K*N]
        steps = chunks.repeat_interleave(N) * L + torch.arange(L, device=envs.device).unsqueeze(-1)  # [L, K*N]
        return steps, rows.expand_as(steps)

    def replay(self, batch: Batch, envs: Tensor, chunks: Tensor | None = None) -> Replay:
        """Runs the stored sequences ``(envs[k], chunks[k])`` (see :meth:`sequences`; ``chunks=None``: every
        environment's first) again with the current parameters, from the stored recurrent states, with gradients.
        Sequences are ordered by chunk, then environment, so each chunk's graphs are one block."""
        cfg, system, N = self.cfg, self.system, self.cfg.num_agents
        B = batch.first.size(1)
        chunks = torch.zeros_like(envs) if chunks is None else chunks
        steps, rows = self.sequences(envs, chunks)  # [L, K*N]
        L = steps.size(0)
        agents = AgentState(*(x[chunks.repeat_interleave(N), rows[0]] for x in batch.agents))
        blocks = [(int(c), envs[chunks == c]) for c in chunks.unique().tolist()]  # host syncs, once per replay
        log_std = system.action_log_std.float()
        mask = self._mask(rows[0])
        log_prob, entropy, values = [], [], []
        recon = world = comm = 0.0
        decode = cfg.recon_weight > 0
        starts = batch.first[chunks * L + torch.arange(L, device=envs.device).unsqueeze(-1), envs]  # [L, K]
        restarts = starts[1:].any(-1).tolist()  # which steps zero some states
        for t in range(L):
            if t > 0 and restarts[t - 1]:  # a sequence's first state was stored after any restart
                restart = starts[t].repeat_interleave(N).unsqueeze(-1)  # [K*N, 1]
                agents = AgentState(*(torch.where(restart, torch.zeros_like(x), x) for x in agents))
            graphs, offset = [], 0
            for c, block in blocks:
                graphs.append(episodes_subgraph(batch.edge_index[c * L + t], block, N, B) + offset * N)
                offset += block.numel()
            edge_index = torch.cat(graphs, dim=1)
            index = (steps[t], rows[t])
            obs = batch.obs[index]
            if batch.symbols is not None:  # listeners hear what was said; no gradient reaches the speaker that way
                said = F.one_hot(batch.symbols[index], cfg.vocab_size).to(obs.dtype)
                out, agents = system(obs, agents, edge_index, None, batch.temperature, lambda m, s=said: s, decode)
            else:
                out, agents = system(obs, agents, edge_index, batch.gumbel[index], batch.temperature, None, decode)
            lp = gaussian_log_prob(batch.actions[index], out.action.float(), log_std, mask)
            ent = gaussian_entropy(log_std, mask).expand_as(lp)
            if batch.symbols is not None:
                lp_symbols, ent_symbols = symbol_log_prob(out.logits, batch.symbols[index])
                lp, ent = lp + lp_symbols, ent + ent_symbols
            log_prob.append(lp)
            entropy.append(ent)
            values.append(out.value.float())
            if decode:
                recon = recon + (out.recon.float() - obs).pow(2).mean() / L
            comm = comm + (1.0 - out.message[..., 0].float()).mean() / L
            if out.world_pred.size(-1):
                world = world + (out.world_pred.float() - batch.latent[index]).pow(2).mean() / L
        aux = cfg.recon_weight * recon + cfg.world_weight * world + cfg.comm_weight * comm
        terms = {"comm": comm} | {k: v for k, v in (("recon", recon), ("world", world)) if isinstance(v, Tensor)}
        return Replay(
            torch.stack(log_prob),
            torch.stack(entropy),
            torch.stack(values),
            torch.as_tensor(aux),
            {key: value.detach() for key, value in terms.items()},
        )

    def update(self, batch: Batch) -> dict[str, Tensor]:
        """``ppo_epochs`` passes of ``minibatches`` updates; returns their mean losses and statistics."""
        cfg = self.cfg
        B, S = batch.first.size(1), batch.agents.enc_h.size(0)  # environments, sequences per environment
        params = list(self.system.parameters())
        totals: dict[str, Tensor] = {}
        count = 0
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(B * S, generator=self.generator, device=self.generator.device).to(self.device)
            for pairs in order.chunk(cfg.minibatches):
                pairs = pairs.sort().values  # by chunk, then environment: sequence k is (pairs % B, pairs // B)
                envs, chunks = pairs % B, pairs // B
                index = self.sequences(envs, chunks)
                with self.autocast():
                    replay = self.replay(batch, envs, chunks)
                advantages = batch.advantages[index]
                advantages = (advantages - advantages.mean()) / (advantages.std(unbiased=False) + 1e-8)
                log_ratio = replay.log_prob - batch.log_prob[index]
                ratio = log_ratio.exp()
                policy_loss = clipped_surrogate(ratio, advantages, cfg.clip_coef)
                target = self.system.value_head.normalize(batch.returns[index])
                value_loss = 0.5 * (replay.values - target).pow(2).mean()
                entropy = replay.entropy.mean()
                loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy + replay.aux
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(self.optimizer)
                grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                with torch.no_grad():
                    stats = {
                        "loss": loss,
                        "policy_loss": policy_loss,
                        "value_loss": value_loss,
                        "entropy": entropy,
                        "aux_loss": replay.aux,
                        "approx_kl": ((ratio - 1.0) - log_ratio).mean(),
                        "clip_fraction": ((ratio - 1.0).abs() > cfg.clip_coef).float().mean(),
                        "grad_norm": grad_norm,
                        **replay.terms,
                    }
                for key, value in stats.items():
                    totals[key] = totals.get(key, 0.0) + value.detach().float()
                count += 1
        logs = {key: value / count for key, value in totals.items()}
        logs["action_std"] = self.system.action_log_std.detach().float().exp().mean()
        return logs
