from __future__ import annotations

import networkx as nx
import pytest
import torch

from gnncomm.topology import (
    DisconnectedGraphWarning,
    SelfLoopWarning,
    batch_edge_index,
    erdos_renyi,
    from_networkx,
    full,
    grid,
    knn,
    random_regular,
    ring,
    small_world,
    star,
    to_networkx,
    unbatch_edge_index,
)


# --------------------------------------------------------------------------
# Batching.
# --------------------------------------------------------------------------
def test_batch_edge_index_offsets_each_episode_and_unbatch_edge_index_undoes_it(assert_well_formed) -> None:
    N, B = 5, 3
    ei = ring(N)
    out = batch_edge_index(ei, N, B)
    assert out.shape == (2, B * ei.size(1))
    assert_well_formed(out, B * N)
    for b in range(B):
        chunk = out[:, b * ei.size(1) : (b + 1) * ei.size(1)]
        assert torch.equal(chunk - b * N, ei)
    assert torch.equal(unbatch_edge_index(out, N, B), ei.expand(B, 2, -1))


def test_batch_edge_index_takes_one_graph_per_episode(edge_set) -> None:
    N, B = 6, 4
    g = torch.Generator().manual_seed(0)
    # Different graphs with equal E = 2N; the flipped ring is not sorted by receiver.
    regular = [random_regular(N, d=2, generator=g) for _ in range(2)]
    per_episode = torch.stack([ring(N), ring(N).flip(0), *regular])  # [B, 2, E]
    assert not torch.equal(per_episode[2], per_episode[3])
    out = batch_edge_index(per_episode, N, B)
    assert out.shape == (2, B * 2 * N)
    assert bool((out[1, 1:] >= out[1, :-1]).all())
    for b in range(B):
        expected = edge_set(per_episode[b] + b * N)
        got = {(s, r) for s, r in edge_set(out) if b * N <= r < (b + 1) * N}
        assert got == expected


def test_batch_edge_index_keeps_the_distance_order_of_knn() -> None:
    pos = torch.rand(6, 2, generator=torch.Generator().manual_seed(4))
    ei = knn(pos, 3)
    out = batch_edge_index(ei, 6, 2)
    assert torch.equal(out, knn(pos.expand(2, 6, 2).contiguous(), 3))


def test_batch_edge_index_rejects_bad_shapes_dtypes_and_sizes() -> None:
    with pytest.raises(ValueError, match=r"B == batch_size=3, got B=2"):
        batch_edge_index(torch.zeros(2, 2, 4, dtype=torch.long), 5, 3)
    with pytest.raises(ValueError, match=r"edge_index must have shape \[2, E\] or \[B, 2, E\]"):
        batch_edge_index(torch.zeros(3, 4, dtype=torch.long), 5, 3)
    with pytest.raises(TypeError, match="edge_index must have an integer dtype"):
        batch_edge_index(torch.zeros(2, 4), 5, 3)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        batch_edge_index(ring(5), 5, 0)


# --------------------------------------------------------------------------
# networkx interop.
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [ring, full, star, grid, lambda n: small_world(n, k=2), erdos_renyi, random_regular],
    ids=["ring", "full", "star", "grid", "small_world", "erdos_renyi", "random_regular"],
)
def test_every_static_graph_survives_a_networkx_round_trip_unchanged(edge_set, make) -> None:
    ei = make(10)
    graph = to_networkx(ei, 10)
    assert isinstance(graph, nx.DiGraph) and graph.number_of_nodes() == 10
    back = from_networkx(graph)
    assert edge_set(back) == edge_set(ei)
    assert torch.equal(back, ei)  # both sorted by receiver, then sender


def test_edge_weights_survive_a_networkx_round_trip_and_heads_are_averaged() -> None:
    ei = full(4)
    w = torch.arange(ei.size(1), dtype=torch.float32)
    graph = to_networkx(ei, 4, edge_weight=w)
    back, back_w = from_networkx(graph, weight="weight")
    assert torch.equal(back, ei)
    assert torch.equal(back_w, w)
    # Multi-head weights are averaged.
    heads = torch.stack([w, 3 * w], dim=1)  # [E, 2]
    graph = to_networkx(ei, 4, edge_weight=heads)
    assert graph[ei[0, 1].item()][ei[1, 1].item()]["weight"] == pytest.approx(2 * w[1].item())


