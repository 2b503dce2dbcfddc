"""Torch CPU threads and the OpenMP wait policy on a shared machine: which default loses least?

Runs ``gnncomm bench`` (one configuration, fresh process each time) under every combination of
``OMP_NUM_THREADS`` in {1, 2} and ``OMP_WAIT_POLICY`` in {unset (spinning), PASSIVE}, once on an idle
machine and once next to a busy neighbour (a pure-Python busy loop pinned to nothing, one core's worth),
in alternation, and writes the agent-steps/s of each to JSON::

    python -m benchmarks.threads --agents 100 --rounds 2

The machine must otherwise be idle: the load average is recorded before each measurement.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
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

THREADS = ("1", "2", "auto")
POLICIES = ("default", "PASSIVE")


def bench_once(agents: int, threads: str, policy: str, steps: int) -> tuple[float, int]:
    """Agent-steps/s of one fresh ``gnncomm bench`` process; ``threads="auto"`` leaves OMP_NUM_THREADS unset, so
    the library's default (``Config.threads = 0``: the cores other processes leave free) decides. Returns the
    agent-steps/s and the thread count the bench ran with."""
    env = {**os.environ, "OMP_NUM_THREADS": threads}
    if threads == "auto":
        env.pop("OMP_NUM_THREADS")
    env.pop("OMP_WAIT_POLICY", None)
    if policy != "default":
        env["OMP_WAIT_POLICY"] = policy
    cmd = [sys.executable, "-m", "gnncomm", "bench", "--agents", str(agents), "--steps", str(steps), "--json"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=True).stdout
    result = json.loads(out)
    return float(result["agent_steps_per_s"]), int(result["threads"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=100, help="agents per episode (default: 100)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per bench (default: 5)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of every combination (default: 2)")
    parser.add_argument("--threads", nargs="+", default=list(THREADS), choices=THREADS, help="thread settings")
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES, help="wait policies")
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="seconds the busy neighbour runs before the first measurement, so that the load "
        "average shows it (default: 0)",
    )
    parser.add_argument("--out", default=str(RESULTS / "threads_cpu.json"), help="JSON path")
    args = parser.parse_args(argv)
    results: list[dict[str, Any]] = []
    for _ in range(args.rounds):
        for busy in (False, True):
            neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
            if busy and args.settle:
                time.sleep(args.settle)
            try:
                for threads, policy in itertools.product(args.threads, args.policies):  # auto last: the load
                    load = os.getloadavg()  # average needs about a minute to show the neighbour
                    rate, used = bench_once(args.agents, threads, policy, args.steps)
                    results.append(
                        {
                            "threads": threads,
                            "policy": policy,
                            "busy_neighbour": busy,
                            "agent_steps_per_s": rate,
                            "threads_used": used,
                            "load_avg_1": load[0],
                        }
                    )
                    print(
                        f"  threads={threads} ({used}) policy={policy:8s} busy={busy!s:5s}: {rate:,.0f} agent-steps/s",
                        flush=True,
                    )
            finally:
                if neighbour is not None:
                    neighbour.kill()
                    neighbour.wait()
    rows = []
    for threads, policy in itertools.product(args.threads, args.policies):
        idle = [
            r["agent_steps_per_s"]
            for r in results
            if (r["threads"], r["policy"], r["busy_neighbour"]) == (threads, policy, False)
        ]
        busy = [
            r["agent_steps_per_s"]
            for r in results
            if (r["threads"], r["policy"], r["busy_neighbour"]) == (threads, policy, True)
        ]
        best_idle, best_busy = max(idle), max(busy)
        rows.append([threads, policy, f"{best_idle:,.0f}", f"{best_busy:,.0f}", f"{best_idle / best_busy:.2f}x"])
    write_json(args.out, {"meta": metadata(torch.device("cpu"), argv), "results": results})
    print(format_table(["threads", "OMP_WAIT_POLICY", "idle", "busy neighbour", "idle / busy"], rows))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
