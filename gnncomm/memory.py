"""Memory a run will need, estimated before it starts, and a check against what the machine has.

The estimate is measured, not modelled: a few tiny probes (64 and 128 agents in one and two episodes, with the
config's widths, ``timesteps``, topology and modes) run the real training step and the real evaluation rollout on
the CPU while :class:`LiveTensorBytes` follows every tensor they allocate and free. The peak of live bytes is fitted
as ``a + b * N + c * nodes + d * edges`` over the probes and extrapolated to the run's ``B * N`` agents and their
edges, so the estimate costs the same at 10 agents as at 10,000,000 (about a second of probes). Parameters are
counted exactly on a system built on the ``meta`` device, which allocates nothing.

What is counted (float32 bytes, one process holding the whole ``batch_size``):

* the weights, their gradients and AdamW's two moments (4 copies; per-agent weights grow with ``N``);
* the training step's activations: the peak of live tensors during the forward and backward pass, which with
  ``recompute_steps`` is each step's inputs plus one recomputed step;
* the update's temporaries (gradient clipping, AdamW's step), in proportion to the weights: with per-agent
  weights they, not the activations, can set the peak;
* the episode's noise: the Gumbel noise ``T * B * N * M * V`` floats unless the run draws it lazily
  (``cpu_memory=release`` with recomputation, eager, on the CPU), plus the observation noise;
* with ``algorithm=ppo``, an iteration instead of a rollout with gradients: the collected
  :class:`~gnncomm.ppo.Batch` of ``timesteps`` steps of all ``B * N`` agents, held through the update, and the
  activations of replaying one minibatch (its ``ceil(B * S / minibatches)`` sequences of ``S = timesteps /
  ppo_sequence`` per environment), fitted against the agent rows a minibatch replays per step;
* the end-of-run evaluation: :func:`~gnncomm.evaluation.end_of_run_episodes` greedy episodes of
  ``episode_length`` steps, run :func:`~gnncomm.evaluation.evaluation_chunk` episodes at a time under ``no_grad``
  (one chunk's step is live at a time), and the attention of every step that the hub test tallies (12 bytes an
  edge: :class:`~gnncomm.evaluation.AttentionTally`).

Not counted: the interpreter and libraries (a few hundred MB of RSS before any tensor), the allocator's slack
(glibc keeps freed blocks with ``cpu_memory=reuse``) and
``torch.compile``'s own fusion, which usually needs less than the eager step probed here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from gnncomm.agents import CommSystem
from gnncomm.config import Config
from gnncomm.evaluation import end_of_run_episodes, evaluate_episodes, evaluation_chunk
from gnncomm.ppo import PPO
from gnncomm.rollout import make_graph_fn, recompute_steps, rollout, sample_episode
from gnncomm.world import World, build_world

__all__ = [
    "InsufficientMemoryError",
    "LiveTensorBytes",
    "MemoryEstimate",
    "available_memory",
    "check_memory",
    "estimate_memory",
]

TALLY_BYTES_PER_EDGE = 12
"""What :class:`~gnncomm.evaluation.AttentionTally` keeps per edge and step: its pair key (int64) and weight
(float32)."""
PROBE_AGENTS = 128
"""Agents per episode in the largest probe (fewer when the run has fewer, more when kNN needs more)."""


def _format(n: float) -> str:
    """``n`` bytes in GiB from 1 GiB up, else in MB."""
    return f"{n / 2**30:,.2f} GiB" if n >= 2**30 else f"{n / 1e6:,.1f} MB"


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run needs, by part; :attr:`peak` is what must fit."""

    parameters: int
    """The weights."""
    gradients: int
    """Their gradients (live from the first backward pass on)."""
    optimizer: int
    """AdamW's two moments."""
    activations: int
    """The training step's peak of live tensors beyond the above, forward and backward."""
    update: int
    """Gradient clipping's and AdamW's temporaries during the update (after the activations are freed)."""
    noise: int
    """The episode's noise held through the step: Gumbel noise (0 when drawn lazily) and observation noise; with
    ``algorithm=ppo``, the whole collected iteration (observations, graphs, noise, actions, values, advantages)."""
    evaluation: int
    """The end-of-run evaluation: one chunk's greedy rollout, and the attention tallied for the hub test."""

    @property
    def state(self) -> int:
        """Weights, gradients and moments: held for the whole run."""
        return self.parameters + self.gradients + self.optimizer

    @property
    def training(self) -> int:
        """The training step's peak."""
        return self.state + self.noise + max(self.activations, self.update)

    @property
    def peak(self) -> int:
        """The run's peak: the training step or the end-of-run evaluation, whichever is larger (the episode's
        noise and activations are gone when the evaluation runs; the weights and moments are not)."""
        return max(self.training, self.state + self.evaluation)

    def __str__(self) -> str:
        return (
            f"peak {_format(self.peak)} (weights, gradients and AdamW moments {_format(self.state)}, "
            f"activations {_format(self.activations)}, update {_format(self.update)}, noise {_format(self.noise)}, "
            f"end-of-run evaluation {_format(self.evaluation)})"
        )


