"""Interventions on one-hot messages ``[B * N, M, V]``, used by ablations and knock-outs.

Each returns a function ``message -> message`` for :meth:`gnncomm.CommSystem.forward`'s ``intervene``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

Intervention = Callable[[Tensor], Tensor]


def silence_like(message: Tensor) -> Tensor:
    """One-hot silence (symbol 0 at every position) of the shape of ``message``.

    >>> silence_like(torch.eye(3).view(1, 3, 3))[0]
    tensor([[1., 0., 0.],
            [1., 0., 0.],
            [1., 0., 0.]])
    """
    return F.one_hot(message.new_zeros(message.shape[:-1], dtype=torch.long), message.size(-1)).to(message.dtype)


def silence() -> Intervention:
    """Every agent says nothing."""
    return silence_like


def knockout(agent: int | Tensor, num_agents: int) -> Intervention:
    """Agent(s) ``agent`` of every episode say nothing; the others are untouched."""

    def apply(message: Tensor) -> Tensor:
        ids = torch.arange(message.size(0), device=message.device) % num_agents
        mute = torch.isin(ids, torch.as_tensor(agent, device=message.device).view(-1))
        return torch.where(mute.view(-1, 1, 1), silence_like(message), message)

    return apply


def shuffle_episodes(num_agents: int, *, generator: torch.Generator) -> Intervention:
    """Each agent's message is replaced by the same agent's message from another episode.

    The permutation of episodes is a derangement drawn once from ``generator`` per call of the
    returned function, so a message never stays in its own episode (for ``B >= 2``).
    """

    def apply(message: Tensor) -> Tensor:
        B = message.size(0) // num_agents
        shift = int(torch.randint(1, max(B, 2), (1,), generator=generator)) if B > 1 else 0
        perm = torch.randperm(B, generator=generator)
        target = perm.roll(shift)  # derangement: episode perm[i] reads from perm[i + shift]
        source = torch.empty_like(perm)
        source[perm] = target
        return message.view(B, num_agents, *message.shape[1:])[source.to(message.device)].view_as(message)

    return apply
