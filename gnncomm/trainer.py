"""The training loop: the one place for AMP, torch.compile, TF32, DDP and checkpoints."""

from __future__ import annotations

import csv
import gc
import io
import json
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from gnncomm.agents import AgentState, CommSystem
from gnncomm.checkpoint import CHECKPOINT_NAME, CheckpointError, atomic_save, atomic_write_text, load_checkpoint
from gnncomm.config import Config
from gnncomm.evaluation import evaluate_episodes, evaluation_chunk
from gnncomm.interventions import silence
from gnncomm.ppo import PPO
from gnncomm.rollout import (
    EVAL_SEED_OFFSET,
    Episode,
    LazyGumbel,
    capped_episodes,
    make_graph_fn,
    no_actions,
    recompute_steps,
    restart_episodes,
    rollout,
    rollout_step,
    sample_episode,
    sample_window_noise,
)
from gnncomm.runtime import Runtime, apply_threads, setup_runtime
from gnncomm.selection import survival_selection
from gnncomm.world import World, build_world, check_world, is_windowed, message_share

PROBE_KEYS = (
    "eval_return",
    "eval_return_silent",
    "eval_success",
    "eval_success_silent",
    "eval_world_mse",
    "eval_world_mse_silent",
    "eval_share",
    "eval_reward",
    "eval_reward_no_actions",
    "eval_dispersion",
    "eval_dispersion_no_actions",
)
EVENTS_NAME = "events.jsonl"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""Signals that stop training at the next step with a checkpoint (a second one stops at once)."""
LONG_STEP_S = 5.0
"""A stop signal that arrives after a step has run this many seconds stops at once, keeping the last checkpoint,
instead of waiting for the step to end (a step of a very large population can take minutes)."""
METRIC_KEYS = (
    "loss",
    "recon",
    "world",
    "world_last",
    "comm",
    "vocab_term",
    "vocab_align_term",
    "reward",
    "episode_return",
    "episodes_done",
    "episode_success",
    "policy_loss",
    "value_loss",
    "entropy",
    "aux_loss",
    "approx_kl",
    "clip_fraction",
    "action_std",
    "value_explained",
    "dispersion",
    "vocab_usage",
    "effective_vocab",
    "entropy_bits",
    "vocab_usage_sampled",
    "attn_max",
    "attn_uniform",
    "attn_hub_share",
)


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or inf loss; the last good checkpoint is left as it was."""


