"""Learning efficiency: how fast the language learns worlds of growing difficulty.

For each setting of the swarm world (more latent factors, each agent still seeing one; a sparser
graph) this trains the library's defaults (plus any ``--set`` overrides) and follows the **share of
what messages could add**:

    share = (own_view - world_mse) / (own_view - floor)

where ``world_mse`` is the greedy world error at the last step on a fixed held-out batch, and
``own_view`` and ``floor`` are the Bayes errors of one agent's own view and of every view pooled
(:meth:`gnncomm.world.SwarmWorld.reference_errors`, Gaussian posteriors, checked against an oracle
estimator on sampled worlds before anything is trained). The share is 0 for agents that know only
what they see and 1 for perfect pooling. It is followed against training steps and against
training wall time (probes excluded), written to JSON with a PNG of share against time, and
printed as a table. Settings run one after the other in this process.

Default run length (about 15 min on 2 cores, 1 thread)::

    OMP_NUM_THREADS=1 python -m benchmarks.learning --threads 1

A candidate change, side by side with the defaults in the same invocation::

    python -m benchmarks.learning --threads 1 --settings L6 L12 --candidate "lr=3e-3" --candidate "recon_weight=0.1"

Smoke run (seconds)::

    python -m benchmarks.learning --quick
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/learning.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from benchmarks.common import default_out, format_table, metadata, setup, write_json
from gnncomm.config import Config
from gnncomm.evaluation import communication_ablation
from gnncomm.trainer import Trainer
from gnncomm.world import SwarmWorld, message_share

#: setting name -> config overrides on top of the defaults. Each agent sees one factor throughout.
SETTINGS: dict[str, dict[str, Any]] = {
    "L4": {"latent_dim": 4},
    "L6": {"latent_dim": 6},
    "L12": {"latent_dim": 12},
    "L4-knn2": {"latent_dim": 4, "k_neighbors": 2},
    "L6-ring": {"latent_dim": 6, "topology": "ring"},
}
DEFAULT_SETTINGS = ("L4", "L6", "L12", "L4-knn2")
QUICK = {
    "steps": 6,
    "batch_size": 8,
    "hidden_dim": 16,
    "vocab_size": 8,
    "msg_dim": 2,
    "timesteps": 2,
    "log_every": 2,
    "eval_every": 2,
    "eval_batch": 8,
    "checkpoint_every": 1000,
}
FINAL_EPISODES = 512
ORACLE_EPISODES = 20000


def oracle_errors(world: SwarmWorld, steps: int, episodes: int, seed: int = 0) -> dict[str, float]:
    """The MSE of the posterior-mean estimators on sampled worlds, for checking the analytic references.

    Draws ``episodes`` worlds and ``steps`` noisy readings per agent through the world's own
    :meth:`~gnncomm.world.SwarmWorld.observe`, then estimates every factor from (a) one agent's own
    readings and (b) all agents' readings, with the conjugate Gaussian update.
    """
    generator = torch.Generator().manual_seed(seed)
    state = world.reset(episodes, generator=generator)
    noise = world.sample_noise(steps, episodes, generator=generator)
    L, N = world.latent_dim, world.num_agents
    obs = torch.stack([world.observe(state, noise[t]).view(episodes, N, -1) for t in range(steps)])  # [T, B, N, F]
    view = obs[..., 4 : 4 + L].double()  # [T, B, N, L], zeros where unseen
    mask = world.view_mask.double()  # [N, L]
    var = world.obs_noise**2
    latent = state.latent.double()  # [B, L]

    def posterior_mean(total: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        return total / (count + var) if var > 0 else torch.where(count > 0, total / count.clamp_min(1), 0.0)

    own = posterior_mean(view.sum(0), steps * mask)  # [B, N, L]
    pooled = posterior_mean(view.sum((0, 2)), steps * mask.sum(0))  # [B, L]
    return {"own_view": float((own - latent[:, None]).pow(2).mean()), "floor": float((pooled - latent).pow(2).mean())}


def run_setting(name: str, overrides: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Trains one configuration and returns its learning curve and final held-out numbers."""
    cfg = Config().with_overrides(overrides)
    with tempfile.TemporaryDirectory(prefix="gnncomm-learning-") as tmp:
        trainer = Trainer(cfg, tmp)
        result = trainer.train(progress=False)
        world = trainer.world
        reference = world.reference_errors(cfg.timesteps)
        final = communication_ablation(trainer.system, world, cfg, episodes=FINAL_EPISODES, device=device)
        trainer.close()
    curve = [
        {
            "step": int(row["step"]),
            "train_time_s": row["train_time_s"],
            "share": row.get("eval_share"),
            "world_mse": row["eval_world_mse"],
            "world_mse_silent": row["eval_world_mse_silent"],
            "train_vocab_usage": row["vocab_usage"],
        }
        for row in result.history
        if "eval_world_mse" in row
    ]
    return {
        "setting": name,
        "overrides": overrides,
        "reference": reference,
        "curve": curve,
        "final": {
            "steps": result.step,
            "train_time_s": result.history[-1]["train_time_s"],
            "world_mse": final["world_mse"],
            "world_mse_silent": final["world_mse_silent"],
            "world_mse_shuffled": final["world_mse_shuffled"],
            "share": message_share(world, cfg.timesteps, final["world_mse"]),
            "silent_share": message_share(world, cfg.timesteps, final["world_mse_silent"]),
            "vocab_usage": final["vocab_usage"],
        },
    }


