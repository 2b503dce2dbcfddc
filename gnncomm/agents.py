"""The multi-agent system: encoder, MessageAttention, decoder and heads composed for one step."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from gnncomm.config import CRITIC_INPUTS, Config
from gnncomm.nn import (
    ActionHead,
    AgentLinear,
    AttentionDecoder,
    LSTMEncoder,
    MessageAttention,
    ValueHead,
    WorldEstimator,
)
from gnncomm.world import World
from gnncomm.world import action_dim as world_action_dim

ESTIMATOR_INPUTS = ("context", "encoder")
"""What the world estimator reads beside the heard context: the raw observation, or the encoder's state."""


class AgentState(NamedTuple):
    """Recurrent state of all ``B * N`` agents, each ``[B * N, hidden]``."""

    enc_h: Tensor
    enc_c: Tensor
    world_h: Tensor
    world_c: Tensor
    context: Tensor
    """What each agent heard at the previous step."""


class StepOutput(NamedTuple):
    """Everything one communication step produces (all ``[B * N, ...]``, ``alpha`` ``[E, heads]``)."""

    message: Tensor
    logits: Tensor
    heard: Tensor
    context: Tensor
    action: Tensor
    recon: Tensor
    world_pred: Tensor
    alpha: Tensor
    value: Tensor | None = None
    """Each agent's value ``[B * N]`` (systems built for PPO); ``None`` otherwise."""


