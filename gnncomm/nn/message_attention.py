"""Multi-head attention of each receiver over the discrete messages of its in-neighbours."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax

from gnncomm.nn.embedding import SymbolEmbedding

DENSE_MODES = ("auto", "always", "never")
"""The values of ``MessageAttention(dense=...)``."""

DENSE_MIN_DENSITY = 0.5
"""``dense="auto"`` takes the masked dense path from this share of the ``B * N * N`` pairs on.

Measured on one CPU thread (forward and backward, hidden 64, 4 heads, ``B * N = 2560``), the dense
path overtakes the sparse one at a density of about 0.4 for ``N = 10``, 0.1 for ``N = 50`` and 0.07
for ``N = 200``; at 0.25 it is 1.8-3.9 times faster from ``N = 50`` on, and within 12 % at ``N = 10``. In a
whole training step the gain at moderate density is small (kNN, ``k = 4``, ``N = 10``: neutral), so "auto"
keeps the sparse path below half the pairs: the seed's default graph trains exactly as before.
"""

_AUTOCAST_BY_DEVICE_TYPE = hasattr(torch, "get_autocast_dtype")  # torch >= 2.4: is_autocast_enabled(device_type)


def _autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` (a Python bool: no sync, and traced as a constant)."""
    if _AUTOCAST_BY_DEVICE_TYPE:
        return torch.is_autocast_enabled(device_type)
    return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


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

    A receiver with no in-neighbours (an isolated node, or any node of an empty ``edge_index``)
    aggregates a zero vector, so its output is the bias of :math:`\mathbf{W}_O`: it has heard nothing.

    **Two paths, one result.** The *sparse* path runs the softmax over the incoming edges of each
    receiver, per head, with :func:`torch_geometric.utils.softmax`; nothing dense is formed, so its
    cost grows with :math:`|\mathcal{E}|`. When the nodes are ``B`` episodes of ``N`` agents and the
    graph is complete or nearly so, the *dense* path is cheaper: per episode and head,

    .. math::
        \boldsymbol{\alpha}^h = \operatorname{softmax}_j\Big(\frac{\mathbf{Q}^h
        {\mathbf{K}^h}^\top}{\sqrt{C}} + \log \mathbf{A}\Big),
        \qquad \mathbf{X}' = \mathbf{W}_O \big\Vert_h \boldsymbol{\alpha}^h \mathbf{V}^h,

    with :math:`A_{ij}` the number of edges :math:`j \to i` (:math:`\log 0 = -\infty`). On a complete
    graph :math:`\log \mathbf{A}` is :math:`-\infty` on the diagonal and 0 elsewhere, so only the
    diagonal is masked (the *complete* path) and no adjacency is built from ``edge_index``; otherwise
    :math:`\mathbf{A}` is scattered from ``edge_index`` (the *masked* path; parallel edges count as
    often as they occur, exactly as in the sparse softmax). Without attention weights requested,
    :func:`~torch.nn.functional.scaled_dot_product_attention` computes :math:`\mathbf{X}'`. Outputs,
    attention weights and gradients equal the sparse path's to float rounding: both scale by
    :math:`1/\sqrt{C}` with :math:`C` = ``out_channels // heads`` (the dense path scales the queries
    before the product), the attention weights come back per edge in the order of ``edge_index``
    (gathered from the ``[H, B, N, N]`` weights, as a transposed view), and each of :math:`k`
    parallel edges carries :math:`1/k` of its pair's weight, as its own softmax term would.

    **Which path.** :meth:`select_path` decides from Python integers only (``|V|``, ``|E|``,
    ``num_agents``: shapes and arguments, never tensor values), so the choice costs no device sync
    and no graph break:

    * ``dense="never"``: sparse.
    * ``dense="always"``: masked dense, over episodes of ``num_agents`` nodes, or over all ``|V|``
      nodes as one episode when ``num_agents`` is ``None``.
    * ``dense="auto"`` (default): sparse unless ``num_agents`` is given; then complete dense if
      :math:`N \geq 2` and :math:`|\mathcal{E}| = B N (N - 1)` with :math:`B = |V| / N`, masked dense if
      :math:`|\mathcal{E}| \geq` :data:`DENSE_MIN_DENSITY` :math:`\cdot B N^2`, sparse otherwise.

    Passing ``num_agents`` is a promise about ``edge_index`` that is not checked (checking would read
    tensor values): node ``b * N + i`` is agent ``i`` of episode ``b``, and every edge joins two
    agents of the same episode. For ``dense="auto"`` the caller promises in addition that there are
    no self-loops and no parallel edges, so that :math:`|\mathcal{E}| = B N (N - 1)` means complete
    (the masked path needs neither promise). Every generator of :mod:`gnncomm.topology`, batched by
    :func:`~gnncomm.topology.batch_edge_index`, and :func:`~gnncomm.topology.knn` keep all the
    promises, in any edge order (``knn`` with :math:`k \geq N - 1` is complete too). A ``custom``
    edge list may hold parallel edges: with exactly :math:`N (N - 1)` edges of which some are parallel,
    ``"auto"`` would take it for complete; use ``dense="always"`` or ``"never"`` there, or leave
    ``num_agents`` out. Empty graphs and ``|V| = 0`` take the sparse path under ``"auto"``.

    Args:
        in_channels (int): size of the receiver state :math:`\mathbf{x}_i`.
        out_channels (int): size of the output; must be divisible by ``heads``.
        vocab_size (int): vocabulary size :math:`V \geq 2`.
        msg_dim (int): symbols per message :math:`M \geq 1`.
        heads (int): number of attention heads :math:`H`. (default: ``4``)
        embed_dim (int, optional): symbol embedding size; ``out_channels`` if ``None``.
        bias (bool): learn biases. (default: ``True``)
        dense (str): ``"auto"``, ``"always"`` or ``"never"``: when to take the dense path, see
            above. (default: ``"auto"``)

    Shapes:
        - **input:** receiver states ``x (|V|, F_in)``, messages ``(|V|, M, V)``,
          edge indices ``(2, |E|)`` with ``edge_index[0]`` the senders; ``num_agents`` an ``int``
          dividing ``|V|`` (dense path: ``(H, B, N, N)`` attention with ``B = |V| / N``); optional
          ``symbols (|V|, M)``, long. ``x`` and ``message`` have the parameters' dtype, unless autocast
          is on (it casts them).
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
        dense: str = "auto",
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
        if dense not in DENSE_MODES:
            raise ValueError(f"dense must be one of {list(DENSE_MODES)}, got {dense!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.vocab_size = vocab_size
        self.msg_dim = msg_dim
        self.heads = heads
        self.head_channels = out_channels // heads
        self.embed_dim = embed_dim or out_channels
        self.dense = dense
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
        self,
        x: Tensor,
        message: Tensor,
        edge_index: Tensor,
        return_attention_weights: bool = False,
        num_agents: int | None = None,
        symbols: Tensor | None = None,
    ) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
        """Attends; see the class docstring for the shapes.

        Args:
            return_attention_weights (bool): also return ``(edge_index, alpha)``, ``alpha (|E|, H)``
                in the order of ``edge_index``. (default: ``False``)
            num_agents (int, optional): agents per episode :math:`N`, with the promise about
                ``edge_index`` of the class docstring; what lets ``dense="auto"`` go dense.
                (default: ``None``)
            symbols (Tensor, optional): ``message.argmax(-1)``, when the caller has it and ``message``
                is one-hot: the keys and values are then gathered per symbol instead of multiplied
                out of the one-hot (:meth:`SymbolEmbedding.project`), with the same result and
                gradients to float rounding. Not checked against ``message`` (that would read
                values). (default: ``None``)
        """
        self._check_inputs(x, message, edge_index, num_agents, symbols)
        N = x.size(0)
        H, C = self.heads, self.head_channels
        query = self.lin_query(x).view(N, H, C)  # [N, H, C]
        key_value = self.embed.project(message, self.lin_key_value, flatten=True, symbols=symbols)  # [N, 2*H*C]
        key, value = key_value.view(N, 2, H, C).unbind(1)  # [N, H, C] each
        path = self.select_path(N, edge_index.size(1), num_agents)
        if path == "sparse":
            alpha = self.edge_updater(edge_index, query=query, key=key, size=(N, N))  # [E, H]
            out = self.propagate(edge_index, value=value, alpha=alpha, size=(N, N))  # [N, H, C]
        else:
            out, alpha = self._dense_attention(
                query, key, value, edge_index, num_agents or N, path == "complete", return_attention_weights
            )
        out = self.lin_out(out.reshape(N, H * C))
        if return_attention_weights:
            return out, (edge_index, alpha)
        return out

    def select_path(self, num_nodes: int, num_edges: int, num_agents: int | None = None) -> str:
        """``"sparse"``, ``"complete"`` or ``"masked"``: the path :meth:`forward` takes (see the class docstring).

        Pure Python on sizes, so calling it in the training step costs nothing.
        """
        if self.dense == "never" or num_nodes == 0:
            return "sparse"
        if self.dense == "always":
            return "masked"
        if num_agents is None:
            return "sparse"
        A, B = num_agents, num_nodes // num_agents
        if A >= 2 and num_edges == B * A * (A - 1):
            return "complete"
        if num_edges >= DENSE_MIN_DENSITY * B * A * A:
            return "masked"
        return "sparse"

    def _check_inputs(
        self, x: Tensor, message: Tensor, edge_index: Tensor, num_agents: int | None, symbols: Tensor | None
    ) -> None:
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
        dtype = self.lin_query.weight.dtype
        if not _autocast_enabled(x.device.type):  # under autocast, mixed dtypes are cast by each product
            for name, value in (("x", x), ("message", message)):
                if value.dtype != dtype:
                    raise TypeError(
                        f"{name} must have the dtype of the layer's parameters, {dtype}, got {value.dtype} "
                        f"(convert it with .to({dtype}), or the layer with .to({value.dtype}))"
                    )
        if symbols is not None and list(symbols.shape) != expected[:2]:
            raise ValueError(f"symbols must be message.argmax(-1), of shape {expected[:2]}, got {list(symbols.shape)}")
        if symbols is not None and symbols.dtype != torch.long:
            raise TypeError(f"symbols must be message.argmax(-1), torch.long, got {symbols.dtype}")
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"edge_index must have shape [2, num_edges], got {list(edge_index.shape)}")
        if edge_index.dtype != torch.long:
            raise TypeError(f"edge_index must be torch.long, got {edge_index.dtype}")
        if num_agents is not None:
            if isinstance(num_agents, bool) or not isinstance(num_agents, int) or num_agents < 1:
                raise ValueError(f"num_agents must be an int >= 1 or None, got {num_agents!r}")
            if x.size(0) % num_agents != 0:
                raise ValueError(
                    f"num_agents must divide num_nodes (B episodes of num_agents nodes), "
                    f"got num_agents={num_agents} and num_nodes={x.size(0)}"
                )

    def _dense_attention(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        edge_index: Tensor,
        num_agents: int,
        complete: bool,
        return_attention_weights: bool,
    ) -> tuple[Tensor, Tensor | None]:
        """The dense path: returns ``out [B*N, H, C]`` and ``alpha [E, H]`` (``None`` unless asked for)."""
        N, (BN, H, C) = num_agents, query.shape
        B = BN // N
        scale = 1.0 / math.sqrt(C)
        # Heads lead ([H, B, N, N], not [B, H, N, N]) so that each head's weights are one flat row
        # that the edges index directly (see alpha below): no [B, N, N, H] copy.
        query, key, value = (t.view(B, N, H, C).permute(2, 0, 1, 3) for t in (query, key, value))  # [H, B, N, C]
        src, dst = edge_index[0], edge_index[1]
        # Edge j -> i of episode b (nodes b*N + j -> b*N + i) sits at (b*N + i)*N + j of [B, N, N].
        flat = (src % N).add_(dst, alpha=N)  # [E]
        if complete:
            # Every pair but i == j is an edge: mask the diagonal only, no adjacency from edge_index.
            bias = torch.zeros(N, N, dtype=query.dtype, device=query.device).fill_diagonal_(float("-inf"))
            count = has_in = None
        else:
            ones = torch.ones_like(flat, dtype=torch.float32)
            count = ones.new_zeros(B * N * N).index_add_(0, flat, ones)  # edges j -> i, parallel ones too
            has_in = count.view(B, N, N).sum(-1, keepdim=True) > 0  # [B, N, 1]
            # log 0 = -inf masks the non-edges; a receiver without in-neighbours gets a zero row
            # instead (a softmax over -inf only is NaN), has_in zeroes its output, and no edge reads it.
            bias = count.view(B, N, N).masked_fill(~has_in, 1.0).log().to(query.dtype)  # [B, N, N]
            has_in = has_in.to(query.dtype).view(1, B, N, 1)
        if not return_attention_weights:
            out = F.scaled_dot_product_attention(query, key, value, attn_mask=bias, scale=scale)  # [H, B, N, C]
            alpha = None
        else:
            score = ((query * scale) @ key.transpose(-1, -2)).add_(bias)  # [H, B, N, N]
            prob = torch.softmax(score, dim=-1)
            out = prob @ value  # [H, B, N, C]
            alpha = prob.view(H, B * N * N).index_select(1, flat).t()  # [E, H] (a transposed view)
            if count is not None:  # k parallel edges j -> i share the pair's weight
                alpha = alpha / count.index_select(0, flat).to(alpha.dtype).unsqueeze(-1)
        if has_in is not None:
            out = out * has_in
        return out.permute(1, 2, 0, 3).reshape(BN, H, C), alpha

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
            f"vocab={self.vocab_size}, msg_dim={self.msg_dim}, dense={self.dense!r})"
        )
