"""Where a run executes: device, distributed group, AMP and TF32, decided once from the config."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from gnncomm.config import Config


@dataclass(frozen=True)
class Runtime:
    """The resolved execution settings of a run."""

    device: torch.device
    amp_dtype: torch.dtype | None
    compile: bool
    rank: int = 0
    world_size: int = 1
    owns_group: bool = False
    """Whether :func:`setup_runtime` joined the process group, so that :meth:`close` leaves it."""
    cores: CoreMonitor = field(default_factory=lambda: CoreMonitor(), compare=False)
    """Watches the CPU other processes use, for ``threads=0``: read at setup, then at every log step."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(
            self.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=self.amp_dtype is not None
        )

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A scaler that is active for fp16 only (a no-op otherwise)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

    def close(self) -> None:
        """Leaves the process group if :func:`setup_runtime` joined it (a no-op otherwise).

        Not a collective: each rank calls it when it is done, rank 0 after its final evaluation.
        """
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


SAMPLE_S = 0.2
"""How long :class:`CoreMonitor` watches the machine when it has no earlier reading (a run's start)."""


MIN_INTERVAL_S = 0.05
"""Shorter intervals are too coarse for ``/proc/stat``'s clock ticks (10 ms)."""


def _cpu_seconds() -> tuple[float, float] | None:
    """``(busy CPU seconds of the whole machine, CPU seconds of this process)`` since boot/start, from
    ``/proc/stat``; ``None`` where there is no ``/proc/stat``."""
    try:
        with open("/proc/stat") as fh:
            fields = [float(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK"), time.process_time()


class CoreMonitor:
    """Counts the CPU cores other processes leave free, from what they actually used since the last reading.

    Every :meth:`free_cores` call compares the machine's busy CPU time (``/proc/stat``) with this process's own
    CPU time over the interval since the previous call (over :data:`SAMPLE_S` seconds on the first call), so it
    sees a neighbour start or stop within one interval. The 1-minute load average, which it replaces, lags by a
    minute and counts this process's own recent work: on an idle machine a run that had just finished a
    benchmark kept 1 thread (30.6k agent-steps/s at N=100 instead of 40.9k with 2).

    Why it matters: OpenMP's spinning threads wait for a core that another process holds. Measured on 2 cores
    (N=100, ``benchmarks/threads.py``): 2 threads next to one busy process ran at 10.6k agent-steps/s, 1 thread
    at 25.1k; on an idle machine 2 threads ran at 40.9k, 1 thread at 30.6k.

    Args:
        read: ``() -> (machine busy CPU s, own CPU s)`` or ``None`` (tests inject one). Without readings
            (no ``/proc/stat``) it falls back to the load average.
        clock: wall clock in seconds.
    """

    def __init__(self, read=_cpu_seconds, clock=time.perf_counter) -> None:
        self.read = read
        self.clock = clock
        self.last: tuple[float, float, float] | None = None
        self.estimate = 0.0

    def start(self) -> None:
        """Takes the first reading now, so that the next :meth:`free_cores` measures from here without waiting."""
        self.last = self._reading()

    def _reading(self) -> tuple[float, float, float] | None:
        cpu = self.read()
        return None if cpu is None else (self.clock(), *cpu)

    def others_busy(self) -> float | None:
        """Cores' worth of CPU that other processes used since the last call (``None`` without readings)."""
        if self.last is None:
            self.last = self._reading()
            if self.last is None:
                return None
            time.sleep(SAMPLE_S)
        now = self._reading()
        if now is None:
            return None
        (t0, busy0, own0), (t1, busy1, own1) = self.last, now
        if t1 - t0 >= MIN_INTERVAL_S:  # a shorter interval repeats the last estimate
            self.last = now
            self.estimate = max(0.0, ((busy1 - busy0) - (own1 - own0)) / (t1 - t0))
        return self.estimate

    def free_cores(self) -> int:
        """The core count minus the cores other processes keep busy, at least 1."""
        cores = os.cpu_count() or 1
        others = self.others_busy()
        if others is None:
            try:
                others = os.getloadavg()[0]
            except OSError:  # pragma: no cover - no load average on this platform
                return cores
        return max(1, min(cores, cores - round(others)))


def apply_threads(cfg: Config, device: torch.device, monitor: CoreMonitor | None = None) -> int:
    """Sets torch's CPU threads from ``cfg.threads`` (0: the cores that ``monitor`` finds free; the trainer keeps
    one monitor and calls this at every log step); returns the number set. A no-op (returning the current count)
    for CUDA runs and when the user pinned ``OMP_NUM_THREADS``."""
    if device.type != "cpu" or (cfg.threads == 0 and "OMP_NUM_THREADS" in os.environ):
        return torch.get_num_threads()
    threads = cfg.threads or (monitor or CoreMonitor()).free_cores()
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
"""glibc's ``mallopt`` parameters."""
CPU_MEMORY_SETTINGS = {
    "reuse": (2**30, 2**31 - 1),
    "release": (2**20, 2**20),
    "system": (128 * 2**10, 128 * 2**10),
}
"""``cpu_memory`` -> (mmap threshold, trim threshold) in bytes: blocks from the mmap threshold up are mapped on their
own and unmapped when freed; heap memory above the trim threshold is given back."""
_cpu_memory: str | None = None


def set_cpu_memory(mode: str) -> bool:
    """Sets how glibc treats freed memory, process-wide (``Config.cpu_memory``); returns whether it applied (glibc).

    PyTorch has no caching allocator on the CPU, and glibc serves every block above its mmap threshold (at most
    32 MiB with its dynamic default) with a fresh ``mmap`` that it unmaps on free, so each step of a large
    population faults every page of its large tensors in again:

    * ``reuse``: blocks up to 1 GiB come from the heap and freed memory is never trimmed. Measured on 1 thread at
      N=40,000, B=1: 38,753 page faults and 0.34 s of system time per step against 1,285,480 and 5.4 s with
      glibc's default (user time 8.5 and 8.8 s), for a peak RSS of 4.93 against 4.41 GiB.
    * ``release``: every block from 1 MiB up is mapped on its own and unmapped when freed, so little memory is
      left in the heap between steps: the smallest peak (at N=100,000, B=1 with recomputation: 3.71 GiB during
      the backward pass against 5.16 GiB with glibc's default), at the price of faults at every step.
    * ``system``: glibc's thresholds (128 KiB), restored as fixed values if another mode was set before (glibc
      cannot switch its dynamic threshold back on).
    """
    global _cpu_memory
    if mode == _cpu_memory:
        return True
    if mode not in CPU_MEMORY_SETTINGS:
        raise ValueError(f"cpu_memory must be one of {sorted(CPU_MEMORY_SETTINGS)}, got {mode!r}")
    if mode == "system" and _cpu_memory is None:
        return True  # untouched: glibc's own, dynamic, policy
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return False
    mmap_threshold, trim_threshold = CPU_MEMORY_SETTINGS[mode]
    applied = bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))
    if applied:
        _cpu_memory = mode
    return applied


