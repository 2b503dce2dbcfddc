"""Do the relays find the agents that information between groups must pass through, and only them?

Each graph joins groups of agents (cliques) through a few cut vertices: barbells of two sizes, a chain of three
cliques and a star of cliques (a centre joined to one gate agent of each clique). Each group sees one latent
factor of a :class:`~gnncomm.world.SwarmWorld` (its view mask), so a group can learn the other factors only through
the cut vertices. A short run is trained per graph; then, on ``--episodes`` held-out episodes, the evaluation's
three results are measured: the graph's own betweenness, the attention relays (attention betweenness against its
weight-shuffle null) and the relays (the causal test, :func:`gnncomm.evaluation.relay_test`). The expected relays
are the graph's cut vertices (``networkx.articulation_points``). The same systems untrained (``steps = 0``) are
the null: no relay is expected. Last, the default command's run (``gnncomm train`` defaults, ``--default-steps``
steps) with its end-of-run relays and p-values.

    OMP_NUM_THREADS=1 python -m benchmarks.relays --steps 800 --episodes 64 --default-steps 200

``--null-only`` measures the untrained systems alone (a few minutes) and replaces the ``untrained`` rows of an
existing ``--out``, keeping its trained rows; ``meta_untrained`` then says how and when the null was measured.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/relays.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import networkx as nx
import torch

import gnncomm
from benchmarks.common import metadata, write_json
from gnncomm.agents import CommSystem
from gnncomm.config import Config
from gnncomm.evaluation import attention_structure, knockout_effects, load_run, relay_test
from gnncomm.rollout import EVAL_SEED_OFFSET, evaluate_rollout
from gnncomm.world import SwarmWorld


def cliques(*sizes: int) -> tuple[nx.Graph, list[list[int]]]:
    """Disjoint complete graphs of ``sizes`` and their members."""
    graph, groups, start = nx.Graph(), [], 0
    for size in sizes:
        members = list(range(start, start + size))
        graph.add_edges_from(itertools.combinations(members, 2))
        groups.append(members)
        start += size
    return graph, groups


def barbell(size: int) -> tuple[nx.Graph, list[list[int]]]:
    graph, groups = cliques(size, size)
    graph.add_edge(groups[0][-1], groups[1][0])
    return graph, groups


def chain_of_cliques(size: int, count: int = 3) -> tuple[nx.Graph, list[list[int]]]:
    graph, groups = cliques(*[size] * count)
    for left, right in zip(groups, groups[1:]):
        graph.add_edge(left[-1], right[0])
    return graph, groups


def star_of_cliques(size: int, count: int = 4) -> tuple[nx.Graph, list[list[int]]]:
    """A centre (the last agent, who sees nothing) joined to the first agent of each clique."""
    graph, groups = cliques(*[size] * count)
    centre = size * count
    graph.add_edges_from((centre, group[0]) for group in groups)
    return graph, groups


GRAPHS = {
    "barbell_5": lambda: barbell(5),
    "barbell_8": lambda: barbell(8),
    "chain_of_3_cliques_4": lambda: chain_of_cliques(4),
    "star_of_4_cliques_3": lambda: star_of_cliques(3),
}


def setup(graph: nx.Graph, groups: list[list[int]], steps: int, seed: int) -> tuple[Config, SwarmWorld]:
    """The run's config on ``graph`` and a swarm where group ``g`` sees latent factor ``g`` only."""
    cfg = Config(
        hidden_dim=32,
        vocab_size=16,
        msg_dim=3,
        latent_dim=len(groups),
        view_size=1,
        timesteps=6,
        batch_size=64,
        steps=max(steps, 1),
        cluster_weight=0.0,
        log_every=max(steps, 1),
        checkpoint_every=10**6,
        seed=seed,
    ).with_graph(graph)
    world = SwarmWorld(cfg.num_agents, len(groups))
    mask = torch.zeros(cfg.num_agents, len(groups))
    for g, members in enumerate(groups):
        mask[members, g] = 1.0
    world.view_mask = mask
    return cfg, world


