"""Atomic writes of run files, and the safe, validated loading of checkpoints.

A checkpoint holds plain data only: tensors, dicts, lists, tuples, numbers, strings, bools and ``None``
(model and optimizer state, the RNG states as ``ByteTensor``, the config as a dict, the history). It is
read with ``torch.load(..., weights_only=True)``, so a file crafted to run code when unpickled is
refused instead of executed.

Every file that a later command reads is written atomically: to a temporary ``.NAME.XXXXXXXX.tmp``
next to it, then renamed over ``NAME``, so that a reader sees the old file or the new one, never half
of one. A crash can leave such a temporary behind; :func:`clean_stale_temporaries` removes them when
the next run takes the folder.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import torch

CHECKPOINT_NAME = "checkpoint.pt"
REQUIRED_KEYS = ("model", "optimizer", "scaler", "step", "generator", "config", "history")
TEMP_SUFFIX = ".tmp"
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp|\.checkpoint\.pt\.[a-z0-9_]{8}")
"""Names of atomic-write temporaries (``tempfile.mkstemp`` adds 8 characters), and of older ones without
``.tmp`` that earlier versions left next to ``checkpoint.pt``."""
_UNSAFE_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_WEIGHTS_ONLY_REASON = re.compile(r"WeightsUnpickler error:\s*(.*?)\s*(?:Check the documentation|$)", re.DOTALL)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupt, unsafe, or from an incompatible run."""


def _atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Calls ``write`` on a temporary file next to ``path``, then renames it over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Makes a rename durable (best effort: not every OS or file system can open a folder)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save(obj)`` to ``path`` atomically: a temporary file in the same folder, then a rename."""
    _atomic_write(path, lambda fh: torch.save(obj, fh))


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Writes ``text`` to ``path`` atomically: a temporary file in the same folder, then a rename."""
    data = text.encode(encoding)
    _atomic_write(path, lambda fh: fh.write(data))


def clean_stale_temporaries(run_dir: str | Path) -> list[Path]:
    """Removes the temporaries that interrupted atomic writes left in ``run_dir``; returns them.

    Call it only while holding the folder (see :func:`gnncomm.runfolder.claim_run_dir`): the temporary of
    a live writer looks the same as a stale one.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    removed = []
    for path in sorted(run_dir.iterdir()):
        if _TEMPORARY.fullmatch(path.name) and path.is_file() and not path.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Loads and checks a training checkpoint, raising :class:`CheckpointError` with the cause.

    Only plain data is unpickled (``weights_only=True``, see :func:`load_tensors`): a checkpoint that
    would run code is refused. Load it once and pass the result on (e.g. to
    ``gnncomm.train(..., state=...)``); tensors land on ``map_location`` (the CPU by default, which any
    checkpoint can be read onto).

    Args:
        path: ``checkpoint.pt``, or a run folder holding one.
        map_location: where the tensors go; a CUDA device needs CUDA on this machine.

    Returns:
        dict: the training state, with at least the keys of :data:`REQUIRED_KEYS`.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {str(path)!r}")
    state = load_tensors(path, map_location)
    _check_state(state, repr(str(path)))
    return state


def load_tensors(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with every failure a one-line :class:`CheckpointError`:
    tensors, numbers, strings, lists and dicts only, so loading a file never runs its code."""
    path = Path(path)
    shown = repr(str(path))
    if not path.is_file():
        raise CheckpointError(f"no file at {shown}")
    if isinstance(map_location, (str, torch.device)):
        try:
            device = torch.device(map_location)
        except (RuntimeError, ValueError):
            raise ValueError(f"map_location must be a device such as 'cpu' or 'cuda:0', got {map_location!r}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise CheckpointError(
                f"cannot load checkpoint {shown} onto {str(device)!r}: CUDA is not available on "
                "this machine; load it on the CPU (device=cpu)"
            )
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error below says what matters
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = _UNSAFE_GLOBAL.search(str(exc))
        if unsafe is not None:
            raise CheckpointError(
                f"checkpoint {shown} was refused: it holds {unsafe.group(1)}, not only tensors, "
                "numbers, strings, lists and dicts, and unpickling it could run code; load "
                "only checkpoints written by gnncomm"
            ) from None
        reason = _WEIGHTS_ONLY_REASON.search(str(exc))
        detail = " ".join(reason.group(1).split()) if reason else _short(exc)
        raise CheckpointError(
            f"checkpoint {shown} is corrupt or truncated, or not written by torch.save ({detail})"
        ) from None
    except RuntimeError as exc:
        if "torch.cuda.is_available() is False" in str(exc):
            raise CheckpointError(
                f"checkpoint {shown} holds CUDA tensors but CUDA is not available on this "
                "machine; load it with map_location='cpu' (device=cpu)"
            ) from None
        raise CheckpointError(f"checkpoint {shown} is corrupt or truncated ({_short(exc)})") from None
    except Exception as exc:  # torch raises several types for truncated or corrupt zip archives
        raise CheckpointError(f"checkpoint {shown} is corrupt or truncated ({_short(exc)})") from None
    return state


def _check_state(state: Any, shown: str) -> None:
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {shown} does not hold a training state (got {type(state).__name__})")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {shown} lacks {missing}")
    step = state["step"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"checkpoint {shown} has step={step!r}; expected an int >= 0")
    for key, kind in (("model", Mapping), ("optimizer", Mapping), ("config", Mapping), ("history", list)):
        if not isinstance(state[key], kind):
            raise CheckpointError(
                f"checkpoint {shown} has a {type(state[key]).__name__} for {key!r}; expected a {kind.__name__}"
            )


def _short(exc: BaseException, limit: int = 200) -> str:
    """``Type: message`` on one line, cut to ``limit`` characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
