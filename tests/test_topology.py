from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

import gnncomm.topology as topology
from gnncomm.topology import (
    DYNAMIC_TOPOLOGIES,
    TOPOLOGIES,
    TOPOLOGY_ALIASES,
    batch_edge_index,
    build_topology,
    erdos_renyi,
    from_networkx,
    full,
    get_topology,
    grid,
    is_dynamic,
    knn,
    random_regular,
    ring,
    small_world,
    star,
    to_networkx,
    unbatch_edge_index,
)

STATIC = sorted(set(TOPOLOGIES) - DYNAMIC_TOPOLOGIES)



def _assert_rows_match_numpy(ei, pos, k, rows):
    """Receivers ``rows`` of a single-episode kNN graph equal a NumPy reference (ties to lower index)."""
    N = pos.size(0)
    src = ei[0].view(N, k)
    p = pos.numpy()
    for i in rows:
        d = ((p - p[i]) ** 2).sum(axis=1)
        d[i] = np.inf
        expected = np.lexsort((np.arange(N), d))[:k]  # by distance, then index
        assert src[i].tolist() == expected.tolist()

def edge_set(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, edge_index.t().tolist()))


def assert_well_formed(edge_index: torch.Tensor, num_nodes: int, *, by_sender: bool = True) -> None:
    """dtype long, shape [2, E], in range, no self-loops, sorted by receiver (then sender)."""
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


def knn_reference(pos: np.ndarray, k: int) -> np.ndarray:
    """Brute-force double loop: [N, k] senders per receiver, ties -> lower index."""
    n = pos.shape[0]
    out = np.empty((n, k), dtype=np.int64)
    for i in range(n):
        dists = []
        for j in range(n):
            if j != i:
                diff = pos[j] - pos[i]
                dists.append((float((diff * diff).sum()), j))
        dists.sort()  # lexicographic: distance, then index
        out[i] = [j for _, j in dists[:k]]
    return out


def knn_as_rows(edge_index: torch.Tensor, num_nodes: int, k: int) -> np.ndarray:
    src, dst = edge_index
    assert torch.equal(dst, torch.arange(num_nodes).repeat_interleave(k))
    return src.view(num_nodes, k).numpy()


# --------------------------------------------------------------------------
# Edge counts and structure.
# --------------------------------------------------------------------------
@pytest.mark.parametrize("n", [3, 4, 7, 10])
def test_edge_counts(n: int) -> None:
    assert ring(n).size(1) == 2 * n
    assert full(n).size(1) == n * (n - 1)
    assert star(n).size(1) == 2 * (n - 1)
    assert random_regular(n, d=2).size(1) == 2 * n
    assert knn(torch.rand(n, 2), 2).size(1) == 2 * n
    assert knn(torch.rand(5, n, 2), 2).size(1) == 5 * n * 2


def test_ring_two_agents_is_full() -> None:
    assert torch.equal(ring(2), full(2))
    assert ring(2).size(1) == 2


def test_ring_and_star_neighbours() -> None:
    forward = {(i, (i + 1) % 5) for i in range(5)}
    assert edge_set(ring(5)) == forward | {(r, s) for s, r in forward}
    assert edge_set(star(4)) == {(0, 1), (0, 2), (0, 3), (1, 0), (2, 0), (3, 0)}


