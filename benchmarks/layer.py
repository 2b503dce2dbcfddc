"""One attention layer, forward and backward: MessageAttention vs PyG's TransformerConv vs dense.

All three run on the same kNN graphs (k=4) over ``B`` disjoint episodes of ``N`` agents with
``B * N`` near ``--bn``, width d=64 and 4 heads. :class:`~gnncomm.nn.MessageAttention` reads the
receivers' states ``x [B*N, 64]`` and the senders' one-hot messages ``[B*N, 5, 64]`` (both with
gradients, as in training); ``TransformerConv(64, 16, heads=4)`` reads ``x`` alone; the dense
baseline is :class:`~benchmarks.dense_baseline.DenseMessageAttention` on MessageAttention's
weights. ``transformer_conv_msg`` is ``TransformerConv((M*V, 64), 16, heads=4)`` fed the same inputs
as MessageAttention (keys and values from the flattened one-hot messages, queries from ``x``), so
that both do the same projections. All are timed in alternation; the median is reported.

    OMP_NUM_THREADS=1 python -m benchmarks.layer --threads 1
    python -m benchmarks.layer --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/layer.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from torch_geometric.nn import TransformerConv

from benchmarks.common import (
    default_out,
    fmt_mib,
    fmt_ratio,
    format_table,
    memory_budget,
    metadata,
    setup,
    sweep,
    write_json,
)
from benchmarks.dense_baseline import DenseMessageAttention, check_layer
from gnncomm.bench import PeakMemory, default_batch_size, time_calls, time_interleaved
from gnncomm.nn import MessageAttention
from gnncomm.topology import knn

LAYERS = ("message_attention", "transformer_conv", "transformer_conv_msg", "dense")


def make_step(
    layer: str, modules: dict[str, torch.nn.Module], x: torch.Tensor, message: torch.Tensor, edge_index: torch.Tensor
) -> Callable[[], None]:
    """Forward and backward of one layer (gradients with respect to the inputs and the weights)."""
    module = modules[layer]

    def step() -> None:
        module.zero_grad(set_to_none=True)
        xi = x.detach().requires_grad_()
        if layer == "transformer_conv":
            out = module(xi, edge_index)
        elif layer == "transformer_conv_msg":  # keys and values from the senders' messages, as MessageAttention
            out = module((message.detach().requires_grad_().flatten(1), xi), edge_index)
        else:
            out = module(xi, message.detach().requires_grad_(), edge_index)
        out.square().mean().backward()

    return step


def estimate_bytes(layer: str, batch_size: int, num_agents: int, num_edges: int, heads: int = 4) -> int:
    """Rough peak memory of a forward and backward (see ``throughput.estimate_bytes``)."""
    if layer == "dense":
        return (10 * heads + 1) * batch_size * num_agents**2
    return 1200 * num_edges


def run_point(n: int, args: argparse.Namespace, device: torch.device, budget: int) -> list[dict[str, Any]]:
    gen = torch.Generator().manual_seed(n)
    B, d, V, M, H = default_batch_size(n, args.bn), args.dim, args.vocab, args.msg_dim, args.heads
    pos = (torch.rand(B, n, 2, generator=gen) * 2 * n**0.5).to(device)
    edge_index = knn(pos, min(args.k, n - 1))
    x = torch.randn(B * n, d, generator=gen).to(device)
    message = torch.nn.functional.one_hot(torch.randint(V, (B * n, M), generator=gen), V).float().to(device)
    torch.manual_seed(0)
    sparse = MessageAttention(d, d, V, M, heads=H).to(device)
    modules = {
        "message_attention": sparse,
        "transformer_conv": TransformerConv(d, d // H, heads=H).to(device),
        "transformer_conv_msg": TransformerConv((M * V, d), d // H, heads=H).to(device),
        "dense": DenseMessageAttention(sparse, n),
    }
    rows, steps = {}, {}
    for layer in args.layers:
        est = estimate_bytes(layer, B, n, edge_index.size(1), H)
        rows[layer] = {"agents": n, "batch_size": B, "edges": edge_index.size(1), "layer": layer, "est_bytes": est}
        if est > budget:
            rows[layer].update(
                status="skipped",
                note=f"estimated {est / 2**30:.1f} GiB exceeds the memory budget {budget / 2**30:.1f} GiB",
            )
            continue
        steps[layer] = make_step(layer, modules, x, message, edge_index)
        with PeakMemory(device) as mem:
            time_calls(steps[layer], steps=0, warmup=args.warmup, device=device)
        rows[layer].update(status="ok", note="", peak_mem_bytes=mem.peak_bytes, mem_method=mem.method)
    for layer, times in time_interleaved(steps, steps=args.steps, device=device).items():
        rows[layer].update(times_s=times.wall, time_s=statistics.median(times.wall), cpu_s=statistics.median(times.cpu))
    base, base_cpu = rows.get("message_attention", {}).get("time_s"), rows.get("message_attention", {}).get("cpu_s")
    for row in rows.values():
        if base and row.get("time_s"):
            row["time_over_message_attention"] = row["time_s"] / base
        if base_cpu and row.get("cpu_s"):
            row["cpu_over_message_attention"] = row["cpu_s"] / base_cpu
    return list(rows.values())


def table(results: list[dict[str, Any]]) -> str:
    by = {(r["agents"], r["layer"]): r for r in results}
    rows = []
    for n in dict.fromkeys(r["agents"] for r in results):
        ms = {layer: by[(n, layer)].get("time_s") if (n, layer) in by else None for layer in LAYERS}
        mem = {layer: by[(n, layer)].get("peak_mem_bytes") if (n, layer) in by else None for layer in LAYERS}
        base = ms["message_attention"]
        cell = lambda v: "—" if v is None else f"{1e3 * v:,.2f}"  # noqa: E731
        ratio = lambda layer: fmt_ratio(ms[layer] / base if base and ms[layer] else None)  # noqa: E731
        rows.append(
            [
                n,
                by[(n, LAYERS[0])]["batch_size"] if (n, LAYERS[0]) in by else "",
                cell(ms["message_attention"]),
                cell(ms["transformer_conv"]),
                cell(ms["transformer_conv_msg"]),
                cell(ms["dense"]),
                ratio("transformer_conv"),
                ratio("transformer_conv_msg"),
                ratio("dense"),
                fmt_mib(mem["message_attention"]),
                fmt_mib(mem["transformer_conv"]),
                fmt_mib(mem["dense"]),
            ]
        )
    return format_table(
        [
            "N",
            "B",
            "MA ms",
            "TC ms",
            "TC(msg) ms",
            "dense ms",
            "TC / MA",
            "TC(msg) / MA",
            "dense / MA",
            "MA MiB",
            "TC MiB",
            "dense MiB",
        ],
        rows,
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--agents", type=int, nargs="+", default=[10, 50, 200, 1000, 10000])
    p.add_argument("--bn", type=int, default=None, help="B*N (default: 2560 on CPU, 65536 on CUDA)")
    p.add_argument("--layers", nargs="+", default=list(LAYERS), choices=LAYERS)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=64)
    p.add_argument("--msg-dim", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--mem-fraction", type=float, default=0.25)
    p.add_argument("--mem-limit-gb", type=float, default=None)
    p.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run")
    p.add_argument("--out", default=None, help="JSON path (default: benchmarks/results/layer_<device>.json)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    device = setup(args.device, args.threads)
    if args.quick:
        args.agents, args.bn, args.steps, args.warmup = [10, 50], 200, 3, 1
    args.bn = args.bn or (65536 if device.type == "cuda" else 2560)
    out = Path(args.out) if args.out else default_out("layer", device)
    budget = memory_budget(device, args.mem_fraction, args.mem_limit_gb)
    report = {
        "meta": {
            **metadata(device, argv),
            "bn": args.bn,
            "k": args.k,
            "dim": args.dim,
            "heads": args.heads,
            "steps": args.steps,
            "warmup": args.warmup,
            "memory_budget_bytes": budget,
            "time": "median seconds of one forward + backward",
        },
        "equivalence": check_layer(device),
        "results": [],
    }
    if not report["equivalence"]["passed"]:
        write_json(out, report)
        print(f"dense layer differs from MessageAttention; nothing timed. See {out}", file=sys.stderr)
        return 1
    return sweep(args.agents, lambda n: run_point(n, args, device, budget), report, out, table)


if __name__ == "__main__":
    sys.exit(main())
