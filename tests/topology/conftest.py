"""Checks shared by the topology tests, as fixtures."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch


def _edge_set(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, edge_index.t().tolist()))


def _assert_well_formed(edge_index: torch.Tensor, num_nodes: int, *, by_sender: bool = True) -> None:
    """dtype long, shape [2, E], in range, no self-loops, sorted by receiver (then sender, unless ``by_sender``)."""
    assert edge_index.dtype == torch.long
    assert edge_index.dim() == 2 and edge_index.size(0) == 2
    if edge_index.numel():
        assert int(edge_index.min()) >= 0 and int(edge_index.max()) < num_nodes
    src, dst = edge_index
    assert not bool((src == dst).any()), "self-loop"
    assert bool((dst[1:] >= dst[:-1]).all()), "not sorted by receiver"
    if by_sender:
        same = dst[1:] == dst[:-1]
        assert bool((src[1:][same] > src[:-1][same]).all()), "not sorted/unique by sender"


@pytest.fixture
def edge_set() -> Callable[[torch.Tensor], set[tuple[int, int]]]:
    """``edge_index [2, E]`` -> the set of its ``(sender, receiver)`` pairs."""
    return _edge_set


@pytest.fixture
def assert_well_formed() -> Callable[..., None]:
    """Asserts the guarantees every topology keeps (see :mod:`gnncomm.topology`)."""
    return _assert_well_formed
