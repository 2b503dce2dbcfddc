"""The speaker: an LSTM that turns what an agent sees and hears into a discrete message."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gnncomm.nn.agent_linear import AgentLinear, AgentLSTMCell
from gnncomm.nn.gumbel import gumbel_softmax_sample


class LSTMEncoder(nn.Module):
    r"""Observation and received context → message of ``msg_dim`` symbols from ``vocab_size``.

    .. math::
        (\mathbf{h}_t, \mathbf{c}_t) = \mathrm{LSTM}\big([\mathbf{o}_t, \mathbf{r}_{t-1},
        \mathbf{a}], (\mathbf{h}_{t-1}, \mathbf{c}_{t-1})\big), \qquad
        \boldsymbol{\ell}_t = \mathbf{W} \mathbf{h}_t, \qquad
        \mathbf{s}_t = \mathrm{GumbelST}(\boldsymbol{\ell}_t / \tau)

    where :math:`\mathbf{o}_t` is the observation, :math:`\mathbf{r}_{t-1}` what the agent heard at
    the previous step (so information travels one hop per step) and :math:`\mathbf{a}` an optional
    agent-id embedding (shared parameters only). Symbol ``0`` means silence.

    Args:
        obs_dim (int): observation size.
        context_dim (int): size of the received context :math:`\mathbf{r}`.
        hidden_channels (int): LSTM state size.
        vocab_size (int): vocabulary size :math:`V`.
        msg_dim (int): symbols per message :math:`M`.
        num_agents (int): agents per episode.
        shared (bool): parameters shared by all agents, else one set per agent. (default: ``True``)
        agent_embedding_dim (int): size of the agent-id embedding, ``0`` for none; only with
            ``shared=True``. (default: ``0``)
        memory (bool): carry :math:`(\mathbf{h}, \mathbf{c})` from step to step; ``False`` starts the cell
            from zero at every step (the state passed in is ignored), so the message depends only on
            :math:`\mathbf{o}_t`, :math:`\mathbf{r}_{t-1}` and :math:`\mathbf{a}`. (default: ``True``)

    Shapes:
        - **input:** ``obs (B*A, obs_dim)``, ``context (B*A, context_dim)``, ``state`` a pair of
          ``(B*A, hidden)``, optional Gumbel ``noise (B*A, M, V)``.
        - **output:** ``(message (B*A, M, V), logits (B*A, M, V), state)``.
    """

    def __init__(
        self,
        obs_dim: int,
        context_dim: int,
        hidden_channels: int,
        vocab_size: int,
        msg_dim: int,
        num_agents: int = 1,
        shared: bool = True,
        agent_embedding_dim: int = 0,
        memory: bool = True,
    ) -> None:
        super().__init__()
        self.obs_dim = obs_dim
        self.context_dim = context_dim
        self.hidden_channels = hidden_channels
        self.vocab_size = vocab_size
        self.msg_dim = msg_dim
        self.num_agents = num_agents
        self.shared = shared
        self.memory = memory
        self.agent_embedding_dim = agent_embedding_dim if shared else 0
        if self.agent_embedding_dim > 0:
            self.agent_embedding = nn.Parameter(torch.empty(num_agents, self.agent_embedding_dim))
        else:
            self.register_parameter("agent_embedding", None)
        self.cell = AgentLSTMCell(obs_dim + context_dim + self.agent_embedding_dim, hidden_channels, num_agents, shared)
        self.lin_logits = AgentLinear(hidden_channels, msg_dim * vocab_size, num_agents, shared)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.agent_embedding is not None:
            nn.init.normal_(self.agent_embedding, std=0.1)
        self.cell.reset_parameters()
        self.lin_logits.reset_parameters()

    def forward(
        self,
        obs: Tensor,
        context: Tensor,
        state: tuple[Tensor, Tensor],
        noise: Tensor | None = None,
        temperature: float | Tensor = 1.0,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor]]:
        parts = [obs, context]
        if self.agent_embedding is not None:
            A, D = self.agent_embedding.shape
            parts.append(self.agent_embedding.unsqueeze(0).expand(obs.size(0) // A, A, D).reshape(-1, D))
        if not self.memory:
            state = (torch.zeros_like(state[0]), torch.zeros_like(state[1]))
        h, c = self.cell(torch.cat(parts, dim=-1), state)
        logits = self.lin_logits(h).view(-1, self.msg_dim, self.vocab_size)  # [N, M, V]
        message = gumbel_softmax_sample(logits, temperature, self.training, True, noise, generator)
        return message, logits, (h, c)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.obs_dim}, {self.hidden_channels}, vocab={self.vocab_size}, "
            f"msg_dim={self.msg_dim}, shared={self.shared}" + ("" if self.memory else ", memory=False") + ")"
        )
