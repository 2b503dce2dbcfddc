"""A whole run: train, then write the outputs (agent files, figures) and the end-of-run evaluation."""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gnncomm.agent_files import write_agent_files
from gnncomm.animation import animate
from gnncomm.checkpoint import atomic_write_text
from gnncomm.config import Config
from gnncomm.evaluation import (
    RELAY_MAX_AGENTS,
    AttentionTally,
    EpisodeHarm,
    attention_structure,
    communication_ablation,
    end_of_run_episodes,
    evaluation_chunk,
    relay_test,
)
from gnncomm.plots import plot_training
from gnncomm.report import plot_episode_topology
from gnncomm.rollout import EVAL_SEED_OFFSET, StepResult, Trace
from gnncomm.runfolder import RunLock, claim_run_dir
from gnncomm.runtime import trim_heap
from gnncomm.trainer import Trainer, TrainResult
from gnncomm.world import World

ANIMATE_MAX_AGENTS = 200
"""Largest population whose run writes ``episode.gif`` by itself (``gnncomm animate RUN`` draws any run)."""


def train(
    cfg: Config | Mapping[str, Any],
    run_dir: str | Path,
    *,
    world: World | None = None,
    resume: bool = False,
    state: dict[str, Any] | None = None,
    lock: RunLock | None = None,
    overwrite: bool = False,
    progress: bool = True,
    evaluate: bool = True,
) -> TrainResult:
    """Trains, then (rank 0) writes the agent files, the figures and the communication ablation.

    The run folder is owned for the whole call: rank 0 claims it (see
    :func:`gnncomm.runfolder.claim_run_dir`), so a folder that already holds a run is refused unless
    ``resume=True`` or ``overwrite=True``, and a second writer meets the lock.

    Args:
        cfg: the run's :class:`Config`, or a mapping of its fields (validated by :meth:`Config.from_dict`;
            the fields it leaves out keep their defaults).
        run_dir: output folder.
        world: the world to learn in; by default the one ``cfg.world`` names (:class:`~gnncomm.world.SwarmWorld`).
        resume: continue from ``run_dir/checkpoint.pt``; the saved config must match ``cfg``'s model.
        state: with ``resume``, the checkpoint already loaded by the caller (it is read once per command).
        lock: the caller's claim on ``run_dir``, if it holds one; otherwise rank 0 claims the folder here.
        overwrite: replace a run already in ``run_dir`` (its outputs are removed once the lock is held).
        progress: show a tqdm bar.
        evaluate: run the final ablation and write ``ablation.json`` and the figures.
    """
    if isinstance(cfg, Mapping):
        cfg = Config.from_dict(cfg)
    elif not isinstance(cfg, Config):
        raise TypeError(f"cfg must be a Config or a mapping of its fields, got {type(cfg).__name__}")
    if state is not None and not resume:
        raise ValueError("state is a loaded checkpoint to resume from: pass resume=True with it")
    if lock is not None and (not lock.held or Path(lock.run_dir).resolve() != Path(run_dir).resolve()):
        raise ValueError(f"lock must be a held claim on {str(run_dir)!r}, got {lock!r}")
    rank0 = os.environ.get("RANK", "0") == "0"
    claim = (
        claim_run_dir(run_dir, resume=resume, overwrite=overwrite, interface="python")
        if lock is None and rank0
        else contextlib.nullcontext()
    )
    with claim:
        trainer = Trainer(cfg, run_dir, world=world)
        try:
            if resume and state is not None:
                trainer.load_state_dict(state)
            elif resume:
                trainer.resume()
            result = trainer.train(progress=progress)
            if trainer.rt.is_main:  # only rank 0 writes files; the other ranks are done
                _write_outputs(trainer, result, evaluate)
        finally:
            trainer.close()
    return result


