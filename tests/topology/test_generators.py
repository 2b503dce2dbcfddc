from __future__ import annotations

from collections.abc import Callable

import networkx as nx
import numpy as np
import pytest
import torch

from gnncomm.topology import (
    erdos_renyi,
    from_networkx,
    full,
    grid,
    random_regular,
    ring,
    small_world,
    star,
    to_networkx,
)

#: Every static generator, with the smallest extra arguments that make it valid for 6 agents.
GENERATORS: list[tuple[Callable[..., torch.Tensor], dict]] = [
    (ring, {}),
    (full, {}),
    (star, {}),
    (grid, {}),
    (small_world, {"k": 2}),
    (erdos_renyi, {}),
    (random_regular, {}),
]
IDS = [fn.__name__ for fn, _ in GENERATORS]
RANDOM = (small_world, erdos_renyi, random_regular)


# --------------------------------------------------------------------------
# Edge counts and structure.
# --------------------------------------------------------------------------
@pytest.mark.parametrize("n", [3, 4, 7, 10])
def test_edge_counts_follow_the_formulas(n: int) -> None:
    assert ring(n).size(1) == 2 * n
    assert full(n).size(1) == n * (n - 1)
    assert star(n).size(1) == 2 * (n - 1)
    assert random_regular(n, d=2).size(1) == 2 * n


@pytest.mark.parametrize(("fn", "kwargs"), GENERATORS, ids=IDS)
@pytest.mark.parametrize("n", [2, 3, 9, 16])
def test_every_generator_keeps_the_guarantees(assert_well_formed, fn, kwargs: dict, n: int) -> None:
    if fn is small_world and n < 3:
        pytest.skip("small_world needs k >= 2, i.e. N >= 3")
    if fn is random_regular:
        kwargs = {"d": 1 if n % 2 == 0 else 2}
    ei = fn(n, generator=torch.Generator().manual_seed(n), **kwargs) if fn in RANDOM else fn(n, **kwargs)
    assert_well_formed(ei, n)
    assert ei.size(1) > 0 or fn is erdos_renyi


def test_ring_of_two_agents_equals_the_full_graph() -> None:
    assert torch.equal(ring(2), full(2))
    assert ring(2).size(1) == 2


def test_ring_and_star_join_the_expected_neighbours(edge_set) -> None:
    forward = {(i, (i + 1) % 5) for i in range(5)}
    assert edge_set(ring(5)) == forward | {(r, s) for s, r in forward}
    assert edge_set(star(4)) == {(0, 1), (0, 2), (0, 3), (1, 0), (2, 0), (3, 0)}


