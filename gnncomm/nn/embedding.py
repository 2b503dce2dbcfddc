"""Embedding of one-hot messages: each symbol together with its position in the message."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class _OneHotProduct(torch.autograd.Function):
    """``message @ table`` for ``message [R, K]`` whose hot columns are ``hot [R, S]`` (one per block of ``K / S``).

    The forward gathers ``S`` rows of ``table [K, O]`` per row of ``message`` and adds them up, position
    by position (no ``[R, S, O]`` temporary); the backward gives ``message`` the gradient of the product,
    ``grad @ table^T``, so a straight-through sample learns exactly as through the product, and ``table``
    the scatter-sum of ``grad`` over the hot rows, accumulated in float32 whatever the table's dtype (as a
    matrix product accumulates). Only ``hot`` and ``table`` are kept for the backward, not the message.
    """

    @staticmethod
    def forward(ctx: Any, message: Tensor, hot: Tensor, table: Tensor) -> Tensor:  # message: only for its gradient
        ctx.save_for_backward(hot, table)
        out = table[hot[:, 0]]  # [R, O]
        for s in range(1, hot.size(1)):
            out += table[hot[:, s]]
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, Tensor | None]:
        hot, table = ctx.saved_tensors
        grad_message = grad @ table.t() if ctx.needs_input_grad[0] else None  # [R, K]
        grad_table = None
        if ctx.needs_input_grad[2]:
            acc = torch.zeros(table.shape, dtype=torch.float32, device=table.device)  # [K, O]
            for s in range(hot.size(1)):  # the positions' rows of the table are disjoint
                acc.index_add_(0, hot[:, s], grad.float())
            grad_table = acc.to(table.dtype)
        return grad_message, None, grad_table


def _per_position(message: Tensor, symbols: Tensor, table: Tensor) -> Tensor:
    """``message @ table``, ``[N, M, O]``, for a one-hot ``message [N, M, V]`` whose ``argmax(-1)`` is ``symbols``."""
    N, M, V = message.shape
    out = _OneHotProduct.apply(message.reshape(N * M, V), symbols.reshape(N * M, 1), table)  # [N*M, O]
    return out.view(N, M, table.size(1))


class SymbolEmbedding(nn.Module):
    r"""Embeds a one-hot message so that gradients flow back through straight-through samples.

    .. math::
        \mathbf{e}_{m} = \mathbf{s}_{m} \mathbf{E}_{\text{sym}} + \mathbf{p}_{m},
        \qquad m = 1, \dots, M

    where :math:`\mathbf{s}_m \in \{0,1\}^V` is the one-hot symbol at position :math:`m`. The message
    enters as a matrix product, so gradients reach a straight-through sample. When the caller also
    passes the message's ``symbols`` (its ``argmax(-1)``), the forward gathers the rows of the hot
    symbols instead of multiplying by the one-hot, and the backward still gives the message the
    product's gradient: the same result to float rounding, without multiplying by the ``[N, M, V]``
    message or keeping it for the backward.

    Args:
        vocab_size (int): the vocabulary size :math:`V`.
        msg_dim (int): the number of symbol positions :math:`M`.
        embed_dim (int): the embedding size :math:`D`.

    Shapes:
        **input:** ``message (N, M, V)``, optional ``symbols (N, M)``; **output:** ``(N, M, D)``.
    """

    def __init__(self, vocab_size: int, msg_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.msg_dim = msg_dim
        self.embed_dim = embed_dim
        self.symbol = nn.Parameter(torch.empty(vocab_size, embed_dim))
        self.position = nn.Parameter(torch.empty(msg_dim, embed_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.symbol, std=self.embed_dim**-0.5)
        nn.init.normal_(self.position, std=self.embed_dim**-0.5)

    def forward(self, message: Tensor, symbols: Tensor | None = None) -> Tensor:
        """Embeds ``message [N, M, V]``; ``symbols [N, M]`` (long), if given, must be ``message.argmax(-1)``."""
        if symbols is None:
            return message @ self.symbol + self.position  # [N, M, D]
        return _per_position(message, symbols, self.symbol) + self.position  # [N, M, D]

    def project(self, message: Tensor, linear: nn.Linear, *, flatten: bool, symbols: Tensor | None = None) -> Tensor:
        r"""``linear`` applied to the embedding, without materialising the embedding.

        Because the embedding is linear in the one-hot message, the projection folds into one
        ``[V, out]`` table per position, :math:`\mathbf{E}_{\text{sym}} \mathbf{W}_m^\top`, so
        one product with the (sparse-valued) message replaces two dense products:

        * ``flatten=True``: equals ``linear(self(message).flatten(1))``, shape ``(N, out)``, with
          ``linear.in_features == M * D``;
        * ``flatten=False``: equals ``linear(self(message))``, shape ``(N, M, out)``, with
          ``linear.in_features == D``.

        Gradients reach ``message`` exactly as through the unfused form. With ``symbols [N, M]``
        (long, ``message.argmax(-1)`` of a one-hot ``message``), the product with the message becomes a
        gather of the table's hot rows (see the class docstring).
        """
        M, D, O = self.msg_dim, self.embed_dim, linear.out_features
        bias = linear.bias if linear.bias is not None else linear.weight.new_zeros(O)
        if flatten:
            weight = linear.weight.view(O, M, D)
            table = torch.einsum("vd,omd->mvo", self.symbol, weight).reshape(M * self.vocab_size, O)
            offset = self.position.reshape(M * D) @ linear.weight.t() + bias  # [O]
            if symbols is None:
                return message.flatten(1) @ table + offset  # [N, O]
            hot = symbols + torch.arange(M, device=symbols.device) * self.vocab_size  # [N, M] rows of table
            return _OneHotProduct.apply(message.flatten(1), hot, table) + offset  # [N, O]
        table = self.symbol @ linear.weight.t()  # [V, O]
        offset = self.position @ linear.weight.t() + bias  # [M, O]
        if symbols is None:
            return message @ table + offset  # [N, M, O]
        return _per_position(message, symbols, table) + offset  # [N, M, O]

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.vocab_size}, {self.embed_dim}, msg_dim={self.msg_dim})"
