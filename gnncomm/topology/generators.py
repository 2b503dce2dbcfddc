"""Static topologies: deterministic (ring, full, star, grid) and seeded random ones.

Every generator is ``f(num_agents, *, ..., device=None) -> LongTensor[2, E]`` and keeps the
guarantees listed in :mod:`gnncomm.topology`.
"""

from __future__ import annotations

import math

import networkx as nx
import torch
from torch import Tensor

from gnncomm.topology._checks import _check_generator, _check_int, _check_num_agents, _check_prob
from gnncomm.topology.convert import _coalesce, from_networkx

__all__ = ["ring", "full", "star", "grid", "small_world", "erdos_renyi", "random_regular"]


def _derive_seed(generator: torch.Generator) -> int:
    """Draw a Python int seed for networkx from ``generator``."""
    # One-off conversion outside any training step, so .item() is fine here.
    return int(torch.randint(0, 2**62, (), generator=generator, device=generator.device).item())


def _undirected(src: Tensor, dst: Tensor, num_nodes: int) -> Tensor:
    """Symmetrise ``src - dst`` pairs into a sorted, de-duplicated edge set.

    Self-loops are dropped; the result is sorted by receiver, then sender.
    """
    senders = torch.cat([src, dst])
    receivers = torch.cat([dst, src])
    return _coalesce(senders, receivers, num_nodes)


# ---------------------------------------------------------------------------
# Deterministic topologies.
# ---------------------------------------------------------------------------
def ring(num_agents: int, *, device: torch.device | str | None = None) -> Tensor:
    r"""Bidirectional ring: agent :math:`i` talks to :math:`i \pm 1 \bmod N`.

    Args:
        num_agents (int): Number of agents :math:`N \geq 2`.
        device (torch.device or str, optional): Output device. (default: CPU)

    Returns:
        LongTensor ``[2, 2N]`` for :math:`N \geq 3`.  For :math:`N = 2` both
        neighbours of an agent coincide, so the (de-duplicated) ring equals
        :func:`full` with 2 edges.

    Example:
        >>> ring(3)
        tensor([[1, 2, 0, 2, 0, 1],
                [0, 0, 1, 1, 2, 2]])
        >>> ring(2)
        tensor([[1, 0],
                [0, 1]])
    """
    n = _check_num_agents(num_agents)
    idx = torch.arange(n, device=device)
    return _undirected(idx, (idx + 1) % n, n)


def full(num_agents: int, *, device: torch.device | str | None = None) -> Tensor:
    r"""Complete directed graph without self-loops, :math:`N(N-1)` edges.

    Args:
        num_agents (int): Number of agents :math:`N \geq 2`.
        device (torch.device or str, optional): Output device. (default: CPU)

    Example:
        >>> full(3)
        tensor([[1, 2, 0, 2, 0, 1],
                [0, 0, 1, 1, 2, 2]])
    """
    n = _check_num_agents(num_agents)
    idx = torch.arange(n, device=device)
    senders = idx.repeat(n)  # [N * N]
    receivers = idx.repeat_interleave(n)  # [N * N]
    keep = senders != receivers
    return torch.stack([senders[keep], receivers[keep]])


def star(num_agents: int, *, device: torch.device | str | None = None) -> Tensor:
    r"""Bidirectional star with hub ``0``: :math:`2(N-1)` edges.

    Args:
        num_agents (int): Number of agents :math:`N \geq 2`.
        device (torch.device or str, optional): Output device. (default: CPU)

    Example:
        >>> star(4)
        tensor([[1, 2, 3, 0, 0, 0],
                [0, 0, 0, 1, 2, 3]])
    """
    n = _check_num_agents(num_agents)
    leaves = torch.arange(1, n, device=device)
    return _undirected(leaves, torch.zeros_like(leaves), n)


