"""Where the time of one training step goes: torch.profiler, broken down by phase and component.

The step is :meth:`gnncomm.trainer.Trainer.train_step`, re-enacted phase by phase (forward,
backward, clip, optimizer) under ``record_function`` labels; inside the forward, each component
(graph building, observation, encoder, attention, decoder, heads, world step) is labelled through
forward hooks and wrappers set on this script's own instances. Prints the phase and component
table and the top operators by self time, and writes them as JSON.

    OMP_NUM_THREADS=1 python -m benchmarks.profile_step --threads 1 --agents 10 --batch-size 256
    OMP_NUM_THREADS=1 python -m benchmarks.profile_step --threads 1 --agents 1000 --batch-size 3
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/profile_step.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from torch import nn
from torch.autograd.profiler import record_function
from torch.profiler import ProfilerActivity, profile

from benchmarks.common import RESULTS, format_table, metadata, setup, write_json
from gnncomm.bench import bench_config, build_trainer

COMPONENTS = ("encoder", "attention", "decoder", "action_head", "world_estimator")


def _label_module(module: nn.Module, name: str) -> None:
    contexts: list[Any] = []

    def pre(*_: Any) -> None:
        contexts.append(record_function(name))
        contexts[-1].__enter__()

    def post(*_: Any) -> None:
        contexts.pop().__exit__(None, None, None)

    module.register_forward_pre_hook(pre)
    module.register_forward_hook(post)


def _label_function(fn: Callable, name: str) -> Callable:
    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with record_function(name):
            return fn(*args, **kwargs)

    return wrapped


def profile_step(
    agents: int,
    batch_size: int,
    topology: str = "knn",
    device: str = "cpu",
    amp: str = "none",
    timesteps: int = 5,
    steps: int = 3,
    row_limit: int = 15,
) -> dict[str, Any]:
    cfg = bench_config(agents, batch_size, topology, 4, device, False, amp, timesteps)
    trainer = build_trainer(cfg)
    system, world, loss_module = trainer.system, trainer.world, trainer.loss_module
    for name in COMPONENTS:
        _label_module(getattr(system, name), f"fwd.{name}")
    world.step = _label_function(world.step, "fwd.world_step")
    world.observe = _label_function(world.observe, "fwd.world_observe")
    loss_module.graph_fn = _label_function(loss_module.graph_fn, "fwd.graph")
    episode = trainer.next_episode()
    temperature = torch.tensor(cfg.temperature(0), device=trainer.rt.device)

    def step() -> None:  # Trainer.train_step, phase by phase
        with record_function("phase.forward"), trainer.rt.autocast():
            loss, _ = trainer.model(episode.state, episode.obs_noise, episode.gumbel, temperature)
        with record_function("phase.backward"):
            trainer.optimizer.zero_grad(set_to_none=True)
            trainer.scaler.scale(loss).backward()
        with record_function("phase.clip"):
            trainer.scaler.unscale_(trainer.optimizer)
            nn.utils.clip_grad_norm_(system.parameters(), cfg.max_grad_norm)
        with record_function("phase.optimizer"):
            trainer.scaler.step(trainer.optimizer)
            trainer.scaler.update()

    step()
    step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if trainer.rt.device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            with record_function("step"):
                step()
                if trainer.rt.device.type == "cuda":
                    torch.cuda.synchronize()
    events = prof.key_averages()
    labelled = {
        e.key: e.cpu_time_total / steps / 1e3 for e in events if e.key.startswith(("phase.", "fwd.")) or e.key == "step"
    }
    total = labelled.get("step", sum(v for k, v in labelled.items() if k.startswith("phase.")))
    ops = sorted((e for e in events if e.key.startswith("aten::")), key=lambda e: e.self_cpu_time_total, reverse=True)[
        :row_limit
    ]
    return {
        "agents": agents,
        "batch_size": batch_size,
        "topology": topology,
        "amp": amp,
        "timesteps": timesteps,
        "step_ms": total,
        "breakdown_ms": {k: v for k, v in sorted(labelled.items(), key=lambda kv: -kv[1]) if k != "step"},
        "top_ops": [
            {
                "op": e.key,
                "self_ms_per_step": e.self_cpu_time_total / steps / 1e3,
                "calls_per_step": e.count / steps,
                "share": e.self_cpu_time_total / steps / 1e3 / total,
            }
            for e in ops
        ],
    }


def print_report(r: dict[str, Any]) -> None:
    print(
        f"\nN={r['agents']} B={r['batch_size']} {r['topology']} T={r['timesteps']}: {r['step_ms']:.1f} ms per "
        f"step (profiler on)"
    )
    print(
        format_table(
            ["phase / component", "ms per step", "share"],
            [[k, f"{v:.1f}", f"{100 * v / r['step_ms']:.0f}%"] for k, v in r["breakdown_ms"].items()],
        )
    )
    print(
        format_table(
            ["operator (self time)", "ms per step", "calls per step", "share"],
            [
                [o["op"], f"{o['self_ms_per_step']:.1f}", f"{o['calls_per_step']:.0f}", f"{100 * o['share']:.0f}%"]
                for o in r["top_ops"]
            ],
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--agents", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--topology", default="knn")
    p.add_argument("--amp", default="none")
    p.add_argument("--timesteps", type=int, default=5)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    device = setup(args.device, args.threads)
    r = profile_step(args.agents, args.batch_size, args.topology, str(device), args.amp, args.timesteps, args.steps)
    print_report(r)
    out = Path(args.out) if args.out else RESULTS / f"profile_{device.type}_N{args.agents}_B{args.batch_size}.json"
    write_json(out, {"meta": metadata(device, argv), **r})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
