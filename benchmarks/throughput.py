"""Training throughput of the library against the dense baseline, from 10 to 10,000 agents.

Times the whole training step (``T``-step rollout, backward, clipping, AdamW) with
:func:`gnncomm.bench.measure_trainer`, once with the library's :class:`~gnncomm.nn.MessageAttention`
and once with :class:`~benchmarks.dense_baseline.DenseMessageAttention` swapped in on the same
weights, side by side in one process, after checking that the two agree. ``B`` is chosen so that
``B * N`` stays near ``--bn``. A configuration whose estimated memory exceeds the budget is skipped
with a note in the JSON.

CPU (about 25 min on 2 cores; compile adds about 4 min per configuration)::

    OMP_NUM_THREADS=1 python -m benchmarks.throughput --threads 1

GPU::

    python -m benchmarks.throughput --device cuda

Full graphs with the library's dense path (``MessageAttention`` given ``num_agents``), CPU::

    OMP_NUM_THREADS=1 python -m benchmarks.throughput --threads 1 --topologies full --modes eager \
        --agents 10 50 100 200 --extra --steps 7 --no-plot \
        --out benchmarks/results/throughput_cpu_full.json

Smoke run (seconds)::

    python -m benchmarks.throughput --quick
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/throughput.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from benchmarks.common import (
    default_out,
    fmt_mib,
    fmt_rate,
    fmt_ratio,
    format_table,
    memory_budget,
    metadata,
    setup,
    write_json,
)
from benchmarks.dense_baseline import check_equivalence, use_dense_attention
from gnncomm.bench import bench_config, build_trainer, default_batch_size, measure_trainers

#: mode name -> (torch.compile, amp)
MODES = {
    "eager": (False, "none"),
    "compile": (True, "none"),
    "bf16": (False, "bf16"),
    "fp16": (False, "fp16"),
    "compile_bf16": (True, "bf16"),
}
IMPLS = ("lib", "dense")
TOPOLOGIES = ("ring", "knn", "full")


def num_edges(topology: str, num_agents: int, k: int) -> int:
    """Edges of one episode's graph."""
    N = num_agents
    return {"knn": N * min(k, N - 1), "ring": 2 * N if N > 2 else N, "full": N * (N - 1)}[topology]


def estimate_bytes(
    impl: str, topology: str, num_agents: int, batch_size: int, timesteps: int, k: int = 4, heads: int = 4
) -> int:
    """A rough peak-memory estimate of a training step, to skip what cannot fit.

    Calibrated on an H200 at hidden 64 (fp32): about 16 KiB per agent-step (activations kept for
    the backward pass), 1.2 KiB per edge-step for the sparse layer (``[E, H, C]`` gathers and their
    gradients), and ``10 H + 1`` bytes per ordered pair of agents of an episode per step for the
    dense layer (scores, mask, softmax and their gradients).
    """
    N, B, T = num_agents, batch_size, timesteps
    base = 16 * 1024 * B * N * T
    edges = 1200 * B * num_edges(topology, N, k) * T
    if impl == "dense":
        return base + (10 * heads + 1) * B * N * N * T + edges // 8  # the world still gathers per edge
    return base + edges