@pytest.mark.parametrize("n", [2, 4, 5, 7, 10, 12, 17])
def test_grid_matches_networkx_lattice(n: int) -> None:
    rows = int(np.floor(np.sqrt(n)))
    cols = -(-n // rows)
    lattice = nx.grid_2d_graph(rows, cols)
    keep = [(r, c) for r, c in lattice.nodes if r * cols + c < n]
    lattice = nx.relabel_nodes(lattice.subgraph(keep), {(r, c): r * cols + c for r, c in keep})
    ei = grid(n)
    assert edge_set(ei) == edge_set(from_networkx(lattice))
    assert nx.is_connected(to_networkx(ei, n).to_undirected())


def test_grid_rows() -> None:
    assert edge_set(grid(6, rows=1)) == edge_set(from_networkx(nx.path_graph(6)))
    assert grid(6, rows=2).size(1) == 2 * (2 * 2 + 3)  # 2x3 lattice has 7 undirected edges


def test_erdos_renyi_extremes() -> None:
    assert torch.equal(erdos_renyi(6, p=1.0), full(6))
    assert erdos_renyi(6, p=0.0).shape == (2, 0)


def test_random_topologies_are_symmetric_and_regular() -> None:
    g = torch.Generator().manual_seed(3)
    for ei in (small_world(12, k=4, p=0.3, generator=g), erdos_renyi(12, p=0.4, generator=g)):
        assert edge_set(ei) == {(r, s) for s, r in edge_set(ei)}
    rr = random_regular(12, d=3, generator=g)
    assert torch.equal(torch.bincount(rr[1], minlength=12), torch.full((12,), 3))
    sw = small_world(12, k=4, p=0.3, generator=g)
    assert nx.is_connected(to_networkx(sw, 12).to_undirected())


def test_small_world_without_rewiring_is_ring_lattice() -> None:
    ei = small_world(8, k=4, p=0.0)
    expected = {(i, (i + s) % 8) for i in range(8) for s in (-2, -1, 1, 2)}
    assert edge_set(ei) == expected


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
@pytest.mark.parametrize("n", [2, 3, 9, 16])
def test_every_registered_generator_is_well_formed(name: str, n: int) -> None:
    g = torch.Generator().manual_seed(n)
    kwargs: dict = {}
    if name == "knn":
        kwargs = {"pos": torch.rand(n, 2, generator=g), "k": min(3, n - 1)}
    elif name == "small_world":
        if n < 3:
            pytest.skip("small_world needs k >= 2, i.e. N >= 3")
        kwargs = {"k": 2}
    elif name == "random_regular":
        kwargs = {"d": 1 if n % 2 == 0 else 2}
    ei = build_topology(name, n, generator=g, **kwargs)
    assert_well_formed(ei, n, by_sender=name != "knn")
    assert ei.size(1) > 0 or name == "erdos_renyi"


@pytest.mark.parametrize("name", STATIC)
def test_device_argument(name: str) -> None:
    kwargs = {"k": 2} if name == "small_world" else {}
    for device in ("cpu", torch.device("cpu")):
        ei = build_topology(name, 6, device=device, **kwargs)
        assert ei.device == torch.device("cpu")


def test_generators_are_deterministic_without_generator() -> None:
    assert torch.equal(small_world(20), small_world(20))
    assert torch.equal(erdos_renyi(20), erdos_renyi(20))
    assert torch.equal(random_regular(20), random_regular(20))


def test_generators_leave_global_rng_alone() -> None:
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
def test_seeded_generators(make) -> None:
    a = make(torch.Generator().manual_seed(0))
    b = make(torch.Generator().manual_seed(0))
    c = make(torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert not (a.shape == c.shape and torch.equal(a, c))


# --------------------------------------------------------------------------
# knn against brute force.
# --------------------------------------------------------------------------
@pytest.mark.parametrize("n,k", [(2, 1), (5, 1), (12, 3), (30, 7), (17, 16)])
def test_knn_matches_brute_force(n: int, k: int) -> None:
    pos = torch.rand(n, 2, generator=torch.Generator().manual_seed(n))
    ei = knn(pos, k)
    assert_well_formed(ei, n, by_sender=False)
    assert np.array_equal(knn_as_rows(ei, n, k), knn_reference(pos.numpy(), k))


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 100])
def test_knn_chunking_is_invisible(chunk_size: int) -> None:
    pos = torch.rand(4, 23, 3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(knn(pos, 5, chunk_size=chunk_size), knn(pos, 5))


def test_knn_batched_matches_brute_force() -> None:
    B, N, k = 3, 11, 4
    pos = torch.rand(B, N, 2, generator=torch.Generator().manual_seed(7))
    ei = knn(pos, k)
    assert ei.shape == (2, B * N * k)
    assert_well_formed(ei, B * N, by_sender=False)
    rows = knn_as_rows(ei, B * N, k).reshape(B, N, k)
    for b in range(B):
        assert np.array_equal(rows[b] - b * N, knn_reference(pos[b].numpy(), k))
    # Batched output equals batching the per-episode graphs.
    per_episode = torch.stack([knn(pos[b], k) for b in range(B)])  # [B, 2, E]
    assert torch.equal(batch_edge_index(per_episode, N, B), ei)


def test_knn_exact_ties_go_to_lower_index() -> None:
    # 4 x 4 integer lattice: many exactly equal distances.
    xs, ys = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    pos = torch.stack([xs.flatten(), ys.flatten()], dim=1)  # [16, 2]
    for k in (1, 2, 3, 5, 8):
        rows = knn_as_rows(knn(pos, k), 16, k)
        assert np.array_equal(rows, knn_reference(pos.numpy(), k))
    # Corner 0 = (0, 0): neighbours (0, 1) = 1 and (1, 0) = 4 tie at distance 1.
    assert knn(pos, 1)[0, 0].item() == 1
    # Node 5 = (1, 1) has four neighbours at distance 1: 1, 4, 6, 9 -> lowest two.
    assert knn_as_rows(knn(pos, 2), 16, 2)[5].tolist() == [1, 4]
    # All agents at one point: everyone ties, so the k lowest other indices win.
    rows = knn_as_rows(knn(torch.zeros(6, 2), 3), 6, 3)
    assert rows.tolist() == [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2], [0, 1, 2], [0, 1, 2]]