def share_at(curve: Sequence[dict[str, Any]], seconds: float) -> float | None:
    """The last probed share at or before ``seconds`` of training time."""
    shares = [p["share"] for p in curve if p["train_time_s"] <= seconds and p["share"] is not None]
    return shares[-1] if shares else None


def table(results: Sequence[dict[str, Any]], budget_s: float | None) -> str:
    rows = []
    for r in results:
        f, ref = r["final"], r["reference"]
        at_budget = share_at(r["curve"], budget_s) if budget_s else f["share"]
        rows.append(
            [
                r["label"],
                r["setting"],
                f"{ref['own_view']:.3f}",
                f"{ref['floor']:.4f}",
                f"{f['world_mse']:.3f}",
                f"{f['world_mse_silent']:.3f}",
                f"{100 * f['share']:.0f}%",
                "—" if at_budget is None else f"{100 * at_budget:.0f}%",
                f["steps"],
                f"{f['train_time_s']:.0f}",
            ]
        )
    head = [
        "candidate",
        "setting",
        "own view",
        "floor",
        "real",
        "silenced",
        "share",
        "share@budget",
        "steps",
        "train s",
    ]
    return format_table(head, rows)


def plot(results: Sequence[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for r in results:
        xs = [p for p in r["curve"] if p["share"] is not None]
        label = f"{r['setting']} ({r['label']})"
        axes[0].plot([p["train_time_s"] for p in xs], [p["share"] for p in xs], marker=".", label=label)
        axes[1].plot([p["step"] for p in xs], [p["share"] for p in xs], marker=".", label=label)
    for ax, xlabel in zip(axes, ("training wall time (s, probes excluded)", "training step")):
        ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
        ax.axhline(0.0, color="0.5", lw=0.8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("share of what messages could add")
        ax.grid(alpha=0.3)
    axes[0].set_title("learning efficiency: share against time")
    axes[1].set_title("learning efficiency: share against steps")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_candidate(text: str) -> tuple[str, dict[str, str]]:
    """``"label:key=value,key=value"`` (or without ``label:``, then the text is the label) -> (label, overrides)."""
    label, sep, body = text.partition(":")
    if not sep or "=" in label:
        label, body = text, text
    items = [item for item in body.split(",") if item]
    if not items or not all("=" in item for item in items):
        raise SystemExit(f"error: --candidate expects [label:]key=value[,key=value...], got {text!r}")
    return label, dict(item.split("=", 1) for item in items)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--settings",
        nargs="+",
        default=list(DEFAULT_SETTINGS),
        choices=sorted(SETTINGS),
        help=f"world settings (default: {' '.join(DEFAULT_SETTINGS)})",
    )
    parser.add_argument(
        "--candidate",
        action="append",
        default=[],
        help="config overrides to compare with the defaults, 'label:key=value,key=value' "
        "(repeatable; default: the defaults only)",
    )
    parser.add_argument("--no-defaults", action="store_true", help="run only the candidates, not the defaults")
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="key=value", help="overrides applied to every run (default: none)"
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="also report the share reached within this much training time (default: none)",
    )
    parser.add_argument("--device", default="cpu", help="device (default: cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="tiny runs that check the script end to end")
    parser.add_argument("--out", default=None, help="JSON path (default: benchmarks/results/learning_<device>.json)")
    args = parser.parse_args(argv)
    device = setup(args.device, args.threads)
    out = Path(args.out) if args.out else default_out("learning", device)
    base = dict(item.split("=", 1) for item in args.set)
    base["device"] = device.type
    if args.quick:
        base = {**QUICK, **base}
    candidates = ([] if args.no_defaults else [("defaults", {})]) + [parse_candidate(c) for c in args.candidate]

    checks = []
    for name in args.settings:  # the analytic references against an oracle, before any training
        cfg = Config().with_overrides({**SETTINGS[name], **base})
        world = SwarmWorld(cfg.num_agents, cfg.latent_dim, cfg.view_size, cfg.obs_noise)
        analytic = world.reference_errors(cfg.timesteps)
        oracle = oracle_errors(world, cfg.timesteps, 2000 if args.quick else ORACLE_EPISODES)
        checks.append({"setting": name, "analytic": analytic, "oracle": oracle})
        print(
            f"  {name}: own view {analytic['own_view']:.4f} (oracle {oracle['own_view']:.4f}), floor "
            f"{analytic['floor']:.4f} (oracle {oracle['floor']:.4f})",
            flush=True,
        )

    report: dict[str, Any] = {
        "meta": metadata(device, argv),
        "budget_s": args.budget_s,
        "reference_checks": checks,
        "results": [],
    }
    for name in args.settings:
        for label, overrides in candidates:
            result = run_setting(name, {**SETTINGS[name], **base, **overrides}, device)
            result["label"] = label
            report["results"].append(result)
            write_json(out, report)
            f = result["final"]
            print(
                f"  {name} [{label}]: share {100 * f['share']:.1f}% (real {f['world_mse']:.3f}, silenced "
                f"{f['world_mse_silent']:.3f}) after {f['steps']} steps, {f['train_time_s']:.0f} s",
                flush=True,
            )
    plot(report["results"], out.with_suffix(".png"))
    print(table(report["results"], args.budget_s))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