def plan(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    """The configurations of the sweep, in run order; each is measured for every one of ``args.impls``."""
    points = [(n, default_batch_size(n, args.bn)) for n in args.agents]
    for item in args.extra:
        n, b = (int(v) for v in item.split(":"))
        if (n, b) not in points:
            points.append((n, b))
    compile_agents = args.compile_agents if args.compile_agents is not None else [n for n, _ in points]
    configs = []
    for n, b in points:
        for topology in args.topologies:
            for mode in args.modes:
                compiled, amp = MODES[mode]
                if amp == "fp16" and device.type != "cuda":
                    continue  # fp16 needs the CUDA GradScaler
                if not args.exhaustive and mode != "eager" and topology != "knn":
                    continue
                if not args.exhaustive and compiled and n not in compile_agents:
                    continue
                configs.append(
                    {"agents": n, "batch_size": b, "topology": topology, "mode": mode, "compile": compiled, "amp": amp}
                )
    return configs


def run_config(
    config: dict[str, Any], args: argparse.Namespace, device: torch.device, budget: int
) -> list[dict[str, Any]]:
    """Measures one configuration with each implementation side by side, or says why one was skipped."""
    rows, trainers = {}, {}
    try:
        for impl in args.impls:
            row = rows[impl] = {**config, "impl": impl, "status": "skipped", "note": ""}
            row["est_bytes"] = est = estimate_bytes(
                "dense" if config["topology"] == "full" else impl,  # the library is dense on complete graphs
                config["topology"],
                config["agents"],
                config["batch_size"],
                args.timesteps,
                args.k,
            )
            if est > budget:
                row["note"] = f"estimated {est / 2**30:.1f} GiB exceeds the memory budget {budget / 2**30:.1f} GiB"
                continue
            cfg = bench_config(
                config["agents"],
                config["batch_size"],
                config["topology"],
                args.k,
                str(device),
                config["compile"],
                config["amp"],
                args.timesteps,
            )
            trainers[impl] = build_trainer(cfg)  # same seed, so the same initial weights for every impl
            if impl == "dense":
                use_dense_attention(trainers[impl].system)
        if trainers:
            for impl, measured in measure_trainers(trainers, steps=args.steps, warmup=args.warmup).items():
                rows[impl].update(measured, status="ok")
    except (RuntimeError, torch.OutOfMemoryError) as exc:  # OOM or a backend failure: record and go on
        for impl in trainers:
            rows[impl].update(status="error", note=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    finally:
        trainers.clear()
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return list(rows.values())


def run_scaling(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    """The library alone at every N of ``args.agents`` (``B * N`` near ``--bn``), all N timed in
    alternation, per topology: the per-agent cost of N against N under the same load."""
    rows = []
    for topology in args.topologies:
        trainers = {}
        for n in args.agents:
            cfg = bench_config(
                n, default_batch_size(n, args.bn), topology, args.k, str(device), False, "none", args.timesteps
            )
            trainers[n] = build_trainer(cfg)
        measured = measure_trainers({str(n): t for n, t in trainers.items()}, steps=args.steps, warmup=args.warmup)
        for n, trainer in trainers.items():
            rows.append(
                {
                    "agents": n,
                    "batch_size": trainer.cfg.batch_size,
                    "topology": topology,
                    "mode": "eager",
                    "impl": "lib",
                    "compile": False,
                    "amp": "none",
                    "status": "ok",
                    "note": "scaling run: every N timed in alternation",
                    **measured[str(n)],
                }
            )
        trainers.clear()
        gc.collect()
    return rows


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Library over dense agent-steps/s for every configuration measured both ways."""
    ok = {
        (r["agents"], r["batch_size"], r["topology"], r["mode"], r["impl"]): r for r in results if r["status"] == "ok"
    }
    out = []
    for (n, b, topo, mode, impl), r in ok.items():
        dense = ok.get((n, b, topo, mode, "dense"))
        if impl == "lib" and dense is not None:
            out.append(
                {
                    "agents": n,
                    "batch_size": b,
                    "topology": topo,
                    "mode": mode,
                    "speedup": dense["step_time_s"] / r["step_time_s"],
                    "speedup_cpu": dense["step_cpu_s"] / r["step_cpu_s"] if r.get("step_cpu_s") else None,
                }
            )
    return out


def goals(results: list[dict[str, Any]], bn: int) -> dict[str, Any]:
    """The issue's whole-step goals, read off the eager kNN rows at the constant ``B * N``."""
    rows = {
        (r["agents"], r["impl"]): r
        for r in results
        if r["status"] == "ok"
        and r["topology"] == "knn"
        and r["mode"] == "eager"
        and r["batch_size"] == default_batch_size(r["agents"], bn)
    }
    out: dict[str, Any] = {}
    ratio = lambda a, b, key: a[key] / b[key] if a.get(key) and b.get(key) else None  # noqa: E731
    for n, target in ((10, 1.0), (200, 3.0), (1000, 20.0)):
        lib, dense = rows.get((n, "lib")), rows.get((n, "dense"))
        if lib and dense:
            s, s_cpu = ratio(lib, dense, "agent_steps_per_s"), ratio(lib, dense, "agent_steps_per_cpu_s")
            out[f"speedup_vs_dense_N{n}"] = {
                "measured": s,
                "measured_cpu_time": s_cpu,
                "target": target,
                "met": s >= target,
            }
    lo, hi = rows.get((100, "lib")), rows.get((10000, "lib"))
    if lo and hi and abs(100 * lo["batch_size"] - 10000 * hi["batch_size"]) <= 0.1 * 10000 * hi["batch_size"]:
        # per-agent cost at 10,000 over that at 100, at (nearly) equal B * N only
        growth, growth_cpu = ratio(lo, hi, "agent_steps_per_s"), ratio(lo, hi, "agent_steps_per_cpu_s")
        out["per_agent_cost_growth_N100_to_N10000"] = {
            "measured": growth,
            "measured_cpu_time": growth_cpu,
            "target": 1.5,
            "met": growth <= 1.5,
            "batch_sizes": [lo["batch_size"], hi["batch_size"]],
        }
    return out


def table(results: list[dict[str, Any]]) -> str:
    keys = []
    for r in results:
        key = (r["agents"], r["batch_size"], r["topology"], r["mode"])
        if key not in keys:
            keys.append(key)
    by = {(r["agents"], r["batch_size"], r["topology"], r["mode"], r["impl"]): r for r in results}
    rows = []
    for n, b, topo, mode in keys:
        lib, dense = by.get((n, b, topo, mode, "lib")), by.get((n, b, topo, mode, "dense"))
        rate = lambda r: r["agent_steps_per_s"] if r and r["status"] == "ok" else None  # noqa: E731
        mem = lambda r: r["peak_mem_bytes"] if r and r["status"] == "ok" else None  # noqa: E731
        both = lib and dense and lib["status"] == dense["status"] == "ok"
        speed = dense["step_time_s"] / lib["step_time_s"] if both else None
        speed_cpu = dense["step_cpu_s"] / lib["step_cpu_s"] if both and lib.get("step_cpu_s") else None
        share = (
            f"{100 * lib['knn_share']:.0f}%"
            if lib and lib["status"] == "ok" and topo == "knn" and "compile" not in mode
            else "—"
        )  # kNN is timed eagerly: no share of a compiled step
        step = f"{1e3 * lib['step_time_s']:,.1f}" if lib and lib["status"] == "ok" else "—"
        rows.append(
            [
                n,
                b,
                topo,
                mode,
                step,
                fmt_rate(rate(lib)),
                fmt_rate(rate(dense)),
                fmt_ratio(speed),
                fmt_ratio(speed_cpu),
                fmt_mib(mem(lib)),
                fmt_mib(mem(dense)),
                share,
            ]
        )
    headers = [
        "N",
        "B",
        "graph",
        "mode",
        "lib step ms",
        "lib agent-steps/s",
        "dense agent-steps/s",
        "lib/dense",
        "lib/dense (CPU time)",
        "lib MiB",
        "dense MiB",
        "kNN share",
    ]
    return format_table(headers, rows)


def plot(results: list[dict[str, Any]], path: Path, cpu_device: bool = False) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    ok = [r for r in results if r["status"] == "ok"]
    for color, topo in zip(("C0", "C1", "C2"), TOPOLOGIES):
        for impl, style in (("lib", "-o"), ("dense", "--s")):
            pts = sorted(
                (r["agents"], r["agent_steps_per_s"])
                for r in ok
                if r["topology"] == topo and r["impl"] == impl and r["mode"] == "eager"
            )
            if pts:
                ax1.plot(*zip(*pts), style, color=color, label=f"{impl} {topo}")
    by_key: dict[tuple[str, str], list[tuple[int, float, float | None]]] = {}
    for r in ratios(results):
        by_key.setdefault((r["topology"], r["mode"]), []).append((r["agents"], r["speedup"], r["speedup_cpu"]))
    for (topo, mode), pts in sorted(by_key.items()):
        pts = sorted(pts)
        (line,) = ax2.plot([p[0] for p in pts], [p[1] for p in pts], "-o", label=f"{topo} {mode}")
        if cpu_device and all(p[2] for p in pts):
            ax2.plot([p[0] for p in pts], [p[2] for p in pts], ":", color=line.get_color())
    ax1.set(
        xscale="log",
        yscale="log",
        xlabel="agents per episode N",
        ylabel="training agent-steps/s",
        title="whole training step (eager)",
    )
    ax2.axhline(1.0, color="grey", lw=0.8)
    ax2.set(
        xscale="log",
        yscale="log",
        xlabel="agents per episode N",
        ylabel="library / dense speed",
        title="speed-up over dense attention" + (" (dotted: CPU time)" if cpu_device else ""),
    )
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: leave as is)")
    p.add_argument("--agents", type=int, nargs="+", default=[10, 50, 100, 200, 1000, 10000])
    p.add_argument("--bn", type=int, default=None, help="B*N kept constant (default: 2560 on CPU, 65536 on CUDA)")
    p.add_argument(
        "--extra",
        nargs="*",
        default=None,
        metavar="N:B",
        help="extra (N, B) points (default: the seed's 10:256, and 1000:256 on CUDA)",
    )
    p.add_argument("--topologies", nargs="+", default=list(TOPOLOGIES), choices=TOPOLOGIES)
    p.add_argument(
        "--modes",
        nargs="+",
        default=None,
        choices=list(MODES),
        help="default: eager bf16 compile (CPU); eager bf16 fp16 compile compile_bf16 (CUDA)",
    )
    p.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    p.add_argument(
        "--compile-agents",
        type=int,
        nargs="*",
        default=None,
        help="N values at which compile modes run (default: 10 1000 on CPU, all on CUDA)",
    )
    p.add_argument(
        "--exhaustive",
        action="store_true",
        help="run every mode on every topology (default: non-eager modes on knn only)",
    )
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--timesteps", type=int, default=5)
    p.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument(
        "--mem-fraction",
        type=float,
        default=0.5,
        help="skip configurations estimated above this fraction of available memory",
    )
    p.add_argument("--mem-limit-gb", type=float, default=None, help="explicit memory budget instead")
    p.add_argument(
        "--scaling",
        action="store_true",
        help="the library alone, eager, every N of --agents timed in alternation (per-agent cost vs N)",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run (seconds)")
    p.add_argument("--out", default=None, help="JSON path (default: benchmarks/results/throughput_<device>.json)")
    p.add_argument("--no-plot", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    device = setup(args.device, args.threads)
    cuda = device.type == "cuda"
    if args.quick:
        args.agents, args.bn, args.steps, args.warmup, args.timesteps = [10, 50], 200, 2, 1, 2
        args.extra = args.extra or []
        args.modes = args.modes or ["eager", "bf16"]
    args.bn = args.bn or (65536 if cuda else 2560)
    args.extra = args.extra if args.extra is not None else (["10:256", "1000:256"] if cuda else ["10:256"])
    args.modes = args.modes or (
        ["eager", "bf16", "fp16", "compile", "compile_bf16"] if cuda else ["eager", "bf16", "compile"]
    )
    if args.compile_agents is None and not cuda:
        args.compile_agents = [10, 1000]
    out = Path(args.out) if args.out else default_out("throughput", device)
    budget = memory_budget(device, args.mem_fraction, args.mem_limit_gb)
    report: dict[str, Any] = {
        "meta": {
            **metadata(device, argv),
            "bn": args.bn,
            "timesteps": args.timesteps,
            "k": args.k,
            "steps": args.steps,
            "warmup": args.warmup,
            "memory_budget_bytes": budget,
            "agent_steps": "B * N * T per training step / median step time",
        },
        "equivalence": check_equivalence(device),
        "results": [],
    }
    if not report["equivalence"]["passed"]:
        write_json(out, report)
        print(f"dense baseline differs from the library; nothing timed. See {out}", file=sys.stderr)
        return 1
    print(
        f"dense baseline equals the library (layer, gradients, rollout loss); threads={torch.get_num_threads()}",
        flush=True,
    )
    if args.scaling:
        report["results"] = run_scaling(args, device)
        report["goals"] = goals(report["results"], args.bn)
        write_json(out, report)
    for config in [] if args.scaling else plan(args, device):
        for row in run_config(config, args, device, budget):
            report["results"].append(row)
            rate = fmt_rate(row.get("agent_steps_per_s")) if row["status"] == "ok" else row["note"]
            print(
                f"  N={row['agents']:>5} B={row['batch_size']:>4} {row['topology']:>4} {row['mode']:>12} "
                f"{row['impl']:>5}: {rate}",
                flush=True,
            )
        report["ratios"], report["goals"] = ratios(report["results"]), goals(report["results"], args.bn)
        write_json(out, report)
    print(table(report["results"]))
    if not args.no_plot:
        plot(report["results"], out.with_suffix(".png"), cpu_device=device.type == "cpu")
    print(f"wrote {out}" + ("" if args.no_plot else f" and {out.with_suffix('.png')}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
