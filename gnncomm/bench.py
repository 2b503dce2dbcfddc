"""Training throughput and peak memory: the measurements behind ``gnncomm bench`` and ``benchmarks/``.

A training step is what :meth:`gnncomm.trainer.Trainer.train_step` does: the ``timesteps``-step
rollout (graph building, talk, attention, action, world dynamics), the backward pass, gradient
clipping and the AdamW update. Throughput is ``B * N * T / step time`` agent-steps per second, the
step time being the median of ``steps`` timed steps after ``warmup`` untimed ones (the first of
which holds any ``torch.compile`` work). Each step is read on two clocks (:class:`Timings`): wall
time, and the process's CPU time, which on a shared CPU with one thread leaves out waiting for a core.

Peak memory:

- CUDA: :func:`torch.cuda.max_memory_allocated` over the warm-up and timed steps (absolute, so it
  includes the parameters and optimizer state);
- CPU (Linux): the rise of the peak resident set size over the resident size at the start,
  ``VmHWM - VmRSS``, after resetting ``VmHWM`` through ``/proc/self/clear_refs`` and handing
  freed heap back with ``malloc_trim``; elsewhere the rise of ``getrusage().ru_maxrss``, which
  reads 0 when an earlier peak of the process was higher.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import torch

from gnncomm.config import Config
from gnncomm.topology import is_dynamic
from gnncomm.trainer import Trainer

#: ``B * N`` kept constant when no batch size is given (the CPU default of the sweeps).
DEFAULT_AGENTS_PER_BATCH = 2560


def default_batch_size(num_agents: int, agents_per_batch: int = DEFAULT_AGENTS_PER_BATCH) -> int:
    """Episodes per step that keep ``B * N`` near ``agents_per_batch`` (at least one episode).

    >>> default_batch_size(10), default_batch_size(1000), default_batch_size(10_000)
    (256, 3, 1)
    """
    if isinstance(num_agents, bool) or not isinstance(num_agents, int) or num_agents < 1:
        raise ValueError(f"num_agents must be an int >= 1, got {num_agents!r}")
    return max(1, round(agents_per_batch / num_agents))


def synchronize(device: torch.device) -> None:
    """Waits for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timings(NamedTuple):
    """Seconds of each timed call: ``wall`` (device-synchronised) and ``cpu``, the process's CPU time.

    With one thread and a CPU device, ``cpu`` leaves out the time spent waiting for a core while
    other processes run (not their effect on caches); ``wall`` is what a user waits for.
    """

    wall: list[float]
    cpu: list[float]


def time_calls(fn: Callable[[], Any], *, steps: int, warmup: int, device: torch.device) -> Timings:
    """Times ``steps`` calls of ``fn`` after ``warmup`` untimed calls, device-synchronised."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    wall, cpu = [], []
    for _ in range(steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        synchronize(device)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return Timings(wall, cpu)


def time_interleaved(fns: Mapping[str, Callable[[], Any]], *, steps: int, device: torch.device) -> dict[str, Timings]:
    """:func:`time_calls` for several functions taking turns (order rotating every round), so that
    functions compared with each other share the same background load. Warm them up first."""
    names, times = list(fns), {name: Timings([], []) for name in fns}
    for i in range(steps):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            t = time_calls(fns[name], steps=1, warmup=0, device=device)
            times[name].wall.extend(t.wall)
            times[name].cpu.extend(t.cpu)
    return times


def _read_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _ru_maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # bytes on macOS, KiB on Linux


def _trim_heap() -> None:
    """Returns freed heap pages to the OS (glibc only) so RSS starts near what is live."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class PeakMemory:
    """Context manager measuring the peak memory of a block; see the module docstring.

    After the block, ``peak_bytes`` holds the figure and ``method`` says how it was read.
    """

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.peak_bytes: int | None = None
        self.method = ""
        self._start = 0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.method = "cuda_max_memory_allocated"
            return self
        _trim_heap()
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
            self._start = _read_status_kib("VmRSS") * 1024
            self.method = "cpu_peak_rss_delta (VmHWM after clear_refs)"
        except (OSError, TypeError):
            self._start = _ru_maxrss_bytes()
            self.method = "cpu_ru_maxrss_delta (lower bound)"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
        elif self.method.startswith("cpu_peak_rss"):
            self.peak_bytes = max(0, _read_status_kib("VmHWM") * 1024 - self._start)
        else:
            self.peak_bytes = max(0, _ru_maxrss_bytes() - self._start)


def bench_config(
    agents: int,
    batch_size: int | None = None,
    topology: str = "knn",
    k: int = 4,
    device: str = "cpu",
    compile: bool = False,
    amp: str = "none",
    timesteps: int = 5,
    shared: bool = True,
) -> Config:
    """The :class:`Config` of a benchmark run (default widths: hidden 64, vocab 64, 5 symbols, 4 heads)."""
    return Config(
        num_agents=agents,
        batch_size=default_batch_size(agents) if batch_size is None else batch_size,
        topology=topology,
        k_neighbors=k,
        device=device,
        compile="true" if compile else "false",
        amp=amp,
        timesteps=timesteps,
        shared_params=shared,
    )


def build_trainer(cfg: Config) -> Trainer:
    """A :class:`~gnncomm.trainer.Trainer` whose run folder is never written (no ``train()`` call)."""
    trainer = Trainer(cfg, os.path.join(tempfile.gettempdir(), "gnncomm-bench-unused"))
    trainer.loss_module.set_topology(cfg.topology, cfg.k_neighbors, trainer.local_batch, trainer.rt.device)
    return trainer


