"""Activation recomputation (``recompute_steps``) at large populations: peak memory and speed, on and off.

Each configuration runs in a fresh process (so peak RSS is its own), one training step after another
as :func:`gnncomm.bench.measure_trainer` times them::

    OMP_NUM_THREADS=1 python -m benchmarks.recompute --agents 10000 100000 --steps 2 --warmup 1 \
        --cpu-memory reuse release system

Peak memory on the CPU is the rise of the peak RSS over the resident size before the first step
(:class:`gnncomm.bench.PeakMemory`), plus the resident size itself in ``rss_bytes``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from benchmarks.common import RESULTS, format_table, metadata, write_json

CHILD = """
import json, resource, sys
from gnncomm.bench import bench_config, build_trainer, measure_trainer
agents, mode, steps, warmup, memory = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
cfg = bench_config(agents, 1).with_overrides({"recompute_steps": mode, "cpu_memory": memory})
cfg = cfg.with_overrides(sys.argv[6:])  # --set key=value
result = measure_trainer(build_trainer(cfg), steps=steps, warmup=warmup)
usage = resource.getrusage(resource.RUSAGE_SELF)
result["max_rss_bytes"] = usage.ru_maxrss * 1024
result["minor_faults"], result["user_s"], result["system_s"] = usage.ru_minflt, usage.ru_utime, usage.ru_stime
print(json.dumps({k: v for k, v in result.items() if isinstance(v, (int, float, str, type(None)))}))
"""


def measure(
    agents: int, mode: str, steps: int, warmup: int, memory: str = "reuse", overrides: Sequence[str] = ()
) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(agents), mode, str(steps), str(warmup), memory, *overrides],
        capture_output=True,
        text=True,
        timeout=3000,
        check=True,
    ).stdout
    return {
        "agents": agents,
        "recompute_steps": mode,
        "cpu_memory": memory,
        "overrides": list(overrides),
        **json.loads(out.strip().splitlines()[-1]),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, nargs="+", default=[10_000, 100_000], help="N, one episode each")
    parser.add_argument("--steps", type=int, default=2, help="timed steps (default: 2)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up steps (default: 1)")
    parser.add_argument("--modes", nargs="+", default=["false", "true"], help="recompute_steps values")
    parser.add_argument(
        "--cpu-memory", nargs="+", default=["reuse"], choices=["reuse", "release", "system"], help="cpu_memory values"
    )
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="key=value", help="config overrides for every run (default: none)"
    )
    parser.add_argument("--out", default=str(RESULTS / "recompute_cpu.json"), help="JSON path")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"meta": metadata(torch.device("cpu"), argv), "results": []}
    for agents in args.agents:
        for mode, memory in itertools.product(args.modes, args.cpu_memory):
            row = measure(agents, mode, args.steps, args.warmup, memory, args.set)
            report["results"].append(row)
            write_json(args.out, report)
            print(
                f"  N={agents} recompute={mode} cpu_memory={memory}: {row['agent_steps_per_s']:,.0f} agent-steps/s, "
                f"max RSS "
                f"{row['max_rss_bytes'] / 2**30:.2f} GiB",
                flush=True,
            )
    rows = [
        [
            r["agents"],
            r["recompute_steps"],
            r.get("cpu_memory", {"true": "reuse", "false": "system"}.get(r.get("reuse_cpu_memory"))),
            f"{r['agent_steps_per_s']:,.0f}",
            f"{r['max_rss_bytes'] / 2**30:.2f}",
            r["minor_faults"],
            f"{r['system_s']:.1f}",
        ]
        for r in report["results"]
    ]
    headers = ["N", "recompute_steps", "cpu_memory", "agent-steps/s", "max RSS GiB", "page faults", "system s"]
    print(format_table(headers, rows))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
