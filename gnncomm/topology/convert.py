"""Conversion between ``edge_index`` and networkx, and batching of disjoint episode graphs."""

from __future__ import annotations

import warnings
from typing import overload

import networkx as nx
import torch
from torch import Tensor

from gnncomm.topology._checks import _check_int, _check_num_agents, _describe

__all__ = [
    "DisconnectedGraphWarning",
    "SelfLoopWarning",
    "from_networkx",
    "to_networkx",
    "batch_edge_index",
    "unbatch_edge_index",
]


class DisconnectedGraphWarning(UserWarning):
    """Some agents can never hear others: the graph has several connected components, or a listener has no
    in-neighbour."""


class SelfLoopWarning(UserWarning):
    """A graph's self-loops were dropped: an ``edge_index`` never holds one (an agent does not hear itself)."""


def _coalesce(senders: Tensor, receivers: Tensor, num_nodes: int) -> Tensor:
    """Drop self-loops and duplicates; sort by receiver, then sender."""
    keep = senders != receivers
    key = receivers[keep] * num_nodes + senders[keep]
    key = torch.unique(key, sorted=True)
    return torch.stack([key % num_nodes, key // num_nodes])


# ---------------------------------------------------------------------------
# networkx interop.
# ---------------------------------------------------------------------------
@overload
def from_networkx(graph: nx.Graph, *, weight: None = None, device: torch.device | str | None = None) -> Tensor: ...


@overload
def from_networkx(
    graph: nx.Graph, *, weight: str, device: torch.device | str | None = None
) -> tuple[Tensor, Tensor]: ...


def from_networkx(
    graph: nx.Graph,
    *,
    weight: str | None = None,
    device: torch.device | str | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""Convert a networkx graph to a sorted ``edge_index``.

    Nodes are relabelled ``0 .. N-1`` in ``sorted(graph.nodes)`` order when
    the labels are sortable, otherwise in insertion order.  Undirected edges
    yield both directions, self-loops are dropped (with a
    :class:`SelfLoopWarning` that counts them) and parallel edges of
    multigraphs are merged (their weights summed, as networkx does for
    adjacency matrices).  In a directed graph, nodes that send but have no
    in-neighbour (listeners that hear nobody) give a
    :class:`DisconnectedGraphWarning` naming them; an isolated node is left
    to the connected-components check of :meth:`gnncomm.Config.with_graph`.

    Args:
        graph (networkx.Graph): Any networkx graph (directed or not).
        weight (str, optional): If given, also return the edge attribute of
            that name as a float tensor ``[E]``; edges without it count ``1.0``.
        device (torch.device or str, optional): Output device. (default: CPU)

    Returns:
        ``edge_index`` LongTensor ``[2, E]``, or ``(edge_index, edge_weight)``
        when ``weight`` is given.

    Example:
        >>> g = nx.Graph([("b", "a"), ("a", "c")])
        >>> from_networkx(g)
        tensor([[1, 2, 0, 0],
                [0, 0, 1, 2]])
        >>> from_networkx(nx.DiGraph([(0, 1, {"w": 0.5}), (1, 0)]), weight="w")  # no "w": 1.0
        (tensor([[1, 0],
                [0, 1]]), tensor([1.0000, 0.5000]))
    """
    if not isinstance(graph, nx.Graph):
        raise TypeError(f"graph must be a networkx graph, got {type(graph).__name__}")
    nodes = list(graph.nodes)
    try:
        nodes = sorted(nodes)
    except TypeError:  # unorderable labels: keep insertion order
        pass
    index = {node: i for i, node in enumerate(nodes)}
    n = max(len(nodes), 1)
    src, dst, wts = [], [], []
    for u, v, attr in graph.edges(data=True):
        w = float(attr.get(weight, 1.0)) if weight is not None else 1.0
        src.append(index[u])
        dst.append(index[v])
        wts.append(w)
        if not graph.is_directed():
            src.append(index[v])
            dst.append(index[u])
            wts.append(w)
    _warn_about(graph, nodes, src, dst)
    senders = torch.tensor(src, dtype=torch.long, device=device)
    receivers = torch.tensor(dst, dtype=torch.long, device=device)
    if weight is None:
        return _coalesce(senders, receivers, n)
    values = torch.tensor(wts, dtype=torch.get_default_dtype(), device=device)
    keep = senders != receivers
    key, inverse = torch.unique(receivers[keep] * n + senders[keep], sorted=True, return_inverse=True)
    summed = values.new_zeros(key.numel()).index_add_(0, inverse, values[keep])
    return torch.stack([key % n, key // n]), summed


def _warn_about(graph: nx.Graph, nodes: list, src: list[int], dst: list[int]) -> None:
    """Warn (one line each) about the self-loops :func:`from_networkx` drops and a directed graph's deaf listeners."""
    loops = sum(s == r for s, r in zip(src, dst)) // (1 if graph.is_directed() else 2)
    if loops:
        warnings.warn(
            f"graph: dropped {loops} self-loop(s); an edge_index holds none (an agent does not hear itself)",
            SelfLoopWarning,
            stacklevel=3,
        )
    if graph.is_directed():
        hears = {r for s, r in zip(src, dst) if s != r}
        deaf = [nodes[i] for i in sorted({s for s, r in zip(src, dst) if s != r} - hears)]
        if deaf:
            shown = ", ".join(repr(node) for node in deaf[:10]) + (", ..." if len(deaf) > 10 else "")
            warnings.warn(
                f"graph: {len(deaf)} node(s) send but have no in-neighbour, so as listeners they hear nobody: {shown}",
                DisconnectedGraphWarning,
                stacklevel=3,
            )


def to_networkx(edge_index: Tensor, num_nodes: int, *, edge_weight: Tensor | None = None) -> nx.DiGraph:
    r"""Convert ``edge_index`` (sender, receiver) to a :class:`networkx.DiGraph`.

    Args:
        edge_index (LongTensor): ``[2, E]`` edges ``sender -> receiver``.
        num_nodes (int): Number of nodes; nodes ``0 .. num_nodes-1`` are all
            added, isolated ones included.
        edge_weight (Tensor, optional): ``[E]`` or ``[E, H]`` (averaged over
            the ``H`` heads), stored as the ``"weight"`` edge attribute.
            A duplicated edge keeps the weight of its last occurrence.

    Example:
        >>> from gnncomm.topology import ring
        >>> g = to_networkx(ring(3), 3, edge_weight=torch.ones(6, 2))
        >>> sorted(g.edges(data="weight"))[:2]
        [(0, 1, 1.0), (0, 2, 1.0)]
    """
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must be a tensor of shape [2, E], got {_describe(edge_index)}")
    if edge_index.is_floating_point() or edge_index.is_complex():
        raise TypeError(f"edge_index must have an integer dtype, got {edge_index.dtype}")
    n = _check_int("num_nodes", num_nodes, 0)
    E = edge_index.size(1)
    pairs = edge_index.t().tolist()
    if pairs and not all(0 <= i < n for pair in pairs for i in pair):
        raise ValueError(f"edge_index entries must satisfy 0 <= index < num_nodes={n}")
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    if edge_weight is None:
        graph.add_edges_from(map(tuple, pairs))
        return graph
    if not isinstance(edge_weight, Tensor) or edge_weight.dim() not in (1, 2) or edge_weight.size(0) != E:
        raise ValueError(f"edge_weight must have shape [E] or [E, H] with E={E}, got {_describe(edge_weight)}")
    w = edge_weight.detach()
    if w.dim() == 2:
        w = w.float().mean(dim=1)  # [E, H] -> [E]
    graph.add_weighted_edges_from((s, r, float(x)) for (s, r), x in zip(pairs, w.tolist()))
    return graph


# ---------------------------------------------------------------------------
# Batching of disjoint episodes.
# ---------------------------------------------------------------------------
def batch_edge_index(edge_index: Tensor, num_agents: int, batch_size: int) -> Tensor:
    r"""Stack ``batch_size`` disjoint episode graphs into one ``edge_index``.

    Node ``i`` of episode ``b`` becomes ``b * num_agents + i``.  The output
    is stably sorted by receiver, so an input sorted by receiver keeps its
    per-receiver sender order (e.g. the distance order of
    :func:`~gnncomm.topology.knn`).  Node indices are not range-checked (that
    would need a device sync).

    Args:
        edge_index (LongTensor): One graph ``[2, E]`` shared by all episodes,
            or one graph per episode ``[B, 2, E]`` (same ``E`` for each).
        num_agents (int): Agents per episode :math:`N \geq 2`.
        batch_size (int): Number of episodes :math:`B \geq 1`; must equal the
            leading dimension of a ``[B, 2, E]`` input.

    Returns:
        LongTensor ``[2, B * E]`` on the device of ``edge_index``.

    Example:
        >>> batch_edge_index(torch.tensor([[1], [0]]), 3, 2)
        tensor([[1, 4],
                [0, 3]])
    """
    n = _check_num_agents(num_agents)
    b = _check_int("batch_size", batch_size, 1)
    if not isinstance(edge_index, Tensor):
        raise TypeError(f"edge_index must be a torch.Tensor, got {type(edge_index).__name__}")
    if edge_index.is_floating_point() or edge_index.is_complex():
        raise TypeError(f"edge_index must have an integer dtype, got {edge_index.dtype}")
    if edge_index.dim() == 2 and edge_index.size(0) == 2:
        per_episode = edge_index.unsqueeze(0).expand(b, 2, edge_index.size(1))
    elif edge_index.dim() == 3 and edge_index.size(1) == 2:
        if edge_index.size(0) != b:
            raise ValueError(f"edge_index of shape [B, 2, E] must have B == batch_size={b}, got B={edge_index.size(0)}")
        per_episode = edge_index
    else:
        raise ValueError(f"edge_index must have shape [2, E] or [B, 2, E], got {tuple(edge_index.shape)}")
    offset = torch.arange(b, device=edge_index.device).mul(n).view(b, 1, 1)
    out = (per_episode.long() + offset).permute(1, 0, 2).reshape(2, -1)  # [2, B * E]
    order = torch.argsort(out[1], stable=True)
    return out[:, order]


def unbatch_edge_index(edge_index: Tensor, num_agents: int, batch_size: int) -> Tensor:
    r"""Inverse of :func:`batch_edge_index` for graphs with equal edge counts.

    Assumes the batched graph is sorted by receiver (as every function of
    :mod:`gnncomm.topology` returns it) and that every episode has the same
    number of edges, which is true for batched static topologies and for
    :func:`~gnncomm.topology.knn`.

    Args:
        edge_index (LongTensor): ``[2, B * E]`` batched edges.
        num_agents (int): Agents per episode :math:`N \geq 2`.
        batch_size (int): Number of episodes :math:`B \geq 1`.

    Returns:
        LongTensor ``[B, 2, E]`` with local node indices ``0 .. N-1``.

    Example:
        >>> from gnncomm.topology import ring
        >>> ei = ring(3)
        >>> torch.equal(unbatch_edge_index(batch_edge_index(ei, 3, 4), 3, 4)[2], ei)
        True
    """
    n = _check_num_agents(num_agents)
    b = _check_int("batch_size", batch_size, 1)
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape [2, B * E], got {_describe(edge_index)}")
    if edge_index.size(1) % b:
        raise ValueError(f"edge_index must hold a multiple of batch_size={b} edges, got {edge_index.size(1)}")
    out = edge_index.view(2, b, -1).permute(1, 0, 2)  # [B, 2, E]
    offset = torch.arange(b, device=edge_index.device).mul(n).view(b, 1, 1)
    return out - offset
