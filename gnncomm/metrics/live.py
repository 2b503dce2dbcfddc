r"""Training-time signals, computed inside the training step from torch tensors with no host sync.

These are the signals the seed tells users to watch while a run trains: the vocabulary narrowing
(usage of the **greedy** symbols, which can fall, unlike the sampled ones, and the effective
vocabulary size) and attention concentrating on specific neighbours (hubs). Each returns 0-d
tensors on the input's device, so the trainer can average them and read them at log steps only.

The vocabulary terms of the loss live here too, since they are the differentiable side of the same
signal: :func:`symbol_marginals` of a batch, then :func:`marginal_entropy` (narrowing) and
:func:`position_information` (positions sharing one vocabulary).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "ABOVE_UNIFORM",
    "HUB_WEIGHT",
    "attention_concentration",
    "marginal_entropy",
    "position_information",
    "symbol_marginals",
    "symbol_usage",
]

HUB_WEIGHT = 0.2
"""The seed's threshold: a receiver with one neighbour above this weight (and above uniform) listens to a hub."""
ABOVE_UNIFORM = 1.25
"""'Above uniform' means above this multiple of ``1 / in-degree``: float noise keeps every learned maximum a hair
above uniform, which says nothing about hubs."""


def symbol_usage(counts: Tensor) -> dict[str, Tensor]:
    r"""Vocabulary usage, entropy and effective vocabulary size of a symbol histogram ``counts [V]``.

    * ``usage``: the share of the ``V`` symbols that occur at least once;
    * ``entropy_bits``: :math:`H = -\sum_v p_v \log_2 p_v` of the normalised counts;
    * ``effective``: :math:`2^H / V`, the share of the vocabulary a uniform language of the same
      entropy would use (1 for uniform use, :math:`1/V` for one symbol).

    >>> counts = torch.tensor([5.0, 0.0, 5.0, 0.0])
    >>> {k: round(float(v), 3) for k, v in symbol_usage(counts).items()}
    {'usage': 0.5, 'entropy_bits': 1.0, 'effective': 0.5}
    """
    V = counts.numel()
    p = counts / counts.sum().clamp_min(1e-12)
    entropy = -(p * torch.log2(p.clamp_min(1e-12))).sum()
    return {"usage": (counts > 0).float().mean(), "entropy_bits": entropy, "effective": torch.exp2(entropy) / V}


def symbol_marginals(logits: Tensor) -> Tensor:
    r"""The symbol distribution of each message position over a batch: :math:`\bar{\mathbf{p}}_m = \frac{1}{n}
    \sum_n \mathrm{softmax}(\boldsymbol{\ell}_{n,m})`, from ``logits [..., M, V]`` (all leading dimensions are the
    batch); returns ``[M, V]``, differentiable.

    >>> symbol_marginals(torch.zeros(3, 2, 4))
    tensor([[0.2500, 0.2500, 0.2500, 0.2500],
            [0.2500, 0.2500, 0.2500, 0.2500]])
    """
    M, V = logits.shape[-2:]
    p = torch.softmax(logits.float().reshape(-1, M, V), dim=-1)  # [n, M, V]
    return p.mean(0) if p.size(0) else p.new_zeros(M, V)  # an empty batch gives zeros, not NaN


def _entropy(p: Tensor) -> Tensor:
    """Entropy (nats) of distributions over the last dimension."""
    return -(p * torch.log(p.clamp_min(1e-12))).sum(-1)


def marginal_entropy(marginals: Tensor) -> Tensor:
    r"""Entropy of a batch's symbol marginal over :math:`\log V`, in [0, 1]: the vocabulary pressure.

    With the per-position marginals :math:`\bar{\mathbf{p}}_m` of :func:`symbol_marginals` (``[..., M, V]``; one
    value per leading index) and
    :math:`\bar{\mathbf{p}} = \frac{1}{M} \sum_m \bar{\mathbf{p}}_m`, it is :math:`H(\bar{\mathbf{p}}) / \log V`:
    1 when the batch spreads evenly over the vocabulary, 0 when every symbol said is the same one. Pushing it
    down retires rarely used symbols and merges synonyms, at some cost in what messages can tell (a message
    position cannot tell more than :math:`H(\bar{\mathbf{p}}_m)`).

    >>> round(float(marginal_entropy(torch.full((2, 8), 1 / 8))), 3)
    1.0
    >>> round(float(marginal_entropy(torch.tensor([[0.5, 0.5, 0, 0, 0, 0, 0, 0]]))), 3)  # log 2 / log 8
    0.333
    """
    return _entropy(marginals.mean(-2)) / math.log(marginals.size(-1))


