import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from gnncomm.runfolder import (
    LOCK_NAME,
    RUN_OUTPUTS,
    LockInfo,
    RunFolderError,
    _break_stale_lock,
    check_run_dir,
    claim_run_dir,
    read_lock,
)


def make_run(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names or ("checkpoint.pt", "config.json", "metrics.csv"):
        (folder / name).write_text("old")
    return folder


def write_lock(folder, pid, host=None):
    (folder / LOCK_NAME).write_text(
        json.dumps({"pid": pid, "host": host or socket.gethostname(), "started": "2025-01-01 00:00:00"})
    )


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_claim_creates_the_folder_and_a_lock_naming_this_process(tmp_path):
    run = tmp_path / "a" / "b"
    with claim_run_dir(run, resume=False, overwrite=False) as lock:
        info = read_lock(run)
        assert lock.held and info == lock.info and info.pid == os.getpid() and info.host == socket.gethostname()
    assert not lock.held and not (run / LOCK_NAME).exists() and run.is_dir()
    lock.release()  # again: a no-op


def test_two_claims_on_one_folder_the_second_is_refused_naming_the_pid(tmp_path):
    with (
        claim_run_dir(tmp_path, resume=False, overwrite=False),
        pytest.raises(RunFolderError, match=f"in use by process {os.getpid()} .*delete"),
    ):
        claim_run_dir(tmp_path, resume=False, overwrite=False)
    claim_run_dir(tmp_path, resume=False, overwrite=False).release()  # free again afterwards


def test_a_lock_left_by_a_dead_process_is_stale_and_taken_over(tmp_path):
    make_run(tmp_path, "checkpoint.pt")
    write_lock(tmp_path, dead_pid())
    with claim_run_dir(tmp_path, resume=True, overwrite=False) as lock:
        assert read_lock(tmp_path).pid == os.getpid() == lock.info.pid


def test_a_killed_writer_does_not_leave_the_folder_locked_forever(tmp_path):
    code = (
        "import sys, time; from gnncomm.runfolder import claim_run_dir; "
        "claim_run_dir(sys.argv[1], resume=False, overwrite=False); print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderError, match=f"in use by process {proc.pid}"):
            claim_run_dir(tmp_path, resume=False, overwrite=False)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert read_lock(tmp_path).pid == proc.pid  # the crash left the lock behind...
    claim_run_dir(tmp_path, resume=False, overwrite=False).release()  # ...and it is taken over


def test_a_lock_from_another_host_is_never_taken_over(tmp_path):
    write_lock(tmp_path, dead_pid(), host="elsewhere")
    with pytest.raises(RunFolderError, match="in use by process .* on host 'elsewhere'"):
        claim_run_dir(tmp_path, resume=False, overwrite=False)


def test_an_unreadable_lock_is_refused_with_what_to_do(tmp_path):
    (tmp_path / LOCK_NAME).write_text("garbage")
    with pytest.raises(RunFolderError, match="unreadable lock file .*delete that file"):
        claim_run_dir(tmp_path, resume=False, overwrite=False)


def test_breaking_a_stale_lock_never_removes_a_fresh_one(tmp_path):
    """Two processes saw the same stale lock; the first already replaced it with its own."""
    stale = LockInfo(dead_pid(), socket.gethostname(), "then")
    write_lock(tmp_path, os.getpid())  # the fresh lock of the process that won
    _break_stale_lock(tmp_path / LOCK_NAME, stale)
    assert read_lock(tmp_path).pid == os.getpid()
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME]


def test_a_folder_holding_a_run_is_refused_without_resume_or_overwrite(tmp_path):
    for markers in (("checkpoint.pt",), ("checkpoint.pt", "config.json", "metrics.csv")):
        run = make_run(tmp_path / str(len(markers)), *markers)
        listed = ", ".join(m for m in ("checkpoint.pt", "config.json", "metrics.csv") if m in markers)
        with pytest.raises(RunFolderError, match=f"already holds a run \\({listed}\\); .*--resume .*--overwrite"):
            claim_run_dir(run, resume=False, overwrite=False)
        assert all((run / m).read_text() == "old" for m in markers) and not (run / LOCK_NAME).exists()


def test_a_run_that_never_wrote_a_checkpoint_is_started_again_in_place_without_overwrite(tmp_path):
    run = make_run(tmp_path / "run", "config.json", "metrics.csv", "events.jsonl")
    (run / "notes.txt").write_text("mine")
    with claim_run_dir(run, resume=False, overwrite=False):
        assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME, "notes.txt"]  # its partial files are gone
    write_lock(run, os.getpid())  # a live writer that has not checkpointed yet keeps its folder
    (run / "config.json").write_text("live")
    with pytest.raises(RunFolderError, match="lock"):
        claim_run_dir(run, resume=False, overwrite=False)
    assert (run / "config.json").read_text() == "live"


