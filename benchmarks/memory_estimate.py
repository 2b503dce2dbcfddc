"""The memory estimate (:func:`gnncomm.memory.estimate_memory`) against the measured peak of real training steps.

Each size runs in a fresh process: its baseline is the resident size after the imports (heap trimmed), and its
peak the high-water mark of the resident size (``VmHWM``) after building the trainer and running ``--steps``
training steps, each on a new episode. The estimate compared is the training peak (weights, gradients, AdamW
moments, the episode's noise and the larger of the activations and the update), computed in this process; the
end-of-run evaluation is not run::

    OMP_NUM_THREADS=1 python -m benchmarks.memory_estimate
    OMP_NUM_THREADS=1 python -m benchmarks.memory_estimate --sizes 1000:2 10000:1 100000:1:release --steps 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from benchmarks.common import RESULTS, format_table, metadata, write_json

CHILD = """
import json, sys, time
import torch
from gnncomm.bench import _read_status_kib, _trim_heap, bench_config, build_trainer
agents, batch, memory, steps = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
torch.set_num_threads(1)
_trim_heap()
baseline = _read_status_kib("VmRSS") * 1024
start = time.perf_counter()
trainer = build_trainer(bench_config(agents, batch).with_overrides({"cpu_memory": memory}))
temperature = torch.tensor(trainer.cfg.temperature(0))
for _ in range(steps):
    trainer.train_step(trainer.next_episode(), temperature)
peak = _read_status_kib("VmHWM") * 1024
print(json.dumps({"baseline_rss_bytes": baseline, "peak_rss_bytes": peak, "measured_bytes": peak - baseline,
                  "run_s": time.perf_counter() - start}))
"""


def parse_size(text: str) -> tuple[int, int, str]:
    """``N:B[:cpu_memory]`` -> ``(N, B, cpu_memory)``."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(f"a size is N:B or N:B:cpu_memory, got {text!r}")
    return int(parts[0]), int(parts[1]), parts[2] if len(parts) == 3 else "reuse"


def measure(agents: int, batch: int, memory: str, steps: int) -> dict[str, Any]:
    """The estimate (here) and the measured peak (a fresh process) of one size."""
    from gnncomm.bench import bench_config
    from gnncomm.memory import estimate_memory
    from gnncomm.rollout import recompute_steps

    cfg = bench_config(agents, batch).with_overrides({"cpu_memory": memory})
    start = time.perf_counter()
    est = estimate_memory(cfg)
    estimate_s = time.perf_counter() - start
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(agents), str(batch), memory, str(steps)],
        capture_output=True,
        text=True,
        timeout=3000,
        check=True,
    ).stdout
    row = json.loads(out.strip().splitlines()[-1])
    return {
        "agents": agents,
        "batch_size": batch,
        "cpu_memory": memory,
        "recompute": recompute_steps(cfg, agents * batch),
        "steps": steps,
        "estimate_s": estimate_s,
        "estimate": {
            "parameters": est.parameters,
            "gradients": est.gradients,
            "optimizer": est.optimizer,
            "activations": est.activations,
            "update": est.update,
            "noise": est.noise,
            "evaluation": est.evaluation,
            "training": est.training,
            "peak": est.peak,
        },
        **row,
        "error": est.training / row["measured_bytes"] - 1,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes",
        type=parse_size,
        nargs="+",
        default=[(1000, 2, "reuse"), (10_000, 1, "reuse"), (100_000, 1, "release")],
        help="N:B[:cpu_memory] (default: 1000:2 10000:1 100000:1:release)",
    )
    parser.add_argument("--steps", type=int, default=2, help="training steps per size (default: 2)")
    parser.add_argument("--out", default=str(RESULTS / "memory_estimate_cpu.json"), help="JSON path")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    report: dict[str, Any] = {"meta": metadata(torch.device("cpu"), argv), "results": []}
    for agents, batch, memory in args.sizes:
        row = measure(agents, batch, memory, args.steps)
        report["results"].append(row)
        write_json(args.out, report)
        print(f"  N={agents} B={batch} cpu_memory={memory}: error {row['error']:+.1%}", flush=True)
    rows = [
        [
            r["agents"],
            r["batch_size"],
            r["cpu_memory"],
            r["recompute"],
            f"{r['estimate']['training'] / 2**20:,.0f}",
            f"{r['measured_bytes'] / 2**20:,.0f}",
            f"{r['error']:+.1%}",
            f"{r['estimate']['evaluation'] / 2**20:,.0f}",
            f"{r['estimate_s']:.2f}",
        ]
        for r in report["results"]
    ]
    headers = ["N", "B", "cpu_memory", "recompute", "estimate MiB", "measured MiB", "error", "eval est. MiB", "est. s"]
    print(format_table(headers, rows))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
