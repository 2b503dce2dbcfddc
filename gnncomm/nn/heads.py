"""What an agent does with what it heard: move, and estimate the hidden world."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gnncomm.nn.agent_linear import AgentLinear, AgentLSTMCell, AgentMLP


class ActionHead(nn.Module):
    r"""A bounded 2-D action force from the agent's state and what it heard.

    .. math::
        \mathbf{u} = \tanh\big(\mathrm{MLP}([\mathbf{h}, \mathbf{r}])\big) \in [-1, 1]^{D}

    Args:
        in_channels (int): size of ``[h, r]``.
        hidden_channels (int): MLP width.
        action_dim (int): action size. (default: ``2``)
        num_agents (int), shared (bool): see :class:`AgentLinear`.

    Shapes:
        **input:** ``(B*A, in_channels)``; **output:** ``(B*A, action_dim)``.
    """

    def __init__(
        self, in_channels: int, hidden_channels: int, action_dim: int = 2, num_agents: int = 1, shared: bool = True
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.action_dim = action_dim
        self.mlp = AgentMLP(in_channels, hidden_channels, action_dim, num_agents, shared)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.mlp.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.mlp(x))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, action_dim={self.action_dim})"


class ValueHead(nn.Module):
    r"""A centralised critic: each agent's value from its own input and the mean over its episode.

    .. math::
        V_i = \mathrm{MLP}\big([\mathbf{e}_i, \tfrac{1}{A} \textstyle\sum_{j} \mathbf{e}_j]\big),
        \qquad \mathbf{e}_i = \mathbf{x}_i \text{ or, with } \texttt{embed}, \
        \mathbf{e}_i = \tanh\big(\mathrm{MLP}_e(\mathbf{x}_i)\big)

    where the mean runs over the :math:`A` agents of agent :math:`i`'s episode. Training is centralised, so the
    critic may see the whole team (as in MAPPO); the policy still acts on what its agent saw and heard. The input
    :math:`\mathbf{x}_i` is either the policy's own state :math:`[\mathbf{h}_i, \mathbf{r}_i]` (a shared trunk)
    or the agent's raw observation, which ``embed`` first maps through the critic's own MLP (a separate critic,
    MAPPO's default: the value loss then moves no weight of the policy). The mean of embeddings is a DeepSets
    pooling: invariant to the order of the agents, linear in their number.

    The output is a normalised value: :meth:`denormalize` maps it to the return's units with running statistics
    of the returns seen (:meth:`update`, MAPPO's value normalisation: a debiased moving average with decay
    ``beta``), so the value loss keeps one scale whatever the task's rewards. The statistics are buffers: they
    are saved and restored with the weights.

    Args:
        in_channels (int): size of ``x``.
        hidden_channels (int): MLP width.
        num_agents (int), shared (bool): see :class:`AgentLinear`.
        embed (bool): map each input through the critic's own MLP before pooling. (default: ``False``)
        beta (float): decay of the return statistics per :meth:`update`. (default: ``0.99``)

    Shapes:
        **input:** ``(B*A, in_channels)``; **output:** ``(B*A,)``.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        num_agents: int = 1,
        shared: bool = True,
        embed: bool = False,
        beta: float = 0.99,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_agents = num_agents
        self.beta = beta
        self.embed = AgentMLP(in_channels, hidden_channels, hidden_channels, num_agents, shared) if embed else None
        width = hidden_channels if embed else in_channels
        self.mlp = AgentMLP(2 * width, hidden_channels, 1, num_agents, shared)
        self.register_buffer("moments", torch.zeros(3))  # debiased EMA sums: mean, mean of squares, weight
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.embed is not None:
            self.embed.reset_parameters()
        self.mlp.reset_parameters()
        self.moments.zero_()

    def _stats(self) -> tuple[Tensor, Tensor]:
        weight = self.moments[2].clamp_min(1e-5)
        mean, square = self.moments[0] / weight, self.moments[1] / weight
        if not bool(self.moments[2] > 0):  # no return seen yet: the identity
            return mean.new_zeros(()), mean.new_ones(())
        return mean, (square - mean.pow(2)).clamp_min(1e-4).sqrt()

    @torch.no_grad()
    def update(self, returns: Tensor) -> None:
        """Folds a batch of returns (any shape) into the running statistics."""
        x = returns.detach().float()
        batch = torch.stack([x.mean(), x.pow(2).mean(), x.new_ones(())])
        self.moments.mul_(self.beta).add_((1.0 - self.beta) * batch)

    def normalize(self, returns: Tensor) -> Tensor:
        mean, std = self._stats()
        return (returns - mean) / std

    def denormalize(self, value: Tensor) -> Tensor:
        mean, std = self._stats()
        return value * std + mean

    def forward(self, x: Tensor) -> Tensor:
        if self.embed is not None:
            x = torch.tanh(self.embed(x))
        A, C = self.num_agents, x.size(-1)
        team = x.view(-1, A, C).mean(1, keepdim=True).expand(-1, A, -1).reshape(-1, C)  # [B*A, C]
        return self.mlp(torch.cat([x, team], dim=-1)).squeeze(-1)

    def __repr__(self) -> str:
        embed = ", embed=True" if self.embed is not None else ""
        return f"{self.__class__.__name__}({self.in_channels}, num_agents={self.num_agents}{embed})"


class WorldEstimator(nn.Module):
    r"""Estimates the hidden global state from the messages an agent receives over time.

    A recurrent cell integrates the received context :math:`\mathbf{r}_t` with the agent's own
    partial view :math:`\mathbf{o}_t`, and a linear read-out predicts the latent:

    .. math::
        (\mathbf{g}_t, \mathbf{k}_t) = \mathrm{LSTM}([\mathbf{r}_t, \mathbf{o}_t],
        (\mathbf{g}_{t-1}, \mathbf{k}_{t-1})), \qquad \hat{\mathbf{z}}_t = \mathbf{W} \mathbf{g}_t

    Args:
        in_channels (int): size of ``[r, o]``.
        hidden_channels (int): recurrent state size.
        latent_dim (int): size of the world latent.
        num_agents (int), shared (bool): see :class:`AgentLinear`.

    Shapes:
        **input:** ``(B*A, in_channels)`` and a state pair of ``(B*A, hidden)``;
        **output:** ``(prediction (B*A, latent_dim), state)``.
    """

    def __init__(
        self, in_channels: int, hidden_channels: int, latent_dim: int, num_agents: int = 1, shared: bool = True
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.latent_dim = latent_dim
        self.cell = AgentLSTMCell(in_channels, hidden_channels, num_agents, shared)
        self.readout = AgentLinear(hidden_channels, latent_dim, num_agents, shared)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.cell.reset_parameters()
        self.readout.reset_parameters()

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        state = self.cell(x, state)
        return self.readout(state[0]), state

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, latent_dim={self.latent_dim})"
