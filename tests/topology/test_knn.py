from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gnncomm.topology import batch_edge_index, build_topology, knn, nearest

GRID_MIN = nearest._KNN_GRID_MIN_AGENTS


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


def assert_rows_match_numpy(ei: torch.Tensor, pos: torch.Tensor, k: int, rows: list[int]) -> None:
    """Receivers ``rows`` of a single-episode kNN graph equal a NumPy reference (ties to lower index)."""
    N = pos.size(0)
    src = ei[0].view(N, k)
    p = pos.numpy()
    for i in rows:
        d = ((p - p[i]) ** 2).sum(axis=1)
        d[i] = np.inf
        expected = np.lexsort((np.arange(N), d))[:k]  # by distance, then index
        assert src[i].tolist() == expected.tolist()


# --------------------------------------------------------------------------
# knn against brute force.
# --------------------------------------------------------------------------
@pytest.mark.parametrize("n", [3, 4, 7, 10])
def test_knn_gives_k_edges_per_agent_in_every_episode(n: int) -> None:
    assert knn(torch.rand(n, 2), 2).size(1) == 2 * n
    assert knn(torch.rand(5, n, 2), 2).size(1) == 5 * n * 2


@pytest.mark.parametrize("n,k", [(2, 1), (5, 1), (12, 3), (30, 7), (17, 16)])
def test_knn_matches_a_brute_force_double_loop(assert_well_formed, n: int, k: int) -> None:
    pos = torch.rand(n, 2, generator=torch.Generator().manual_seed(n))
    ei = knn(pos, k)
    assert_well_formed(ei, n, by_sender=False)
    assert np.array_equal(knn_as_rows(ei, n, k), knn_reference(pos.numpy(), k))


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 100])
def test_knn_chunking_does_not_change_the_result(chunk_size: int) -> None:
    pos = torch.rand(4, 23, 3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(knn(pos, 5, chunk_size=chunk_size), knn(pos, 5))


def test_batched_knn_matches_brute_force_and_batching_per_episode_graphs(assert_well_formed) -> None:
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


def test_knn_breaks_exact_ties_toward_the_lower_index() -> None:
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


def test_knn_breaks_ties_the_same_way_in_small_chunks_and_batches() -> None:
    pos = torch.tensor([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    batched = pos.expand(2, 5, 2)
    ei = knn(batched, 2, chunk_size=1)
    rows = knn_as_rows(ei, 10, 2).reshape(2, 5, 2)
    assert rows[0, 0].tolist() == [1, 2]
    assert rows[1, 0].tolist() == [6, 7]


def test_knn_handles_float64_and_more_than_two_dimensions() -> None:
    pos = torch.rand(15, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert np.array_equal(knn_as_rows(knn(pos, 4), 15, 4), knn_reference(pos.numpy(), 4))


def test_knn_returns_long_edges_outside_autograd() -> None:
    pos = torch.rand(6, 2, requires_grad=True)
    ei = knn(pos, 2)
    assert not ei.requires_grad and ei.dtype == torch.long


def test_brute_force_knn_at_large_n_never_allocates_quadratic_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    N, k = 10_000, 4
    largest = 0
    original = nearest._sq_dist_block

    def recording(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        nonlocal largest
        out = original(x, y)
        largest = max(largest, out.numel())
        return out

    monkeypatch.setattr(nearest, "_sq_dist_block", recording)
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
    assert_rows_match_numpy(ei, pos, k, [0, 1, 4_999, 5_000, 8_191, 9_999])


# --------------------------------------------------------------------------
# knn: the grid method against brute force.
# --------------------------------------------------------------------------
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
def test_grid_knn_equals_brute_force_on_uniform_batched_positions(assert_well_formed, k: int) -> None:
    B, N = 2, 3000
    pos = torch.rand(B, N, 2, generator=torch.Generator().manual_seed(k))
    ei = assert_grid_is_brute(pos, k)
    assert ei.shape == (2, B * N * k)
    assert_well_formed(ei, B * N, by_sender=False)


@pytest.mark.parametrize("make", [clustered, swarms])
@pytest.mark.parametrize("k", [4, 10])
def test_grid_knn_equals_brute_force_on_clusters_with_near_linear_work(
    monkeypatch: pytest.MonkeyPatch, make, k: int
) -> None:
    N = 2000
    pos = make(N, torch.Generator().manual_seed(k))
    pairs = 0
    original = nearest._sq_dist_block

    def counting(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        nonlocal pairs
        out = original(x, y)
        pairs += out.numel()
        return out

    monkeypatch.setattr(nearest, "_sq_dist_block", counting)
    ei = knn(pos, k, method="grid")
    grid_pairs, pairs = pairs, 0
    assert torch.equal(ei, knn(pos, k, method="brute"))
    assert pairs == N * N  # brute force's count, for scale
    # The grid ranks O(k) candidates per agent (padded), not all N of them.
    assert grid_pairs < 30 * (k + 1) * N


def test_grid_knn_breaks_exact_ties_on_lattices_like_brute_force() -> None:
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


def test_grid_knn_handles_all_agents_at_one_point() -> None:
    N, k = GRID_MIN + 76, 3
    rows = knn_as_rows(assert_grid_is_brute(torch.full((N, 2), 0.25), k), N, k)
    assert rows[:4].tolist() == [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]]
    assert (rows[4:] == [0, 1, 2]).all()
    # Batched: one episode collapsed to a point, the others spread out.
    gen = torch.Generator().manual_seed(0)
    pos = torch.stack([torch.zeros(N, 2), torch.rand(N, 2, generator=gen), clustered(N, gen)])
    assert_grid_is_brute(pos, 4)


def test_grid_knn_handles_collinear_agents() -> None:
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


def test_auto_knn_switches_to_the_grid_at_the_crossover(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = nearest._knn_grid

    def spy(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
        calls.append(x.shape)
        return original(x, k, chunk)

    monkeypatch.setattr(nearest, "_knn_grid", spy)
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


def test_grid_knn_at_large_n_uses_linear_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    N, k = 10_000, 4
    largest = pairs = 0
    original = nearest._sq_dist_block

    def recording(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        nonlocal largest, pairs
        out = original(x, y)
        largest = max(largest, out.numel())
        pairs += out.numel()
        return out

    monkeypatch.setattr(nearest, "_sq_dist_block", recording)
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

    assert_rows_match_numpy(ei, pos, k, [0, 1, 4_999, 5_000, 8_191, 9_999])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_grid_knn_equals_brute_force_in_every_float_dtype(dtype: torch.dtype) -> None:
    # float64 takes the two-pass selection; 16-bit floats have many ties.
    pos = swarms(1500, torch.Generator().manual_seed(3)).to(dtype)
    assert_grid_is_brute(pos, 5)


def test_grid_knn_equals_brute_force_at_extreme_scales() -> None:
    gen = torch.Generator().manual_seed(0)
    unit = torch.rand(GRID_MIN + 10, 2, generator=gen)
    assert_grid_is_brute(unit * 1e25, 4)  # squared distances overflow to inf
    assert_grid_is_brute(unit * 1e-30, 4)  # ... and underflow to 0
    assert_grid_is_brute(unit * 3 - 1e4, 4)  # far from the origin
    far = torch.cat([unit, torch.tensor([[1e30, 1e30], [-1e30, 0.0]])])
    assert_grid_is_brute(far, 4, chunk_size=5)


def test_grid_knn_keeps_nan_rows_in_range() -> None:
    # knn refuses NaN on the CPU; on an accelerator it does not look (a sync), so the grid path itself must cope.
    pos = torch.rand(1, GRID_MIN, 2, generator=torch.Generator().manual_seed(0))
    pos[0, 7] = float("nan")
    senders = nearest._knn_grid(pos, 3, GRID_MIN)
    assert senders.shape == (1, GRID_MIN, 3)
    assert int(senders.min()) >= 0 and int(senders.max()) < GRID_MIN


@pytest.mark.parametrize("method", ["brute", "grid"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_knn_on_the_cpu_refuses_positions_that_are_not_finite_naming_pos(method: str, bad: float) -> None:
    pos = torch.rand(2, GRID_MIN, 2, generator=torch.Generator().manual_seed(0))
    pos[1, 7, 0] = bad
    match = rf"^pos must hold finite positions, got 1 NaN or infinite value\(s\) in shape \(2, {GRID_MIN}, 2\)$"
    with pytest.raises(ValueError, match=match):
        knn(pos, 3, method=method)
    with pytest.raises(ValueError, match="^pos must hold finite positions"):
        build_topology("knn", GRID_MIN, pos=pos[1], k=3)


@pytest.mark.parametrize("method", ["brute", "grid"])
def test_knn_with_check_finite_false_accepts_nan_positions_and_keeps_neighbours_in_range(method: str) -> None:
    # the training rollout's choice: a diverged run must reach the trainer's NonFiniteLossError, not a usage error
    pos = torch.rand(2, GRID_MIN, 2, generator=torch.Generator().manual_seed(0))
    pos[1, 7] = math.nan
    ei = knn(pos, 3, method=method, check_finite=False)
    assert ei.shape == (2, 2 * GRID_MIN * 3)
    assert int(ei.min()) >= 0 and int(ei.max()) < 2 * GRID_MIN


def test_the_finite_check_is_not_traced_so_compiled_knn_has_no_graph_break_and_no_sync() -> None:
    torch._dynamo.reset()
    pos = torch.rand(3, 12, 2, generator=torch.Generator().manual_seed(0))
    assert torch._dynamo.explain(knn)(pos, 4).graph_break_count == 0
    pos[0, 0] = math.nan  # unchecked when compiled, as on an accelerator: neighbours stay in range
    ei = torch.compile(knn, backend="eager", fullgraph=True)(pos, 4)
    assert int(ei.min()) >= 0 and int(ei.max()) < 3 * 12
    torch._dynamo.reset()


def test_grid_knn_runs_under_torch_compile_with_one_graph_break() -> None:
    torch._dynamo.reset()
    pos = torch.rand(2, GRID_MIN, 2, generator=torch.Generator().manual_seed(0))
    compiled = torch.compile(knn, backend="eager")  # the grid path is one graph break
    assert torch.equal(compiled(pos, 4), knn(pos, 4, method="brute"))
    torch._dynamo.reset()


def test_knn_rejects_an_unknown_method_and_a_grid_in_three_dimensions() -> None:
    with pytest.raises(ValueError, match=r"method must be one of \['auto', 'brute', 'grid'\], got 'kd'"):
        knn(torch.rand(5, 2), 2, method="kd")
    with pytest.raises(ValueError, match=r"method='grid' needs 2-D positions \(D = 2\), got D = 3"):
        knn(torch.rand(5, 3), 2, method="grid")


# --------------------------------------------------------------------------
# torch.compile.
# --------------------------------------------------------------------------
def test_brute_force_knn_compiles_without_graph_breaks() -> None:
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
# Bad input.
# --------------------------------------------------------------------------
def test_knn_rejects_k_and_chunk_size_out_of_range() -> None:
    pos = torch.rand(5, 2)
    for bad in (5, 6, 0, -1):
        with pytest.raises(ValueError, match=rf"k must satisfy 1 <= k <= N - 1 = 4, got {bad}"):
            knn(pos, bad)
    with pytest.raises(TypeError, match="k must be an int"):
        knn(pos, 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunk_size must be >= 1, got 0"):
        knn(pos, 2, chunk_size=0)


def test_knn_rejects_positions_of_the_wrong_type_or_shape() -> None:
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


# --------------------------------------------------------------------------
# Documentation.
# --------------------------------------------------------------------------
def test_knn_docstring_states_the_thresholds_the_code_uses() -> None:
    doc = knn.__doc__
    assert rf"N \geq {nearest._KNN_GRID_MIN_AGENTS}" in doc
    assert rf"B N^2 \geq 2^{{{int(math.log2(nearest._KNN_GRID_MIN_PAIRS_ACCEL))}}}" in doc
    assert f"``2**{int(math.log2(nearest._KNN_BLOCK_NUMEL))}`` elements on the CPU" in doc
    assert f"``2**{int(math.log2(nearest._KNN_BLOCK_NUMEL_ACCEL))}`` on other" in doc
    assert f"``2**{nearest._KNN_GRID_BITS}`` grid" in doc
