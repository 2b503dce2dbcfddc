"""Who may write a run folder: the checks before a run starts, and the lock that keeps a second writer out.

:func:`claim_run_dir` is what a training command calls once its config has validated:

* ``run_dir`` must be a folder or not exist yet; a file, a path under a file, or a folder that cannot
  be written is refused;
* a folder that already holds a run (:data:`RUN_MARKERS`) with a checkpoint is refused unless ``resume``
  (continue it) or ``overwrite`` (replace it); ``resume`` needs a checkpoint. A run that never wrote one (it
  stopped during set-up or its first steps) cannot be resumed, so a new run takes its place without ``overwrite``;
* the lock ``run_dir/.lock`` records the writer's pid and host. A second writer meets it and is refused
  with that pid; a lock whose process is gone (same host, pid no longer alive) is stale and taken over;
* only once the lock is held are the old run's files removed (``overwrite``) and the temporaries of
  interrupted atomic writes cleaned (:func:`gnncomm.checkpoint.clean_stale_temporaries`).

Every refusal is a one-line :class:`RunFolderError` that says what to do in the words of the caller's
interface (:data:`INTERFACES`): the command-line flags (``--resume DIR``, ``--overwrite``) by default, the
keyword arguments of :func:`gnncomm.train` (``resume=True``, ``overwrite=True``) with ``interface="python"``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import time
from pathlib import Path
from typing import NamedTuple

from gnncomm.checkpoint import CHECKPOINT_NAME, clean_stale_temporaries

LOCK_NAME = ".lock"
RUN_MARKERS = (CHECKPOINT_NAME, "config.json", "metrics.csv")
"""Any of these in a folder means it holds a run."""
RUN_OUTPUTS = (
    CHECKPOINT_NAME,
    "config.json",
    "metrics.csv",
    "events.jsonl",
    "ablation.json",
    "training_progress.png",
    "topology.png",
    "report.json",
    "report.md",
    "attention_heatmap.png",
    "vocab_over_training.png",
    "symbol_transitions.png",
    "knockout_vs_centrality.png",
)
"""The files a run (``gnncomm train``, then ``gnncomm evaluate``) writes, which ``overwrite`` removes together
with ``agent_*.pth`` and the TensorBoard folder ``tb/``. Other files in the folder are left alone."""
RUN_OUTPUT_GLOBS = ("agent_*.pth",)
RUN_OUTPUT_DIRS = ("tb",)
INTERFACES = ("cli", "python")
"""Whose words a refusal uses: ``gnncomm train``'s flags, or the keyword arguments of :func:`gnncomm.train`."""


class RunFolderError(RuntimeError):
    """A run folder cannot be used as asked: it holds a run, is in use, or cannot be written."""


class LockInfo(NamedTuple):
    """What a lock file records about the process holding the folder."""

    pid: int
    host: str
    started: str
    """Local time the lock was taken, ``YYYY-mm-dd HH:MM:SS``."""


class RunLock:
    """A held run folder; :meth:`release` (or leaving the ``with`` block) gives it back.

    Released automatically when the process ends only in the sense that a dead writer's lock is stale:
    the next :func:`claim_run_dir` on the same host takes it over.
    """

    def __init__(self, run_dir: Path, info: LockInfo) -> None:
        self.run_dir = run_dir
        self.path = run_dir / LOCK_NAME
        self.info = info
        self.held = True

    def release(self) -> None:
        """Removes the lock file if it is still this process's (a no-op when called again)."""
        if not self.held:
            return
        self.held = False
        if read_lock(self.run_dir) == self.info:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"RunLock({str(self.run_dir)!r}, pid={self.info.pid}, held={self.held})"


def read_lock(run_dir: str | Path) -> LockInfo | None:
    """The lock of ``run_dir``, or ``None`` when there is none or it cannot be read."""
    return _read_lock_file(Path(run_dir) / LOCK_NAME)