def position_information(marginals: Tensor) -> Tensor:
    r"""How much the message positions differ in the symbols they use, over :math:`\log V`, in [0, 1].

    The mutual information between a symbol's position in its message and the symbol,
    :math:`\big(H(\bar{\mathbf{p}}) - \frac{1}{M} \sum_m H(\bar{\mathbf{p}}_m)\big) / \log V` for the
    per-position marginals ``[..., M, V]`` of :func:`symbol_marginals`: 0 when every position draws on the same
    symbols. A listener knows each symbol's position, so pushing this down makes positions share one
    vocabulary without taking anything from what a message tells. Returns one value per leading index.

    >>> same = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]])
    >>> round(float(position_information(same)), 3)
    0.0
    >>> disjoint = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]])
    >>> round(float(position_information(disjoint)), 3)  # log 2 / log 4
    0.5
    """
    # >= 0 by concavity; the clamp removes rounding below it
    return ((_entropy(marginals.mean(-2)) - _entropy(marginals).mean(-1)) / math.log(marginals.size(-1))).clamp_min(0.0)


def attention_concentration(alpha: Tensor, receivers: Tensor, num_nodes: int) -> dict[str, Tensor]:
    r"""How concentrated each receiver's attention over its in-neighbours is.

    For every receiver :math:`i` with in-degree :math:`d_i > 0` and attention weights
    :math:`\alpha_{ji}` (averaged over heads), with :math:`m_i = \max_j \alpha_{ji}`:

    * ``max``: the mean over receivers of :math:`m_i` (1 when everyone listens to one neighbour);
    * ``uniform``: the mean of :math:`1 / d_i`, the value of ``max`` under uniform attention;
    * ``hub_share``: the share of receivers with :math:`m_i > 0.2` and :math:`m_i > 1.25 / d_i` (the seed's
      "attention weight > 0.2 to specific neighbours", clearly above what uniform attention gives).

    Args:
        alpha: attention ``[E]`` or ``[E, H]``.
        receivers: the receiver of each edge ``[E]`` (``edge_index[1]``).
        num_nodes: number of nodes (explicit, so nothing syncs).

    >>> receivers = torch.tensor([0, 0, 0, 0, 1, 1])
    >>> uniform = attention_concentration(torch.tensor([0.25] * 4 + [0.5] * 2), receivers, 2)
    >>> [round(float(uniform[k]), 3) for k in ("max", "uniform", "hub_share")]
    [0.375, 0.375, 0.0]
    >>> one_hot = attention_concentration(torch.tensor([1.0, 0, 0, 0, 0, 1.0]), receivers, 2)
    >>> [round(float(one_hot[k]), 3) for k in ("max", "uniform", "hub_share")]
    [1.0, 0.375, 1.0]
    """
    weight = alpha.float().mean(-1) if alpha.dim() == 2 else alpha.float()  # [E]
    ones = torch.ones_like(weight)
    degree = weight.new_zeros(num_nodes).index_add_(0, receivers, ones)  # [N]
    top = weight.new_zeros(num_nodes).scatter_reduce_(0, receivers, weight, reduce="amax", include_self=True)
    has = degree > 0
    count = has.float().sum().clamp_min(1.0)
    uniform = torch.where(has, 1.0 / degree.clamp_min(1.0), torch.zeros_like(degree))
    hub = has & (top > HUB_WEIGHT) & (top > ABOVE_UNIFORM * uniform)
    return {"max": (top * has).sum() / count, "uniform": uniform.sum() / count, "hub_share": hub.float().sum() / count}