def trim_heap() -> bool:
    """Gives the heap's free pages back to the OS (glibc's ``malloc_trim``); returns whether it could.

    Between phases of a large run (training, then the end-of-run evaluation) the heap keeps what the last phase
    freed in blocks below the mmap threshold; the next phase's peak RSS then stands on it.
    """
    try:
        return bool(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):  # not glibc
        return False


def setup_runtime(cfg: Config) -> Runtime:
    """Resolves ``device``/``amp``/``compile``, enables TF32 on CUDA and joins a torchrun group.

    Under ``torchrun`` (``WORLD_SIZE > 1``) the default process group is initialised with NCCL on
    CUDA and gloo on the CPU, and each rank takes ``cuda:LOCAL_RANK``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    name = cfg.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device={cfg.device!r} but CUDA is not available; use device=cpu")
        device = torch.device("cuda", local_rank if world_size > 1 else torch.device(name).index or 0)
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.set_float32_matmul_precision("high")
    else:
        device = torch.device("cpu")
    owns_group = world_size > 1 and not dist.is_initialized()
    if owns_group:
        if device.type == "cuda":  # device_id: NCCL connects now, and barriers know the rank's GPU
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
    amp = cfg.amp
    if amp == "auto":
        amp = "bf16" if device.type == "cuda" else "none"
    if amp == "fp16" and device.type != "cuda":
        raise ValueError("amp=fp16 needs a CUDA device (GradScaler); use amp=bf16 or amp=none on the CPU")
    amp_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    use_compile = cfg.compile == "true" or (cfg.compile == "auto" and device.type == "cuda")
    cores = CoreMonitor()
    apply_threads(cfg, device, cores)
    if device.type == "cpu":
        set_cpu_memory(cfg.cpu_memory)
    return Runtime(device, amp_dtype, use_compile, rank, world_size, owns_group, cores)