def _write_outputs(trainer: Trainer, result: TrainResult, evaluate: bool) -> None:
    """Rank 0, after training: the agent files, the figures and (``evaluate``) the ablation."""
    cfg = trainer.cfg
    run_dir = trainer.run_dir
    system = trainer.system
    write_agent_files(system, run_dir)
    plot_training(result.history, run_dir / "training_progress.png")
    if evaluate:
        device = trainer.rt.device
        # Bounded cost for large populations: at most EVAL_AGENT_BUDGET agents per evaluation (the number of
        # episodes used is written into ablation.json), run a training batch's episodes at a time (at least 2), so
        # that it never needs more memory than the training step (under DDP: than one process stepping the whole
        # batch; `gnncomm evaluate` chunks the same way, so its numbers agree). --episodes there takes more.
        # One set of numbers: the hubs and relays come from the ablation's own held-out episodes (its unmodified
        # rollout, tallied step by step instead of recorded), with the seed `gnncomm evaluate` uses, so
        # ablation.json, topology.png and report.md agree. The relays are the causal test (one silenced rollout
        # per agent, up to RELAY_MAX_AGENTS agents), paired with that same unmodified rollout.
        episodes = end_of_run_episodes(cfg)
        seed = cfg.seed + EVAL_SEED_OFFSET
        chunk = evaluation_chunk(cfg)
        gc.collect()
        trim_heap()  # what training freed, so that the evaluation's peak does not stand on it
        tally, snapshot = AttentionTally.for_structure(cfg), _LastStepOfFirstEpisode(cfg)
        harm = EpisodeHarm(trainer.world, cfg, episodes) if cfg.num_agents <= RELAY_MAX_AGENTS else None

        def on_real_step(t: int, first: int, step: StepResult) -> None:
            tally.add_step(t, first, step)
            snapshot(t, first, step)
            if harm is not None:
                harm(t, first, step)

        ablation = communication_ablation(
            system, trainer.world, cfg, device=device, episodes=episodes, seed=seed, chunk=chunk,
            on_real_step=on_real_step,
        )  # fmt: skip
        structure = attention_structure(tally, cfg, seed=seed, with_centrality=False)
        del tally
        relay = relay_test(
            system, trainer.world, cfg, episodes=episodes, seed=seed, device=device, real=harm, chunk=chunk
        )
        del harm
        plot_episode_topology(
            snapshot.trace,
            cfg,
            run_dir / "topology.png",
            hubs=structure["hubs"],
            relays=relay["relays"],
            episodes=episodes,
        )
        stats = relay["relay_stats"]
        ablation.update(
            hubs=structure["hubs"],
            relays=relay["relays"],
            relay_p_adjusted=None if stats is None else [stats[a]["p_adjusted"] for a in range(cfg.num_agents)],
            far_knockout_delta=None if stats is None else [stats[a]["far_effect"] for a in range(cfg.num_agents)],
            attention_relays=structure["attention_relays"],
            graph_betweenness=structure["graph_betweenness"],
            structure_episodes=episodes,
            step=result.step,
        )
        for key in ("relays_skipped", "attention_relays_skipped"):
            reason = relay.get(key) or structure.get(key)
            if reason:
                ablation[key] = reason
        safe = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in ablation.items()}
        atomic_write_text(run_dir / "ablation.json", json.dumps(safe, indent=2, allow_nan=False) + "\n")
        result.ablation = ablation
        if cfg.num_agents <= ANIMATE_MAX_AGENTS:
            animate(run_dir, run_dir / "episode.gif", device=str(device), world=trainer.world)


class _LastStepOfFirstEpisode:
    """A step hook keeping what ``topology.png`` draws, the first episode at the last step, as a one-step
    :class:`~gnncomm.rollout.Trace` (copies: the chunk's step is freed). Of the agents' outputs it draws only the
    attention: the others are kept with no rows (at N = 100,000 their copies would be 0.45 GB)."""

    def __init__(self, cfg: Config) -> None:
        self.num_agents, self.last = cfg.num_agents, cfg.episode_length - 1
        self.trace: Trace | None = None
        self._before: Any = None  # episode 0's state before the step (its positions built the step's graph)

    def __call__(self, t: int, first: int, step: StepResult) -> None:
        if first != 0:
            return
        N = self.num_agents
        after = type(step.state)(*(x[:1].clone() for x in step.state))
        if t == self.last:
            keep = step.edge_index[1] < N  # edges into episode 0's listeners
            rows = {f: x[:0].clone() for f, x in step.out._asdict().items() if f != "alpha" and x is not None}
            out = step.out._replace(**rows, alpha=step.out.alpha[keep].clone())  # by name: fields follow alpha
            state = self._before if self._before is not None else after  # one-step episodes: where they end
            self.trace = Trace([out], [step.edge_index[:, keep].clone()], [state], [step.obs[:N].clone()])
        self._before = after