def grid(
    num_agents: int,
    *,
    rows: int | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""Bidirectional 2-D lattice with a 4-neighbourhood (no wrap-around).

    Agents are laid out row-major on ``rows`` rows of
    ``cols = ceil(N / rows)`` columns; agent :math:`i` sits at
    ``(i // cols, i % cols)``.  When :math:`N` is not a multiple of ``cols``
    the last row is only partly filled; the lattice stays connected.

    Args:
        num_agents (int): Number of agents :math:`N \geq 2`.
        rows (int, optional): Number of rows, ``1 <= rows <= N``.
            (default: ``floor(sqrt(N))``)
        device (torch.device or str, optional): Output device. (default: CPU)

    Example:
        >>> grid(4)  # 2 x 2
        tensor([[1, 2, 0, 3, 0, 3, 1, 2],
                [0, 0, 1, 1, 2, 2, 3, 3]])
        >>> grid(3).shape  # one row of three: a path
        torch.Size([2, 4])
    """
    n = _check_num_agents(num_agents)
    r = math.isqrt(n) if rows is None else _check_int("rows", rows, 1, n, "N")
    cols = -(-n // r)  # ceil(n / r)
    idx = torch.arange(n, device=device)
    right = (idx % cols != cols - 1) & (idx + 1 < n)
    down = idx + cols < n
    src = torch.cat([idx[right], idx[down]])
    dst = torch.cat([idx[right] + 1, idx[down] + cols])
    return _undirected(src, dst, n)


# ---------------------------------------------------------------------------
# Random topologies.
# ---------------------------------------------------------------------------
def small_world(
    num_agents: int,
    *,
    k: int = 4,
    p: float = 0.1,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""Connected Watts–Strogatz small-world graph, bidirectional.

    Starts from a ring where every agent is joined to its ``k // 2`` nearest
    neighbours on each side, then rewires each edge with probability ``p``
    (:func:`networkx.connected_watts_strogatz_graph`, up to 100 tries).

    Args:
        num_agents (int): Number of agents :math:`N \geq 3`.
        k (int): Ring neighbourhood, ``2 <= k <= N - 1``; odd ``k`` acts as
            ``k - 1``. (default: ``4``)
        p (float): Rewiring probability in ``[0, 1]``. (default: ``0.1``)
        generator (torch.Generator, optional): Source of the networkx seed.
            (default: a fresh generator seeded with ``0``)
        device (torch.device or str, optional): Output device. (default: CPU)

    Example:
        >>> small_world(6, k=2, p=0.0)  # p = 0 is the plain ring
        tensor([[1, 5, 0, 2, 1, 3, 2, 4, 3, 5, 0, 4],
                [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]])
    """
    n = _check_num_agents(num_agents)
    k = _check_int("k", k, 2, n - 1, "N - 1")
    p = _check_prob("p", p)
    seed = _derive_seed(_check_generator(generator))
    try:
        graph = nx.connected_watts_strogatz_graph(n, k, p, tries=100, seed=seed)
    except nx.NetworkXError as err:  # pragma: no cover - needs extreme p
        raise RuntimeError(
            f"small_world could not draw a connected graph for num_agents={n}, k={k}, p={p}: {err}"
        ) from err
    return from_networkx(graph, device=device)


def erdos_renyi(
    num_agents: int,
    *,
    p: float = 0.3,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""Undirected Erdős–Rényi :math:`G(N, p)` graph, both directions stored.

    Each of the :math:`N(N-1)/2` unordered pairs is joined independently with
    probability ``p``, drawn with ``torch.rand(..., generator=generator)``.
    The graph may be disconnected.

    Args:
        num_agents (int): Number of agents :math:`N \geq 2`.
        p (float): Edge probability in ``[0, 1]``. (default: ``0.3``)
        generator (torch.Generator, optional): Random source.
            (default: a fresh generator seeded with ``0``)
        device (torch.device or str, optional): Output device. (default: CPU)

    Example:
        >>> torch.equal(erdos_renyi(4, p=1.0), full(4))
        True
    """
    n = _check_num_agents(num_agents)
    p = _check_prob("p", p)
    gen = _check_generator(generator)
    src, dst = torch.triu_indices(n, n, offset=1, device=gen.device)  # [N(N-1)/2]
    keep = torch.rand(src.numel(), generator=gen, device=gen.device) < p
    device = torch.device("cpu") if device is None else device
    return _undirected(src[keep].to(device), dst[keep].to(device), n)


def random_regular(
    num_agents: int,
    *,
    d: int = 3,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""Uniformly random ``d``-regular graph, both directions stored.

    Every agent has exactly ``d`` neighbours
    (:func:`networkx.random_regular_graph`), so :math:`E = N d`.

    Args:
        num_agents (int): Number of agents :math:`N \geq 2`.
        d (int): Degree, ``1 <= d <= N - 1`` with ``N * d`` even.
            (default: ``3``)
        generator (torch.Generator, optional): Source of the networkx seed.
            (default: a fresh generator seeded with ``0``)
        device (torch.device or str, optional): Output device. (default: CPU)

    Example:
        >>> random_regular(6, d=3).shape
        torch.Size([2, 18])
    """
    n = _check_num_agents(num_agents)
    d = _check_int("d", d, 1, n - 1, "N - 1")
    if (n * d) % 2:
        raise ValueError(f"num_agents * d must be even for a d-regular graph, got num_agents={n}, d={d}")
    seed = _derive_seed(_check_generator(generator))
    graph = nx.random_regular_graph(d, n, seed=seed)
    return from_networkx(graph, device=device)
