"""``gnncomm train | evaluate | animate | bench``: a thin command line over the library.

Every error is one line on stderr, ``error: ...``, never a traceback, with a non-zero exit status
(:data:`EXIT_STATUS`). ``GNNCOMM_TRACEBACK=1`` shows the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import torch

from gnncomm.animation import animate, check_gif_path
from gnncomm.bench import run_bench
from gnncomm.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint
from gnncomm.config import PRESETS, Config, check_device, field_docs
from gnncomm.memory import InsufficientMemoryError, check_memory
from gnncomm.report import evaluate, format_report
from gnncomm.run import train
from gnncomm.runfolder import RunFolderError, RunLock, claim_run_dir
from gnncomm.topology import check_topology, topology_names
from gnncomm.trainer import NonFiniteLossError, TrainResult
from gnncomm.world import build_world, check_world

DESCRIPTION = """\
Agents on a graph invent a discrete language to model a world none of them sees whole.
Train a population, evaluate what its language does, or benchmark the training step."""
DEFAULT_OUT = "runs/default"
EXIT_STATUS = {"ok": 0, "failure": 1, "usage": 2, "interrupted": 130}
"""0: done; 1: a failure while running (checkpoint, I/O, non-finite loss); 2: bad arguments, config or run
folder; 130: training interrupted (a checkpoint is saved)."""
TRAIN_EPILOG = """\
config precedence (later wins, field by field): defaults < --preset < --config file < key=value overrides.
--resume DIR continues the run in DIR with the config saved in its checkpoint (key=value overrides such as
steps=2000 still apply, and steps may not go below the checkpoint's step); it cannot be combined with
--config, --preset, --overwrite, or an --out other than DIR.
exit status: 0 done, 1 failure while running, 2 bad arguments or config, 130 interrupted."""


class UsageError(Exception):
    """A bad command line: printed as one line, exit status 2."""


# ---------------------------------------------------------------------- commands
def _print_fields() -> int:
    """``gnncomm train --fields``: every config field, its default and what it does."""
    for name, default, doc in field_docs():
        print(f"{name} = {json.dumps(default)}")
        print(textwrap.fill(doc, width=100, initial_indent="    ", subsequent_indent="    "))
    return 0


def _train(args: argparse.Namespace) -> int:
    if args.fields:
        return _print_fields()
    rank0 = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 holds (and writes) the folder
    if args.resume is not None:
        return _resume(args, rank0)
    cfg = Config.from_sources(preset=args.preset, path=args.config, overrides=args.overrides)
    _check_runnable(cfg, memory=not args.skip_memory_check)
    run_dir = Path(args.out if args.out is not None else DEFAULT_OUT)
    with _claim(run_dir, resume=False, overwrite=args.overwrite, rank0=rank0) as lock:
        result = _run_train(cfg, run_dir, lock=lock, progress=not args.no_progress)
    return _finish(result, run_dir, rank0)


def _resume(args: argparse.Namespace, rank0: bool) -> int:
    run_dir = Path(args.resume)
    if args.out is not None and Path(args.out).resolve() != run_dir.resolve():
        raise UsageError(
            f"--resume {args.resume} continues the run in that folder; --out {args.out} names another one (drop --out)"
        )
    if args.overwrite:
        raise UsageError(
            "--resume and --overwrite exclude each other: --resume continues a run, --overwrite replaces it"
        )
    given = [flag for flag, value in (("--config", args.config), ("--preset", args.preset)) if value is not None]
    if given:
        raise UsageError(
            f"--resume uses the config saved in the checkpoint; {' and '.join(given)} cannot be "
            "combined with it (give key=value overrides, e.g. steps=2000)"
        )
    with _claim(run_dir, resume=True, overwrite=False, rank0=rank0) as lock:
        state = load_checkpoint(run_dir)  # once: the trainer restores from this same state
        try:
            saved = Config.from_saved(state["config"])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint in {str(run_dir)!r} holds an invalid config: {exc}") from None
        cfg = saved.with_overrides(args.overrides)
        _check_runnable(cfg, memory=not args.skip_memory_check)
        done = state["step"]
        if cfg.steps < done:
            raise UsageError(
                f"steps={cfg.steps} is below the checkpoint's step {done} in {str(run_dir)!r}: a "
                f"resumed run can only train further (steps >= {done})"
            )
        if cfg.steps == done:  # resuming would only re-run the evaluation and rewrite every output
            raise UsageError(
                f"the run in {str(run_dir)!r} is finished (step {done} of steps={cfg.steps}): pass a larger "
                f"steps= (steps > {done}) to train further, or gnncomm evaluate {run_dir} to evaluate it again"
            )
        result = _run_train(cfg, run_dir, lock=lock, progress=not args.no_progress, resume=True, state=state)
    return _finish(result, run_dir, rank0)


def _check_runnable(cfg: Config, *, memory: bool = True) -> None:
    """What the run would otherwise find out only after taking the folder, checked before: a refused run
    touches nothing (not even with --overwrite). With ``memory``, a run whose estimated peak
    (:func:`gnncomm.memory.check_memory`) exceeds the memory available is refused too."""
    try:  # a world name, import path or scenario that does not resolve, or a missing extra (vmas)
        world = check_world(build_world(cfg), cfg)
    except (ValueError, TypeError, ImportError) as exc:
        raise UsageError(" ".join(str(exc).split())) from None
    if cfg.device.startswith("cuda"):
        _usable_device(cfg.device, "device", "=")
    cuda = cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())
    if cfg.amp == "fp16" and not cuda:
        raise UsageError(
            f"amp=fp16 needs a CUDA device (it uses a GradScaler), got device={cfg.device}; use amp=bf16 or amp=none"
        )
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if cfg.batch_size % world_size:
        raise UsageError(
            f"batch_size={cfg.batch_size} must be divisible by the number of processes WORLD_SIZE={world_size}"
        )
    if memory:  # one process's share of the batch
        local = cfg
        if world_size > 1:
            with warnings.catch_warnings():  # a copy of cfg, whose warnings were given once already
                warnings.simplefilter("ignore")
                local = dataclasses.replace(cfg, batch_size=cfg.batch_size // world_size)
        try:
            check_memory(local, world, device="cuda" if cuda else "cpu")
        except InsufficientMemoryError as exc:
            raise UsageError(f"{exc}; or pass --skip-memory-check to run anyway") from None


@contextlib.contextmanager
def _claim(run_dir: Path, *, resume: bool, overwrite: bool, rank0: bool) -> Iterator[RunLock | None]:
    """Rank 0 takes the folder. The other ranks of a torchrun job leave it alone: checking it would race with
    rank 0's claim, and if rank 0 fails, torchrun stops them all."""
    if not rank0:
        yield None
        return
    with claim_run_dir(run_dir, resume=resume, overwrite=overwrite) as lock:
        yield lock


def _run_train(cfg: Config, run_dir: Path, **kwargs: Any) -> TrainResult:
    return train(cfg, run_dir, **kwargs)


def _finish(result: TrainResult, run_dir: Path, rank0: bool) -> int:
    if result.status == "interrupted":
        print(f"interrupted at step {result.step}; checkpoint saved. Continue with: gnncomm train --resume {run_dir}")
        return EXIT_STATUS["interrupted"]
    if not rank0:
        return EXIT_STATUS["ok"]
    if result.ablation is not None:
        print(format_ablation(result.ablation))
    print(f"run folder: {run_dir}")
    return EXIT_STATUS["ok"]


def _agents(ids: list[int] | None, shown: int = 12) -> str:
    """Agent ids for a terminal line: ``None`` as "not tested", long lists cut with a count."""
    if ids is None:
        return "not tested"
    return str(ids) if len(ids) <= shown else f"{len(ids)} agents: {ids[:shown]} ..."


def format_ablation(ab: dict[str, Any]) -> str:
    """The end-of-run communication ablation as the few lines ``gnncomm train`` prints."""
    lines = _task_lines(ab) if "world_mse" not in ab else _latent_lines(ab)
    lines += [
        *(
            [
                f"swarm dispersion     trained {ab['dispersion']:.4f}, no actions {ab['dispersion_no_actions']:.4f}, "
                f"random {ab['dispersion_random_actions']:.4f} (trained / no actions {ab['dispersion_ratio']:.3f})"
            ]
            if "dispersion" in ab
            else [f"reward               trained {ab['reward']:.4f}, no actions {ab['reward_no_actions']:.4f}"]
        ),
        f"vocabulary usage     {ab['vocab_usage']:.3f}  (entropy {ab['symbol_entropy_bits']:.2f} bits)",
        f"reconstruction MSE   {ab['recon_mse']:.4f}",
        f"hubs {_agents(ab.get('hubs'))}, relays {_agents(ab.get('relays'))} "
        f"(tested over {ab.get('structure_episodes', '?')} held-out episodes; relays: silencing them hurts agents "
        "that do not hear them)",
    ]
    return "\n".join(lines)


def _latent_lines(ab: dict[str, Any]) -> list[str]:
    """A world with a latent: the world-state error with real, silenced and shuffled messages."""
    ratio = ab["world_mse_ratio"]
    verdict = "PASS" if ratio <= 0.5 else "FAIL"
    return [
        (
            "communication ablation (world-state MSE at the last step, greedy messages, "
            f"{ab['episodes']} held-out episodes):"
        ),
        f"  real messages      {ab['world_mse']:.4f}",
        f"  silenced           {ab['world_mse_silent']:.4f}",
        f"  shuffled episodes  {ab['world_mse_shuffled']:.4f}",
        f"  real / silenced    {ratio:.3f}  (target <= 0.5: {verdict})",
        *(
            [
                f"  own view {ab['world_mse_own_view']:.4f}, floor {ab['world_mse_floor']:.4f}: messages close "
                f"{100 * ab['message_share']:.1f}% of the gap"
            ]
            if ab.get("message_share") is not None
            else []
        ),
    ]


def _task_lines(ab: dict[str, Any]) -> list[str]:
    """A task without a latent: the episode return (and success) with real, silenced and shuffled messages."""
    lines = [
        (
            f"communication ablation (episode return over {ab['episode_steps']} steps, the sum of the agents' mean "
            f"reward; greedy messages, {ab['episodes']} held-out episodes):"
        ),
        f"  real messages      {ab['episode_return']:.4f}",
        f"  silenced           {ab['episode_return_silenced']:.4f}",
        f"  shuffled episodes  {ab['episode_return_shuffled']:.4f}",
    ]
    if ab.get("success_rate") is not None:
        lines.append(
            f"  success            {100 * ab['success_rate']:.1f}% real, {100 * ab['success_rate_silenced']:.1f}% "
            f"silenced ({ab.get('success_definition')})"
        )
    lines.append(
        f"episode return       no actions {ab['episode_return_no_actions']:.4f}, random actions "
        f"{ab['episode_return_random_actions']:.4f}"
    )
    return lines


def _run_to_read(run_dir: str, verb: str) -> None:
    """A run folder named to ``evaluate`` or ``animate`` that does not exist or holds no checkpoint is a bad
    argument (exit status 2), worded as ``train --resume`` words it."""
    path = Path(run_dir)
    shown = repr(str(path))
    try:
        exists, is_dir = path.exists(), path.is_dir()
    except (OSError, ValueError) as exc:  # e.g. a name too long, or a NUL byte
        raise UsageError(f"run_dir {shown} is not a usable path: {exc}") from None
    if exists and not is_dir:
        raise UsageError(f"run_dir {shown} is a file, not a folder")
    if not exists:
        raise UsageError(f"run_dir {shown}: no such folder, so no checkpoint to {verb}")
    if not (path / CHECKPOINT_NAME).is_file():
        raise UsageError(f"run_dir {shown}: no checkpoint ({CHECKPOINT_NAME}) there to {verb}")


def _evaluate(args: argparse.Namespace) -> int:
    """Prints the emergence diagnostics of a run (``--json``: the report as JSON instead, for scripts)."""
    device = _usable_device(args.device)
    _run_to_read(args.run_dir, "evaluate")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        report = evaluate(args.run_dir, episodes=args.episodes, device=device)
    except CheckpointError as exc:
        raise CheckpointError(f"cannot evaluate {args.run_dir!r}: {exc}") from None
    except OSError as exc:  # e.g. a read-only run folder
        raise OSError(f"cannot write the report into {args.run_dir!r}: {_os_reason(exc)}") from None
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return EXIT_STATUS["ok"]


def _animate(args: argparse.Namespace) -> int:
    """Writes one held-out episode of a run as a GIF."""
    device = _usable_device(args.device)
    _run_to_read(args.run_dir, "animate")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        path = animate(args.run_dir, args.out, episode=args.episode, fps=args.fps, device=device)
    except CheckpointError as exc:
        raise CheckpointError(f"cannot animate {args.run_dir!r}: {exc}") from None
    except OSError as exc:
        raise OSError(f"cannot write the animation: {_os_reason(exc)}") from None
    print(f"wrote {path}")
    return EXIT_STATUS["ok"]


def _bench(args: argparse.Namespace) -> int:
    if not 1 <= args.k <= args.agents - 1:
        raise UsageError(f"--k must be in [1, --agents - 1 = {args.agents - 1}], got {args.k}")
    try:
        check_topology(args.topology, args.agents, args.k)
    except ValueError as exc:  # the registry names the config fields; name the flags instead
        message = re.sub(r"\bk_neighbors\b", "--k", re.sub(r"\bnum_agents\b", "--agents", str(exc)))
        raise UsageError(message.replace("topology", "--topology", 1)) from None
    device = _usable_device(args.device)
    if args.amp == "fp16" and not (device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())):
        raise UsageError(
            f"--amp fp16 needs a CUDA --device (it uses a GradScaler), got --device {args.device}; "
            "use --amp bf16 or --amp none"
        )
    result = run_bench(
        agents=args.agents,
        batch_size=args.batch_size,
        topology=args.topology,
        k=args.k,
        device=device,
        compile=args.compile,
        amp=args.amp,
        steps=args.steps,
        warmup=args.warmup,
        timesteps=args.timesteps,
        shared=not args.per_agent,
    )
    print(json.dumps(result, indent=2) if args.json else result["summary"])
    return EXIT_STATUS["ok"]