@pytest.mark.parametrize("n", [2, 4, 5, 7, 10, 12, 17])
def test_grid_matches_the_networkx_lattice_and_stays_connected(edge_set, n: int) -> None:
    rows = int(np.floor(np.sqrt(n)))
    cols = -(-n // rows)
    lattice = nx.grid_2d_graph(rows, cols)
    keep = [(r, c) for r, c in lattice.nodes if r * cols + c < n]
    lattice = nx.relabel_nodes(lattice.subgraph(keep), {(r, c): r * cols + c for r, c in keep})
    ei = grid(n)
    assert edge_set(ei) == edge_set(from_networkx(lattice))
    assert nx.is_connected(to_networkx(ei, n).to_undirected())


def test_grid_takes_its_number_of_rows(edge_set) -> None:
    assert edge_set(grid(6, rows=1)) == edge_set(from_networkx(nx.path_graph(6)))
    assert grid(6, rows=2).size(1) == 2 * (2 * 2 + 3)  # 2x3 lattice has 7 undirected edges


def test_erdos_renyi_at_p_one_is_full_and_at_p_zero_is_empty() -> None:
    assert torch.equal(erdos_renyi(6, p=1.0), full(6))
    assert erdos_renyi(6, p=0.0).shape == (2, 0)


def test_random_topologies_are_symmetric_and_random_regular_is_regular(edge_set) -> None:
    g = torch.Generator().manual_seed(3)
    for ei in (small_world(12, k=4, p=0.3, generator=g), erdos_renyi(12, p=0.4, generator=g)):
        assert edge_set(ei) == {(r, s) for s, r in edge_set(ei)}
    rr = random_regular(12, d=3, generator=g)
    assert torch.equal(torch.bincount(rr[1], minlength=12), torch.full((12,), 3))
    sw = small_world(12, k=4, p=0.3, generator=g)
    assert nx.is_connected(to_networkx(sw, 12).to_undirected())


def test_small_world_without_rewiring_is_the_ring_lattice(edge_set) -> None:
    ei = small_world(8, k=4, p=0.0)
    expected = {(i, (i + s) % 8) for i in range(8) for s in (-2, -1, 1, 2)}
    assert edge_set(ei) == expected


# --------------------------------------------------------------------------
# Devices and randomness.
# --------------------------------------------------------------------------
@pytest.mark.parametrize(("fn", "kwargs"), GENERATORS, ids=IDS)
def test_every_generator_puts_its_output_on_the_requested_device(fn, kwargs: dict) -> None:
    for device in ("cpu", torch.device("cpu")):
        assert fn(6, device=device, **kwargs).device == torch.device("cpu")


def test_random_generators_are_deterministic_without_a_generator() -> None:
    assert torch.equal(small_world(20), small_world(20))
    assert torch.equal(erdos_renyi(20), erdos_renyi(20))
    assert torch.equal(random_regular(20), random_regular(20))


def test_random_generators_leave_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    small_world(20)
    erdos_renyi(20)
    random_regular(20)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    "make",
    [
        lambda g: small_world(30, k=4, p=0.5, generator=g),
        lambda g: erdos_renyi(30, p=0.3, generator=g),
        lambda g: random_regular(30, d=3, generator=g),
    ],
    ids=["small_world", "erdos_renyi", "random_regular"],
)
def test_equal_seeds_give_equal_graphs_and_other_seeds_other_graphs(make) -> None:
    a = make(torch.Generator().manual_seed(0))
    b = make(torch.Generator().manual_seed(0))
    c = make(torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert not (a.shape == c.shape and torch.equal(a, c))


# --------------------------------------------------------------------------
# Bad input.
# --------------------------------------------------------------------------
@pytest.mark.parametrize(("fn", "kwargs"), GENERATORS, ids=IDS)
def test_every_generator_rejects_a_bad_num_agents_and_takes_numpy_ints(fn, kwargs: dict) -> None:
    with pytest.raises(ValueError, match="num_agents must be >= 2, got 1"):
        fn(1)
    for bad in (3.0, True, "4", None):
        with pytest.raises(TypeError, match="num_agents must be an int"):
            fn(bad)
    assert fn(np.int64(6), **kwargs).dtype == torch.long


def test_generators_reject_parameters_out_of_range_with_the_range() -> None:
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"p must satisfy 0 <= p <= 1"):
            erdos_renyi(5, p=bad)
        with pytest.raises(ValueError, match=r"p must satisfy 0 <= p <= 1"):
            small_world(5, k=2, p=bad)
    with pytest.raises(TypeError, match="p must be a float"):
        erdos_renyi(5, p="0.3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"k must satisfy 2 <= k <= N - 1 = 4, got 5"):
        small_world(5, k=5)
    with pytest.raises(ValueError, match=r"d must satisfy 1 <= d <= N - 1 = 4, got 5"):
        random_regular(5, d=5)
    with pytest.raises(ValueError, match=r"num_agents \* d must be even.*num_agents=5, d=3"):
        random_regular(5, d=3)
    with pytest.raises(ValueError, match=r"rows must satisfy 1 <= rows <= N = 5, got 6"):
        grid(5, rows=6)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        erdos_renyi(5, generator=0)  # type: ignore[arg-type]
