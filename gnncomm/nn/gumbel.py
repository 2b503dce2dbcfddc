"""Straight-through Gumbel-Softmax: the discrete bottleneck of every message."""

from __future__ import annotations

import torch
from torch import Tensor


def sample_gumbel(
    shape: torch.Size | tuple[int, ...],
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    r"""Draws standard Gumbel noise :math:`g = -\log(-\log u)`, :math:`u \sim U(0, 1)`.

    Noise is drawn through an explicit ``generator`` so that a rollout can pre-sample all of its
    randomness outside a compiled region.

    >>> g = sample_gumbel((2, 3), generator=torch.Generator().manual_seed(0))
    >>> g.shape
    torch.Size([2, 3])
    """
    # In place, one buffer: at 100,000 agents the noise of an episode alone is 640 MB.
    return gumbel_from_uniform_(torch.rand(shape, generator=generator, device=device, dtype=dtype))


def gumbel_from_uniform_(u: Tensor) -> Tensor:
    r"""Turns uniform draws :math:`u \in [0, 1)` into Gumbel noise :math:`-\log(-\log u)`, in place; returns ``u``.

    :func:`sample_gumbel` is ``gumbel_from_uniform_(torch.rand(shape, generator=...))``.

    >>> gumbel_from_uniform_(torch.tensor([0.5]))
    tensor([0.3665])
    """
    tiny = torch.finfo(u.dtype).tiny
    return u.clamp_min_(tiny).log_().neg_().clamp_min_(tiny).log_().neg_()  # -log(-log u)


def gumbel_softmax_sample(
    logits: Tensor,
    temperature: float | Tensor = 1.0,
    training: bool = True,
    straight_through: bool = True,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Samples one-hot symbols from ``logits`` over the last dimension.

    .. math::
        y = \mathrm{softmax}\big((\ell + g) / \tau\big), \qquad
        \hat y = \mathrm{onehot}(\arg\max y) + y - \mathrm{sg}(y)

    where :math:`g` is Gumbel noise and :math:`\mathrm{sg}` stops the gradient. The forward value
    of :math:`\hat y` is exactly one-hot, while its gradient is that of the relaxed sample :math:`y`.

    Args:
        logits (Tensor): unnormalised log-probabilities ``[..., V]``.
        temperature (float or Tensor): relaxation temperature :math:`\tau > 0`. (default: ``1.0``)
        training (bool): if ``False``, returns the exact one-hot of ``argmax(logits)`` with no noise
            and no gradient path. (default: ``True``)
        straight_through (bool): if ``False``, returns the relaxed sample :math:`y`. (default: ``True``)
        noise (Tensor, optional): pre-sampled Gumbel noise of the shape of ``logits``. If ``None``,
            it is drawn with ``generator``. (default: ``None``)
        generator (torch.Generator, optional): source of randomness when ``noise`` is ``None``.

    Shapes:
        **input:** ``[..., V]``; **output:** ``[..., V]``, same dtype as ``logits``.

    >>> logits = torch.tensor([[2.0, 0.5, -1.0]])
    >>> gumbel_softmax_sample(logits, training=False)
    tensor([[1., 0., 0.]])
    >>> y = gumbel_softmax_sample(logits.requires_grad_(), generator=torch.Generator().manual_seed(0))
    >>> bool(((y == 0) | (y == 1)).all()), float(y.detach().sum())
    (True, 1.0)
    """
    if not training:
        return _one_hot_like(logits, logits.argmax(dim=-1, keepdim=True))
    if noise is None:
        noise = sample_gumbel(logits.shape, generator=generator, device=logits.device, dtype=torch.float32)
    # In place where autograd allows it: at 100,000 agents each [N, M, V] temporary is 128 MB.
    y = torch.softmax((logits.float() + noise).div_(temperature), dim=-1)
    if not straight_through:
        return y.to(logits.dtype)
    hard = _one_hot_like(y, y.argmax(dim=-1, keepdim=True))
    return hard.sub_(y.detach()).add_(y).to(logits.dtype)


def _one_hot_like(x: Tensor, index: Tensor) -> Tensor:
    """The one-hot of ``index [..., 1]`` in ``x``'s shape and dtype, written directly (``F.one_hot`` makes an
    int64 tensor first: twice the float32 size, at the largest shape of a step)."""
    return torch.zeros_like(x).scatter_(-1, index, 1.0)


class GumbelSoftmax(torch.nn.Module):
    r"""Thin module around :func:`gumbel_softmax_sample` that follows ``self.training``.

    Args:
        temperature (float): default relaxation temperature. (default: ``1.0``)
        straight_through (bool): forward value exactly one-hot. (default: ``True``)
    """

    def __init__(self, temperature: float = 1.0, straight_through: bool = True) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.straight_through = straight_through

    def forward(
        self,
        logits: Tensor,
        noise: Tensor | None = None,
        temperature: float | Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        tau = self.temperature if temperature is None else temperature
        return gumbel_softmax_sample(logits, tau, self.training, self.straight_through, noise, generator)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(temperature={self.temperature}, straight_through={self.straight_through})"