class CommSystem(nn.Module):
    r"""``N`` agents that speak, listen, act and estimate the world, for ``B`` episodes at once.

    One step, for every agent :math:`i` of every episode:

    1. speak: :math:`\mathbf{s}_i, (\mathbf{h}_i, \mathbf{c}_i) = \mathrm{Encoder}(\mathbf{o}_i,
       \mathbf{r}_i^{t-1}, \ldots)` (:class:`~gnncomm.nn.LSTMEncoder`);
    2. listen: :math:`\mathbf{r}_i = \mathrm{MessageAttention}(\mathbf{h}_i, \{\mathbf{s}_j\}_{j \in
       \mathcal{N}(i)})` (:class:`~gnncomm.nn.MessageAttention`);
    3. act: :math:`\mathbf{u}_i = \mathrm{ActionHead}([\mathbf{h}_i, \mathbf{r}_i])`;
    4. estimate: :math:`\hat{\mathbf{z}}_i = \mathrm{WorldEstimator}([\mathbf{r}_i, \mathbf{h}_i])`, from what
       it heard and its own encoder state (``estimator_input="encoder"``, the default), or from
       :math:`[\mathbf{r}_i, \mathbf{o}_i]` with ``estimator_input="context"``;
    5. reconstruct its own observation from its own message: :math:`\hat{\mathbf{o}}_i =
       \mathrm{Decoder}(\mathbf{s}_i)`.

    The encoder, decoder output MLP, action head and world estimator are shared by all agents or,
    with ``shared=False``, owned by each agent and applied as one batched product. The attention
    layer is always shared: it is the channel, and it is node-agnostic like any PyG layer.

    Args:
        num_agents (int): agents per episode :math:`N`.
        obs_dim (int): observation size.
        latent_dim (int): world latent size; 0 for a task without a hidden state (no world estimator).
        vocab_size, msg_dim, heads, hidden_dim: the language and widths.
        shared (bool): share parameters across agents. (default: ``True``)
        agent_embedding_dim (int): agent-id embedding with shared parameters. (default: ``8``)
        action_dim (int): action size. (default: ``2``)
        estimator_input (str): what the world estimator reads beside the heard context: ``"encoder"``
            (the speaker's LSTM state) or ``"context"`` (the raw observation). (default: ``"encoder"``)
        action_std (float, optional): for a policy trained from reward (PPO): the initial std of a Gaussian
            around the action head's output, learnt as ``action_log_std`` ``[action_dim]``, and a centralised
            :class:`~gnncomm.nn.ValueHead` whose values come in :attr:`StepOutput.value`. ``None``: neither
            (the gradient path). (default: ``None``)
        critic_input (str): what the value head reads: ``"features"``, the policy's own state
            :math:`[\mathbf{h}_i, \mathbf{r}_i]` (one trunk for both), or ``"observations"``, the raw observations
            through the critic's own MLP (a separate critic). (default: ``"features"``)
        encoder_memory (bool): whether the encoder carries its LSTM state from step to step (see
            :class:`~gnncomm.nn.LSTMEncoder`'s ``memory``). (default: ``True``)
    """

    def __init__(
        self,
        num_agents: int,
        obs_dim: int,
        latent_dim: int,
        *,
        vocab_size: int = 64,
        msg_dim: int = 5,
        heads: int = 4,
        hidden_dim: int = 64,
        shared: bool = True,
        agent_embedding_dim: int = 8,
        action_dim: int = 2,
        estimator_input: str = "encoder",
        action_std: float | None = None,
        critic_input: str = "features",
        encoder_memory: bool = True,
    ) -> None:
        super().__init__()
        if estimator_input not in ESTIMATOR_INPUTS:
            raise ValueError(f"estimator_input must be one of {list(ESTIMATOR_INPUTS)}, got {estimator_input!r}")
        if critic_input not in CRITIC_INPUTS:
            raise ValueError(f"critic_input must be one of {list(CRITIC_INPUTS)}, got {critic_input!r}")
        self.estimator_input = estimator_input
        self.critic_input = critic_input
        self.num_agents = num_agents
        self.obs_dim = obs_dim
        self.latent_dim = latent_dim
        self.vocab_size = vocab_size
        self.msg_dim = msg_dim
        self.hidden_dim = hidden_dim
        self.shared = shared
        D, A = hidden_dim, num_agents
        self.encoder = LSTMEncoder(obs_dim, D, D, vocab_size, msg_dim, A, shared, agent_embedding_dim, encoder_memory)
        self.attention = MessageAttention(D, D, vocab_size, msg_dim, heads=heads)
        self.decoder = AttentionDecoder(vocab_size, msg_dim, obs_dim, D, heads, A, shared)
        self.action_head = ActionHead(2 * D, D, action_dim, A, shared)
        self.action_dim = action_dim
        self.world_estimator = (
            WorldEstimator(D + (obs_dim if estimator_input == "context" else D), D, latent_dim, A, shared)
            if latent_dim > 0
            else None  # a task without a hidden state: nothing to estimate
        )
        self.action_std = action_std
        if action_std is None:  # learnt through gradients: no critic, deterministic actions
            self.value_head, self.action_log_std = None, None
        else:
            own = critic_input == "observations"
            self.value_head = ValueHead(obs_dim if own else 2 * D, D, A, shared, embed=own)
            self.action_log_std = nn.Parameter(torch.full((action_dim,), math.log(action_std)))

    @classmethod
    def from_config(
        cls, cfg: Config, obs_dim: int, *, latent_dim: int | None = None, action_dim: int = 2
    ) -> CommSystem:
        """The system of ``cfg`` for a world with ``obs_dim``, ``latent_dim`` (the world's; ``cfg.latent_dim``
        if ``None``) and ``action_dim``."""
        return cls(
            cfg.num_agents,
            obs_dim,
            cfg.latent_dim if latent_dim is None else latent_dim,
            vocab_size=cfg.vocab_size,
            msg_dim=cfg.msg_dim,
            heads=cfg.heads,
            hidden_dim=cfg.hidden_dim,
            shared=cfg.shared_params,
            agent_embedding_dim=cfg.agent_embedding_dim,
            estimator_input=cfg.estimator_input,
            action_dim=action_dim,
            action_std=cfg.action_std if cfg.algorithm == "ppo" else None,
            critic_input=cfg.critic_input,
            encoder_memory=cfg.encoder_memory,
        )

    @classmethod
    def for_world(cls, cfg: Config, world: World) -> CommSystem:
        """The system of ``cfg`` sized for ``world``: its observation, latent (0: none) and action sizes."""
        return cls.from_config(cfg, world.obs_dim, latent_dim=world.latent_dim, action_dim=world_action_dim(world))

    def reset_parameters(self) -> None:
        for module in (
            self.encoder,
            self.attention,
            self.decoder,
            self.action_head,
            self.world_estimator,
            self.value_head,
        ):
            if module is not None:
                module.reset_parameters()
        if self.action_log_std is not None:
            with torch.no_grad():
                self.action_log_std.fill_(math.log(self.action_std))

    def initial_state(
        self, batch_size: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> AgentState:
        shape = (batch_size * self.num_agents, self.hidden_dim)
        # Five distinct tensors, not one aliased five times: torch.compile guards on input aliasing.
        return AgentState(*(torch.zeros(shape, device=device, dtype=dtype) for _ in AgentState._fields))

    def forward(
        self,
        obs: Tensor,
        state: AgentState,
        edge_index: Tensor,
        noise: Tensor | None = None,
        temperature: float | Tensor = 1.0,
        intervene: Callable[[Tensor], Tensor] | None = None,
        decode: bool = True,
    ) -> tuple[StepOutput, AgentState]:
        """One step.

        Args:
            obs: observations ``[B * N, obs_dim]``.
            state: the :class:`AgentState` of the previous step.
            edge_index: the communication graph ``[2, E]`` over the ``B * N`` nodes.
            noise: Gumbel noise ``[B * N, msg_dim, vocab]`` (training), drawn by the caller.
            temperature: Gumbel temperature.
            intervene: optional map applied to the one-hot messages before they are heard
                (silencing, shuffling, knock-outs); the speaker's own reconstruction still uses
                what it said.
            decode: reconstruct the observations; ``False`` skips the decoder (``recon`` is then
                ``[B * N, 0]``), for a loss that leaves the reconstruction out.
        """
        message, logits, (h, c) = self.encoder(obs, state.context, (state.enc_h, state.enc_c), noise, temperature)
        # The spoken symbols let the message embeddings gather rows instead of multiplying by one-hots. An
        # intervention may change what is heard, so heard messages then take the product with no symbols.
        symbols = message.argmax(-1)  # [B*N, M]
        heard = message if intervene is None else intervene(message)
        context, (_, alpha) = self.attention(
            h,
            heard,
            edge_index,
            return_attention_weights=True,
            num_agents=self.num_agents,
            symbols=symbols if intervene is None else None,
        )
        features = torch.cat([h, context], dim=-1)
        action = self.action_head(features)
        value = None
        if self.value_head is not None:
            value = self.value_head(obs if self.critic_input == "observations" else features)
        if self.world_estimator is None:
            world_pred, wh, wc = h.new_zeros(h.size(0), 0), state.world_h, state.world_c
        else:
            own = obs if self.estimator_input == "context" else h
            world_pred, (wh, wc) = self.world_estimator(
                torch.cat([context, own], dim=-1), (state.world_h, state.world_c)
            )
        recon = self.decoder(message, symbols) if decode else obs.new_zeros(obs.size(0), 0)
        out = StepOutput(message, logits, heard, context, action, recon, world_pred, alpha, value)
        return out, AgentState(h, c, wh, wc, context)

    def per_agent_parameters(self) -> dict[str, Tensor]:
        """The parameters whose leading dimension indexes agents (empty slices when shared)."""
        out = {}
        for module_name, module in self.named_modules():
            if isinstance(module, AgentLinear) and not module.shared:
                for name, param in module.named_parameters(recurse=False):
                    out[f"{module_name}.{name}"] = param
        if self.encoder.agent_embedding is not None:
            out["encoder.agent_embedding"] = self.encoder.agent_embedding
        return out

    def agent_state_dict(self, agent: int) -> dict[str, Tensor]:
        """The weights that act for ``agent``: its slice of every per-agent parameter, and a copy of
        every shared one (identical for all agents)."""
        if not 0 <= agent < self.num_agents:
            raise ValueError(f"agent must be in [0, {self.num_agents - 1}], got {agent}")
        own = self.per_agent_parameters()
        return {
            name: (param[agent] if name in own else param).detach().clone() for name, param in self.named_parameters()
        }

    def __repr__(self) -> str:
        mode = "shared" if self.shared else "per_agent"
        return (
            f"{self.__class__.__name__}(num_agents={self.num_agents}, vocab={self.vocab_size}, "
            f"msg_dim={self.msg_dim}, hidden={self.hidden_dim}, {mode})"
        )