class RolloutLoss(nn.Module):
    """The training objective as one module: ``episode tensors -> (loss, logs)``.

    Wrapping the whole ``T``-step rollout in one forward lets DDP see one forward per backward. What
    ``torch.compile`` compiles is ``step_fn``, one step (:func:`~gnncomm.rollout.rollout_step`), reused for
    each of the ``T`` steps: compile time does not grow with ``T``. The graph builder (the topology in
    force) is swapped with :meth:`set_topology`; each distinct topology compiles once.
    """

    def __init__(self, system: CommSystem, world: World, cfg: Config) -> None:
        super().__init__()
        self.system = system
        self.world = world
        self.cfg = cfg
        self.graph_fn = None
        self.topology: tuple[str, int] | None = None
        self.step_fn = rollout_step
        self.reduce_marginals: Callable[[Tensor], Tensor] | None = None
        """Under DDP, :func:`mean_over_ranks`: the vocabulary terms then see the whole batch."""

    def set_topology(self, name: str, k: int, batch_size: int, device: torch.device) -> bool:
        """Uses ``(name, k)`` from now on; returns whether it changed."""
        if self.topology == (name, k):
            return False
        self.graph_fn = make_graph_fn(
            name, k, self.cfg.num_agents, batch_size, device=device, seed=self.cfg.seed, edges=self.cfg.custom_edges
        )
        self.topology = (name, k)
        return True

    def forward(
        self,
        state: Any,
        obs_noise: Tensor,
        gumbel: Tensor | LazyGumbel,
        temperature: Tensor,
        agents: AgentState | None = None,
        carry: list | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        episode = Episode(state, obs_noise, gumbel, agents)
        loss, logs, _ = rollout(
            self.system, self.world, episode, self.graph_fn, self.cfg, temperature, step_fn=self.step_fn,
            reduce_marginals=self.reduce_marginals, carry=carry,
        )  # fmt: skip
        return loss, logs


class _SumOverRanks(torch.autograd.Function):
    """``all_reduce(SUM)`` whose backward is the same all-reduce of the gradients."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def mean_over_ranks(x: Tensor) -> Tensor:
    """The mean of ``x`` over the DDP ranks, differentiable.

    Its backward sums the ranks' gradients, which DDP's gradient averaging then divides by the world size: a
    batch-level term of the loss (the vocabulary terms) gets the gradient it has in one process with the
    total batch.
    """
    return _SumOverRanks.apply(x) / dist.get_world_size()


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    run_dir: Path
    step: int
    status: str
    """``"finished"`` or ``"interrupted"``."""
    history: list[dict[str, float]] = field(default_factory=list)
    ablation: dict[str, Any] | None = None


class Trainer:
    """Trains a :class:`CommSystem` in a :class:`~gnncomm.world.World`, writing everything into ``run_dir``.

    Only rank 0 writes files. All episodes of a global step are drawn from one generator seeded with
    ``cfg.seed``, and rank ``r`` of ``W`` trains on its slice ``r`` of the batch: a run is the same
    whatever the world size, and a checkpoint resumes at any world size.
    """

    def __init__(
        self, cfg: Config, run_dir: str | Path, *, runtime: Runtime | None = None, world: World | None = None
    ) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.rt = runtime or setup_runtime(cfg)
        if cfg.batch_size % self.rt.world_size:
            raise ValueError(f"batch_size={cfg.batch_size} must be divisible by the world size {self.rt.world_size}")
        self.local_batch = cfg.batch_size // self.rt.world_size
        if cfg.algorithm == "ppo" and self.rt.distributed:
            raise ValueError("algorithm=ppo runs in one process only for now; run it without torchrun")
        if is_windowed(cfg) and self.rt.distributed:
            raise ValueError(
                f"episode_steps={cfg.episode_steps} > timesteps={cfg.timesteps} (episodes carried across optimizer "
                "steps) runs in one process only for now; set episode_steps=0 to train under torchrun"
            )
        torch.manual_seed(cfg.seed)  # parameter initialisation; all later draws use self.generator
        self.world = build_world(cfg) if world is None else check_world(world, cfg)
        self.system = CommSystem.for_world(cfg, self.world).to(self.rt.device)
        self.loss_module = RolloutLoss(self.system, self.world, cfg)
        self.optimizer = torch.optim.AdamW(self.system.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scaler = self.rt.grad_scaler()
        # Episodes are drawn on the training device: at GPU scale the Gumbel noise alone is ~B*N*T*M*V floats
        # per step, too much to draw on the host and copy over. A CPU run draws on the CPU, so CPU runs
        # are reproducible bit for bit; a CUDA run is reproducible on the same kind of GPU.
        self.generator = torch.Generator(device=self.rt.device).manual_seed(cfg.seed)
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.selection_log: list[dict[str, Any]] = []
        model: nn.Module = self.loss_module
        if self.rt.distributed:
            self.loss_module.reduce_marginals = mean_over_ranks
            model = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.rt.device.index] if self.rt.device.type == "cuda" else None
            )
        if self.rt.compile:
            torch._dynamo.config.cache_size_limit = max(
                torch._dynamo.config.cache_size_limit, 4 * (len(cfg.topology_schedule) + 2)
            )
            self.loss_module.step_fn = torch.compile(
                rollout_step, mode=None if cfg.compile_mode == "default" else cfg.compile_mode
            )
        self.model = model
        self.ppo = (
            PPO(
                self.system,
                self.world,
                cfg,
                self.optimizer,
                self.scaler,
                self.generator,
                self.rt.autocast,
                self.local_batch,
                self.rt.device,
            )
            if cfg.algorithm == "ppo"
            else None
        )
        """With ``algorithm=ppo``, what one training step runs (an iteration: collect, then update)."""
        self._interrupted = False
        self._step_started: float | None = None
        """When the step in progress started (``time.perf_counter``), for a Ctrl-C during a long step."""
        self.window: _Window | None = None
        """Episodes running across optimizer steps (``episode_steps > timesteps``): the carried world and agents,
        each episode's step count and return so far. Not checkpointed: a resumed run starts new episodes."""
        self.anneal_span = cfg.anneal_steps or cfg.steps
        """Steps over which the temperature anneals and the learning rate decays, fixed at the run's start (kept on
        resume)."""

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.system.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "config": self.cfg.to_dict(),
            "history": self.history,
            "anneal_span": self.anneal_span,
            "selection_log": self.selection_log,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = Config.from_saved(state["config"])
        for key in (
            "num_agents",
            "vocab_size",
            "msg_dim",
            "hidden_dim",
            "heads",
            "shared_params",
            "latent_dim",
            "view_size",
            "agent_embedding_dim",
            "estimator_input",
            "critic_input",
            "encoder_memory",
        ):
            if getattr(saved, key) != getattr(self.cfg, key):
                raise CheckpointError(
                    f"checkpoint has {key}={getattr(saved, key)!r} but the config asks for {getattr(self.cfg, key)!r}"
                )
        try:
            self.system.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"checkpoint does not fit this model: {exc}") from None
        self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        try:
            self.generator.set_state(state["generator"].cpu())
        except RuntimeError as exc:
            raise CheckpointError(
                f"cannot restore the episode generator on {self.rt.device} "
                f"(a checkpoint resumes on the same device type it was written on): {exc}"
            ) from None
        torch.set_rng_state(state["torch_rng"].cpu())
        # The temperature schedule is fixed when a run starts: extending `steps` continues the same trajectory.
        self.anneal_span = int(state.get("anneal_span", saved.anneal_steps or saved.steps))
        self.history = list(state["history"])
        self.selection_log = list(state.get("selection_log", []))

    def save_checkpoint(self) -> None:
        if self.rt.is_main:
            atomic_save(self.state_dict(), self.run_dir / CHECKPOINT_NAME)
        if self.rt.distributed:  # no rank runs ahead of (or exits before) the checkpoint on disk
            dist.barrier()

    def resume(self) -> None:
        self.load_state_dict(load_checkpoint(self.run_dir / CHECKPOINT_NAME, map_location=self.rt.device))

    def close(self) -> None:
        """Drops the DDP wrapper, then leaves the process group if this run joined it.

        In this order: were DDP's reducer the group's last owner, the group's destructor would run
        holding the GIL and could deadlock with a gloo worker thread that needs it to free a tensor.
        """
        self.model = self.loss_module
        gc.collect()
        self.rt.close()

    # ------------------------------------------------------------------ one step
    def train_step(self, episode: Episode, temperature: Tensor) -> dict[str, Tensor]:
        """Forward, backward, clip and update; returns detached logs (no host sync).

        With ``episode_steps > timesteps`` the episode is one window of longer episodes: the world and the
        agents after it are kept for the next window, and episodes that finished add their returns to the logs.
        """
        carry: list | None = [] if self.window is not None else None
        with self.rt.autocast():
            loss, logs = self.model(
                episode.state, episode.obs_noise, episode.gumbel, temperature, episode.agents, carry
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        logs["grad_norm"] = nn.utils.clip_grad_norm_(self.system.parameters(), self.cfg.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if carry is not None:
            logs.update(self.window.advance(*carry))
        return logs

    def iteration(self, temperature: Tensor) -> dict[str, Tensor]:
        """One training step of the run's algorithm: a gradient step on the next window, or a PPO iteration."""
        if self.ppo is not None:
            return self.ppo.step(self.loss_module.graph_fn, temperature)
        return self.train_step(self.next_window(), temperature)

    def next_window(self) -> Episode:
        """The next backprop window: the first of new episodes, or the carried ones rolled on, with the
        episodes that finished started again (only those)."""
        if not is_windowed(self.cfg):
            return self.next_episode()
        if self.window is None or self.window.all_finished():
            self.window = None  # the finished episodes' world is let go first: a simulator can reuse its batch
            episode = self.next_episode()
            self.window = _Window(self.world, self.cfg, episode.state.pos.size(0), episode.state.pos.device)
            return episode
        state, agents = self.window.restart_finished(self.generator)
        obs_noise, gumbel = sample_window_noise(
            self.world, self.cfg, self.local_batch, generator=self.generator, device=self.rt.device
        )
        return Episode(state, obs_noise, gumbel, agents)

    def next_episode(self) -> Episode:
        # For the smallest peak (cpu_memory=release), an eager CPU rollout that recomputes its steps draws each
        # step's Gumbel noise where it recomputes it instead of holding the episode's: the same numbers, for two
        # more draws per step (12-15 % of a 100,000-agent step). A compiled step takes its noise as an input.
        lazy = (
            self.cfg.cpu_memory == "release"
            and self.generator.device.type == "cpu"
            and not self.rt.compile
            and recompute_steps(self.cfg, self.local_batch * self.cfg.num_agents)
        )
        full = sample_episode(
            self.world, self.cfg, self.cfg.batch_size, generator=self.generator, device=self.rt.device,
            lazy_gumbel=lazy,
        )  # fmt: skip
        lo, b, N = self.rt.rank * self.local_batch, self.local_batch, self.cfg.num_agents
        take = lambda t, dim=0, n=1: t.narrow(dim, lo * n, b * n)  # noqa: E731  (a view: drawn on the device)
        state = type(full.state)(*map(take, full.state))  # every state field is [B, ...]
        return Episode(state, take(full.obs_noise, 1), take(full.gumbel, 1, N))

    # ------------------------------------------------------------------ loop
    def train(self, *, progress: bool = True) -> TrainResult:
        cfg = self.cfg
        if self.rt.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            cfg.save(self.run_dir / "config.json")
            # Events up to the checkpoint, not those a crashed run logged after it (they will happen again).
            atomic_write_text(self.run_dir / EVENTS_NAME, "".join(json.dumps(e) + "\n" for e in self.selection_log))
        writer = _MetricWriter(self.run_dir, self.history) if self.rt.is_main else None
        bar = _progress(cfg.steps, self.step, enabled=progress and self.rt.is_main)
        previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
        for sig in STOP_SIGNALS:  # Ctrl-C, and the SIGTERM that cluster schedulers send before a kill
            signal.signal(sig, self._on_interrupt)
        running: dict[str, Tensor] = {}
        temperatures = torch.tensor(
            [cfg.temperature(step, self.anneal_span) for step in range(cfg.steps)], device=self.rt.device
        )
        learning_rates = [cfg.learning_rate(step, self.anneal_span) for step in range(cfg.steps)]
        bad = torch.zeros((), dtype=torch.bool, device=self.rt.device)
        self.rt.cores.start()  # the first interval starts with the loop, not with set-up
        tick, tick_step, status = time.perf_counter(), self.step, "finished"
        train_time = self.history[-1].get("train_time_s", 0.0) if self.history else 0.0
        try:
            while self.step < cfg.steps:
                if self._stop_requested():
                    status = "interrupted"
                    break
                name, k = cfg.topology_at(self.step)
                changed = self.loss_module.set_topology(name, k, self.local_batch, self.rt.device)
                if changed and self.step > 0 and cfg.topology_at(self.step - 1) != (name, k):  # not on resume
                    self._log_event({"event": "topology", "step": self.step, "topology": name, "k": k})
                temperature = temperatures[self.step]  # a view: no host-to-device copy per step
                for group in self.optimizer.param_groups:
                    group["lr"] = learning_rates[self.step]
                self._step_started = time.perf_counter()
                logs = self.iteration(temperature)
                self._step_started = None
                bad |= ~torch.isfinite(logs["loss"])
                for key, value in logs.items():
                    running[key] = running.get(key, 0.0) + value
                self.step += 1
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    self._check_finite(bad)
                    threads = torch.get_num_threads()  # those of the window that ends here
                    apply_threads(cfg, self.rt.device, self.rt.cores)  # follows what other processes use
                    now = time.perf_counter()
                    train_time += now - tick
                    row = self._reduce_logs(running, self.step - tick_step)
                    if "episodes_done" in row:  # from sums per step to the window's means per episode and count
                        done = row["episodes_done"] * (self.step - tick_step)
                        for key in [k for k in row if k.startswith("episode_")]:
                            row[key] = row[key] / row["episodes_done"] if done else math.nan
                        row["episodes_done"] = round(done)
                    row.update(
                        step=self.step,
                        temperature=float(temperature),
                        lr=learning_rates[self.step - 1],
                        train_time_s=train_time,
                        steps_per_s=(self.step - tick_step) / max(now - tick, 1e-9),
                        threads=threads,
                    )
                    if (
                        self.rt.is_main
                        and cfg.eval_every
                        and (self.step % cfg.eval_every < cfg.log_every or self.step == cfg.steps)
                    ):
                        row.update(self.probe())
                    running, tick, tick_step = {}, time.perf_counter(), self.step
                    self.history.append(row)
                    if writer is not None:
                        writer.write(row)
                    bar.set_postfix(
                        loss=f"{row['loss']:.3f}",
                        **({"world": f"{row['world_last']:.3f}"} if "world_last" in row else {}),
                        vocab=f"{row['vocab_usage']:.2f}",
                        attn=f"{row['attn_max']:.2f}",
                        it_s=f"{row['steps_per_s']:.1f}",
                    )
                if cfg.selection_every and self.step % cfg.selection_every == 0:
                    self._select()
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                    self._check_finite(bad)
                    self.save_checkpoint()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            bar.close()
            if writer is not None:
                writer.close()
        if status == "interrupted":
            self._check_finite(bad)
            self.save_checkpoint()
        return TrainResult(self.run_dir, self.step, status, self.history)

    def probe(self) -> dict[str, float]:
        """The communication proof and the cooperative reward on a small fixed held-out batch (greedy
        messages, ``cfg.eval_batch`` episodes, the same every time): world error at the last step with real
        and with silenced messages, the share of what messages could add (when the world knows its Bayes
        references), and the reward (and dispersion) with the trained actions and with actions switched off."""
        cfg = self.cfg
        topology = self.loss_module.topology or cfg.topology_at(self.step)

        episodes = capped_episodes(cfg.eval_batch, cfg.num_agents)  # bounded at large N

        def run(**kwargs: Any) -> dict[str, float]:
            seed = cfg.seed + EVAL_SEED_OFFSET + 1
            return evaluate_episodes(
                self.system,
                self.world,
                cfg,
                episodes=episodes,
                seed=seed,
                device=self.rt.device,
                topology=topology,
                chunk=evaluation_chunk(cfg, self.local_batch),  # never more memory than the training step
                **kwargs,
            )

        real, silent, idle = run(), run(intervene=silence()), run(act=no_actions)
        length = cfg.episode_length
        row = {
            "eval_return": real["reward"] * length,
            "eval_return_silent": silent["reward"] * length,
            "eval_reward": real["reward"],
            "eval_reward_no_actions": idle["reward"],
        }
        if "world_last" in real:
            row.update(eval_world_mse=real["world_last"], eval_world_mse_silent=silent["world_last"])
            share = message_share(self.world, cfg.timesteps, real["world_last"])
            if share is not None:
                row["eval_share"] = share
        if "success" in real:
            row.update(eval_success=real["success"], eval_success_silent=silent["success"])
        if "dispersion" in real:
            row.update(eval_dispersion=real["dispersion"], eval_dispersion_no_actions=idle["dispersion"])
        return row

    def _on_interrupt(self, signum: int, frame: Any) -> None:
        long_step = self._step_started is not None and time.perf_counter() - self._step_started > LONG_STEP_S
        if self._interrupted or long_step:  # a second Ctrl-C, or one during a long step, stops at once
            raise KeyboardInterrupt
        self._interrupted = True

    def _stop_requested(self) -> bool:
        """Whether a Ctrl-C asks to stop. Under DDP the ranks agree, with one all-reduce at log
        boundaries only (no per-step sync), so that every rank stops at the same step."""
        if not self.rt.distributed:
            return self._interrupted
        if self.step % self.cfg.log_every:
            return False
        flag = torch.tensor(int(self._interrupted), device=self.rt.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag)

    def _check_finite(self, bad: Tensor) -> None:
        if self.rt.distributed:  # all ranks raise together, not only the one that saw the NaN
            bad = bad.to(torch.int32)
            dist.all_reduce(bad, op=dist.ReduceOp.MAX)
        if bool(bad):
            raise NonFiniteLossError(
                f"non-finite loss (NaN or inf) before step {self.step}; training stopped and the last good "
                f"checkpoint in {str(self.run_dir)!r} was kept. Try a lower lr, max_grad_norm or amp=none."
            )

    def _reduce_logs(self, running: dict[str, Tensor], count: int) -> dict[str, float]:
        keys = sorted(running)
        values = torch.stack([running[k].float().reshape(()) for k in keys]) / max(count, 1)
        if self.rt.distributed:
            dist.all_reduce(values)
            values /= self.rt.world_size
        return dict(zip(keys, values.tolist()))

    def _select(self) -> None:
        topology = self.loss_module.topology or self.cfg.topology_at(max(self.step - 1, 0))
        event = survival_selection(
            self.system,
            self.optimizer,
            self.world,
            self.cfg,
            step=self.step,
            topology=topology,
            device=self.rt.device,
            distributed=self.rt.distributed,
        )
        self._log_event(event)

    def _log_event(self, event: dict[str, Any]) -> None:
        self.selection_log.append(event)
        if self.rt.is_main:
            with open(self.run_dir / EVENTS_NAME, "a") as fh:
                fh.write(json.dumps(event) + "\n")


class _Window:
    """Episodes that run across optimizer steps: the world and agents carried from one window to the next,
    each episode's steps and return so far, and the returns of the episodes that finished since the last log."""

    def __init__(self, world: World, cfg: Config, batch_size: int, device: torch.device) -> None:
        self.world, self.cfg = world, cfg
        self.state: Any = None
        self.agents: AgentState | None = None
        self.steps = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.returns = torch.zeros(batch_size, device=device)
        self.finished = torch.zeros(batch_size, dtype=torch.bool, device=device)

    def advance(self, state: Any, agents: AgentState, window_reward: Tensor) -> dict[str, Tensor]:
        """Takes a window's end; returns the summed return and count of the episodes it finished."""
        self.state, self.agents = state, agents
        self.steps += self.cfg.timesteps
        self.returns += window_reward.float()
        done = getattr(state, "done", None)
        self.finished = self.steps >= self.cfg.episode_length
        if isinstance(done, Tensor):
            self.finished |= done.detach().bool().to(self.finished.device)
        count = self.finished.float().sum()
        total = (self.returns * self.finished).sum()
        # each log row divides by its steps: episode_return / episodes_done is the mean return (see _reduce_logs)
        return {"episode_return": total, "episodes_done": count}

    def all_finished(self) -> bool:
        return bool(self.finished.all())

    def restart_finished(self, generator: torch.Generator) -> tuple[Any, AgentState]:
        """The carried state and agents, detached, with the finished episodes started again."""
        world, finished = self.world, self.finished
        state = (
            world.detach(self.state)
            if hasattr(world, "detach")
            else type(self.state)(*(x.detach() for x in self.state))
        )
        agents = AgentState(*(x.detach() for x in self.agents))
        if bool(finished.any()):
            state, agents = restart_episodes(world, state, agents, finished, generator)
            self.steps = torch.where(finished, torch.zeros_like(self.steps), self.steps)
            self.returns = torch.where(finished, torch.zeros_like(self.returns), self.returns)
        return state, agents


class _MetricWriter:
    """``metrics.csv`` (and TensorBoard when installed), continued on resume."""

    tensorboard_missing_told = False
    """Whether this process already said (once, as a warning) that TensorBoard is not installed."""

    def __init__(self, run_dir: Path, history: list[dict[str, float]]) -> None:
        self.path = run_dir / "metrics.csv"
        self.fields = [
            "step",
            "temperature",
            "lr",
            *METRIC_KEYS,
            "grad_norm",
            *PROBE_KEYS,
            "steps_per_s",
            "train_time_s",
            "threads",
        ]
        text = io.StringIO(newline="")  # rewritten from the history (atomically): resume continues it
        w = csv.DictWriter(text, self.fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(history)
        atomic_write_text(self.path, text.getvalue())
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tb"))
        except ImportError:
            if not _MetricWriter.tensorboard_missing_told:
                import warnings  # here, not at the top: this class is the module's only user

                _MetricWriter.tensorboard_missing_told = True
                warnings.warn(
                    "TensorBoard is not installed, so metrics go to metrics.csv only; "
                    'pip install -e ".[tensorboard]" also logs them to the run folder\'s tb/',
                    UserWarning,
                    stacklevel=2,
                )

    def write(self, row: dict[str, float]) -> None:
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, self.fields, extrasaction="ignore").writerow(row)
        if self.tb is not None:
            for key in self.fields[1:]:
                if key in row and math.isfinite(row[key]):
                    self.tb.add_scalar(key, row[key], int(row["step"]))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _progress(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc="train", dynamic_ncols=True)
