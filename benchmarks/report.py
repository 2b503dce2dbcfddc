"""Markdown tables from the JSON files in ``benchmarks/results/`` (for the README).

python -m benchmarks.report [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/report.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import knn, layer, throughput
from benchmarks.common import RESULTS, format_table


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _meta_line(meta: dict[str, Any]) -> str:
    load = meta.get("load_avg_1_5_15")
    load = "" if not load else f", load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} (1/5/15 min) at start"
    return (
        f"_{meta['device_name']} ({meta['device']}), {meta['threads']} thread(s) of {meta['cpu_count']} cores"
        f"{load}; torch {meta['torch']}, PyG {meta['torch_geometric']}, commit {meta['git']}, {meta['date']}; "
        f"`{meta['command']}`_"
    )


def goals_table(goals: dict[str, Any]) -> str:
    rows = []
    for name, g in goals.items():
        cpu = g.get("measured_cpu_time")
        rows.append(
            [
                name,
                f"{g['measured']:.2f}",
                "—" if cpu is None else f"{cpu:.2f}",
                g["target"],
                "met" if g["met"] else "not met",
            ]
        )
    return format_table(["goal", "measured (wall)", "measured (CPU time)", "target", "verdict"], rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--results", default=str(RESULTS))
    args = p.parse_args(argv)
    folder = Path(args.results)
    for suffix in ("", "_scaling", "_compile"):
        data = _load(folder / f"throughput_{args.device}{suffix}.json")
        if data:
            print(f"\n### throughput{suffix} ({args.device})\n\n{_meta_line(data['meta'])}\n")
            print(throughput.table(data["results"]))
            if data.get("goals"):
                print("\n" + goals_table(data["goals"]))
            skipped = [r for r in data["results"] if r["status"] != "ok"]
            if skipped:
                print(
                    "\nNot run: "
                    + "; ".join(
                        sorted(
                            {
                                f"N={r['agents']} B={r['batch_size']} {r['topology']} {r['impl']}: {r['note']}"
                                for r in skipped
                                if r["mode"] == "eager"
                            }
                        )
                    )
                )
    for name, module in (("layer", layer), ("knn", knn)):
        data = _load(folder / f"{name}_{args.device}.json")
        if data:
            print(f"\n### {name} ({args.device})\n\n{_meta_line(data['meta'])}\n")
            print(module.table(data["results"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
