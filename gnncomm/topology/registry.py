r"""The topology name registry: the one source of truth for the names a config may give.

A name is a generator of :data:`TOPOLOGIES`, an alias of :data:`TOPOLOGY_ALIASES`, or ``"custom"``
(a user's fixed graph, given as edges).  Names are matched case-insensitively, with ``-`` read as
``_``.  :func:`check_topology` rejects impossible combinations before anything is built;
:func:`build_topology` builds one episode's graph from a name.

Example:
    >>> build_topology("random_regular", 6, k=2).shape  # k is the degree d of random_regular
    torch.Size([2, 12])
    >>> build_topology("custom", 3, edges=[[2, 0], [1, 1]])
    tensor([[0, 2],
            [1, 1]])
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from gnncomm.topology._checks import _check_num_agents, _describe
from gnncomm.topology.generators import erdos_renyi, full, grid, random_regular, ring, small_world, star
from gnncomm.topology.nearest import knn

__all__ = [
    "TOPOLOGIES",
    "TOPOLOGY_ALIASES",
    "DYNAMIC_TOPOLOGIES",
    "TOPOLOGY_DEGREES",
    "CUSTOM_TOPOLOGY",
    "Degree",
    "topology_names",
    "get_topology",
    "is_dynamic",
    "has_degree",
    "check_topology",
    "build_topology",
]


class Degree(NamedTuple):
    """The degree (neighbours per agent) of a generator, which :func:`build_topology`'s ``k`` feeds."""

    parameter: str
    """Name of the generator's degree parameter, e.g. ``"d"`` for :func:`random_regular`."""
    low: int = 1
    """Smallest degree the generator accepts; the largest is ``num_agents - 1``."""
    even_total: bool = False
    """Whether ``num_agents * degree`` must be even (a regular graph has ``N k / 2`` undirected edges)."""


#: Canonical name -> generator.  Static generators take ``num_agents``;
#: ``"knn"`` takes ``pos`` and is recomputed every step.
TOPOLOGIES: dict[str, Callable[..., Tensor]] = {
    "ring": ring,
    "full": full,
    "star": star,
    "grid": grid,
    "small_world": small_world,
    "erdos_renyi": erdos_renyi,
    "random_regular": random_regular,
    "knn": knn,
}

#: Alternative spellings accepted wherever a name is.
TOPOLOGY_ALIASES: dict[str, str] = {
    "smallworld": "small_world",
    "er": "erdos_renyi",
    "knearest": "knn",
}

#: Topologies that depend on agent positions and change during an episode.
DYNAMIC_TOPOLOGIES: frozenset[str] = frozenset({"knn"})

#: Generators that have a degree, and which of their parameters it is.
TOPOLOGY_DEGREES: dict[str, Degree] = {
    "small_world": Degree("k", low=2),
    "random_regular": Degree("d", even_total=True),
    "knn": Degree("k"),
}

#: A user's fixed graph: :func:`build_topology` takes its ``edges``; it has no generator.
CUSTOM_TOPOLOGY = "custom"


def topology_names() -> tuple[str, ...]:
    """Every accepted topology name: the generators, ``"custom"``, then the aliases.

    Example:
        >>> topology_names()[-4:]
        ('custom', 'smallworld', 'er', 'knearest')
    """
    return (*TOPOLOGIES, CUSTOM_TOPOLOGY, *TOPOLOGY_ALIASES)


