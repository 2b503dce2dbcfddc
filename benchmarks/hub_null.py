"""The hub test's false-positive rate on data where no agent is special.

Attention is drawn at random: on each step's kNN graph (k = 4, positions uniform in the swarm's arena) every
listener's weights are a softmax of standard-normal logits over its in-neighbours, so every agent is
exchangeable. The weights are aggregated by agent id over ``--episodes`` episodes of 5 steps, exactly as
:func:`gnncomm.evaluation.attention_structure` does, and tested with its settings (the shuffled null up to
:data:`gnncomm.evaluation.HUB_PERMUTATION_MAX` shuffles, the normal approximation above, Holm at 0.05). A correct
test flags no agent in at least 95 % of repetitions.

    OMP_NUM_THREADS=1 python -m benchmarks.hub_null --agents 100 1000 --reps 20
    OMP_NUM_THREADS=1 python -m benchmarks.hub_null --agents 100000 --reps 3 --episodes 4
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/hub_null.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from torch_geometric.utils import softmax

from benchmarks.common import metadata, write_json
from gnncomm import metrics
from gnncomm.evaluation import ALPHA, HUB_PERMUTATION_MAX
from gnncomm.rollout import capped_episodes
from gnncomm.topology import knn

STEPS = 5


def one_repetition(num_agents: int, episodes: int, seed: int) -> dict[str, Any]:
    """Random attention on ``episodes`` episodes of kNN graphs; the hubs the evaluation's test would flag."""
    generator = torch.Generator().manual_seed(seed)
    nodes = episodes * num_agents
    edges, weights = [], []
    for _ in range(STEPS):
        pos = torch.rand(episodes, num_agents, 2, generator=generator) * 2 * num_agents**0.5
        edge_index = knn(pos, 4)
        edges.append(edge_index)
        weights.append(softmax(torch.randn(edge_index.size(1), generator=generator), edge_index[1], num_nodes=nodes))
    graph = metrics.attention_graph(
        torch.cat(edges, 1), torch.cat(weights), nodes, node_ids=torch.arange(nodes) % num_agents
    )
    shuffles = max(metrics.HUB_SHUFFLES, metrics.min_permutations(num_agents, ALPHA))
    method = "permutation" if shuffles <= HUB_PERMUTATION_MAX else "normal"
    stats = metrics.hub_statistics(graph, num_shuffles=shuffles, seed=seed, method=method)
    hubs = sorted(a for a, s in stats.items() if s["p_adjusted"] <= ALPHA)
    return {
        "seed": seed,
        "method": method,
        "hubs": len(hubs),
        "min_p_adjusted": min(s["p_adjusted"] for s in stats.values()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=None, help="default: the end-of-run evaluation's count")
    parser.add_argument("--out", default="benchmarks/results/hub_null_cpu.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = []
    for n in args.agents:
        episodes = args.episodes or capped_episodes(512, n, floor=4)
        start = time.perf_counter()
        reps = [one_repetition(n, episodes, seed) for seed in range(args.reps)]
        flagged = sum(r["hubs"] > 0 for r in reps)
        row = {
            "agents": n,
            "episodes": episodes,
            "repetitions": args.reps,
            "method": reps[0]["method"],
            "repetitions_with_a_hub": flagged,
            "false_positive_rate": flagged / args.reps,
            "seconds": time.perf_counter() - start,
            "runs": reps,
        }
        results.append(row)
        print(
            f"N={n:>7,} episodes={episodes:>4} {row['method']:>11}: a hub in {flagged}/{args.reps} repetitions "
            f"({100 * row['false_positive_rate']:.0f} %), {row['seconds']:.0f} s",
            flush=True,
        )
    write_json(
        args.out,
        {"meta": metadata(torch.device("cpu"), ["benchmarks.hub_null", *(argv or sys.argv[1:])]), "results": results},
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
