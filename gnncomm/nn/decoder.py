"""The listener's reconstruction: a message back to the observation it encodes."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gnncomm.nn.agent_linear import AgentMLP
from gnncomm.nn.embedding import SymbolEmbedding


class AttentionDecoder(nn.Module):
    r"""Rebuilds an observation from a message by attending over its symbol positions.

    .. math::
        \beta_{m}^{h} = \operatorname*{softmax}_{m}\left(\frac{\langle \mathbf{q}^h,
        \mathbf{W}_K^h \mathbf{e}_m \rangle}{\sqrt{C}}\right), \qquad
        \hat{\mathbf{o}} = \mathrm{MLP}\Big(\big\Vert_{h} \sum_m \beta_m^h \mathbf{W}_V^h
        \mathbf{e}_m\Big)

    with learned queries :math:`\mathbf{q}^h` and :math:`\mathbf{e}_m` the embedding of the symbol
    at position :math:`m` (:class:`SymbolEmbedding`).

    Args:
        vocab_size (int): vocabulary size :math:`V`.
        msg_dim (int): symbols per message :math:`M`.
        out_channels (int): size of the reconstructed observation.
        hidden_channels (int): embedding and MLP size; divisible by ``heads``.
        heads (int): attention heads over positions. (default: ``4``)
        num_agents (int): agents per episode. (default: ``1``)
        shared (bool): one output MLP for all agents, else one per agent. (default: ``True``)

    Shapes:
        **input:** ``message (B*A, M, V)``, optional ``symbols (B*A, M)``: ``message.argmax(-1)``, long,
        which lets the symbol embedding gather instead of multiply (see :class:`SymbolEmbedding`);
        **output:** ``(B*A, out_channels)``.
    """

    def __init__(
        self,
        vocab_size: int,
        msg_dim: int,
        out_channels: int,
        hidden_channels: int,
        heads: int = 4,
        num_agents: int = 1,
        shared: bool = True,
    ) -> None:
        super().__init__()
        if hidden_channels % heads != 0:
            raise ValueError(
                f"heads must divide hidden_channels, got heads={heads} and hidden_channels={hidden_channels}"
            )
        self.vocab_size = vocab_size
        self.msg_dim = msg_dim
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.heads = heads
        self.embed = SymbolEmbedding(vocab_size, msg_dim, hidden_channels)
        self.query = nn.Parameter(torch.empty(heads, hidden_channels // heads))
        self.lin_key_value = nn.Linear(hidden_channels, 2 * hidden_channels)
        self.mlp = AgentMLP(hidden_channels, hidden_channels, out_channels, num_agents, shared)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.embed.reset_parameters()
        nn.init.normal_(self.query, std=(self.hidden_channels // self.heads) ** -0.5)
        self.lin_key_value.reset_parameters()
        self.mlp.reset_parameters()

    def forward(self, message: Tensor, symbols: Tensor | None = None) -> Tensor:
        N, M = message.size(0), self.msg_dim
        H, C = self.heads, self.hidden_channels // self.heads
        key_value = self.embed.project(message, self.lin_key_value, flatten=False, symbols=symbols)  # [N, M, 2*H*C]
        key, value = key_value.view(N, M, 2, H, C).unbind(2)  # [N, M, H, C]
        beta = torch.softmax((key * self.query).sum(-1) / math.sqrt(C), dim=1)  # [N, M, H]
        pooled = (beta.unsqueeze(-1) * value).sum(dim=1).reshape(N, H * C)  # [N, H*C]
        return self.mlp(pooled)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(vocab={self.vocab_size}, msg_dim={self.msg_dim}, "
            f"out={self.out_channels}, heads={self.heads})"
        )
