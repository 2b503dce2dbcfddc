r"""Communication topologies as pure ``edge_index`` generators.

Every generator returns a :obj:`torch.long` tensor of shape ``[2, E]`` in
PyG's ``source_to_target`` layout: ``edge_index[0]`` holds the *senders*,
``edge_index[1]`` the *receivers*.  All outputs share four guarantees:

* no self-loops;
* edges are sorted by receiver, then by sender (:func:`knn` instead orders
  each receiver's senders by distance, ties going to the lower index);
* the result is deterministic: randomness only enters through an explicit
  ``generator: torch.Generator`` (``None`` means a fresh generator seeded
  with ``0``, never the global RNG);
* the tensor lives on ``device`` (static generators) or on the device of the
  input tensor (:func:`knn`, :func:`batch_edge_index`).

Static topologies (``ring``, ``full``, ``star``, ``grid``, ``small_world``,
``erdos_renyi``, ``random_regular``, and a user's ``custom`` edges) describe
one episode and are shared by all episodes of a batch through
:func:`batch_edge_index`.  The dynamic ``knn`` topology is recomputed from
positions and batches natively.

One job per module, imported one way (each only from those above it):

* :mod:`~gnncomm.topology._checks`: the input checks they share;
* :mod:`~gnncomm.topology.convert`: networkx interop (and the warnings about
  graphs it converts), batching of episodes;
* :mod:`~gnncomm.topology.generators`: the static generators;
* :mod:`~gnncomm.topology.nearest`: the exact :func:`knn`;
* :mod:`~gnncomm.topology.registry`: the names (the one source of truth for
  configs), :func:`check_topology` and :func:`build_topology`.

Example:
    >>> ring(4)
    tensor([[1, 3, 0, 2, 1, 3, 0, 2],
            [0, 0, 1, 1, 2, 2, 3, 3]])
    >>> build_topology("er", 5, p=0.0).shape
    torch.Size([2, 0])
"""

from __future__ import annotations

from gnncomm.topology.convert import (
    DisconnectedGraphWarning,
    SelfLoopWarning,
    batch_edge_index,
    from_networkx,
    to_networkx,
    unbatch_edge_index,
)
from gnncomm.topology.generators import erdos_renyi, full, grid, random_regular, ring, small_world, star
from gnncomm.topology.nearest import knn
from gnncomm.topology.registry import (
    DYNAMIC_TOPOLOGIES,
    TOPOLOGIES,
    TOPOLOGY_ALIASES,
    build_topology,
    check_topology,
    get_topology,
    has_degree,
    is_dynamic,
    topology_names,
)

__all__ = [
    "ring",
    "full",
    "star",
    "grid",
    "small_world",
    "erdos_renyi",
    "random_regular",
    "knn",
    "from_networkx",
    "to_networkx",
    "DisconnectedGraphWarning",
    "SelfLoopWarning",
    "batch_edge_index",
    "unbatch_edge_index",
    "TOPOLOGIES",
    "TOPOLOGY_ALIASES",
    "DYNAMIC_TOPOLOGIES",
    "get_topology",
    "build_topology",
    "check_topology",
    "is_dynamic",
    "has_degree",
    "topology_names",
]