def test_a_folder_with_unrelated_files_is_a_fresh_run(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    claim_run_dir(tmp_path, resume=False, overwrite=False).release()
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_overwrite_removes_the_old_run_once_the_lock_is_held_and_keeps_other_files(tmp_path):
    run = make_run(tmp_path, *RUN_OUTPUTS, "agent_0.pth", "agent_11.pth", "notes.txt", ".config.json.abcd1234.tmp")
    (run / "tb").mkdir()
    (run / "tb" / "events").write_text("x")
    write_lock(run, os.getpid())  # held by a live writer: nothing may be removed
    with pytest.raises(RunFolderError, match="in use"):
        claim_run_dir(run, resume=False, overwrite=True)
    assert all((run / name).exists() for name in RUN_OUTPUTS) and (run / "tb").is_dir()
    (run / LOCK_NAME).unlink()
    with claim_run_dir(run, resume=False, overwrite=True):
        assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME, "notes.txt"]


def test_the_outputs_removed_by_overwrite_cover_what_the_report_writes():
    from gnncomm.report import FIGURES, REPORT_JSON, REPORT_MD

    assert {REPORT_JSON, REPORT_MD, *FIGURES.values()} <= set(RUN_OUTPUTS)


def test_resume_needs_a_checkpoint(tmp_path):
    make_run(tmp_path, "config.json", "metrics.csv")
    with pytest.raises(RunFolderError, match=r"--resume .*no checkpoint \(checkpoint.pt\) there to resume"):
        claim_run_dir(tmp_path, resume=True, overwrite=False)
    with pytest.raises(RunFolderError, match="--resume .*no such folder, so no checkpoint"):
        claim_run_dir(tmp_path / "missing", resume=True, overwrite=False)
    assert not (tmp_path / "missing").exists()


def test_resume_and_overwrite_exclude_each_other(tmp_path):
    with pytest.raises(RunFolderError, match="--resume and --overwrite exclude each other"):
        claim_run_dir(tmp_path, resume=True, overwrite=True)


def test_an_out_that_is_a_file_or_lies_under_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="--out .*file' is a file, not a folder"):
        claim_run_dir(tmp_path / "file", resume=False, overwrite=False)
    with pytest.raises(RunFolderError, match="--out .* lies under the file .*file', not a folder"):
        claim_run_dir(tmp_path / "file" / "run" / "deeper", resume=False, overwrite=False)
    with pytest.raises(RunFolderError, match="--out must name a folder"):
        claim_run_dir("", resume=False, overwrite=False)
    with pytest.raises(RunFolderError, match="not a usable path"):
        check_run_dir(str(tmp_path / "nul\0byte"), resume=False, overwrite=False)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_a_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(RunFolderError, match="is not writable"):
            claim_run_dir(folder, resume=False, overwrite=False)
        with pytest.raises(RunFolderError, match="cannot be created"):
            claim_run_dir(folder / "run", resume=False, overwrite=False)
    finally:
        folder.chmod(0o700)


def test_stale_temporaries_are_cleaned_when_the_folder_is_claimed(tmp_path):
    make_run(tmp_path, "checkpoint.pt", ".checkpoint.pt.x1y2z3w4.tmp")
    with claim_run_dir(tmp_path, resume=True, overwrite=False):
        assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME, "checkpoint.pt"]


def test_release_leaves_a_lock_that_is_no_longer_its_own(tmp_path):
    lock = claim_run_dir(tmp_path, resume=False, overwrite=False)
    write_lock(tmp_path, 1, host="someone-else")  # e.g. deleted by hand, then taken by another writer
    lock.release()
    assert read_lock(tmp_path).host == "someone-else"


def test_a_lock_is_released_when_the_block_raises(tmp_path):
    with pytest.raises(KeyError), claim_run_dir(tmp_path, resume=False, overwrite=False):
        raise KeyError("boom")
    assert not (tmp_path / LOCK_NAME).exists()


def test_python_callers_are_told_the_keyword_arguments_and_the_command_line_keeps_its_flags(tmp_path):
    run = make_run(tmp_path / "run")
    refusals = [  # (claim, what a Python caller reads, what the command line reads)
        (dict(run_dir=run), r"continue it with resume=True, or replace it with overwrite=True$", "--resume"),
        (dict(run_dir=run, resume=True, overwrite=True), "^resume=True and overwrite=True exclude", "--overwrite"),
        (
            dict(run_dir=make_run(tmp_path / "old", "metrics.csv"), resume=True),
            "start a new run with resume=False$",
            "--out",
        ),
        (dict(run_dir=tmp_path / "missing", resume=True), "^run_dir .*missing': no such folder", "--resume"),
        (dict(run_dir=""), "^run_dir must name a folder, got ''$", "--out"),
    ]
    for claim, python_words, flag in refusals:
        claim = {"resume": False, "overwrite": False, **claim}
        with pytest.raises(RunFolderError, match=python_words) as info:
            claim_run_dir(**claim, interface="python")
        assert "--" not in str(info.value).replace(str(tmp_path), "")
        with pytest.raises(RunFolderError, match=flag):
            claim_run_dir(**claim)  # the default is the command line's wording
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "config.json", "metrics.csv"]
    with pytest.raises(ValueError, match=r"^interface must be one of \['cli', 'python'\], got 'gui'$"):
        claim_run_dir(run, resume=False, overwrite=False, interface="gui")
