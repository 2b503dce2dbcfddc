"""kNN graph construction: time and peak memory from N=100 to 10,000, and its share of a step.

Measures, on ``B`` episodes of uniform positions in the library's arena (``B * N`` near ``--bn``,
one episode from ``N = bn`` up):

- ``library``: :func:`gnncomm.topology.knn` as the training step calls it, and each of its
  ``method=`` paths when it has them;
- ``dense_cdist``: ``torch.cdist`` + ``topk`` on the whole ``[B, N, N]`` matrix, what a dense
  script does (memory quadratic in ``N``; ties not resolved the library's way).

and, with ``--step``, the share of one eager training step (T calls of the library's kNN).

    OMP_NUM_THREADS=1 python -m benchmarks.knn --threads 1
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/knn.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from torch import Tensor

from benchmarks.common import default_out, fmt_mib, format_table, memory_budget, metadata, setup, sweep
from gnncomm.bench import (
    PeakMemory,
    bench_config,
    build_trainer,
    default_batch_size,
    measure_trainer,
    time_calls,
    time_interleaved,
)
from gnncomm.topology import knn


def knn_dense_cdist(pos: Tensor, k: int) -> Tensor:
    """The dense script's kNN: the whole ``[B, N, N]`` distance matrix, then ``topk``."""
    x = pos.detach()
    B, N, _ = x.shape
    dist = torch.cdist(x, x)  # [B, N, N]
    dist.diagonal(dim1=-2, dim2=-1).fill_(float("inf"))
    senders = torch.topk(dist, k, dim=-1, largest=False).indices + torch.arange(B, device=x.device).mul(N).view(B, 1, 1)
    return torch.stack([senders.reshape(-1), torch.arange(B * N, device=x.device).repeat_interleave(k)])


def methods(k: int, chunk_sizes: Sequence[int] = ()) -> dict[str, Callable[[Tensor], Tensor]]:
    out: dict[str, Callable[[Tensor], Tensor]] = {"library": lambda p: knn(p, k)}
    param = inspect.signature(knn).parameters.get("method")
    if param is not None:  # a library with several kNN paths: time each one too
        for name in ("brute", "grid"):
            out[f"library[{name}]"] = lambda p, name=name: knn(p, k, method=name)
    for chunk in chunk_sizes:  # the brute-force path with other row blocks
        extra = {"method": "brute"} if param is not None else {}
        out[f"library[brute,chunk={chunk}]"] = lambda p, chunk=chunk: knn(p, k, chunk_size=chunk, **extra)
    out["dense_cdist"] = lambda p: knn_dense_cdist(p, k)
    return out


def run_point(n: int, args: argparse.Namespace, device: torch.device, budget: int) -> list[dict[str, Any]]:
    B = args.batch_size or default_batch_size(n, args.bn)
    gen = torch.Generator().manual_seed(n)
    pos = (torch.rand(B, n, 2, generator=gen) * 2 * n**0.5).to(device)  # the library's arena, 2 sqrt(N)
    rows, fns = {}, {}
    for name, fn in methods(args.k, args.chunk_size).items():
        if name not in args.methods and name.split("[")[0] not in args.methods:
            continue
        row = rows[name] = {"agents": n, "batch_size": B, "method": name}
        if name == "dense_cdist" and 12 * B * n * n > budget:  # distances, topk work space
            row.update(
                status="skipped",
                note=f"[B, N, N] matrix needs ~{12 * B * n * n / 2**30:.1f} GiB, "
                f"over the budget {budget / 2**30:.1f} GiB",
            )
            continue
        with PeakMemory(device) as mem:
            time_calls(lambda: fn(pos), steps=0, warmup=1, device=device)
        row.update(
            status="ok",
            note="",
            peak_mem_bytes=mem.peak_bytes,
            mem_method=mem.method,
            peak_bytes_per_agent=mem.peak_bytes / (B * n) if mem.peak_bytes is not None else None,
        )
        fns[name] = lambda fn=fn: fn(pos)
    for name, times in time_interleaved(fns, steps=args.steps, device=device).items():
        rows[name].update(time_s=statistics.median(times.wall), times_s=times.wall, cpu_s=statistics.median(times.cpu))
    if args.step:
        cfg = bench_config(n, B, "knn", args.k, str(device), False, "none", args.timesteps)
        step = measure_trainer(build_trainer(cfg), steps=3, warmup=1)
        for row in rows.values():
            if row["status"] == "ok":
                row["step_time_s"], row["step_cpu_s"] = step["step_time_s"], step["step_cpu_s"]
                row["share_of_step"] = args.timesteps * row["time_s"] / step["step_time_s"]
                row["share_of_step_cpu"] = args.timesteps * row["cpu_s"] / step["step_cpu_s"]
    return list(rows.values())


def table(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        ok = r["status"] == "ok"
        rows.append(
            [
                r["agents"],
                r["batch_size"],
                r["method"],
                f"{1e3 * r['time_s']:,.2f}" if ok else r["note"],
                f"{1e9 * r['time_s'] / (r['batch_size'] * r['agents']):,.0f}" if ok else "—",
                fmt_mib(r.get("peak_mem_bytes")),
                f"{100 * r['share_of_step']:.0f}%" if ok and "share_of_step" in r else "—",
                f"{100 * r['share_of_step_cpu']:.0f}%" if ok and "share_of_step_cpu" in r else "—",
            ]
        )
    return format_table(
        ["N", "B", "method", "ms per call", "ns per agent", "peak MiB", "share of step (T calls)", "share (CPU time)"],
        rows,
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--agents", type=int, nargs="+", default=[100, 300, 1000, 3000, 10000])
    p.add_argument("--bn", type=int, default=None, help="B*N (default: 2560 on CPU, 65536 on CUDA)")
    p.add_argument("--batch-size", type=int, default=None, help="fixed B instead of B*N near --bn")
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--methods", nargs="+", default=["library", "dense_cdist"])
    p.add_argument(
        "--chunk-size", type=int, nargs="*", default=[], help="also time the brute-force path with these row blocks"
    )
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--timesteps", type=int, default=5, help="kNN calls per training step (for the share)")
    p.add_argument(
        "--step",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time a training step for the share (default: on)",
    )
    p.add_argument("--mem-fraction", type=float, default=0.25)
    p.add_argument("--mem-limit-gb", type=float, default=None)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None, help="JSON path (default: benchmarks/results/knn_<device>.json)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    device = setup(args.device, args.threads)
    if args.quick:
        args.agents, args.bn, args.steps, args.timesteps = [20, 60], 120, 2, 2
    args.bn = args.bn or (65536 if device.type == "cuda" else 2560)
    out = Path(args.out) if args.out else default_out("knn", device)
    budget = memory_budget(device, args.mem_fraction, args.mem_limit_gb)
    report = {
        "meta": {
            **metadata(device, argv),
            "bn": args.bn,
            "k": args.k,
            "steps": args.steps,
            "memory_budget_bytes": budget,
            "time": "median seconds of one kNN call over all B episodes",
        },
        "results": [],
    }
    return sweep(args.agents, lambda n: run_point(n, args, device, budget), report, out, table)


if __name__ == "__main__":
    sys.exit(main())