def test_knn_ties_with_small_chunks_and_batches() -> None:
    pos = torch.tensor([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    batched = pos.expand(2, 5, 2)
    ei = knn(batched, 2, chunk_size=1)
    rows = knn_as_rows(ei, 10, 2).reshape(2, 5, 2)
    assert rows[0, 0].tolist() == [1, 2]
    assert rows[1, 0].tolist() == [6, 7]


def test_knn_float64_and_higher_dims() -> None:
    pos = torch.rand(15, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert np.array_equal(knn_as_rows(knn(pos, 4), 15, 4), knn_reference(pos.numpy(), 4))


def test_knn_ignores_autograd() -> None:
    pos = torch.rand(6, 2, requires_grad=True)
    ei = knn(pos, 2)
    assert not ei.requires_grad and ei.dtype == torch.long


def test_knn_large_n_no_quadratic_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    N, k = 10_000, 4
    largest = 0
    original = topology._sq_dist_block

    def recording(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        nonlocal largest
        out = original(x, y)
        largest = max(largest, out.numel())
        return out

    monkeypatch.setattr(topology, "_sq_dist_block", recording)
    pos = torch.rand(N, 2, generator=torch.Generator().manual_seed(0))
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities, profile_memory=True) as prof:
        ei = knn(pos, k, method="brute")
    assert ei.shape == (2, N * k)
    assert 0 < largest <= 2**25 < N * N
    # No single op allocated anything close to an N x N float matrix.
    biggest_alloc = max(e.cpu_memory_usage for e in prof.events() if e.name != "[memory]")
    assert 0 < biggest_alloc < N * N * 4 // 8

    # Spot-check rows against brute force at this size.
    _assert_rows_match_numpy(ei, pos, k, [0, 1, 4_999, 5_000, 8_191, 9_999])


# --------------------------------------------------------------------------
# knn: the grid method against brute force.
# --------------------------------------------------------------------------
GRID_MIN = topology._KNN_GRID_MIN_AGENTS


def assert_grid_is_brute(pos: torch.Tensor, k: int, **kwargs) -> torch.Tensor:
    """The grid edge_index equals brute force's exactly: senders, order, ties."""
    ei = knn(pos, k, method="grid", **kwargs)
    assert torch.equal(ei, knn(pos, k, method="brute", **kwargs))
    return ei


def clustered(n: int, generator: torch.Generator) -> torch.Tensor:
    """90% of the agents in a blob of radius ~1e-3, the rest spread over [0, 1]^2."""
    blob = 0.5 + 1e-3 * torch.randn(n * 9 // 10, 2, generator=generator)
    rest = torch.rand(n - blob.size(0), 2, generator=generator)
    return torch.cat([blob, rest])[torch.randperm(n, generator=generator)]


def swarms(n: int, generator: torch.Generator) -> torch.Tensor:
    """Eight Gaussian swarms whose spreads range from 1e-1 to 3e-4."""
    centres = torch.rand(8, 2, generator=generator)
    spread = 10 ** (-1 - 2.5 * torch.rand(8, 1, generator=generator))
    label = torch.randint(0, 8, (n,), generator=generator)
    return centres[label] + spread[label] * torch.randn(n, 2, generator=generator)


def lattice(side: int) -> torch.Tensor:
    xs, ys = torch.meshgrid(torch.arange(float(side)), torch.arange(float(side)), indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1)  # [side^2, 2]


@pytest.mark.parametrize("k", [1, 6])
def test_knn_grid_uniform_batched(k: int) -> None:
    B, N = 2, 3000
    pos = torch.rand(B, N, 2, generator=torch.Generator().manual_seed(k))
    ei = assert_grid_is_brute(pos, k)
    assert ei.shape == (2, B * N * k)
    assert_well_formed(ei, B * N, by_sender=False)


@pytest.mark.parametrize("make", [clustered, swarms])
@pytest.mark.parametrize("k", [4, 10])
def test_knn_grid_clustered_with_near_linear_work(monkeypatch: pytest.MonkeyPatch, make, k: int) -> None:
    N = 2000
    pos = make(N, torch.Generator().manual_seed(k))
    pairs = 0
    original = topology._sq_dist_block

    def counting(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        nonlocal pairs
        out = original(x, y)
        pairs += out.numel()
        return out

    monkeypatch.setattr(topology, "_sq_dist_block", counting)
    ei = knn(pos, k, method="grid")
    grid_pairs, pairs = pairs, 0
    assert torch.equal(ei, knn(pos, k, method="brute"))
    assert pairs == N * N  # brute force's count, for scale
    # The grid ranks O(k) candidates per agent (padded), not all N of them.
    assert grid_pairs < 30 * (k + 1) * N


def test_knn_grid_exact_ties_on_lattices() -> None:
    pos = lattice(40)  # 1600 agents, many exactly equal distances
    for k in (1, 4, 8):
        assert_grid_is_brute(pos, k)
    # Corner (0, 0): neighbours 1 = (0, 1) and 40 = (1, 0) tie; the lower wins.
    assert knn(pos, 1, method="grid")[0, 0].item() == 1
    # Extent 32: cell edges fall on lattice sites, so agents tie exactly with
    # the certified radius (a `<=` certificate would pick wrong ones here).
    shuffled = lattice(33)[torch.randperm(33 * 33, generator=torch.Generator().manual_seed(0))]
    for k in (1, 12):
        assert_grid_is_brute(shuffled, k)
    # Each site three times, shuffled: ties at distance 0 and on the lattice.
    triple = lattice(20).repeat(3, 1)[torch.randperm(1200, generator=torch.Generator().manual_seed(0))]
    for k in (2, 5):
        assert_grid_is_brute(triple, k)


def test_knn_grid_all_agents_identical() -> None:
    N, k = GRID_MIN + 76, 3
    rows = knn_as_rows(assert_grid_is_brute(torch.full((N, 2), 0.25), k), N, k)
    assert rows[:4].tolist() == [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]]
    assert (rows[4:] == [0, 1, 2]).all()
    # Batched: one episode collapsed to a point, the others spread out.
    gen = torch.Generator().manual_seed(0)
    pos = torch.stack([torch.zeros(N, 2), torch.rand(N, 2, generator=gen), clustered(N, gen)])
    assert_grid_is_brute(pos, 4)


def test_knn_grid_collinear() -> None:
    gen = torch.Generator().manual_seed(0)
    N = 1500
    t = torch.rand(N, generator=gen)
    for pos in (
        torch.stack([t, torch.zeros(N)], dim=1),  # horizontal
        torch.stack([torch.full((N,), -3.0), t], dim=1),  # vertical
        torch.stack([t, 2 * t + 1], dim=1),  # diagonal
        torch.stack([torch.arange(float(N)), torch.zeros(N)], dim=1),  # equal spacing: ties
    ):
        for k in (1, 4):
            assert_grid_is_brute(pos, k)


def test_knn_auto_switches_to_grid_at_the_crossover(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = topology._knn_grid

    def spy(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
        calls.append(x.shape)
        return original(x, k, chunk)

    monkeypatch.setattr(topology, "_knn_grid", spy)
    gen = torch.Generator().manual_seed(0)
    for n in (GRID_MIN - 1, GRID_MIN, GRID_MIN + 1):
        pos = torch.rand(n, 2, generator=gen)
        calls.clear()
        ei = knn(pos, 4)
        assert len(calls) == (n >= GRID_MIN)
        assert torch.equal(ei, knn(pos, 4, method="brute"))
        assert torch.equal(knn(pos, 4, method="grid"), ei)
    calls.clear()
    knn(torch.rand(GRID_MIN, 3, generator=gen), 4)  # D != 2: brute force
    assert calls == []


def test_knn_grid_large_n_linear_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    N, k = 10_000, 4
    largest = pairs = 0
    original = topology._sq_dist_block

    def recording(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        nonlocal largest, pairs
        out = original(x, y)
        largest = max(largest, out.numel())
        pairs += out.numel()
        return out

    monkeypatch.setattr(topology, "_sq_dist_block", recording)
    pos = torch.rand(N, 2, generator=torch.Generator().manual_seed(0))
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities, profile_memory=True) as prof:
        ei = knn(pos, k)  # auto: the grid
    assert ei.shape == (2, N * k)
    # Cache-sized candidate blocks and about 50 candidates per agent.
    assert 0 < largest <= 2**17 and pairs < 100 * N
    # No single op allocated more than a few bytes per agent pair of neighbours.
    biggest_alloc = max(e.cpu_memory_usage for e in prof.events() if e.name != "[memory]")
    assert 0 < biggest_alloc < 4 * 2**20 < N * N * 4 // 8

    _assert_rows_match_numpy(ei, pos, k, [0, 1, 4_999, 5_000, 8_191, 9_999])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_knn_grid_dtypes(dtype: torch.dtype) -> None:
    # float64 takes the two-pass selection; 16-bit floats have many ties.
    pos = swarms(1500, torch.Generator().manual_seed(3)).to(dtype)
    assert_grid_is_brute(pos, 5)


def test_knn_grid_extreme_scales() -> None:
    gen = torch.Generator().manual_seed(0)
    unit = torch.rand(GRID_MIN + 10, 2, generator=gen)
    assert_grid_is_brute(unit * 1e25, 4)  # squared distances overflow to inf
    assert_grid_is_brute(unit * 1e-30, 4)  # ... and underflow to 0
    assert_grid_is_brute(unit * 3 - 1e4, 4)  # far from the origin
    far = torch.cat([unit, torch.tensor([[1e30, 1e30], [-1e30, 0.0]])])
    assert_grid_is_brute(far, 4, chunk_size=5)


def test_knn_grid_nan_rows_stay_in_range() -> None:
    pos = torch.rand(GRID_MIN, 2, generator=torch.Generator().manual_seed(0))
    pos[7] = float("nan")
    ei = knn(pos, 3, method="grid")
    assert ei.shape == (2, GRID_MIN * 3)
    assert int(ei.min()) >= 0 and int(ei.max()) < GRID_MIN


def test_knn_grid_under_torch_compile() -> None:
    torch._dynamo.reset()
    pos = torch.rand(2, GRID_MIN, 2, generator=torch.Generator().manual_seed(0))
    compiled = torch.compile(knn, backend="eager")  # the grid path is one graph break
    assert torch.equal(compiled(pos, 4), knn(pos, 4, method="brute"))
    torch._dynamo.reset()


def test_knn_method_validation() -> None:
    with pytest.raises(ValueError, match=r"method must be one of \['auto', 'brute', 'grid'\], got 'kd'"):
        knn(torch.rand(5, 2), 2, method="kd")
    with pytest.raises(ValueError, match=r"method='grid' needs 2-D positions \(D = 2\), got D = 3"):
        knn(torch.rand(5, 3), 2, method="grid")
    assert torch.equal(build_topology("knn", 5, pos=torch.zeros(5, 2), k=2, method="grid"),
                       knn(torch.zeros(5, 2), 2))


# --------------------------------------------------------------------------
# torch.compile.
# --------------------------------------------------------------------------
def test_knn_compiles_without_graph_breaks() -> None:
    torch._dynamo.reset()
    pos = torch.rand(10, 2, generator=torch.Generator().manual_seed(0))
    explanation = torch._dynamo.explain(knn)(pos, 4)
    assert explanation.graph_break_count == 0
    compiled = torch.compile(knn, backend="eager", fullgraph=True)
    assert torch.equal(compiled(pos, 4), knn(pos, 4))
    batched = torch.rand(3, 10, 2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(compiled(batched, 4), knn(batched, 4))
    torch._dynamo.reset()


# --------------------------------------------------------------------------
# Batching.
# --------------------------------------------------------------------------
def test_batch_edge_index_offsets() -> None:
    N, B = 5, 3
    ei = ring(N)
    out = batch_edge_index(ei, N, B)
    assert out.shape == (2, B * ei.size(1))
    assert_well_formed(out, B * N)
    for b in range(B):
        chunk = out[:, b * ei.size(1) : (b + 1) * ei.size(1)]
        assert torch.equal(chunk - b * N, ei)
    assert torch.equal(unbatch_edge_index(out, N, B), ei.expand(B, 2, -1))


def test_batch_edge_index_per_episode() -> None:
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


def test_batch_edge_index_keeps_knn_order() -> None:
    pos = torch.rand(6, 2, generator=torch.Generator().manual_seed(4))
    ei = knn(pos, 3)
    out = batch_edge_index(ei, 6, 2)
    assert torch.equal(out, knn(pos.expand(2, 6, 2).contiguous(), 3))


def test_batch_edge_index_errors() -> None:
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
@pytest.mark.parametrize("name", STATIC)
def test_networkx_round_trip(name: str) -> None:
    kwargs = {"k": 2} if name == "small_world" else {}
    ei = build_topology(name, 10, **kwargs)
    graph = to_networkx(ei, 10)
    assert isinstance(graph, nx.DiGraph) and graph.number_of_nodes() == 10
    back = from_networkx(graph)
    assert edge_set(back) == edge_set(ei)
    assert torch.equal(back, ei)  # both sorted by receiver, then sender


def test_networkx_round_trip_weights() -> None:
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


def test_from_networkx_relabel_and_undirected() -> None:
    g = nx.Graph()
    g.add_edges_from([("c", "a"), ("b", "b"), ("a", "b")])  # self-loop dropped
    assert edge_set(from_networkx(g)) == {(2, 0), (0, 2), (0, 1), (1, 0)}
    # Unsortable labels fall back to insertion order.
    h = nx.DiGraph()
    h.add_edges_from([("x", 1), (1, ("t",))])
    assert edge_set(from_networkx(h)) == {(0, 1), (1, 2)}
    # Parallel edges merge, their weights sum.
    m = nx.MultiDiGraph([(0, 1, {"w": 1.0}), (0, 1, {"w": 2.5}), (1, 0)])
    ei, w = from_networkx(m, weight="w")
    assert ei.tolist() == [[1, 0], [0, 1]]
    assert w.tolist() == [1.0, 3.5]
    assert from_networkx(nx.empty_graph(3)).shape == (2, 0)


def test_to_networkx_errors() -> None:
    with pytest.raises(ValueError, match=r"edge_index must be a tensor of shape \[2, E\]"):
        to_networkx(torch.zeros(3, 2, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="num_nodes=3"):
        to_networkx(torch.tensor([[0], [3]]), 3)
    with pytest.raises(ValueError, match=r"edge_weight must have shape \[E\] or \[E, H\] with E=6"):
        to_networkx(ring(3), 3, edge_weight=torch.ones(5))


# --------------------------------------------------------------------------
# Registry.
# --------------------------------------------------------------------------
def test_registry_names_and_aliases() -> None:
    assert set(TOPOLOGIES) == {
        "ring", "full", "star", "grid", "small_world", "erdos_renyi", "random_regular", "knn",
    }
    assert get_topology("smallworld") is small_world
    assert get_topology("er") is erdos_renyi
    assert get_topology("knearest") is knn
    assert get_topology("Erdos-Renyi") is erdos_renyi
    for alias, target in TOPOLOGY_ALIASES.items():
        assert get_topology(alias) is TOPOLOGIES[target]
    assert is_dynamic("knn") and is_dynamic("knearest")
    assert not any(is_dynamic(name) for name in STATIC)


def test_build_topology_forwards_arguments() -> None:
    assert torch.equal(build_topology("ring", 5), ring(5))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(
        build_topology("er", 10, p=0.5, generator=g1), erdos_renyi(10, p=0.5, generator=g2)
    )
    assert torch.equal(build_topology("smallworld", 10, k=2, p=0.0), small_world(10, k=2, p=0.0))
    assert torch.equal(build_topology("random_regular", 8, d=4), random_regular(8, d=4))
    pos = torch.rand(7, 2)
    assert torch.equal(build_topology("knearest", 7, pos=pos, k=3), knn(pos, 3))


def test_build_topology_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown topology name 'hypercube'; allowed names: \["):
        build_topology("hypercube", 4)
    with pytest.raises(ValueError, match="unknown topology name"):
        get_topology("")
    with pytest.raises(TypeError, match="name must be a str"):
        get_topology(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs pos"):
        build_topology("knn", 4)
    with pytest.raises(ValueError, match=r"pos must have shape \[num_agents=4, D\]"):
        build_topology("knn", 4, pos=torch.rand(5, 2))
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['q'\]"):
        build_topology("ring", 4, q=1)


# --------------------------------------------------------------------------
# Bad input.
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", STATIC)
def test_num_agents_validation(name: str) -> None:
    fn = TOPOLOGIES[name]
    with pytest.raises(ValueError, match="num_agents must be >= 2, got 1"):
        fn(1)
    for bad in (3.0, True, "4", None):
        with pytest.raises(TypeError, match="num_agents must be an int"):
            fn(bad)
    assert fn(np.int64(6), **({"k": 2} if name == "small_world" else {})).dtype == torch.long


def test_knn_k_validation() -> None:
    pos = torch.rand(5, 2)
    for bad in (5, 6, 0, -1):
        with pytest.raises(ValueError, match=rf"k must satisfy 1 <= k <= N - 1 = 4, got {bad}"):
            knn(pos, bad)
    with pytest.raises(TypeError, match="k must be an int"):
        knn(pos, 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunk_size must be >= 1, got 0"):
        knn(pos, 2, chunk_size=0)


def test_knn_pos_validation() -> None:
    with pytest.raises(ValueError, match=r"pos must have shape \[N, D\] or \[B, N, D\], got \(5"):
        knn(torch.rand(5), 2)
    with pytest.raises(ValueError, match=r"pos must have shape"):
        knn(torch.rand(1, 2, 5, 2), 1)
    with pytest.raises(TypeError, match="pos must have a floating-point dtype, got torch.int64"):
        knn(torch.arange(10).view(5, 2), 2)
    with pytest.raises(TypeError, match="pos must be a torch.Tensor"):
        knn(np.zeros((5, 2)), 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pos must hold at least 2 agents"):
        knn(torch.rand(1, 2), 1)


def test_parameter_validation() -> None:
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