def _read_lock_file(path: Path) -> LockInfo | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return LockInfo(int(data["pid"]), str(data["host"]), str(data.get("started", "?")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_run_dir(run_dir: str | Path, *, resume: bool, overwrite: bool, interface: str = "cli") -> Path:
    """Every check of :func:`claim_run_dir` that writes nothing and ignores the lock; returns ``Path(run_dir)``.

    Raises:
        RunFolderError: ``run_dir`` is a file, lies under a file, is not writable, already holds a run
            (without ``resume`` or ``overwrite``), or holds no checkpoint (``resume``).
    """
    if interface not in INTERFACES:
        raise ValueError(f"interface must be one of {list(INTERFACES)}, got {interface!r}")
    cli = interface == "cli"
    resume_word, overwrite_word = ("--resume", "--overwrite") if cli else ("resume=True", "overwrite=True")
    if resume and overwrite:
        raise RunFolderError(
            f"{resume_word} and {overwrite_word} exclude each other: {resume_word} continues the run in a folder, "
            f"{overwrite_word} replaces it"
        )
    flag = _folder_word(resume, interface)
    if not isinstance(run_dir, (str, os.PathLike)):
        raise TypeError(f"run_dir must be a path, got {type(run_dir).__name__}")
    if str(run_dir) == "":
        raise RunFolderError(f"{flag} must name a folder, got ''")
    path = Path(run_dir)
    shown = repr(str(path))
    if "\0" in str(path):
        raise RunFolderError(f"{flag} {shown} is not a usable path: it holds a NUL character")
    try:
        exists, is_dir = path.exists(), path.is_dir()
    except (OSError, ValueError) as exc:  # e.g. a name too long, or a NUL byte
        raise RunFolderError(f"{flag} {shown} is not a usable path: {_reason(exc)}") from None
    if exists and not is_dir:
        raise RunFolderError(f"{flag} {shown} is a file, not a folder")
    if not exists:
        parent = next((p for p in path.absolute().parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise RunFolderError(f"{flag} {shown} lies under the file {str(parent)!r}, not a folder")
        if resume:
            raise RunFolderError(f"{flag} {shown}: no such folder, so no checkpoint to resume")
        if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
            raise RunFolderError(f"{flag} {shown} cannot be created: {str(parent)!r} is not writable")
        return path
    if not os.access(path, os.W_OK | os.X_OK):
        raise RunFolderError(f"{flag} {shown} is not writable (permission denied)")
    if resume:
        if not (path / CHECKPOINT_NAME).is_file():
            new_run = f"--out {path}" if cli else "resume=False"
            raise RunFolderError(
                f"{flag} {shown}: no checkpoint ({CHECKPOINT_NAME}) there to resume; start a new run with {new_run}"
            )
        return path
    markers = [m for m in RUN_MARKERS if (path / m).exists()]
    if markers and not overwrite and (path / CHECKPOINT_NAME).exists():  # without one, nothing can resume it
        resume_it = f"--resume {path}" if cli else "resume=True"
        raise RunFolderError(
            f"run folder {shown} already holds a run ({', '.join(markers)}); continue it with "
            f"{resume_it}, or replace it with {overwrite_word}"
        )
    return path


def _folder_word(resume: bool, interface: str) -> str:
    """How ``interface`` names the run folder: the flag that gave it, or :func:`gnncomm.train`'s ``run_dir``."""
    if interface == "python":
        return "run_dir"
    return "--resume" if resume else "--out"


def claim_run_dir(run_dir: str | Path, *, resume: bool, overwrite: bool, interface: str = "cli") -> RunLock:
    """Takes ``run_dir`` for one writer: checks it, creates it, locks it, then prepares it.

    Call it after the run's config has validated: nothing in an existing run is touched before the
    lock is held, and with ``overwrite`` the old run's files (:data:`RUN_OUTPUTS`, ``agent_*.pth``,
    ``tb/``) are removed only then. Use the result as a context manager, or call :meth:`RunLock.release`.

    Args:
        run_dir: the run folder (created with its parents if missing).
        resume: the run in ``run_dir`` is to be continued; it must hold a checkpoint.
        overwrite: a run already in ``run_dir`` is to be replaced.
        interface: ``"cli"`` (``gnncomm train``) or ``"python"`` (:func:`gnncomm.train`): whose words a
            refusal uses (``--resume DIR``, ``--overwrite``; or ``resume=True``, ``overwrite=True``).

    Raises:
        RunFolderError: see :func:`check_run_dir`; or another live process holds the lock (the error
            names its pid and host), or the lock cannot be created.
    """
    path = check_run_dir(run_dir, resume=resume, overwrite=overwrite, interface=interface)
    flag = _folder_word(resume, interface)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"cannot create the run folder {flag} {str(path)!r}: {_reason(exc)}") from None
    # A run that never wrote a checkpoint (stopped during set-up or its first steps) cannot be resumed: it is
    # started again in place, its files removed once the lock shows that no live process still writes them.
    unfinished = (
        not resume
        and not overwrite
        and not (path / CHECKPOINT_NAME).exists()
        and [m for m in RUN_MARKERS if (path / m).exists()]
    )
    lock = RunLock(path, _acquire(path, flag))
    try:
        clean_stale_temporaries(path)
        if overwrite or unfinished:
            _remove_run_files(path)
    except OSError as exc:
        lock.release()
        raise RunFolderError(f"cannot prepare the run folder {str(path)!r}: {_reason(exc)}") from None
    return lock


def _acquire(path: Path, flag: str) -> LockInfo:
    lock_path = path / LOCK_NAME
    info = LockInfo(os.getpid(), socket.gethostname(), time.strftime("%Y-%m-%d %H:%M:%S"))
    for _ in range(3):  # a stale lock taken over by another process in between: look again
        if _create_lock(lock_path, info, flag):
            return info
        held = read_lock(path)
        if held is None:
            if not lock_path.exists():  # released in between
                continue
            raise RunFolderError(
                f"run folder {str(path)!r} has an unreadable lock file {str(lock_path)!r}; if no "
                "run is using the folder, delete that file"
            )
        if held.host == info.host and not _pid_alive(held.pid):
            _break_stale_lock(lock_path, held)
            continue
        where = "" if held.host == info.host else f" on host {held.host!r}"
        raise RunFolderError(
            f"run folder {str(path)!r} is in use by process {held.pid}{where} (since "
            f"{held.started}); wait for it to finish, or delete {str(lock_path)!r} if that "
            "process is gone"
        )
    raise RunFolderError(f"run folder {str(path)!r}: could not take the lock {str(lock_path)!r}; try again")


def _create_lock(lock_path: Path, info: LockInfo, flag: str) -> bool:
    """Creates the lock file with its full content in one step; ``False`` if a lock exists already."""
    text = json.dumps(info._asdict()) + "\n"
    tmp = lock_path.with_name(f"{LOCK_NAME}-{info.pid}-{secrets.token_hex(4)}")
    try:
        tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RunFolderError(f"{flag} {str(lock_path.parent)!r} is not writable: {_reason(exc)}") from None
    try:
        os.link(tmp, lock_path)  # atomic, never replaces an existing lock, and never shows a half-written one
        return True
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: exclusive create, then write
        try:
            fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _break_stale_lock(lock_path: Path, stale: LockInfo) -> None:
    """Removes ``lock_path`` if it still is the ``stale`` lock, without ever removing a fresh one."""
    aside = lock_path.with_name(f"{LOCK_NAME}-stale-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        os.rename(lock_path, aside)  # only one of several processes breaking the same lock succeeds
    except FileNotFoundError:
        return
    if _read_lock_file(aside) != stale:  # another process took the lock in between: give it back
        with contextlib.suppress(OSError):
            os.link(aside, lock_path)
    aside.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (``True`` when that cannot be told)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: the process exists but belongs to another user
        return True
    return True


def _remove_run_files(path: Path) -> None:
    for name in RUN_OUTPUTS:
        target = path / name
        if target.is_file() or target.is_symlink():
            target.unlink()
    for pattern in RUN_OUTPUT_GLOBS:
        for target in path.glob(pattern):
            if target.is_file() or target.is_symlink():
                target.unlink()
    for name in RUN_OUTPUT_DIRS:
        target = path / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return " ".join(str(exc).split())
