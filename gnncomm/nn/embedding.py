"""Embedding of one-hot messages: each symbol together with its position in the message."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SymbolEmbedding(nn.Module):
    r"""Embeds a one-hot message so that gradients flow back through straight-through samples.

    .. math::
        \mathbf{e}_{m} = \mathbf{s}_{m} \mathbf{E}_{\text{sym}} + \mathbf{p}_{m},
        \qquad m = 1, \dots, M

    where :math:`\mathbf{s}_m \in \{0,1\}^V` is the one-hot symbol at position :math:`m`. A matrix
    product (not an index lookup) keeps the message differentiable.

    Args:
        vocab_size (int): the vocabulary size :math:`V`.
        msg_dim (int): the number of symbol positions :math:`M`.
        embed_dim (int): the embedding size :math:`D`.

    Shapes:
        **input:** ``(N, M, V)``; **output:** ``(N, M, D)``.
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

    def forward(self, message: Tensor) -> Tensor:
        return message @ self.symbol + self.position  # [N, M, D]

    def project(self, message: Tensor, linear: nn.Linear, *, flatten: bool) -> Tensor:
        r"""``linear`` applied to the embedding, without materialising the embedding.

        Because the embedding is linear in the one-hot message, the projection folds into one
        ``[V, out]`` table per position, :math:`\mathbf{E}_{\text{sym}} \mathbf{W}_m^\top`, so
        one product with the (sparse-valued) message replaces two dense products:

        * ``flatten=True``: equals ``linear(self(message).flatten(1))``, shape ``(N, out)``, with
          ``linear.in_features == M * D``;
        * ``flatten=False``: equals ``linear(self(message))``, shape ``(N, M, out)``, with
          ``linear.in_features == D``.

        Gradients reach ``message`` exactly as through the unfused form.
        """
        M, D, O = self.msg_dim, self.embed_dim, linear.out_features
        bias = linear.bias if linear.bias is not None else linear.weight.new_zeros(O)
        if flatten:
            weight = linear.weight.view(O, M, D)
            table = torch.einsum("vd,omd->mvo", self.symbol, weight).reshape(M * self.vocab_size, O)
            offset = self.position.reshape(M * D) @ linear.weight.t() + bias  # [O]
            return message.flatten(1) @ table + offset  # [N, O]
        table = self.symbol @ linear.weight.t()  # [V, O]
        offset = self.position @ linear.weight.t() + bias  # [M, O]
        return message @ table + offset  # [N, M, O]

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.vocab_size}, {self.embed_dim}, msg_dim={self.msg_dim})"
