"""``torch.compile`` of the training step: how long it takes to compile, and what it buys over eager.

The trainer compiles one rollout step (:func:`gnncomm.rollout.rollout_step`) and reuses it for the
``T`` steps of every episode, so compile time should not grow with ``T``. For each configuration this
builds an eager and a compiled trainer on the same episode, times the compiled trainer's first step
(the compile, with Inductor's caches off so every configuration compiles from scratch), then times
both trainers' steps in alternation (:func:`gnncomm.bench.measure_trainers`)::

    OMP_NUM_THREADS=1 python -m benchmarks.compile --threads 1

Each configuration runs in a fresh process. The JSON holds, per configuration, the compile time,
the eager and compiled step times and agent-steps/s, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from benchmarks.common import default_out, format_table, metadata, setup, write_json

#: (agents, batch size, topology, timesteps): the seed default, then the same with T=10 (compile time
#: against T), and a large population.
CONFIGS = ((10, 256, "knn", 5), (10, 256, "knn", 10), (1000, 3, "knn", 5), (1000, 3, "ring", 5))
QUICK = ((6, 2, "knn", 2),)

CHILD = """
import json, sys, torch
from gnncomm.bench import bench_config, build_trainer, measure_trainers
agents, batch, topology, T, device, steps, threads, quick, mode_name, amp = sys.argv[1:11]
torch.set_num_threads(int(threads))
torch._inductor.config.fx_graph_cache = False
torch._inductor.config.autotune_local_cache = False
trainers = {}
for mode in ("eager", "compiled"):
    cfg = bench_config(
        int(agents), int(batch), topology, device=device, compile=mode == "compiled", timesteps=int(T), amp=amp
    ).with_overrides({"compile_mode": mode_name})
    if quick == "1":
        cfg = cfg.with_overrides({"hidden_dim": 16, "vocab_size": 8, "msg_dim": 2})
    trainers[mode] = build_trainer(cfg)
result = measure_trainers(trainers, steps=int(steps), warmup=2)
frames = torch._dynamo.utils.counters["stats"]["unique_graphs"]
print(json.dumps({
    mode: {k: v for k, v in r.items() if isinstance(v, (int, float, str, type(None)))} for mode, r in result.items()
} | {"graphs": frames}))
"""


def measure(agents: int, batch: int, topology: str, T: int, *, device: str, steps: int, threads: int, quick: bool,
            mode: str, amp: str) -> dict[str, Any]:  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if device == "cpu" else dict(os.environ)
    argv = [str(a) for a in (agents, batch, topology, T, device, steps, threads, int(quick), mode, amp)]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, timeout=3000, env=env, check=False
    )
    if proc.returncode:
        raise SystemExit(f"error: the child process failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    eager, compiled = out["eager"], out["compiled"]
    return {
        "agents": agents,
        "batch_size": batch,
        "topology": topology,
        "timesteps": T,
        "compile_mode": mode,
        "amp": amp,
        "compile_s": compiled["first_step_s"],
        "eager_first_step_s": eager["first_step_s"],
        "graphs": out["graphs"],
        "eager_step_s": eager["step_time_s"],
        "compiled_step_s": compiled["step_time_s"],
        "eager_agent_steps_per_s": eager["agent_steps_per_s"],
        "compiled_agent_steps_per_s": compiled["agent_steps_per_s"],
        "speedup": eager["step_time_s"] / compiled["step_time_s"],
        "eager_peak_mem_bytes": eager["peak_mem_bytes"],
        "compiled_peak_mem_bytes": compiled["peak_mem_bytes"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="device (default: cpu)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    parser.add_argument("--steps", type=int, default=7, help="timed steps per trainer (default: 7)")
    parser.add_argument(
        "--configs",
        nargs="+",
        default=None,
        help="AGENTS:BATCH:TOPOLOGY:T entries (default: " + " ".join(":".join(map(str, c)) for c in CONFIGS) + ")",
    )
    parser.add_argument("--compile-mode", default="default", help="Config.compile_mode (default: default)")
    parser.add_argument("--amp", default="none", help="Config.amp of both trainers (default: none)")
    parser.add_argument("--quick", action="store_true", help="one tiny configuration, to check the script")
    parser.add_argument("--out", default=None, help="JSON path (default: benchmarks/results/compile_<device>.json)")
    args = parser.parse_args(argv)
    device = setup(args.device, args.threads)
    configs = QUICK if args.quick else CONFIGS
    if args.configs:
        try:
            configs = [(int(a), int(b), t, int(T)) for a, b, t, T in (c.split(":") for c in args.configs)]
        except ValueError:
            raise SystemExit(f"error: --configs expects AGENTS:BATCH:TOPOLOGY:T entries, got {args.configs}") from None
    out = args.out or default_out("compile", device)
    report: dict[str, Any] = {"meta": metadata(device, argv), "results": []}
    for agents, batch, topology, T in configs:
        steps = 2 if args.quick else args.steps
        row = measure(
            agents, batch, topology, T, device=args.device, steps=steps, threads=args.threads, quick=args.quick,
            mode=args.compile_mode, amp=args.amp,
        )  # fmt: skip
        report["results"].append(row)
        write_json(out, report)
        print(
            f"  N={agents} B={batch} {topology} T={T}: compile {row['compile_s']:.1f} s ({row['graphs']} graph(s)), "
            f"eager {row['eager_step_s'] * 1e3:.1f} ms, compiled {row['compiled_step_s'] * 1e3:.1f} ms "
            f"({row['speedup']:.2f}x)",
            flush=True,
        )
    rows = [
        [
            r["agents"],
            r["batch_size"],
            r["topology"],
            r["timesteps"],
            f"{r['compile_s']:.1f}",
            r["graphs"],
            f"{r['eager_step_s'] * 1e3:.1f}",
            f"{r['compiled_step_s'] * 1e3:.1f}",
            f"{r['speedup']:.2f}x",
        ]
        for r in report["results"]
    ]
    print(format_table(["N", "B", "graph", "T", "compile s", "graphs", "eager ms", "compiled ms", "speed-up"], rows))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