def test_from_networkx_relabels_nodes_stores_both_directions_and_merges_parallel_edges(edge_set) -> None:
    g = nx.Graph()
    g.add_edges_from([("c", "a"), ("b", "b"), ("a", "b")])  # self-loop dropped
    with pytest.warns(SelfLoopWarning, match=r"^graph: dropped 1 self-loop\(s\)"):
        assert edge_set(from_networkx(g)) == {(2, 0), (0, 2), (0, 1), (1, 0)}
    # Unsortable labels fall back to insertion order.
    h = nx.DiGraph()
    h.add_edges_from([("x", 1), (1, ("t",))])
    with pytest.warns(DisconnectedGraphWarning, match=r"hear nobody: 'x'$"):  # "x" talks, nobody talks to it
        assert edge_set(from_networkx(h)) == {(0, 1), (1, 2)}
    # Parallel edges merge, their weights sum.
    m = nx.MultiDiGraph([(0, 1, {"w": 1.0}), (0, 1, {"w": 2.5}), (1, 0)])
    ei, w = from_networkx(m, weight="w")
    assert ei.tolist() == [[1, 0], [0, 1]]
    assert w.tolist() == [1.0, 3.5]
    assert from_networkx(nx.empty_graph(3)).shape == (2, 0)


@pytest.mark.parametrize(
    "graph, dropped",
    [
        (nx.Graph([(0, 1), (1, 1)]), 1),
        (nx.DiGraph([(0, 1), (1, 0), (0, 0), (1, 1)]), 2),
        (nx.MultiGraph([(0, 1), (1, 1), (1, 1)]), 2),
        (nx.MultiDiGraph([(0, 1), (1, 0), (1, 1)]), 1),
    ],
    ids=["graph", "digraph", "multigraph", "multidigraph"],
)
def test_from_networkx_counts_the_self_loops_it_drops_in_one_warning(graph, dropped) -> None:
    with pytest.warns(SelfLoopWarning) as record:
        ei = from_networkx(graph)
    assert [str(w.message) for w in record] == [
        f"graph: dropped {dropped} self-loop(s); an edge_index holds none (an agent does not hear itself)"
    ]
    assert record[0].filename == __file__  # at the caller's line
    assert ei.tolist() == [[1, 0], [0, 1]]


def test_from_networkx_names_the_listeners_of_a_directed_graph_that_hear_nobody() -> None:
    star_out = nx.DiGraph([(0, i) for i in range(1, 4)])  # the hub talks, nobody talks to it
    with pytest.warns(DisconnectedGraphWarning) as record:
        from_networkx(star_out)
    assert [str(w.message) for w in record] == [
        "graph: 1 node(s) send but have no in-neighbour, so as listeners they hear nobody: 0"
    ]
    many = nx.DiGraph([(f"s{i:02d}", "hub") for i in range(12)] + [("hub", "s00")])
    with pytest.warns(DisconnectedGraphWarning, match=r"11 node\(s\) .*: 's01', 's02', .*, 's10', \.\.\.$"):
        from_networkx(many)


def test_from_networkx_is_silent_on_graphs_where_everyone_hears_someone() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_networkx(nx.cycle_graph(5, create_using=nx.DiGraph))
        from_networkx(nx.path_graph(4))  # undirected: every edge is heard both ways
        g = nx.DiGraph([(0, 1), (1, 0)])
        g.add_node(2)  # isolated: left to Config.with_graph's connected-components warning
        from_networkx(g)


def test_to_networkx_rejects_bad_edges_and_weights() -> None:
    with pytest.raises(ValueError, match=r"edge_index must be a tensor of shape \[2, E\]"):
        to_networkx(torch.zeros(3, 2, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="num_nodes=3"):
        to_networkx(torch.tensor([[0], [3]]), 3)
    with pytest.raises(ValueError, match=r"edge_weight must have shape \[E\] or \[E, H\] with E=6"):
        to_networkx(ring(3), 3, edge_weight=torch.ones(5))


def test_unbatch_edge_index_rejects_a_bad_shape_and_a_ragged_edge_count() -> None:
    with pytest.raises(ValueError, match=r"edge_index must have shape \[2, B \* E\], got \(3, 4\)"):
        unbatch_edge_index(torch.zeros(3, 4, dtype=torch.long), 5, 2)
    with pytest.raises(ValueError, match="edge_index must hold a multiple of batch_size=4 edges, got 6"):
        unbatch_edge_index(ring(3), 3, 4)