def _usable_device(device: str, flag: str = "--device", sep: str = " ") -> str:
    """A device that this machine has (``auto`` is kept), given as ``{flag}{sep}{device}``."""
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"{flag}{sep}{device}: CUDA is not available on this machine; use {flag}{sep}cpu")
        index, count = torch.device(device).index or 0, torch.cuda.device_count()
        if index >= count:
            raise UsageError(
                f"{flag}{sep}{device}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
            )
    return device


# ---------------------------------------------------------------------- argument types
def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expects an int >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


def _device_arg(text: str) -> str:
    try:
        return check_device(text, name="device")
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("device ")) from None


def _folder_arg(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must name a folder, got {text!r}")
    return text


def _gif_arg(text: str) -> str:
    try:
        check_gif_path(text, name="out")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("out ")) from None
    return text


def _bench_topology(text: str) -> str:
    key = text.strip().lower().replace("-", "_")
    allowed = [name for name in topology_names() if name != "custom"]
    if key not in allowed:
        raise argparse.ArgumentTypeError(f"must be one of {allowed} (custom graphs: use the API), got {text!r}")
    return key


# ---------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (raised as :class:`UsageError`), never usage text."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows every default (``none`` where there is none) unless the help text states it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or "(default" in text or action.default is argparse.SUPPRESS:
            return text
        if action.default is None:
            return f"{text} (default: none)"
        if isinstance(action, argparse._StoreTrueAction):
            return f"{text} (default: off)"
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The ``gnncomm`` parser: its errors raise :class:`UsageError` instead of exiting."""
    formatter = {"formatter_class": _HelpFormatter}
    parser = _Parser(prog="gnncomm", description=DESCRIPTION, **formatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "train",
        help="train a population (defaults: the seed's 10-agent kNN set-up)",
        description="Train a population and write its run folder.",
        epilog=TRAIN_EPILOG,
        **formatter,
    )
    p.add_argument("--config", metavar="FILE", help="a .toml, .yaml or .json config file")
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="named set-up under the config file and the overrides; gpu = batch 256, compile, bf16, "
        "5000 steps; tiny = a few-second smoke run",
    )
    p.add_argument("--out", type=_folder_arg, metavar="DIR", help=f"run folder for a new run (default: {DEFAULT_OUT})")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --out (its files are removed once the folder is locked)",
    )
    p.add_argument(
        "--resume",
        type=_folder_arg,
        metavar="DIR",
        help="continue the run in DIR exactly where it stopped (not with --out OTHER, --overwrite, "
        "--config or --preset)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--skip-memory-check",
        action="store_true",
        help="start even when the estimated peak memory exceeds what is available",
    )
    p.add_argument(
        "--fields", action="store_true", help="list every config field with its default and meaning, then exit"
    )
    p.add_argument(
        "overrides",
        nargs="*",
        default=[],
        metavar="key=value",
        help="config overrides, e.g. num_agents=50 custom_edges=[[0,1],[1,0]]; each field once",
    )
    p.set_defaults(func=_train)
    p = sub.add_parser(
        "evaluate",
        help="emergence diagnostics of a trained run",
        description="Evaluate a trained run: writes report.json, report.md and figures into it.",
        **formatter,
    )
    p.add_argument("run_dir", help="a run folder written by gnncomm train")
    p.add_argument(
        "--episodes",
        type=_int_at_least(2),
        metavar="N",
        help="evaluation episodes, >= 2; more gives the full diagnostics at large N (default: the run's end-of-run "
        "episodes, eval_episodes capped at about 8,192 agents per rollout)",
    )
    p.add_argument("--device", type=_device_arg, default="cpu", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    p.set_defaults(func=_evaluate)
    p = sub.add_parser(
        "animate",
        help="a GIF of one held-out episode: positions, messages, attention, hubs and relays",
        description="Animate one held-out episode of a trained run (one frame per step).",
        **formatter,
    )
    p.add_argument("run_dir", help="a run folder written by gnncomm train")
    p.add_argument("--episode", type=_int_at_least(0), default=0, metavar="I", help="held-out episode to draw")
    p.add_argument(
        "--out",
        type=_gif_arg,
        default=None,
        help="the GIF's path, in an existing folder (default: RUN_DIR/episode.gif)",
    )
    p.add_argument("--fps", type=float, default=1.0, help="frames (steps) per second")
    p.add_argument("--device", type=_device_arg, default="cpu", help="auto, cpu, cuda or cuda:N")
    p.set_defaults(func=_animate)
    p = sub.add_parser(
        "bench",
        help="training throughput (agent-steps/s) and peak memory",
        description="Time the training step of one configuration.",
        **formatter,
    )
    p.add_argument("--agents", type=_int_at_least(2), default=1000, metavar="N", help="agents per episode, >= 2")
    p.add_argument(
        "--batch-size",
        type=_int_at_least(1),
        metavar="B",
        help="episodes per step, >= 1 (default: keeps B*N near 2560)",
    )
    p.add_argument("--topology", type=_bench_topology, default="knn", help="communication graph")
    p.add_argument("--k", type=_int_at_least(1), default=4, help="neighbours per agent, in [1, --agents - 1]")
    p.add_argument("--device", type=_device_arg, default="cpu", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--compile", action="store_true", help="torch.compile the training step")
    p.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"], help="autocast dtype")
    p.add_argument("--steps", type=_int_at_least(1), default=5, metavar="S", help="timed steps, >= 1")
    p.add_argument(
        "--warmup",
        type=_int_at_least(1),
        default=2,
        metavar="W",
        help="untimed steps first, >= 1 (the first holds any compile work)",
    )
    p.add_argument("--timesteps", type=_int_at_least(1), default=5, metavar="T", help="steps per episode, >= 1")
    p.add_argument("--per-agent", action="store_true", help="per-agent parameters instead of shared ones")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_bench)
    sub.metavar = "{" + ",".join(sub.choices) + "}"  # every command, in usage lines and errors
    return parser


# ---------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> int:
    """Runs ``gnncomm``; returns the exit status. Errors are one line on stderr (``--help`` exits 0 itself)."""
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            args = _parse_args(build_parser(), argv)
            return args.func(args)
        except BrokenPipeError:  # e.g. `gnncomm evaluate RUN | head`
            with contextlib.suppress(OSError):
                sys.stderr.close()
            return EXIT_STATUS["ok"]
        except (UsageError, RunFolderError, ValueError, TypeError, FileNotFoundError) as exc:
            return _fail(str(exc), "usage")
        except (CheckpointError, NonFiniteLossError) as exc:
            return _fail(str(exc), "failure")
        except OSError as exc:  # I/O on the run folder: disk full, permissions, a folder removed mid-run
            return _fail(_os_reason(exc), "failure")
        except KeyboardInterrupt:
            return _fail("interrupted", "interrupted")
        except Exception as exc:  # a bug: still one line, with a way to see the traceback
            if os.environ.get("GNNCOMM_TRACEBACK"):
                raise
            return _fail(f"unexpected {type(exc).__name__}: {exc} (GNNCOMM_TRACEBACK=1 shows the traceback)", "failure")


def _parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parse_args``, except that ``train``'s key=value overrides may also come after options."""
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "train" and all("=" in item and not item.startswith("-") for item in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _fail(message: str, kind: str) -> int:
    print("error: " + " ".join(message.split()), file=sys.stderr)
    return EXIT_STATUS[kind]


def _os_reason(exc: OSError) -> str:
    if exc.strerror and exc.filename is not None:
        return f"{exc.strerror}: {str(exc.filename)!r}"
    return str(exc)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    print("warning: " + " ".join(str(message).split()), file=file or sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