class InsufficientMemoryError(ValueError):
    """The estimated peak exceeds the memory available; the message says what would fit."""


class LiveTensorBytes(TorchDispatchMode):
    """Context manager following the bytes of the tensors allocated inside it; :attr:`peak` is their maximum.

    Every operator's outputs are recorded by storage (views and in-place results are not counted twice), and a
    storage stops counting once it is freed. Tensors that existed before the block (weights, inputs) are not
    counted, nor what a kernel allocates and frees internally. Freed storages are looked for only when the
    running total would raise the peak, so the cost per operator stays small.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.total = 0
        self.peak = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor) and tensor.device.type != "meta":
                storage = tensor.untyped_storage()
                ref = StorageWeakRef(storage)
                if ref.cdata not in self.live:
                    self.live[ref.cdata] = (ref, storage.nbytes())
                    self.total += storage.nbytes()
        if self.total > self.peak:  # an upper bound until the freed storages are dropped
            for key in [key for key, (ref, _) in self.live.items() if ref.expired()]:
                self.total -= self.live.pop(key)[1]
            self.peak = max(self.peak, self.total)
        return out


def _amp_dtype(cfg: Config, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of the run (as :func:`gnncomm.runtime.setup_runtime` resolves ``amp``); fp16 is probed
    as bf16, the same size, since the probes run on the CPU."""
    amp = cfg.amp if cfg.amp != "auto" else ("bf16" if device.type == "cuda" else "none")
    return None if amp == "none" else torch.bfloat16


def _compiles(cfg: Config, device: torch.device) -> bool:
    return cfg.compile == "true" or (cfg.compile == "auto" and device.type == "cuda")


def _lazy_noise(cfg: Config, device: torch.device, recompute: bool) -> bool:
    """Whether the run draws each step's Gumbel noise where it is used (as ``Trainer.next_episode`` decides)."""
    return cfg.cpu_memory == "release" and device.type == "cpu" and not _compiles(cfg, device) and recompute


class _Fit:
    """Live-byte peaks of a few probes, fitted as ``a + b * N + c * nodes + d * edges`` (``nodes = B * N``; the
    ``N`` term holds what grows with per-agent weights, such as their gradients' buffers)."""

    def __init__(self, points: list[tuple[int, int, float, int]]) -> None:
        x = torch.tensor([[1.0, n, nodes, edges] for n, nodes, edges, _ in points], dtype=torch.float64)
        y = torch.tensor([[float(b)] for *_, b in points], dtype=torch.float64)
        # min-norm least squares: with kNN the edges follow the nodes, and with one episode size N follows them too
        self.coef = torch.linalg.lstsq(x, y, driver="gelsd").solution.flatten()

    def __call__(self, num_agents: int, nodes: int, edges: float) -> int:
        a, per_agent, per_node, per_edge = self.coef.tolist()
        return max(0, round(a + per_agent * num_agents + per_node * nodes + per_edge * edges))


