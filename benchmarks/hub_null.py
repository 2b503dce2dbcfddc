"""The hub test's false-positive rate on data where no agent is special.

Attention is drawn at random: on each step's kNN graph (k = 4, positions uniform in the swarm's arena, drawn
again every step, or once per episode with ``--fixed-positions``) every listener's weights are a softmax of
standard-normal logits over its in-neighbours, so every agent is exchangeable. The weights are tallied by agent id
over ``--episodes`` episodes of 5 steps with :class:`gnncomm.evaluation.AttentionTally`, as the end-of-run
evaluation does, and tested at Holm 0.05 with every ``--methods`` of :func:`gnncomm.metrics.pair_hub_statistics`
on the same data: ``used`` is what :func:`gnncomm.evaluation.attention_structure` picks at that size (the shuffles
up to :data:`gnncomm.evaluation.HUB_PERMUTATION_MAX`, :data:`gnncomm.evaluation.HUB_LARGE_METHOD` above). A
correct test flags no agent in at least 95 % of repetitions; with ``h`` of ``n`` repetitions flagged the JSON
gives the exact (Clopper-Pearson) one-sided 95 % upper bound of the rate, which is below 5 % for 0 of 59 or 1 of
93 and more::

    OMP_NUM_THREADS=1 python -m benchmarks.hub_null --agents 100 1000 --reps 200
    OMP_NUM_THREADS=1 python -m benchmarks.hub_null --agents 100000 --reps 60 --episodes 4
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
from scipy.stats import beta
from torch_geometric.utils import softmax

from benchmarks.common import metadata, write_json
from gnncomm import metrics
from gnncomm.evaluation import ALPHA, HUB_LARGE_METHOD, HUB_PERMUTATION_MAX, AttentionTally
from gnncomm.rollout import capped_episodes
from gnncomm.topology import knn

STEPS = 5


def random_attention(num_agents: int, episodes: int, seed: int, *, fixed_positions: bool = False) -> AttentionTally:
    """The tally of random attention on ``episodes`` episodes of ``STEPS`` kNN graphs (k = 4)."""
    generator = torch.Generator().manual_seed(seed)
    nodes = episodes * num_agents
    tally = AttentionTally(num_agents)
    pos = None
    for _ in range(STEPS):
        if pos is None or not fixed_positions:
            pos = torch.rand(episodes, num_agents, 2, generator=generator) * 2 * num_agents**0.5
        edge_index = knn(pos, 4)
        logits = torch.randn(edge_index.size(1), generator=generator)
        tally.add(edge_index, softmax(logits, edge_index[1], num_nodes=nodes))
    return tally


def used_method(num_agents: int) -> str:
    """The hub null :func:`gnncomm.evaluation.attention_structure` uses at ``num_agents``."""
    shuffles = max(metrics.HUB_SHUFFLES, metrics.min_permutations(num_agents, ALPHA))
    return "permutation" if shuffles <= HUB_PERMUTATION_MAX else HUB_LARGE_METHOD


def one_repetition(num_agents: int, episodes: int, seed: int, methods: Sequence[str], fixed: bool) -> dict[str, Any]:
    """Per method, the number of agents flagged as hubs in one draw of random attention and the smallest
    Holm-adjusted p-value."""
    speakers, _, weight, _ = random_attention(num_agents, episodes, seed, fixed_positions=fixed).pairs()
    shuffles = max(metrics.HUB_SHUFFLES, metrics.min_permutations(num_agents, ALPHA))
    out: dict[str, Any] = {"seed": seed}
    for method in methods:
        stats = metrics.pair_hub_statistics(
            speakers, weight, num_agents, num_shuffles=shuffles, seed=seed, method=method
        )
        adjusted = [s["p_adjusted"] for s in stats.values()]
        out[method] = {"hubs": sum(p <= ALPHA for p in adjusted), "min_p_adjusted": min(adjusted)}
    return out


def upper_bound(hits: int, reps: int, level: float = 0.95) -> float:
    """Clopper-Pearson one-sided upper confidence bound of a rate seen ``hits`` times in ``reps``."""
    return 1.0 if hits >= reps else float(beta.ppf(level, hits + 1, reps - hits))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--episodes", type=int, default=None, help="default: the end-of-run evaluation's count")
    parser.add_argument(
        "--methods", nargs="+", default=["used", "exact", "normal"], help="used, permutation, exact, normal"
    )
    parser.add_argument("--fixed-positions", action="store_true", help="one kNN graph per episode, kept 5 steps")
    parser.add_argument("--out", default="benchmarks/results/hub_null_cpu.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = []
    for n in args.agents:
        episodes = args.episodes or capped_episodes(512, n, floor=4)
        methods = list(dict.fromkeys(used_method(n) if m == "used" else m for m in args.methods))
        start = time.perf_counter()
        reps = [one_repetition(n, episodes, seed, methods, args.fixed_positions) for seed in range(args.reps)]
        row: dict[str, Any] = {
            "agents": n,
            "episodes": episodes,
            "fixed_positions": args.fixed_positions,
            "repetitions": args.reps,
            "used_method": used_method(n),
            "seconds": time.perf_counter() - start,
            "methods": {},
        }
        for method in methods:
            flagged = sum(r[method]["hubs"] > 0 for r in reps)
            row["methods"][method] = {
                "repetitions_with_a_hub": flagged,
                "false_positive_rate": flagged / args.reps,
                "upper_95": upper_bound(flagged, args.reps),
                "agents_flagged": sum(r[method]["hubs"] for r in reps),
            }
            print(
                f"N={n:>7,} episodes={episodes:>4} {method:>11}{' (used)' if method == used_method(n) else '       '}: "
                f"a hub in {flagged}/{args.reps} repetitions ({100 * flagged / args.reps:.1f} %, 95 % upper bound "
                f"{100 * row['methods'][method]['upper_95']:.1f} %)",
                flush=True,
            )
        print(f"  {row['seconds']:.0f} s", flush=True)
        row["runs"] = reps
        results.append(row)
    write_json(
        args.out,
        {"meta": metadata(torch.device("cpu"), ["benchmarks.hub_null", *(argv or sys.argv[1:])]), "results": results},
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
