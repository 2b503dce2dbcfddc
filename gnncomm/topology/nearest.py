r"""Exact k-nearest-neighbour graphs from agent positions: brute force, and a Z-order grid for large 2-D swarms.

:func:`knn` is the dynamic topology: it is recomputed from positions at every step and batches
natively (``[B, N, D]`` positions give ``B`` disjoint graphs).  Both methods return the same
senders in the same order, bit for bit.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gnncomm.topology._checks import _check_int

__all__ = ["knn"]

#: Largest number of elements in one ``[B, C, N]`` distance block of
#: :func:`knn`; 2**22 float32 values = 16 MiB
#: (larger blocks are slower on CPU: they fall out of cache).
_KNN_BLOCK_NUMEL = 2**22

#: The same bound on accelerators, where fewer, larger blocks win: on an H200 at
#: N = 1000, B = 256 a call took 20.4 ms instead of 46.5 ms with 2**22.
_KNN_BLOCK_NUMEL_ACCEL = 2**28

#: Smallest ``N`` for which ``knn(method="auto")`` takes the grid path on 2-D
#: positions. Measured on one CPU thread: at N = 1000, B = 3 the grid call takes
#: 20.5 ms against 62.6 ms for brute force (the crossover is a few hundred agents).
_KNN_GRID_MIN_AGENTS = 512

#: On other devices (CUDA), ``method="auto"`` also needs ``B * N**2`` pairs
#: at least this many: brute force is fast there, while the grid path's host
#: syncs cost ~15 ms (measured on an H200: N = 10k brute 10 ms vs grid 16 ms;
#: N = 20k 40 ms vs 23 ms; B = 16, N = 10k 220 ms vs 110 ms).
_KNN_GRID_MIN_PAIRS_ACCEL = 2**28

#: Most bits per axis of the grid path's quantisation (finest cell = bounding
#: square / 2**31); fewer when many episodes share the int64 sort key.
_KNN_GRID_BITS = 31

#: Candidates per receiver, in units of ``k + 1``, above which the grid path
#: tries a finer level.
_KNN_GRID_CAP = 16

#: Rounds of level changes before the grid path hands the rest to brute force.
_KNN_GRID_ROUNDS = 6

#: Candidate slots in one ``[rows, W]`` block of the grid path (fits in cache).
_KNN_GRID_BLOCK_NUMEL = 2**16

#: Never a ``(distance bits << 32 | index)`` key of :func:`_k_smallest`.
_NO_KEY = 2**63 - 1


def _sq_dist_block(x: Tensor, y: Tensor) -> Tensor:
    """Exact squared Euclidean distances ``[B, C, D] x [B, N, D] -> [B, C, N]``.

    The difference form (not ``|x|^2 + |y|^2 - 2xy``) keeps equal distances
    bit-for-bit equal, which the tie-breaking rule of :func:`knn` relies on.
    Summing one coordinate at a time never materialises ``[B, C, N, D]``.
    """
    diff = x[..., 0].unsqueeze(-1) - y[..., 0].unsqueeze(-2)  # [B, C, N]
    dist = diff * diff
    for j in range(1, x.size(-1)):  # D is a static shape: unrolled when traced
        diff = x[..., j].unsqueeze(-1) - y[..., j].unsqueeze(-2)
        dist = dist + diff * diff
    return dist  # [B, C, N]


def _knn_brute(x: Tensor, k: int, chunk: int) -> Tensor:
    """Exact kNN by brute force over row chunks: ``[B, N, D] -> [B, N, k]`` local senders.

    Loops over Python ints derived from shapes only, so it traces under
    :func:`torch.compile` without graph breaks.
    """
    B, N, _ = x.shape
    device = x.device
    # Keys below are < 3N + 1 and must stay exact: int32 while that fits.
    key_dtype = torch.int32 if 3 * N < 2**31 else torch.long
    cols = torch.arange(N, device=device, dtype=key_dtype)  # [N]
    cols_tied, cols_far = cols + N, cols + 2 * N  # [N]
    blocks = []
    for start in range(0, N, chunk):
        stop = min(start + chunk, N)
        dist = _sq_dist_block(x[:, start:stop], x)  # [B, C, N]
        # Row r of the block is agent start + r: its self-distance sits on the
        # diagonal with offset `start`; +inf keeps it out of the k nearest.
        dist.diagonal(offset=start, dim1=-2, dim2=-1).fill_(float("inf"))
        # k-th smallest distance; topk is much faster than kthvalue on CPU.
        kth = torch.topk(dist, k, dim=-1, largest=False).values[..., -1:]  # [B, C, 1]
        # Rank key: closer than kth < tied with kth < farther; the index term
        # breaks ties toward the lower sender.  Self gets the largest key so it
        # is never picked, even if kth is inf.
        key = torch.where(dist == kth, cols_tied, cols_far)
        key = torch.where(dist < kth, cols, key)  # [B, C, N]
        key.diagonal(offset=start, dim1=-2, dim2=-1).fill_(3 * N)
        sel = torch.topk(key, k, dim=-1, largest=False).values % N  # [B, C, k]
        sel = sel.long()
        # Senders are in index order; a stable sort by distance keeps it for ties.
        order = torch.argsort(dist.gather(-1, sel), dim=-1, stable=True)
        blocks.append(sel.gather(-1, order))
    return torch.cat(blocks, dim=1)  # [B, N, k]


def _k_smallest(dist: Tensor, cand: Tensor, self_col: Tensor, k: int, n: int) -> tuple[Tensor, Tensor]:
    """Row-wise ``k`` smallest ``(distance, sender)`` pairs, by :func:`knn`'s rule.

    For rows whose candidates are arbitrary senders rather than all ``N``
    agents: picks the same senders in the same order as :func:`_knn_brute`
    (smallest distance first, equal distances to the lower index).

    Args:
        dist: ``[R, W]`` squared distances from :func:`_sq_dist_block`.
        cand: ``[R, W]`` or ``[W]`` int64 local sender index of each
            candidate, ``0 <= cand <= n`` (``n`` marks padding, whose
            distance must be ``inf``).
        self_col: ``[R]`` column of the receiver itself, never picked.

    Returns:
        Senders ``[R, k]`` nearest first, and the ``k``-th distance ``[R]``
        in ``dist.dtype`` (``inf`` or NaN if fewer than ``k`` are finite).
    """
    col = self_col.unsqueeze(-1)  # [R, 1]
    if dist.element_size() <= 4:
        # A non-negative float orders like its bit pattern, so the key
        # (bits << 32 | index) ranks (distance, index) pairs in one topk.
        bits = dist.view(torch.int32 if dist.element_size() == 4 else torch.int16)
        key = ((bits.long() << 32) | cand).scatter_(-1, col, _NO_KEY)  # [R, W]
        top = torch.topk(key, k, dim=-1, largest=False).values  # [R, k]
        kth = (top[:, -1] >> 32).to(bits.dtype).view(dist.dtype)  # NaN for _NO_KEY
        return top & 0xFFFFFFFF, kth
    # float64 bits leave no room for the index: _knn_brute's two-pass key.
    dist = dist.scatter(-1, col, math.inf)
    kth = torch.topk(dist, k, dim=-1, largest=False).values[:, -1:]  # [R, 1]
    key = torch.where(dist == kth, cand + n, cand + 2 * n)
    key = torch.where(dist < kth, cand, key).scatter_(-1, col, 3 * n)  # [R, W]
    top, slot = torch.topk(key, k, dim=-1, largest=False)  # [R, k]
    order = torch.argsort(dist.gather(-1, slot), dim=-1, stable=True)
    return (top % n).gather(-1, order), kth.squeeze(-1)


def _spread_bits(v: Tensor) -> Tensor:
    """Move bit ``i`` of a non-negative int64 ``v < 2**32`` to bit ``2i``."""
    v = (v | (v << 16)) & 0x0000FFFF0000FFFF
    v = (v | (v << 8)) & 0x00FF00FF00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v << 2)) & 0x3333333333333333
    return (v | (v << 1)) & 0x5555555555555555


def _highest_bit(v: Tensor) -> Tensor:
    """``floor(log2(v))`` of int64 ``v > 0`` (``-1`` for 0), via the float exponent.

    Exact below ``2**53``; larger values may round up to the next power of
    two and get one too many (harmless for the level guess that sees them).
    """
    return torch.frexp(v.double())[1].long() - 1


def _grid_block(key: Tensor, q: Tensor, t: Tensor, lam: Tensor, L: int) -> tuple[Tensor, Tensor, Tensor]:
    """The Morton runs that tile the 3 x 3 cells around each point, and its gap.

    At level ``lam`` (``2**lam`` cells per axis, ``1 <= lam <= L``) the
    3 x 3 block around a point's cell is five runs of consecutive codes: the
    aligned 2 x 2 parent cell holding the point, the aligned pair beside it
    in the third row, and three single cells of the third column.  Their
    codes come from ``key`` by dilated (bit-interleaved) arithmetic.

    Args:
        key: ``[P]`` sort keys ``episode << 2L | morton(q)`` of the points.
        q: ``[P, 2]`` quantised coordinates; t: ``[P, 2]`` their float64
            values before flooring; lam: ``[P]`` levels.

    Returns:
        ``first [P, 5]`` and ``span [P, 5]``: run ``i`` holds the keys in
        ``[first_i, first_i + span_i)`` (``span = 0`` for runs outside the
        grid); and ``gap [P]``: the distance, in quantisation units, from the
        point to the outside of its block (``inf`` where the block reaches the
        edge of the episode's bounding square).
    """
    s = L - lam  # [P] bits dropped per axis
    unit = 1 << 2 * s  # [P] codes per cell
    xbits = 0x5555555555555555 & ((1 << 2 * L) - 1)  # x in the even bits
    ybits = xbits << 1
    above = ~((unit << 2) - 1)  # bits of the parent cell
    px, py = key & xbits & above, key & ybits & above  # dilated pair start
    cell = q >> s.unsqueeze(-1)  # [P, 2]
    odd = (cell & 1).bool()
    # Third column/row: pair - 1 (cell even) or pair + 2 (cell odd).
    sx = torch.where(odd[:, 0], ((px | ybits) + (unit << 2)) & xbits, (px - unit) & xbits)
    sy = torch.where(odd[:, 1], ((py | xbits) + (unit << 3)) & ybits, (py - (unit << 1)) & ybits)
    third = cell - 1 + 2 * odd.long()  # [P, 2] integer coordinates of sx, sy
    inside = (third >= 0) & (third < (1 << lam).unsqueeze(-1))  # [P, 2]
    in_x, in_y = inside[:, 0], inside[:, 1]
    base = key & -(1 << 2 * L)  # episode bits
    first = torch.stack([px | py, px | sy, sx | py, sx | py | (unit << 1), sx | sy], dim=1) | base.unsqueeze(
        1
    )  # [P, 5]
    span = torch.stack([4 * unit, 2 * unit * in_y, unit * in_x, unit * in_x, unit * (in_x & in_y)], dim=1)  # [P, 5]

    # Distance to the block's outside, per axis and side.
    shift = s.unsqueeze(-1)
    gap_lo = torch.where(cell <= 1, math.inf, t - ((cell - 1) << shift).double())
    gap_hi = torch.where(cell + 2 >= (1 << lam).unsqueeze(-1), math.inf, ((cell + 2) << shift).double() - t)
    return first, span, torch.minimum(gap_lo, gap_hi).amin(dim=1)


def _grid_locate(skey: Tensor, bounds: Tensor, lam: Tensor, L: int, B: int) -> Tensor:
    """``torch.searchsorted(skey, bounds)`` for cell-aligned bounds.

    Row ``i`` of ``bounds`` ``[P, C]`` holds multiples of its cell size
    ``4**(L - lam[i])``.  Rows are grouped by level; where the level has at
    most ``8 * M`` cells (``B * 4**lam``, with ``M = B * N`` agents in all),
    the answer is read from a table of cell starts (bincount + cumsum, far
    faster than binary search on CPU); finer levels, e.g. inside a dense
    cluster, use binary search.
    """
    M = skey.numel()
    levels = torch.bincount(lam, minlength=L + 1).nonzero().squeeze(1).tolist()
    if len(levels) == 1:
        groups = [(levels[0], None)]
    else:
        groups = [(lvl, (lam == lvl).nonzero().squeeze(1)) for lvl in levels]
    found = torch.empty_like(bounds)
    for lvl, sel in groups:
        part = bounds if sel is None else bounds.index_select(0, sel)
        shift = 2 * (L - lvl)
        cells = B << 2 * lvl
        if cells <= 8 * M:
            table = torch.bincount(skey >> shift, minlength=cells).cumsum(0)
            table = torch.cat([table.new_zeros(1), table])  # [cells + 1] cell starts
            part = table.index_select(0, (part >> shift).view(-1)).view(part.shape)
        else:
            part = torch.searchsorted(skey, part)
        if sel is None:
            return part
        found.index_copy_(0, sel, part)
    return found


def _grid_rows(
    xs: Tensor,
    js: Tensor,
    r: Tensor,
    start: Tensor,
    count: Tensor,
    total: Tensor,
    W: int,
    k: int,
    n: int,
) -> tuple[Tensor, Tensor]:
    """:func:`_k_smallest` of receivers ``r`` over the candidate runs of their blocks.

    Args:
        xs, js: ``[M + 1, 2]`` positions and ``[M + 1]`` local indices in
            sorted order, plus a padding sentinel (``inf`` position, index n).
        r: ``[R]`` sorted positions of the receivers.
        start, count: ``[R, C]`` candidate runs (run 0 holds the receiver);
            total: ``[R]`` their row sums.
        W: padded row width, ``> max(total, k)``.
    """
    R = r.numel()
    device = xs.device
    cnt = count.reshape(-1)  # [R * C]
    S = int(total.sum())
    # Flat candidates: run i contributes sorted positions start_i, ...,
    # start_i + count_i - 1; row j's go to the front of its W padded slots.
    lead = torch.arange(S, device=device)
    run_off = start.reshape(-1) - cnt.cumsum(0) + cnt  # [R * C]
    src = lead + torch.repeat_interleave(run_off, cnt, output_size=S)  # [S]
    row_off = torch.arange(R, device=device) * W - total.cumsum(0) + total  # [R]
    dest = lead + torch.repeat_interleave(row_off, total, output_size=S)  # [S]
    src = torch.full((R * W,), xs.size(0) - 1, device=device).index_copy_(0, dest, src)
    cand = xs.index_select(0, src).view(R, W, 2)  # padding -> sentinel
    dist = _sq_dist_block(xs.index_select(0, r).unsqueeze(1), cand).squeeze(1)  # [R, W]
    self_col = r - start[:, 0]  # run 0 starts each row
    return _k_smallest(dist, js.index_select(0, src).view(R, W), self_col, k, n)


def _grid_blocks(exps: list[int], counts: list[int], budget: int) -> list[tuple[int, int, int]]:
    """Cut rows sorted by width into ``(begin, end, W)`` blocks of ``<= budget`` slots.

    ``counts[i]`` consecutive rows need width ``2**exps[i]`` (increasing);
    a block takes the width of its widest row, and narrow leftovers join
    the next group while the block stays within ``budget`` (or holds one row).

    Example:
        >>> _grid_blocks([3, 4], [2, 3], 64)
        [(0, 4, 16), (4, 5, 16)]
    """
    blocks: list[tuple[int, int, int]] = []
    begin = end = W = 0
    for e, n in zip(exps, counts):
        per_block = max(1, budget // 2**e)
        if end - begin > per_block:  # leftovers too many to widen: flush
            blocks.append((begin, end, W))
            begin = end
        W = 2**e
        end += n
        while end - begin > per_block:
            blocks.append((begin, begin + per_block, W))
            begin += per_block
    if end > begin:
        blocks.append((begin, end, W))
    return blocks


@torch.compiler.disable  # host syncs and data-dependent shapes: one graph break
def _knn_grid(x: Tensor, k: int, chunk: int) -> Tensor:
    """Exact kNN of 2-D points on an adaptive grid: ``[B, N, 2] -> [B, N, k]``.

    Returns the same local senders as :func:`_knn_brute`, bit for bit; see
    :func:`knn` for the method.  Receivers the grid cannot certify are solved
    by brute force in blocks of ``chunk * B`` rows (``[rows, N]`` distances).
    """
    B, N, _ = x.shape
    M = B * N
    device = x.device
    if not bool(torch.isfinite(x).all()):
        return _knn_brute(x, k, chunk)  # nothing to bin; neighbours unspecified
    # Sort key = episode << 2L | Morton code < 2**62, so a cell's end fits.
    L = min(_KNN_GRID_BITS, (62 - (B - 1).bit_length()) // 2)

    # Quantise each episode's bounding square to 2**L x 2**L in float64; the
    # certificate below uses the same map, so its rounding is accounted for.
    xd = x.double()
    lo = xd.amin(dim=1, keepdim=True)  # [B, 1, 2]
    extent = (xd.amax(dim=1, keepdim=True) - lo).amax(dim=-1, keepdim=True)  # [B, 1, 1]
    scale = torch.where(extent > 0, 2.0**L / extent, torch.ones_like(extent))
    t = ((xd - lo) * scale).reshape(M, 2)  # [M, 2] in [0, 2**L]
    q = t.floor().clamp_(0, 2**L - 1).long()  # [M, 2]
    episode = torch.arange(B, device=device).repeat_interleave(N)  # [M]
    code = _spread_bits(q[:, 0]) | (_spread_bits(q[:, 1]) << 1)
    skey, perm = torch.sort((episode << 2 * L) | code)  # [M]
    # From here on agents are addressed by sorted position.  xs and js end
    # with a padding sentinel: infinitely far, local index N.
    xs = torch.cat([x.reshape(M, 2).index_select(0, perm), x.new_full((1, 2), math.inf)])
    js = torch.cat([perm % N, perm.new_full((1,), N)])  # [M + 1]
    ts, qs = t.index_select(0, perm), q.index_select(0, perm)  # [M, 2]
    es = episode.index_select(0, perm)  # [M]
    inv_scale = (1.0 / scale).view(B).index_select(0, es)  # [M]
    slack = extent.view(B).index_select(0, es) * 2.0**-40  # [M] error budget of t

    # Level guess: the finest quadtree cell that holds a point and its k-th
    # Z-order neighbour on one side (so >= k + 1 points), one level finer.
    # Only the speed depends on it; exactness comes from the certificate.
    w = min(k, N - 1)
    pos = torch.arange(M, device=device)
    lam = torch.full((M,), -1, dtype=torch.long, device=device)
    for side in (-w, w):
        other = pos + side
        inside = (other >= 0) & (other < M)
        diff = skey ^ skey.index_select(0, other.clamp(0, M - 1))
        common = (L - 1) - torch.div(_highest_bit(diff), 2, rounding_mode="floor")
        lam = torch.maximum(lam, torch.where(inside, common, -1))
    lam = (lam + 1).clamp_(1, L)  # level 1's block is already the whole square

    eps, tiny = torch.finfo(x.dtype).eps, torch.finfo(x.dtype).tiny
    cap = _KNN_GRID_CAP * (k + 1)
    wide_cap = max(cap, N // 8)  # beyond, brute force's big blocks are cheaper
    out = torch.empty(M, k, dtype=torch.long, device=device)  # by flat agent index
    rows = pos  # pending sorted positions
    last = torch.zeros(M, dtype=torch.long, device=device)  # last level change
    wide = torch.zeros(M, dtype=torch.bool, device=device)  # cap raised to wide_cap
    fallback = []
    for _ in range(_KNN_GRID_ROUNDS):
        P = rows.numel()
        if P == 0:
            break
        take = (lambda v: v) if P == M else (lambda v: v.index_select(0, rows))
        first, span, gap = _grid_block(take(skey), take(qs), take(ts), lam, L)
        bounds = torch.cat([first, first + span], dim=1)  # [P, 10]
        start, stop = _grid_locate(skey, bounds, lam, L, B).chunk(2, dim=1)
        count = stop - start  # [P, 5]
        total = count.sum(dim=1)  # [P]
        gap = (gap * take(inv_scale) * (1 - 2.0**-40) - take(slack)).clamp_(min=0)
        # A computed squared distance is >= (1 - 4 eps) x the exact one, minus
        # subnormal rounding: with a strict `<` no outside point can tie.
        bound = gap * gap * (1 - 4 * eps) - 4 * tiny  # [P] float64

        fits = total <= torch.where(wide, wide_cap, cap)
        certified = torch.zeros(P, dtype=torch.bool, device=device)
        # Rows sorted by padded width 2**e > total (<= 2x padding), cut into
        # blocks of about _KNN_GRID_BLOCK_NUMEL candidate slots.
        width = (_highest_bit(total) + 1).clamp_(min=(k + 1).bit_length())
        todo = fits.nonzero().squeeze(1)
        todo = todo[torch.argsort(width[todo])]
        exps, counts = torch.unique_consecutive(width[todo], return_counts=True)
        for begin, end, W in _grid_blocks(exps.tolist(), counts.tolist(), _KNN_GRID_BLOCK_NUMEL):
            sub = todo[begin:end]  # [R] pending index
            r = rows.index_select(0, sub)  # [R] sorted position
            sel, kth = _grid_rows(
                xs,
                js,
                r,
                start.index_select(0, sub),
                count.index_select(0, sub),
                total.index_select(0, sub),
                W,
                k,
                N,
            )
            ok = kth.double() < bound.index_select(0, sub)  # NaN/inf kth: not ok
            certified[sub] = ok
            out[perm[r[ok]]] = sel[ok]

        # Too many candidates -> one level finer; not certified -> coarser.
        # A point that would turn back settles on the coarser of the two
        # levels with the wide cap.  Brute force takes points that overflow
        # the wide cap or the finest level, or fail on the coarsest.
        over, under = ~fits, fits & ~certified
        turn = (over & (last < 0)) | (under & (last > 0))
        stuck = (over & (wide | (lam == L))) | (under & (lam == 1))
        retry = ~certified & ~stuck
        lam = lam + (over & ~turn).long() - under.long()
        last = over.long() - under.long()
        wide = wide | turn
        fallback.append(rows[stuck])
        rows, lam, last, wide = rows[retry], lam[retry], last[retry], wide[retry]
    fallback.append(rows)

    # Brute force for the rest, each against its whole episode.
    rest = perm[torch.cat(fallback)]  # [U] flat agent index
    if rest.numel():
        flat = x.reshape(M, 2)
        cols = torch.arange(N, device=device)
        for s in range(0, rest.numel(), chunk * B):
            g = rest[s : s + chunk * B]  # [C]
            dist = _sq_dist_block(flat[g].unsqueeze(1), x[g // N]).squeeze(1)  # [C, N]
            out[g] = _k_smallest(dist, cols, g % N, k, N)[0]
    return out.view(B, N, k)


_KNN_METHODS = ("auto", "brute", "grid")


def knn(
    pos: Tensor, k: int, *, chunk_size: int | None = None, method: str = "auto", check_finite: bool = True
) -> Tensor:
    r"""Each agent receives from its ``k`` nearest other agents.

    For receiver :math:`i` the senders are the ``k`` agents :math:`j \neq i`
    with the smallest squared Euclidean distance
    :math:`\lVert p_j - p_i \rVert^2`, giving edges :math:`j \to i`.
    Equal distances are broken in favour of the lower sender index, exactly
    (no epsilon): the ``k``-th smallest distance :math:`t` is found with
    :func:`torch.topk`, every :math:`j` with :math:`d_j < t` is kept, and
    the remaining slots go to the lowest-indexed :math:`j` with
    :math:`d_j = t`.  Distances are computed exactly as
    :math:`\sum_d (p_{jd} - p_{id})^2` in ``pos.dtype``.

    Two methods give bit-identical results (same senders, same order):

    * ``"brute"`` compares every pair, in row chunks so a distance block
      holds at most about ``2**22`` elements on the CPU, ``2**28`` on other
      devices (memory linear in :math:`N`, time quadratic).  It loops over Python ints derived from shapes only,
      so it traces under :func:`torch.compile` without graph breaks.
    * ``"grid"`` (2-D positions only) is near-linear in time and memory on
      any density, uniform or clustered.  Each episode's bounding square is
      quantised to a ``2**31`` grid (fewer bits for very large ``B``) and the
      agents are sorted by Z-order (Morton) code, so every quadtree cell at
      every level is a contiguous run.  Each agent gathers the agents of the
      3 x 3 cells around it, at a level where its cell holds about ``k``
      agents, and ranks them with the same rule and the same distance
      arithmetic.  The answer is *certified* when the ``k``-th distance is
      strictly below the squared distance to the outside of the searched
      block, rounding errors included.  Agents with too many candidates retry
      one level finer, uncertified ones one level coarser; the few left
      after some rounds (e.g. many coincident agents, or a straggler next to
      a dense swarm) are solved by brute force against their episode.  It
      syncs with the host and runs outside :func:`torch.compile` graphs (one
      graph break).
    * ``"auto"`` (default) picks ``"grid"`` for 2-D positions with
      :math:`N \geq 512` (on one CPU thread the measured crossover is a few
      hundred agents), on other devices only from :math:`B N^2 \geq 2^{28}`
      pairs as well (measured on an H200 GPU), and ``"brute"`` otherwise.

    Positions must be finite.  With ``check_finite=True``, on the CPU and
    outside :func:`torch.compile`, NaN or infinite positions raise a
    ``ValueError`` (a check that costs no device sync); elsewhere they are
    not checked, and NaN rows give unspecified (but in-range) neighbours.

    Args:
        pos (Tensor): Floating-point positions ``[N, D]`` or ``[B, N, D]``.
        k (int): Neighbours per receiver, ``1 <= k <= N - 1``.
        chunk_size (int, optional): Receivers per brute-force block; the
            grid method hands its uncertified agents to brute force in
            blocks of ``chunk_size * B`` receivers.
            (default: chosen so a ``[B, C, N]`` block has <= 2**22 elements
            on the CPU, <= 2**28 on other devices)
        method (str): ``"auto"``, ``"brute"`` or ``"grid"``.
            (default: ``"auto"``)
        check_finite (bool): Refuse NaN or infinite CPU positions.  The
            training rollout passes ``False``: there a diverged run must end
            with :class:`~gnncomm.trainer.NonFiniteLossError`, not a usage
            error. (default: ``True``)

    Returns:
        LongTensor ``[2, B * N * k]`` on ``pos.device``; for batched input node
        ``b * N + i`` is agent ``i`` of episode ``b`` (``B`` disjoint graphs).
        Edges are grouped by receiver in increasing order; within a receiver
        the senders run from nearest to farthest.

    Shapes:
        - **input:** ``(N, D)`` or ``(B, N, D)``
        - **output:** ``(2, N k)`` or ``(2, B N k)``

    Example:
        >>> pos = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
        >>> knn(pos, 1)
        tensor([[1, 0, 1],
                [0, 1, 2]])
        >>> knn(pos.expand(2, 3, 2), 1)  # two identical episodes
        tensor([[1, 0, 1, 4, 3, 4],
                [0, 1, 2, 3, 4, 5]])
        >>> torch.equal(knn(pos, 2, method="grid"), knn(pos, 2, method="brute"))
        True
    """
    if not isinstance(pos, Tensor):
        raise TypeError(f"pos must be a torch.Tensor, got {type(pos).__name__}")
    if not pos.is_floating_point():
        raise TypeError(f"pos must have a floating-point dtype, got {pos.dtype}")
    if pos.dim() not in (2, 3):
        raise ValueError(f"pos must have shape [N, D] or [B, N, D], got {tuple(pos.shape)}")
    if method not in _KNN_METHODS:
        raise ValueError(f"method must be one of {list(_KNN_METHODS)}, got {method!r}")
    batched = pos.dim() == 3
    x = (pos if batched else pos.unsqueeze(0)).detach()  # [B, N, D]
    B, N, D = x.shape
    if N < 2 or D < 1:
        raise ValueError(f"pos must hold at least 2 agents and 1 coordinate, got shape {tuple(pos.shape)}")
    if method == "grid" and D != 2:
        raise ValueError(f"method='grid' needs 2-D positions (D = 2), got D = {D}")
    k = _check_int("k", k, 1, N - 1, "N - 1")
    if check_finite and x.device.type == "cpu" and not torch.compiler.is_compiling():
        # free on the CPU (no device sync); on an accelerator, or traced, the hot path is left unchecked
        if not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).sum())
            raise ValueError(
                f"pos must hold finite positions, got {bad} NaN or infinite value(s) in shape {tuple(pos.shape)}"
            )
    if chunk_size is None:
        budget = _KNN_BLOCK_NUMEL if x.device.type == "cpu" else _KNN_BLOCK_NUMEL_ACCEL
        chunk = max(1, budget // max(1, B * N))
    else:
        chunk = _check_int("chunk_size", chunk_size, 1)
    chunk = min(chunk, N)

    use_grid = method == "grid" or (
        method == "auto"
        and D == 2
        and N >= _KNN_GRID_MIN_AGENTS
        and (x.device.type == "cpu" or B * N * N >= _KNN_GRID_MIN_PAIRS_ACCEL)
    )
    if use_grid:
        senders = _knn_grid(x, k, chunk)  # [B, N, k]
    else:
        senders = _knn_brute(x, k, chunk)  # [B, N, k]
    device = x.device
    offset = torch.arange(B, device=device).mul(N).view(B, 1, 1)
    senders = (senders + offset).reshape(-1)  # [B * N * k]
    receivers = torch.arange(B * N, device=device).repeat_interleave(k)
    return torch.stack([senders, receivers])