def measure(name: str, steps: int, episodes: int, seed: int, out_dir: Path) -> dict[str, Any]:
    graph, groups = GRAPHS[name]()
    cfg, world = setup(graph, groups, steps, seed)
    start = time.perf_counter()
    if steps:
        run_dir = out_dir / f"{name}_{seed}"
        gnncomm.train(cfg, run_dir, world=world, progress=False, evaluate=False, overwrite=True)
        system = load_run(run_dir, world=world).system
    else:
        torch.manual_seed(seed)
        system = CommSystem.for_world(cfg, world).eval()
    train_s = time.perf_counter() - start
    eval_seed = cfg.seed + EVAL_SEED_OFFSET
    logs, trace = evaluate_rollout(system, world, cfg, episodes=episodes, seed=eval_seed, record=True)
    structure = attention_structure(trace, cfg, seed=eval_seed, with_centrality=False)
    effects = knockout_effects(system, world, cfg, episodes=episodes, seed=eval_seed, real=trace)
    relay = relay_test(system, world, cfg, episodes=episodes, seed=eval_seed, effects=effects)
    stats = relay["relay_stats"]
    N = cfg.num_agents
    expected = sorted(nx.articulation_points(graph))
    row = {
        "graph": name,
        "agents": N,
        "trained_steps": steps,
        "seed": seed,
        "episodes": episodes,
        "expected_relays": expected,
        "relays": relay["relays"],
        "exact": relay["relays"] == expected,
        "attention_relays": structure["attention_relays"],
        "hubs": structure["hubs"],
        "graph_betweenness": [round(x, 4) for x in structure["graph_betweenness"]],
        "relay_p_adjusted": [stats[a]["p_adjusted"] for a in range(N)],
        "far_knockout_delta": [stats[a]["far_effect"] for a in range(N)],
        "knockout_delta": effects.delta[:, 0].tolist(),
        "relay_tolerance": relay["relay_tolerance"],
        "world_mse": logs["world_last"],
        "seconds_training": train_s,
    }
    others = [a for a in range(N) if a not in expected]
    p, knock = row["relay_p_adjusted"], row["knockout_delta"]
    print(
        f"{name:>22} steps={steps:>4}: relays {row['relays']} (expected {expected}); attention relays "
        f"{row['attention_relays']}; Holm p at expected <= {max(p[a] for a in expected):.3g}, elsewhere >= "
        f"{min(p[a] for a in others):.3g}; knock-out at expected {min(knock[a] for a in expected):+.3f} to "
        f"{max(knock[a] for a in expected):+.3f}, elsewhere <= {max(knock[a] for a in others):+.3f}; "
        f"world mse {row['world_mse']:.3f}; {train_s:.0f} s training",
        flush=True,
    )
    return row


def default_run(steps: int, out_dir: Path) -> dict[str, Any]:
    """``gnncomm train steps=<steps>`` with every other default; its end-of-run ablation.json."""
    start = time.perf_counter()
    result = gnncomm.train(Config(steps=steps), out_dir / "default", progress=False, overwrite=True)
    ab = result.ablation
    row = {
        "command": f"gnncomm train steps={steps}",
        "relays": ab["relays"],
        "relay_p_adjusted": ab["relay_p_adjusted"],
        "far_knockout_delta": ab["far_knockout_delta"],
        "attention_relays": ab["attention_relays"],
        "hubs": ab["hubs"],
        "world_mse": ab["world_mse"],
        "world_mse_silent": ab["world_mse_silent"],
        "episodes": ab["structure_episodes"],
        "seconds": time.perf_counter() - start,
    }
    print(
        f"default command ({row['command']}): relays {row['relays']}, Holm p min "
        f"{min(row['relay_p_adjusted']):.3g}, attention relays {row['attention_relays']}, hubs {row['hubs']}, "
        f"world mse {row['world_mse']:.3f} (silenced {row['world_mse_silent']:.3f}), {row['seconds']:.0f} s",
        flush=True,
    )
    return row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graphs", nargs="+", default=list(GRAPHS), choices=list(GRAPHS))
    parser.add_argument("--steps", type=int, default=800, help="training steps per graph")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--null-seeds", type=int, default=5, help="untrained systems per graph")
    parser.add_argument("--default-steps", type=int, default=200, help="0: skip the default command")
    parser.add_argument("--out", default="benchmarks/results/relays_cpu.json")
    parser.add_argument(
        "--null-only", action="store_true", help="untrained systems only, replacing the untrained rows of --out"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    meta = metadata(torch.device("cpu"), ["benchmarks.relays", *(argv or sys.argv[1:])])
    report: dict[str, Any] = {"meta": meta, "trained": [], "untrained": []}
    if args.null_only:
        if Path(args.out).is_file():
            report = json.loads(Path(args.out).read_text(encoding="utf-8"))
        report.update(meta_untrained=meta, untrained=[])
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp)
        for name in args.graphs if not args.null_only else ():
            for seed in args.seeds:
                report["trained"].append(measure(name, args.steps, args.episodes, seed, out_dir))
                write_json(args.out, report)
        for name in args.graphs:
            for seed in range(args.null_seeds):
                report["untrained"].append(measure(name, 0, args.episodes, seed, out_dir))
            write_json(args.out, report)
        if args.default_steps and not args.null_only:
            report["default_command"] = default_run(args.default_steps, out_dir)
    trained, untrained = report["trained"], report["untrained"]
    report["summary"] = {
        "trained_exact": f"{sum(r['exact'] for r in trained)}/{len(trained)}",
        "untrained_with_a_relay": f"{sum(bool(r['relays']) for r in untrained)}/{len(untrained)}",
    }
    print(
        f"trained: relays = cut vertices in {report['summary']['trained_exact']} runs; untrained: a relay in "
        f"{report['summary']['untrained_with_a_relay']} systems"
    )
    write_json(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
