"""How the emergent language's diagnostics change with the population size: 10, 50, 200 agents.

For each population size the same set-up (kNN graph, k=4, shared weights) is trained with about
the same number of agent-steps per optimizer step (``batch_size * num_agents`` held near constant),
then evaluated on held-out episodes with greedy messages:

* **gain from communication**: ``world_mse_silent / world_mse``, how many times larger the world
  estimation error becomes when every message is replaced by silence (1 = messages are useless);
* **vocabulary use**: the fraction of the vocabulary that is ever said;
* **hubs**: agents whose messages draw significantly more attention than a weight-shuffling null
  (:func:`gnncomm.metrics.detect_hubs`), as a count and a fraction of the population.

Writes ``population_scaling.json`` and ``population_scaling.png`` into ``--out``.

    python examples/population_scaling.py --quick   # < 1 minute on a CPU: a smoke test, little is learned
    python examples/population_scaling.py           # the real comparison (about 35 min on 2 shared CPU cores)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gnncomm import Config
from gnncomm.evaluation import attention_structure, communication_ablation
from gnncomm.rollout import EVAL_SEED_OFFSET, evaluate_rollout
from gnncomm.trainer import Trainer

SIZES = (10, 50, 200)


def settings(quick: bool) -> dict:
    if quick:  # a smoke test of the whole pipeline, sized for a CPU minute
        return dict(nodes=320, steps=25, hidden_dim=16, eval_episodes=16, shuffles=100)
    return dict(nodes=2560, steps=600, hidden_dim=64, eval_episodes=128, shuffles=500)


def run(num_agents: int, s: dict, out: Path, seed: int) -> dict:
    cfg = Config(
        num_agents=num_agents,
        k_neighbors=4,
        batch_size=max(s["nodes"] // num_agents, 1),
        steps=s["steps"],
        hidden_dim=s["hidden_dim"],
        eval_episodes=s["eval_episodes"],
        log_every=max(s["steps"] // 5, 1),
        checkpoint_every=s["steps"],
        lr=3e-3,
        seed=seed,
        device="cpu" if s["cpu"] else "auto",
        compile=s["compile"],
    )
    trainer = Trainer(cfg, out / f"agents_{num_agents}")
    trainer.train(progress=False)
    system, world, device = trainer.system, trainer.world, trainer.rt.device
    ablation = communication_ablation(system, world, cfg, device=device)
    _, trace = evaluate_rollout(
        system, world, cfg, episodes=cfg.eval_episodes, seed=seed + EVAL_SEED_OFFSET, device=device, record=True
    )  # the ablation's episodes
    hubs = attention_structure(trace, cfg, seed=seed, num_shuffles=s["shuffles"])["hubs"]
    return {
        "num_agents": num_agents,
        "batch_size": cfg.batch_size,
        "steps": cfg.steps,
        "world_mse": ablation["world_mse"],
        "world_mse_silent": ablation["world_mse_silent"],
        "gain": ablation["world_mse_silent"] / max(ablation["world_mse"], 1e-12),
        "vocab_usage": ablation["vocab_usage"],
        "hubs": len(hubs),
        "hub_fraction": len(hubs) / num_agents,
        "final_loss": trainer.history[-1]["loss"],
    }


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["num_agents"] for r in rows]
    panels = [
        ("gain", "gain from communication\n(silenced / real world MSE; 1 = none)"),
        ("vocab_usage", "vocabulary use"),
        ("hub_fraction", "hubs / agents"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, (key, title) in zip(axes, panels):
        ax.plot(n, [r[key] for r in rows], "o-")
        if key == "gain":
            ax.axhline(1.0, color="grey", ls="--", lw=1)
        else:  # fractions
            ax.set_ylim(0, 1.05)
        ax.set_xscale("log")
        ax.set_xticks(n, [str(v) for v in n])
        ax.set_xlabel("agents")
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny models and few steps: under a minute on a CPU")
    parser.add_argument("--out", default="runs/population_scaling", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--steps", type=int, default=None, help="optimizer steps per population (default: 600; 25 with --quick)"
    )
    parser.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is available")
    parser.add_argument(
        "--compile",
        default="auto",
        choices=["auto", "true", "false"],
        help="torch.compile the training step (auto: on a GPU only)",
    )
    args = parser.parse_args()
    s = dict(settings(args.quick), cpu=args.cpu, compile=args.compile)
    if args.steps is not None:
        s["steps"] = args.steps
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    rows = []
    print(f"{'agents':>6} {'batch':>5} {'world_mse':>9} {'silent':>8} {'gain':>6} {'vocab':>6} {'hubs':>5}")
    for num_agents in SIZES:
        row = run(num_agents, s, out, args.seed)
        rows.append(row)
        print(
            f"{row['num_agents']:>6} {row['batch_size']:>5} {row['world_mse']:>9.4f} {row['world_mse_silent']:>8.4f} "
            f"{row['gain']:>6.2f} {row['vocab_usage']:>6.2f} {row['hubs']:>5}",
            flush=True,
        )
    (out / "population_scaling.json").write_text(json.dumps({"settings": s, "rows": rows}, indent=2) + "\n")
    plot(rows, out / "population_scaling.png")
    print(f"wrote {out / 'population_scaling.json'} and {out / 'population_scaling.png'}")


if __name__ == "__main__":
    main()