def _canonical(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"topology name must be a str, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    key = TOPOLOGY_ALIASES.get(key, key)
    if key not in TOPOLOGIES and key != CUSTOM_TOPOLOGY:
        raise ValueError(f"topology must be one of {list(topology_names())}, got {name!r}")
    return key


def get_topology(name: str) -> Callable[..., Tensor]:
    """Return the generator registered under ``name`` (aliases allowed).

    ``"custom"`` has no generator: build it with :func:`build_topology`.

    Example:
        >>> get_topology("ER") is erdos_renyi
        True
    """
    key = _canonical(name)
    if key == CUSTOM_TOPOLOGY:
        raise ValueError(
            "topology 'custom' has no generator; build it with "
            "build_topology('custom', num_agents, edges=[[senders...], [receivers...]])"
        )
    return TOPOLOGIES[key]


def is_dynamic(name: str) -> bool:
    """Whether topology ``name`` is rebuilt from positions at every step.

    Example:
        >>> is_dynamic("knearest"), is_dynamic("ring"), is_dynamic("custom")
        (True, False, False)
    """
    return _canonical(name) in DYNAMIC_TOPOLOGIES


def has_degree(name: str) -> bool:
    """Whether topology ``name`` has a degree (:data:`TOPOLOGY_DEGREES`), which ``k`` feeds; the others ignore ``k``.

    Example:
        >>> has_degree("knearest"), has_degree("small_world"), has_degree("full"), has_degree("custom")
        (True, True, False, False)
    """
    return _canonical(name) in TOPOLOGY_DEGREES


def check_topology(name: str, num_agents: int, k: int) -> None:
    """Raise a one-line error naming the config field if ``name`` cannot be built with these sizes.

    Checks what is known before building: the name (``topology``), ``num_agents`` and, for
    topologies with a degree (see :data:`TOPOLOGY_DEGREES`), ``k`` (``k_neighbors``): its range,
    and for :func:`random_regular` that ``num_agents * k`` is even.  ``k`` is ignored by the
    other topologies, and the ``edges`` of ``"custom"`` are checked by :func:`build_topology`.

    Example:
        >>> check_topology("knn", 10, 4)
        >>> check_topology("random_regular", 5, 3)
        Traceback (most recent call last):
        ...
        ValueError: k_neighbors=3 with num_agents=5 is impossible for topology 'random_regular': N * k must be even
    """
    key = _canonical(name)
    n = _check_num_agents(num_agents)
    degree = TOPOLOGY_DEGREES.get(key)
    if degree is None:
        return
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k_neighbors must be an int, got {k!r} of type {type(k).__name__}")
    if not degree.low <= k <= n - 1:
        raise ValueError(
            f"k_neighbors must be in [{degree.low}, num_agents - 1 = {n - 1}] for topology {key!r}, got {k}"
        )
    if degree.even_total and (n * k) % 2:
        raise ValueError(f"k_neighbors={k} with num_agents={n} is impossible for topology {key!r}: N * k must be even")


def _custom(edges: Sequence[Sequence[int]] | Tensor | None, n: int, device: torch.device | str | None) -> Tensor:
    """A user's edges ``[[senders...], [receivers...]]`` as LongTensor ``[2, E]``, sorted by receiver, then sender."""
    need = "topology 'custom' needs edges [[senders...], [receivers...]] with at least one edge"
    if edges is None:
        raise ValueError(f"{need}, got None")
    try:
        single = torch.as_tensor(edges, device=device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{need}, got {_describe(edges)}: {err}") from err
    if single.dim() != 2 or single.size(0) != 2 or single.size(1) == 0:
        raise ValueError(f"{need}, got shape {tuple(single.shape)}")
    if single.is_floating_point() or single.is_complex() or single.dtype == torch.bool:
        raise TypeError(f"edges must hold int agent ids, got dtype {single.dtype}")
    single = single.long()
    # Checked once, when the graph is built: batching would turn a bad id into a cross-episode edge.
    if bool(((single < 0) | (single >= n)).any()):
        raise ValueError(f"edges agent ids must be in [0, num_agents - 1 = {n - 1}]")
    if bool((single[0] == single[1]).any()):
        raise ValueError("edges must not contain self-loops")
    return single[:, torch.argsort(single[1] * n + single[0])]  # sorted by receiver, then sender


def build_topology(
    name: str,
    num_agents: int,
    *,
    pos: Tensor | None = None,
    k: int = 4,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    edges: Sequence[Sequence[int]] | Tensor | None = None,
    **kwargs: Any,
) -> Tensor:
    r"""Build topology ``name`` for one episode of ``num_agents`` agents.

    Every argument reaches the generator by name.  ``k`` is the degree of the
    topologies that have one (:data:`TOPOLOGY_DEGREES`): ``knn``'s and
    ``small_world``'s ``k``, ``random_regular``'s ``d``; the others ignore it.
    Random topologies receive ``generator``; extra keyword arguments such as
    ``p`` or ``rows`` are forwarded.  ``"knn"`` needs ``pos`` of shape
    ``[num_agents, D]`` (or ``[B, num_agents, D]``, which yields the batched
    graph); other topologies ignore ``pos``.  ``"custom"`` returns ``edges``,
    sorted by receiver, then sender (duplicates kept); other topologies
    ignore ``edges``.

    Args:
        name (str): A name of :func:`topology_names`.
        num_agents (int): Number of agents :math:`N \geq 2`.
        pos (Tensor, optional): Positions, required for ``"knn"``.
        k (int): Degree of ``"knn"``, ``"small_world"`` and ``"random_regular"``.
            (default: ``4``)
        generator (torch.Generator, optional): Random source for random
            topologies. (default: a fresh generator seeded with ``0``)
        device (torch.device or str, optional): Output device.
            (default: CPU, ``pos.device`` for ``"knn"``, ``edges.device`` for
            a tensor of ``"custom"`` edges)
        edges (list or LongTensor, optional): ``[[senders...], [receivers...]]``
            of one episode, required for ``"custom"``: agent ids in
            ``[0, N - 1]``, no self-loops.
        **kwargs: Forwarded to the generator.

    Returns:
        LongTensor ``[2, E]`` (``[2, B N k]`` for batched ``"knn"`` positions).

    Example:
        >>> build_topology("star", 3)
        tensor([[1, 2, 0, 0],
                [0, 0, 1, 2]])
        >>> build_topology("knn", 3, pos=torch.rand(3, 2), k=2).shape
        torch.Size([2, 6])
    """
    key = _canonical(name)
    n = _check_num_agents(num_agents)
    if key == CUSTOM_TOPOLOGY:
        if kwargs:
            raise TypeError(f"unexpected keyword argument(s) {sorted(kwargs)} for topology 'custom'; allowed: []")
        return _custom(edges, n, device)
    fn = TOPOLOGIES[key]
    degree = TOPOLOGY_DEGREES.get(key)
    if degree is not None and degree.parameter in kwargs:
        raise TypeError(
            f"topology {key!r} takes its degree from k, not {degree.parameter}; "
            f"got {degree.parameter}={kwargs[degree.parameter]!r}"
        )
    params = inspect.signature(fn).parameters
    own = {"num_agents", "pos", "device", "generator", *([degree.parameter] if degree else [])}
    extra = sorted(p for p in params if p not in own)
    unknown = sorted(set(kwargs) - set(extra))
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {unknown} for topology {key!r}; allowed: {extra}")
    if degree is not None:
        kwargs[degree.parameter] = k
    if key in DYNAMIC_TOPOLOGIES:
        if pos is None:
            raise ValueError(f"topology {key!r} needs pos of shape [num_agents, D], got None")
        if not isinstance(pos, Tensor) or pos.dim() not in (2, 3) or pos.size(-2) != n:
            raise ValueError(f"pos must have shape [num_agents={n}, D] or [B, {n}, D], got {_describe(pos)}")
        edge_index = fn(pos, **kwargs)
        return edge_index if device is None else edge_index.to(device)
    if "generator" in params:
        kwargs["generator"] = generator
    return fn(n, device=device, **kwargs)
