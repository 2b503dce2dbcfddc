"""Multi-head attention of each receiver over the discrete messages of its in-neighbours."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax

from gnncomm.nn.embedding import SymbolEmbedding


class MessageAttention(MessagePassing):
    r"""Who to listen to: multi-head attention over the messages of in-neighbours.

    Each sender :math:`j` emits a one-hot message :math:`\mathbf{s}_j \in \{0,1\}^{M \times V}`,
    which is embedded symbol by symbol with its position (:class:`SymbolEmbedding`), flattened and
    projected to a key and a value per head. Each receiver :math:`i` queries with its state
    :math:`\mathbf{x}_i`:

    .. math::
        \alpha_{ij}^{h} = \operatorname*{softmax}_{j \in \mathcal{N}(i)}
        \left( \frac{\langle \mathbf{W}_Q^h \mathbf{x}_i, \mathbf{W}_K^h
        \mathbf{e}(\mathbf{s}_j) \rangle}{\sqrt{C}} \right),
        \qquad
        \mathbf{x}_i' = \mathbf{W}_O \big\Vert_{h=1}^{H}
        \sum_{j \in \mathcal{N}(i)} \alpha_{ij}^{h} \mathbf{W}_V^h \mathbf{e}(\mathbf{s}_j)

    The softmax runs over the incoming edges of each receiver, per head, with
    :func:`torch_geometric.utils.softmax`; nothing dense is formed. A receiver with no in-neighbours
    (an isolated node, or any node of an empty ``edge_index``) aggregates a zero vector, so its
    output is the bias of :math:`\mathbf{W}_O`: it has heard nothing.

    Args:
        in_channels (int): size of the receiver state :math:`\mathbf{x}_i`.
        out_channels (int): size of the output; must be divisible by ``heads``.
        vocab_size (int): vocabulary size :math:`V \geq 2`.
        msg_dim (int): symbols per message :math:`M \geq 1`.
        heads (int): number of attention heads :math:`H`. (default: ``4``)
        embed_dim (int, optional): symbol embedding size; ``out_channels`` if ``None``.
        bias (bool): learn biases. (default: ``True``)

    Shapes:
        - **input:** receiver states ``x (|V|, F_in)``, messages ``(|V|, M, V)``,
          edge indices ``(2, |E|)`` with ``edge_index[0]`` the senders.
        - **output:** ``(|V|, out_channels)``, or ``((|V|, out_channels), ((2, |E|), (|E|, H)))`` with
          ``return_attention_weights=True``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        vocab_size: int,
        msg_dim: int,
        heads: int = 4,
        embed_dim: int | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__(aggr="add", node_dim=0)
        for name, value, low in (
            ("in_channels", in_channels, 1),
            ("out_channels", out_channels, 1),
            ("vocab_size", vocab_size, 2),
            ("msg_dim", msg_dim, 1),
            ("heads", heads, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int >= {low}, got {type(value).__name__}")
            if value < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")
        if out_channels % heads != 0:
            raise ValueError(f"heads must divide out_channels, got heads={heads} and out_channels={out_channels}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.vocab_size = vocab_size
        self.msg_dim = msg_dim
        self.heads = heads
        self.head_channels = out_channels // heads
        self.embed_dim = embed_dim or out_channels
        self.embed = SymbolEmbedding(vocab_size, msg_dim, self.embed_dim)
        self.lin_query = nn.Linear(in_channels, out_channels, bias=bias)
        self.lin_key_value = nn.Linear(msg_dim * self.embed_dim, 2 * out_channels, bias=bias)
        self.lin_out = nn.Linear(out_channels, out_channels, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.embed.reset_parameters()
        self.lin_query.reset_parameters()
        self.lin_key_value.reset_parameters()
        self.lin_out.reset_parameters()

    def forward(
        self, x: Tensor, message: Tensor, edge_index: Tensor, return_attention_weights: bool = False
    ) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
        self._check_inputs(x, message, edge_index)
        N = x.size(0)
        H, C = self.heads, self.head_channels
        query = self.lin_query(x).view(N, H, C)  # [N, H, C]
        key_value = self.embed.project(message, self.lin_key_value, flatten=True)  # [N, 2*H*C]
        key, value = key_value.view(N, 2, H, C).unbind(1)  # [N, H, C] each
        alpha = self.edge_updater(edge_index, query=query, key=key, size=(N, N))  # [E, H]
        out = self.propagate(edge_index, value=value, alpha=alpha, size=(N, N))  # [N, H, C]
        out = self.lin_out(out.reshape(N, H * C))
        if return_attention_weights:
            return out, (edge_index, alpha)
        return out

    def _check_inputs(self, x: Tensor, message: Tensor, edge_index: Tensor) -> None:
        # Shapes and dtypes only: static under torch.compile, so these checks cost no sync.
        if x.dim() != 2 or x.size(-1) != self.in_channels:
            raise ValueError(f"x must have shape [num_nodes, in_channels={self.in_channels}], got {list(x.shape)}")
        expected = [x.size(0), self.msg_dim, self.vocab_size]
        if list(message.shape) != expected:
            raise ValueError(
                f"message must be one-hot of shape [num_nodes, msg_dim, vocab_size] = {expected}, "
                f"got {list(message.shape)}"
            )
        if not message.is_floating_point():
            raise TypeError(f"message must be a floating-point one-hot tensor, got {message.dtype}")
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"edge_index must have shape [2, num_edges], got {list(edge_index.shape)}")
        if edge_index.dtype != torch.long:
            raise TypeError(f"edge_index must be torch.long, got {edge_index.dtype}")

    def edge_update(
        self, query_i: Tensor, key_j: Tensor, index: Tensor, ptr: Tensor | None, size_i: int | None
    ) -> Tensor:
        score = (query_i * key_j).sum(dim=-1) / math.sqrt(self.head_channels)  # [E, H]
        return softmax(score, index, ptr, size_i)

    def message(self, value_j: Tensor, alpha: Tensor) -> Tensor:
        return value_j * alpha.unsqueeze(-1)  # [E, H, C]

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, heads={self.heads}, "
            f"vocab={self.vocab_size}, msg_dim={self.msg_dim})"
        )
