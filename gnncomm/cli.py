"""``gnncomm train | evaluate | bench``: a thin command line over the library."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from gnncomm.config import PRESETS, Config


def _config(args: argparse.Namespace) -> Config:
    cfg = Config.load(args.config) if args.config else Config()
    data = cfg.to_dict()
    data.update(PRESETS[args.preset])
    return Config.from_dict(data).with_overrides(args.overrides)


def _train(args: argparse.Namespace) -> int:
    from gnncomm.checkpoint import load_checkpoint
    from gnncomm.train import train
    if args.resume:
        run_dir = Path(args.resume)
        saved = Config.from_dict(load_checkpoint(run_dir).get("config"))
        cfg = saved.with_overrides(args.overrides)  # e.g. steps=2000 to train further
    else:
        cfg = _config(args)
        run_dir = Path(args.out)
    result = train(cfg, run_dir, resume=bool(args.resume), progress=not args.no_progress)
    if result.status == "interrupted":
        print(f"interrupted at step {result.step}; checkpoint saved. Continue with: "
              f"gnncomm train --resume {run_dir}")
        return 130
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return 0
    if result.ablation is not None:
        print(format_ablation(result.ablation))
    print(f"run folder: {run_dir}")
    return 0


def format_ablation(ab: dict) -> str:
    ratio = ab["world_mse_ratio"]
    verdict = "PASS" if ratio <= 0.5 else "FAIL"
    lines = [
        "communication ablation (world-state MSE at the last step, greedy messages, "
        f"{ab['episodes']} held-out episodes):",
        f"  real messages      {ab['world_mse']:.4f}",
        f"  silenced           {ab['world_mse_silent']:.4f}",
        f"  shuffled episodes  {ab['world_mse_shuffled']:.4f}",
        f"  real / silenced    {ratio:.3f}  (target <= 0.5: {verdict})",
        f"vocabulary usage     {ab['vocab_usage']:.3f}  (entropy {ab['symbol_entropy_bits']:.2f} bits)",
        f"reconstruction MSE   {ab['recon_mse']:.4f}",
        f"hubs {ab.get('hubs', [])}, relays {ab.get('relays', [])}",
    ]
    return "\n".join(lines)


def _evaluate(args: argparse.Namespace) -> int:
    """Prints the emergence diagnostics of a run (``--json``: the report as JSON instead, for scripts)."""
    from gnncomm.checkpoint import CheckpointError
    try:
        from gnncomm.analysis import evaluate, format_report
    except ImportError:  # pragma: no cover
        print("error: evaluation is not available in this build", file=sys.stderr)
        return 2
    try:
        report = evaluate(args.run_dir, episodes=args.episodes, device=args.device)
    except CheckpointError as exc:
        print(f"error: cannot evaluate {args.run_dir!r}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. a read-only run folder
        print(f"error: cannot write the report into {args.run_dir!r}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from gnncomm.bench import run_bench
    result = run_bench(agents=args.agents, batch_size=args.batch_size, topology=args.topology, k=args.k,
                       device=args.device, compile=args.compile, amp=args.amp, steps=args.steps,
                       warmup=args.warmup, timesteps=args.timesteps, shared=not args.per_agent)
    print(json.dumps(result, indent=2) if args.json else result["summary"])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gnncomm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a population (defaults: the seed's 10-agent kNN set-up)")
    p.add_argument("--config", help="a .toml, .yaml or .json config file")
    p.add_argument("--preset", default="default", choices=sorted(PRESETS),
                   help="named set-up applied before overrides: gpu = batch 256, compile, bf16, 5000 steps")
    p.add_argument("--out", default="runs/default", help="run folder (default: runs/default)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR exactly where it stopped")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. num_agents=50")
    p.set_defaults(func=_train)
    p = sub.add_parser("evaluate", help="emergence diagnostics of a trained run")
    p.add_argument("run_dir")
    p.add_argument("--episodes", type=int, default=None, help="evaluation episodes (default: config's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    p.set_defaults(func=_evaluate)
    p = sub.add_parser("bench", help="training throughput (agent-steps/s) and peak memory")
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=None, help="episodes (default: keeps B*N near 2560)")
    p.add_argument("--topology", default="knn")
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"])
    p.add_argument("--steps", type=int, default=5, help="timed steps")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--timesteps", type=int, default=5)
    p.add_argument("--per-agent", action="store_true", help="per-agent parameters")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    from gnncomm.checkpoint import CheckpointError
    from gnncomm.train import NonFiniteLossError
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # e.g. `gnncomm evaluate RUN | head`
        sys.stderr.close()
        return 0
    except (CheckpointError, NonFiniteLossError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, FileNotFoundError) as exc:  # bad config or arguments
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