def measure_trainers(trainers: Mapping[str, Trainer], *, steps: int = 5, warmup: int = 2) -> dict[str, dict[str, Any]]:
    """Times ``train_step`` of several trainers, each on one pre-drawn episode, in alternation.

    Each trainer first runs its ``warmup`` steps alone, under :class:`PeakMemory`; the timed steps
    then take turns (trainer order rotating every round), so that trainers compared with each other
    share the same background load. Per trainer: the step times and their median, wall-clock
    (``step_time_s``, ``agent_steps_per_s``) and process CPU time (``step_cpu_s``,
    ``agent_steps_per_cpu_s``; see :class:`Timings`), the peak memory, the first (compile) step's
    time, and ``knn_time_s``/``knn_cpu_s``: ``T`` eager calls of the graph builder on the initial
    positions (0 for static graphs), with ``knn_share``/``knn_share_cpu`` their part of the step
    (``None`` for a compiled step).
    """
    if steps < 1 or warmup < 1:
        raise ValueError(f"steps and warmup must be >= 1, got steps={steps}, warmup={warmup}")
    calls, results = {}, {}
    for name, trainer in trainers.items():
        device, cfg = trainer.rt.device, trainer.cfg
        episode = trainer.next_episode()
        temperature = torch.tensor(cfg.temperature(0), device=device)
        calls[name] = functools.partial(trainer.train_step, episode, temperature)
        with PeakMemory(device) as mem:
            first = time_calls(calls[name], steps=1, warmup=0, device=device).wall[0]
            time_calls(calls[name], steps=warmup - 1, warmup=0, device=device)
        graph = Timings([0.0], [0.0])
        if is_dynamic(cfg.topology):
            graph_fn, pos = trainer.loss_module.graph_fn, episode.state.pos
            graph = time_calls(lambda: graph_fn(pos), steps=3, warmup=1, device=device)
        results[name] = {
            "first_step_s": first,
            "peak_mem_bytes": mem.peak_bytes,
            "mem_method": mem.method,
            "knn_time_s": cfg.timesteps * statistics.median(graph.wall),
            "knn_cpu_s": cfg.timesteps * statistics.median(graph.cpu),
        }
    device = next(iter(trainers.values())).rt.device
    for name, times in time_interleaved(calls, steps=steps, device=device).items():
        results[name].update(step_times_s=times.wall, step_cpu_times_s=times.cpu)
    for name, trainer in trainers.items():
        r, cfg = results[name], trainer.cfg
        agent_steps = trainer.local_batch * cfg.num_agents * cfg.timesteps
        r["step_time_s"] = statistics.median(r["step_times_s"])
        r["step_cpu_s"] = statistics.median(r["step_cpu_times_s"])
        r["agent_steps_per_s"] = agent_steps / r["step_time_s"]
        r["agent_steps_per_cpu_s"] = agent_steps / r["step_cpu_s"] if r["step_cpu_s"] > 0 else None
        # The graph builder is timed eagerly: its share of a compiled step (which compiles it too) is not defined.
        eager = not trainer.rt.compile
        r["knn_share"] = r["knn_time_s"] / r["step_time_s"] if eager else None
        r["knn_share_cpu"] = r["knn_cpu_s"] / r["step_cpu_s"] if eager and r["step_cpu_s"] > 0 else None
    return results


def measure_trainer(trainer: Trainer, *, steps: int = 5, warmup: int = 2) -> dict[str, Any]:
    """:func:`measure_trainers` for one trainer."""
    return measure_trainers({"trainer": trainer}, steps=steps, warmup=warmup)["trainer"]


def _format_bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    i = min(int(math.log(max(n, 1), 1024)), len(units) - 1)
    return f"{n / 1024**i:.1f} {units[i]}"


def run_bench(
    agents: int = 1000,
    batch_size: int | None = None,
    topology: str = "knn",
    k: int = 4,
    device: str = "cpu",
    compile: bool = False,
    amp: str = "none",
    steps: int = 5,
    warmup: int = 2,
    timesteps: int = 5,
    shared: bool = True,
) -> dict[str, Any]:
    """Measures the training step of one configuration; what ``gnncomm bench`` prints.

    Returns a JSON-ready dict: the configuration, the :func:`measure_trainer` figures, the thread
    count and device name, and ``summary``, a one-line human reading.
    """
    cfg = bench_config(agents, batch_size, topology, k, device, compile, amp, timesteps, shared)
    trainer = build_trainer(cfg)
    dev = trainer.rt.device
    result: dict[str, Any] = {
        "agents": cfg.num_agents,
        "batch_size": cfg.batch_size,
        "topology": cfg.topology,
        "k": cfg.k_neighbors,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "compile": trainer.rt.compile,
        "amp": amp,
        "timesteps": cfg.timesteps,
        "shared": cfg.shared_params,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    result.update(measure_trainer(trainer, steps=steps, warmup=warmup))
    knn = (
        f", kNN {100 * result['knn_share']:.0f}% of step"
        if result["knn_share"] is not None and is_dynamic(cfg.topology)
        else ""
    )
    result["summary"] = (
        f"{result['agent_steps_per_s']:,.0f} agent-steps/s (N={cfg.num_agents}, B={cfg.batch_size}, "
        f"T={cfg.timesteps}, {cfg.topology}, {result['device_name']}, compile={trainer.rt.compile}, amp={amp}): "
        f"step {1e3 * result['step_time_s']:.1f} ms median of {steps}, peak memory "
        f"{_format_bytes(result['peak_mem_bytes'])} [{result['mem_method']}]{knn}"
    )
    return result
