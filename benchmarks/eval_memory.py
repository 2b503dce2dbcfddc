"""The whole ``gnncomm train`` command as a user types it: its peak RSS, and how long training and the end-of-run
evaluation take.

The command runs in a fresh process under ``/usr/bin/time -v`` (peak RSS: ``Maximum resident set size``, which
counts everything: the interpreter, the memory check's probes, training, the live probe, the end-of-run
evaluation and the figures), in an empty working folder so that it writes ``runs/default`` there. The phases
come from the run folder: the training time is ``train_time_s`` of the last row of ``metrics.csv``, and the
end-of-run evaluation is the time from the last checkpoint (written when training ends) to ``ablation.json`` (it
includes the agent files and ``training_progress.png``, well under a second)::

    OMP_NUM_THREADS=1 python -m benchmarks.eval_memory
    OMP_NUM_THREADS=1 python -m benchmarks.eval_memory num_agents=2000 batch_size=1 steps=2 --out /tmp/x.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from benchmarks.common import RESULTS, metadata, write_json

COMMAND = ["num_agents=100000", "batch_size=1", "steps=2", "cpu_memory=release"]
"""The README's command: ``gnncomm train num_agents=100000 batch_size=1 steps=2 cpu_memory=release``."""


def time_v(output: str) -> dict[str, float]:
    """Peak RSS (bytes), wall time (s), user and system time (s) from ``/usr/bin/time -v``'s report."""
    fields = {
        "peak_rss_bytes": (r"Maximum resident set size \(kbytes\): (\d+)", lambda v: int(v) * 1024),
        "user_s": (r"User time \(seconds\): ([\d.]+)", float),
        "system_s": (r"System time \(seconds\): ([\d.]+)", float),
    }
    out: dict[str, float] = {}
    for key, (pattern, convert) in fields.items():
        match = re.search(pattern, output)
        if match:
            out[key] = convert(match.group(1))
    match = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", output)
    if match:
        parts = [float(p) for p in match.group(1).split(":")]
        out["wall_s"] = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    return out


def sample_rss(proc: subprocess.Popen, every_s: float = 0.5) -> list[tuple[float, int]]:
    """``(time, RSS)`` of ``/usr/bin/time``'s child (the command) until it ends: which phase holds the peak (the
    samples can miss a peak shorter than ``every_s``; ``/usr/bin/time``'s peak cannot)."""
    samples: list[tuple[float, int]] = []
    while proc.poll() is None:
        try:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            for line in Path(f"/proc/{children[0]}/status").read_text().splitlines() if children else []:
                if line.startswith("VmRSS:"):
                    samples.append((time.time(), int(line.split()[1]) * 1024))
        except (OSError, IndexError, ValueError):
            pass
        time.sleep(every_s)
    return samples


def phases(run_dir: Path) -> dict[str, Any]:
    """Training and end-of-run evaluation times from the run folder's files."""
    with open(run_dir / "metrics.csv", newline="") as fh:
        last = list(csv.DictReader(fh))[-1]
    train_s, steps = float(last["train_time_s"]), int(float(last["step"]))
    evaluation_s = (run_dir / "ablation.json").stat().st_mtime - (run_dir / "checkpoint.pt").stat().st_mtime
    ablation = json.loads((run_dir / "ablation.json").read_text())
    return {
        "train_time_s": train_s,
        "steps": steps,
        "step_time_s": train_s / steps,
        "evaluation_s": evaluation_s,
        "evaluation_in_training_steps": evaluation_s / (train_s / steps),
        "hubs": len(ablation.get("hubs") or []),
        "ablation_episodes": ablation.get("episodes"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", default=COMMAND, help="the command's key=value overrides")
    parser.add_argument("--out", default=str(RESULTS / "eval_memory_cpu.json"))
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="gnncomm-eval-memory-"))
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "gnncomm", "train", *args.overrides]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    print("$ gnncomm train " + " ".join(args.overrides), flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples = sample_rss(proc)  # (time.time(), RSS bytes) of the train process, every 0.5 s
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        print(stdout[-4000:], stderr[-4000:], file=sys.stderr)
        return proc.returncode
    result = {"command": "gnncomm train " + " ".join(args.overrides), "wall_s": wall, **time_v(stderr)}
    run_dir = workdir / "runs" / "default"
    result.update(phases(run_dir))
    trained = (run_dir / "checkpoint.pt").stat().st_mtime
    result["sampled_rss_peak_training_bytes"] = max((r for t, r in samples if t <= trained), default=None)
    result["sampled_rss_peak_evaluation_bytes"] = max((r for t, r in samples if t > trained), default=None)
    shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"peak RSS {result['peak_rss_bytes'] / 1e9:.2f} GB, {result['wall_s']:.0f} s in all: training "
        f"{result['train_time_s']:.0f} s ({result['step_time_s']:.0f} s a step), end-of-run evaluation "
        f"{result['evaluation_s']:.0f} s (= {result['evaluation_in_training_steps']:.1f} training steps), "
        f"{result['hubs']} hubs; sampled RSS peaks: training {result['sampled_rss_peak_training_bytes'] / 1e9:.2f} GB, "
        f"evaluation {result['sampled_rss_peak_evaluation_bytes'] / 1e9:.2f} GB",
        flush=True,
    )
    write_json(
        args.out,
        {"meta": metadata(torch.device("cpu"), ["benchmarks.eval_memory", *(argv or sys.argv[1:])]), "result": result},
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
