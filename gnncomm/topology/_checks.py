"""Input checks shared by the topology modules, called once at the boundary, never in a hot loop."""

from __future__ import annotations

import numbers
from typing import Any

import torch
from torch import Tensor


def _check_int(name: str, value: Any, low: int, high: int | None = None, high_desc: str = "") -> int:
    """Return ``value`` as ``int`` if it is an integer in ``[low, high]``.

    ``high_desc`` explains the upper bound in the message, e.g. ``"N - 1"``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    value = int(value)
    if high is None:
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    elif not low <= value <= high:
        bound = f"{high_desc} = {high}" if high_desc else f"{high}"
        raise ValueError(f"{name} must satisfy {low} <= {name} <= {bound}, got {value}")
    return value


def _check_num_agents(num_agents: Any) -> int:
    return _check_int("num_agents", num_agents, 2)


def _check_prob(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float in [0, 1], got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must satisfy 0 <= {name} <= 1, got {value}")
    return value


def _check_generator(generator: Any) -> torch.Generator:
    if generator is None:
        # Deterministic default instead of the global RNG.
        return torch.Generator().manual_seed(0)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def _describe(value: Any) -> str:
    """Shape of a tensor (or type name otherwise) for error messages."""
    return str(tuple(value.shape)) if isinstance(value, Tensor) else type(value).__name__
