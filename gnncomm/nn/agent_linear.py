"""Linear maps whose weights are shared by all agents or owned by each agent."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class AgentLinear(nn.Module):
    r"""A linear map applied to every agent of a batch of disjoint episodes.

    With ``shared=True`` this is :class:`torch.nn.Linear`. With ``shared=False`` each of the
    ``num_agents`` agents owns its weights, and all agents of all episodes are transformed in one
    batched matrix product (no Python loop over agents):

    .. math::
        \mathbf{y}_{b,a} = \mathbf{x}_{b,a} \mathbf{W}_a + \mathbf{b}_a

    Node ``b * num_agents + a`` of the flat batch is agent ``a`` of episode ``b``.

    Args:
        in_channels (int): size of each input sample.
        out_channels (int): size of each output sample.
        num_agents (int): number of agents per episode (used when ``shared=False``).
        shared (bool): one weight matrix for all agents. (default: ``True``)
        bias (bool): learn an additive bias. (default: ``True``)

    Shapes:
        **input:** ``(B * num_agents, in_channels)``; **output:** ``(B * num_agents, out_channels)``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, num_agents: int = 1, shared: bool = True, bias: bool = True
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_agents = num_agents
        self.shared = shared
        groups = 1 if shared else num_agents
        self.weight = nn.Parameter(torch.empty(groups, in_channels, out_channels))
        if bias:
            self.bias = nn.Parameter(torch.empty(groups, out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(max(self.in_channels, 1))
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        if self.shared:
            out = x @ self.weight[0]
            return out if self.bias is None else out + self.bias[0]
        A, I, O = self.num_agents, self.in_channels, self.out_channels
        xa = x.view(-1, A, I).transpose(0, 1)  # [A, B, I]
        out = (
            torch.bmm(xa, self.weight) if self.bias is None else torch.baddbmm(self.bias.unsqueeze(1), xa, self.weight)
        )  # [A, B, O]
        return out.transpose(0, 1).reshape(-1, O)

    def agent_state(self, agent: int) -> dict[str, Tensor]:
        """The parameters that act on ``agent`` (the shared ones when ``shared=True``)."""
        g = 0 if self.shared else agent
        out = {"weight": self.weight[g].detach().clone()}
        if self.bias is not None:
            out["bias"] = self.bias[g].detach().clone()
        return out

    def __repr__(self) -> str:
        mode = "shared" if self.shared else f"per_agent={self.num_agents}"
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, {mode})"


class AgentMLP(nn.Sequential):
    """Two :class:`AgentLinear` layers with a ``tanh`` between them."""

    def __init__(
        self, in_channels: int, hidden_channels: int, out_channels: int, num_agents: int = 1, shared: bool = True
    ) -> None:
        super().__init__(
            AgentLinear(in_channels, hidden_channels, num_agents, shared),
            nn.Tanh(),
            AgentLinear(hidden_channels, out_channels, num_agents, shared),
        )

    def reset_parameters(self) -> None:
        self[0].reset_parameters()
        self[2].reset_parameters()


class AgentLSTMCell(nn.Module):
    r"""An LSTM cell (the update of :class:`torch.nn.LSTMCell`) over :class:`AgentLinear` gates.

    .. math::
        (\mathbf{i}, \mathbf{f}, \mathbf{g}, \mathbf{o}) = [\mathbf{x}, \mathbf{h}] \mathbf{W}_a
        + \mathbf{b}_a, \quad \mathbf{c}' = \sigma(\mathbf{f}) \odot \mathbf{c}
        + \sigma(\mathbf{i}) \odot \tanh(\mathbf{g}), \quad
        \mathbf{h}' = \sigma(\mathbf{o}) \odot \tanh(\mathbf{c}')

    Written out rather than using :class:`torch.nn.LSTM`, which graph-breaks under
    ``torch.compile``, and so that each agent can own its gates.

    Shapes:
        **input:** ``x (B*A, in_channels)``, ``state ((B*A, hidden), (B*A, hidden))``;
        **output:** ``(h', c')``.
    """

    def __init__(self, in_channels: int, hidden_channels: int, num_agents: int = 1, shared: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.gates = AgentLinear(in_channels + hidden_channels, 4 * hidden_channels, num_agents, shared)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.gates.reset_parameters()
        with torch.no_grad():  # forget-gate bias 1: remember by default
            H = self.hidden_channels
            self.gates.bias[:, H : 2 * H].fill_(1.0)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, c = state
        i, f, g, o = self.gates(torch.cat([x, h], dim=-1)).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels})"
