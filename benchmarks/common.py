"""What the benchmark scripts share: run metadata, thread setup, memory budgets, JSON and tables."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def setup(device: str, threads: int | None) -> torch.device:
    """Resolves the device and pins the CPU thread count (recorded in :func:`metadata`)."""
    if threads is not None:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"error: --device {device} but CUDA is not available")
    return dev


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def git_revision() -> str:
    """The checkout's commit, with ``-dirty`` when ``gnncomm/`` has uncommitted changes."""
    import subprocess

    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "gnncomm"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (rev or "unknown") + ("-dirty" if dirty else "")


def metadata(device: torch.device, argv: Sequence[str] | None) -> dict[str, Any]:
    """Where and how a benchmark ran: versions, commit, device, threads, load and the command line."""
    import torch_geometric

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "device": device.type,
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_avg_1_5_15": load,
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "python": platform.python_version(),
        "git": git_revision(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join([Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)]),
    }


def memory_budget(device: torch.device, fraction: float, limit_gb: float | None) -> int:
    """Bytes a configuration may be estimated to need before it is skipped as not fitting."""
    if limit_gb is not None:
        return int(limit_gb * 2**30)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(fraction * free)
    try:
        import psutil

        return int(fraction * psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover
        return int(fraction * 8 * 2**30)


def default_out(name: str, device: torch.device) -> Path:
    return RESULTS / f"{name}_{device.type}.json"


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Writes atomically, so a run stopped half-way leaves the last complete file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (also readable on a terminal)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    sep = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(cells[0]), sep, *map(line, cells[1:])])


def fmt_rate(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}"


def fmt_mib(n: int | None) -> str:
    return "—" if n is None else f"{n / 2**20:,.0f}"


def fmt_ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}×"


def sweep(
    agents: Sequence[int],
    run_point: Callable[[int], list[dict[str, Any]]],
    report: dict[str, Any],
    out: Path,
    table: Callable[[list[dict[str, Any]]], str],
) -> int:
    """Runs ``run_point(N)`` for each N, rewriting the JSON after each, then prints the table."""
    for n in agents:
        report["results"] += run_point(n)
        write_json(out, report)
        print(f"  N={n} done", flush=True)
    print(table(report["results"]))
    print(f"wrote {out}")
    return 0
