"""Where a run executes: device, distributed group, AMP and TF32, decided once from the config."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

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


def free_cores(own_load: float = 0.0) -> int:
    """CPU cores that other processes leave free: the core count minus the 1-minute load average that is not
    this process's own ``own_load`` (0 when it has just started; its thread count while it trains), at least 1.

    On a shared machine, more torch threads than free cores is a trap: OpenMP's spinning threads wait for a
    core that another process holds (measured here: 2 threads 3.8x slower than their idle speed next to one
    busy process, 27x next to another torch job), while on an idle machine 2 threads are 1.7x faster than 1.
    """
    cores = os.cpu_count() or 1
    try:
        others = max(0.0, os.getloadavg()[0] - own_load)
    except OSError:  # pragma: no cover - no load average on this platform
        return cores
    return max(1, min(cores, cores - round(others)))


def apply_threads(cfg: Config, device: torch.device, *, running: bool = False) -> int:
    """Sets torch's CPU threads from ``cfg.threads`` (0: :func:`free_cores`, re-checked at every log step by
    the trainer with ``running=True``); returns the number set. A no-op (returning the current count) for CUDA
    runs and when the user pinned ``OMP_NUM_THREADS``."""
    if device.type != "cpu" or (cfg.threads == 0 and "OMP_NUM_THREADS" in os.environ):
        return torch.get_num_threads()
    threads = cfg.threads or free_cores(torch.get_num_threads() if running else 0.0)
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads


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
    apply_threads(cfg, device)
    return Runtime(device, amp_dtype, use_compile, rank, world_size, owns_group)