def _update_per_byte(system: CommSystem, optimizer: torch.optim.Optimizer, cfg: Config) -> float:
    """The peak bytes of gradient clipping and the optimizer's step, per byte of weights (gradients must exist)."""
    optimizer.step()  # creates the moments, which are counted apart
    with LiveTensorBytes() as step:
        torch.nn.utils.clip_grad_norm_(system.parameters(), cfg.max_grad_norm)
        optimizer.step()
    return step.peak / sum(p.numel() * p.element_size() for p in system.parameters())


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The probes' configs are copies of the caller's, whose warnings were given once already."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class _Probes:
    """Tiny runs of one config (its widths, ``timesteps``, topology and world), fitted once per mode."""

    def __init__(self, cfg: Config, world: World, device: torch.device) -> None:
        self.cfg, self.world, self.device = cfg, world, torch.device(device)
        N = cfg.num_agents
        n = min(N, max(PROBE_AGENTS, 4 * (cfg.k_neighbors + 1)))
        self.sizes = [min(N, max(2, cfg.k_neighbors + 2, n // 2)), n]
        if cfg.topology == "custom" or not self._rebuildable(world, n):
            self.sizes = [N, N]  # the graph (or the world) is fixed at N: probe N with 1 and 2 episodes
        self._fits: dict[tuple, _Fit] = {}
        self._edges: dict[int, int] = {}

    def _rebuildable(self, world: World, n: int) -> bool:
        """Whether the config's world factory builds ``world``'s kind at ``n`` agents (so small copies are probed)."""
        try:
            with _quiet():
                return type(build_world(self.cfg.with_overrides({"num_agents": n}))) is type(world)
        except (ValueError, TypeError, ImportError):
            return False

    def _setup(self, n: int, batch: int, overrides: dict[str, Any]) -> tuple[Config, World, CommSystem]:
        with _quiet():
            cfg = self.cfg.with_overrides({"num_agents": n, "batch_size": batch, "minibatches": 1, **overrides})
            world = self.world if n == self.world.num_agents else build_world(cfg)
        with torch.random.fork_rng(devices=[]):  # the caller's global stream is left as it was
            torch.manual_seed(0)
            return cfg, world, CommSystem.for_world(cfg, world)

    def _points(self) -> list[tuple[int, int]]:
        (n1, n2), points = self.sizes, []
        for n, batch in ((n1, 1), (n2, 1), (n1, 2), (n2, 2)):
            if (n, batch) not in points:
                points.append((n, batch))
        return points

    def edges_per_node(self, num_agents: int) -> float:
        """Edges per agent of the run's graph at ``num_agents``, linear in ``N`` through the two probe sizes (kNN
        and ring: constant; full: ``N - 1``)."""
        (n1, n2), e = self.sizes, {n: self._edges_of(n) / n for n in set(self.sizes)}
        if n1 == n2:
            return e[n2]
        return e[n1] + (e[n2] - e[n1]) * (num_agents - n1) / (n2 - n1)

    def _edges_of(self, n: int) -> int:
        if n not in self._edges:
            cfg, world, _ = self._setup(n, 1, {})
            state = world.reset(1, generator=torch.Generator().manual_seed(0))
            name, k = cfg.topology_at(0)
            graph = make_graph_fn(name, k, n, 1, device="cpu", seed=cfg.seed, edges=cfg.custom_edges)
            self._edges[n] = graph(state.pos).size(1)
        return self._edges[n]

    def training(self, recompute: bool, lazy: bool) -> tuple[_Fit, _Fit, float]:
        """Fits of the training step's activations and of its held noise, and the update's temporaries per byte of
        weights."""
        key = ("train", recompute, lazy)
        if key not in self._fits:
            peaks, noise, update = [], [], 0.0
            for n, batch in self._points():
                cfg, world, system = self._setup(n, batch, {"recompute_steps": str(recompute).lower()})
                for p in system.parameters():  # accumulated into, so that gradients are not counted as activations
                    p.grad = torch.zeros_like(p)
                generator = torch.Generator().manual_seed(0)
                episode = sample_episode(world, cfg, batch, generator=generator, device="cpu", lazy_gumbel=lazy)
                name, k = cfg.topology_at(0)
                graph = make_graph_fn(name, k, n, batch, device="cpu", seed=cfg.seed, edges=cfg.custom_edges)
                amp = _amp_dtype(self.cfg, self.device)
                with LiveTensorBytes() as live, torch.autocast("cpu", dtype=amp or torch.bfloat16, enabled=bool(amp)):
                    loss = rollout(system, world, episode, graph, cfg, torch.tensor(1.0))[0]
                    loss.backward()
                optimizer = torch.optim.AdamW(system.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
                update = max(update, _update_per_byte(system, optimizer, cfg))
                edges = batch * self._edges_of(n)
                held = [t for t in (*episode.state, episode.obs_noise, episode.gumbel) if isinstance(t, torch.Tensor)]
                peaks.append((n, n * batch, edges, live.peak))
                noise.append((n, n * batch, edges, sum(t.untyped_storage().nbytes() for t in held)))
            self._fits[key] = (_Fit(peaks), _Fit(noise), update)
        return self._fits[key]

    def ppo(self) -> tuple[_Fit, _Fit, float]:
        """Fits of a PPO iteration (``algorithm=ppo``): the collected :class:`~gnncomm.ppo.Batch`, held through the
        update, against the agents collected; one minibatch's replay and backward pass against the agent rows it
        replays per step (``nodes`` = sequences x agents); and the update's temporaries per byte of weights."""
        if "ppo" not in self._fits:
            held, peaks, update = [], [], 0.0
            for n, batch in self._points():
                cfg, world, system = self._setup(n, batch, {})
                for p in system.parameters():  # accumulated into, so that gradients are not counted as activations
                    p.grad = torch.zeros_like(p)
                amp = _amp_dtype(self.cfg, self.device)
                autocast = lambda: torch.autocast("cpu", dtype=amp or torch.bfloat16, enabled=bool(amp))  # noqa: E731
                optimizer = torch.optim.AdamW(system.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
                generator = torch.Generator().manual_seed(0)
                scaler = torch.amp.GradScaler("cpu", enabled=False)
                ppo = PPO(system, world, cfg, optimizer, scaler, generator, autocast, batch, torch.device("cpu"))
                name, k = cfg.topology_at(0)
                graph = make_graph_fn(name, k, n, batch, device="cpu", seed=cfg.seed, edges=cfg.custom_edges)
                data = ppo.collect(graph, torch.tensor(1.0))[0]
                S = data.agents.enc_h.size(0)  # sequences per environment
                envs = torch.arange(batch).repeat(S)
                chunks = torch.arange(S).repeat_interleave(batch)  # every sequence in one minibatch, by chunk
                with LiveTensorBytes() as live, autocast():
                    replay = ppo.replay(data, envs, chunks)
                    (replay.log_prob.sum() + replay.entropy.sum() + replay.values.sum() + replay.aux).backward()
                    del replay
                update = max(update, _update_per_byte(system, optimizer, cfg))
                edges = batch * self._edges_of(n)
                tensors = [t for t in tree_flatten(tuple(data))[0] if isinstance(t, torch.Tensor)]
                storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
                held.append((n, n * batch, edges, sum(storages.values())))
                peaks.append((n, n * batch * S, edges * S, live.peak))
            self._fits["ppo"] = (_Fit(peaks), _Fit(held), update)
        return self._fits["ppo"]

    def evaluation(self) -> _Fit:
        """Fit of one chunk of the end-of-run evaluation: a greedy rollout of its episodes under ``no_grad``."""
        if "eval" not in self._fits:
            peaks = []
            for n, batch in self._points():
                cfg, world, system = self._setup(n, batch, {})
                with LiveTensorBytes() as live:
                    evaluate_episodes(system, world, cfg, episodes=batch, seed=0, chunk=batch)
                peaks.append((n, n * batch, batch * self._edges_of(n), live.peak))
            self._fits["eval"] = _Fit(peaks)
        return self._fits["eval"]

    def estimate(self, cfg: Config) -> MemoryEstimate:
        """The estimate for ``cfg``, which may differ from the probed config in ``batch_size``,
        ``recompute_steps``, ``cpu_memory`` and ``minibatches`` only."""
        N, B = cfg.num_agents, cfg.batch_size
        with torch.device("meta"):  # exact sizes, nothing allocated (per-agent weights at 10^7 agents are TBs)
            system = CommSystem.for_world(cfg, self.world)
        params = sum(p.numel() * p.element_size() for p in system.parameters())
        per_node = self.edges_per_node(N)
        if cfg.algorithm == "ppo":  # a minibatch of K sequences replays K * N agent rows per step
            replay, held, update = self.ppo()
            rows = -(-cfg.ppo_sequences // cfg.minibatches) * N  # torch.chunk's largest minibatch
            activations = replay(N, rows, rows * per_node)
        else:
            recompute = recompute_steps(cfg, B * N)
            fit, held, update = self.training(recompute, _lazy_noise(cfg, self.device, recompute))
            activations = fit(N, B * N, B * N * per_node)
        episodes = end_of_run_episodes(cfg)
        chunk = min(evaluation_chunk(cfg), episodes)
        tally = TALLY_BYTES_PER_EDGE * episodes * cfg.episode_length * N * per_node
        return MemoryEstimate(
            parameters=params,
            gradients=params,
            optimizer=2 * params,
            activations=activations,
            update=round(update * params),
            noise=held(N, B * N, B * N * per_node),
            evaluation=self.evaluation()(N, chunk * N, chunk * N * per_node) + round(tally),
        )


def estimate_memory(cfg: Config, world: World | None = None, *, device: torch.device | str = "cpu") -> MemoryEstimate:
    """The memory a run of ``cfg`` in ``world`` (by default the config's) needs at its peak; see the module docstring.

    ``device`` decides the modes that depend on it (``amp=auto``, ``compile=auto``, lazily drawn noise); the probes
    run on the CPU whatever it is. A world that the config's ``world`` factory does not build is probed at its own
    ``N`` with one and two episodes (slow for a very large ``N``).

    >>> est = estimate_memory(Config(num_agents=10, batch_size=4, timesteps=2))
    >>> 0 < est.parameters < est.peak
    True
    """
    world = build_world(cfg) if world is None else world
    return _Probes(cfg, world, torch.device(device)).estimate(cfg)


def available_memory(device: torch.device | str = "cpu") -> int | None:
    """Bytes available for a run on ``device``: CUDA's free memory on a GPU, ``MemAvailable`` of ``/proc/meminfo``
    on Linux; ``None`` where it cannot be read."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):  # no CUDA, or no such device
            return None
    if device.type != "cpu":
        return None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _largest_fitting(fits: Callable[[int], bool], upper: int) -> int | None:
    """The largest ``b`` in ``[1, upper]`` with ``fits(b)``, or ``None``, by bisection: ``fits`` must turn false
    once as ``b`` grows (with ``recompute_steps=auto`` it need not; then the answer is one that fits, if smaller)."""
    if upper < 1 or not fits(1):
        return None
    lo, hi = 1, upper
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def check_memory(
    cfg: Config,
    world: World | None = None,
    *,
    device: torch.device | str = "cpu",
    available: int | None = None,
) -> MemoryEstimate:
    """The estimate of :func:`estimate_memory`, after checking that its peak fits in the memory available.

    Args:
        available: bytes to allow; by default :func:`available_memory` of ``device`` (no check when unknown).

    Raises:
        InsufficientMemoryError: one line with the estimate, the memory available and the settings that would fit
            (``recompute_steps=true``, ``cpu_memory=release``, the largest ``batch_size``), if any.
    """
    device = torch.device(device)
    world = build_world(cfg) if world is None else world
    probes = _Probes(cfg, world, device)
    estimate = probes.estimate(cfg)
    available = available_memory(device) if available is None else available
    if available is None or estimate.peak <= available:
        return estimate

    def fits(**changes: Any) -> bool:
        if cfg.algorithm == "ppo":  # a smaller batch has fewer sequences to split into minibatches
            sequences = changes.get("batch_size", cfg.batch_size) * (cfg.ppo_sequences // cfg.batch_size)
            changes["minibatches"] = min(changes.get("minibatches", cfg.minibatches), sequences)
        with _quiet():
            changed = dataclasses.replace(cfg, **changes)
        return probes.estimate(changed).peak <= available

    modes: list[dict[str, Any]] = [{}]
    if cfg.algorithm == "ppo":  # the replay holds one minibatch: the most minibatches replay one sequence each
        if cfg.minibatches < cfg.ppo_sequences:
            modes.append({"minibatches": cfg.ppo_sequences})
    else:
        if not recompute_steps(cfg, cfg.batch_size * cfg.num_agents):
            modes.append({"recompute_steps": "true"})
        if device.type == "cpu" and not _compiles(cfg, device) and cfg.cpu_memory != "release":
            modes.append({"recompute_steps": "true", "cpu_memory": "release"})
    show = lambda changes: " ".join(f"{key}={value}" for key, value in changes.items())  # noqa: E731
    advice, best = [], 0  # the largest batch as it is, then the first mode that fits with it or a larger batch
    for changes in modes:
        if changes and fits(**changes):
            advice.append(show(changes))
            break
        batch = _largest_fitting(lambda b, changes=changes: fits(batch_size=b, **changes), cfg.batch_size - 1)
        if batch is not None and batch > best:
            advice.append(show({**changes, "batch_size": batch}))
            best = batch
    suggestion = (
        f"; {' or '.join(advice)} would fit" if advice else "; no batch_size fits: use fewer agents or a smaller model"
    )
    raise InsufficientMemoryError(
        f"num_agents={cfg.num_agents} batch_size={cfg.batch_size} needs about {estimate} but {_format(available)} "
        f"is available on {device.type}{suggestion}"
    )
