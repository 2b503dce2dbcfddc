import argparse
import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from gnncomm import PRESETS, Config, cli
from gnncomm.checkpoint import CHECKPOINT_NAME
from gnncomm.cli import build_parser, main
from gnncomm.runfolder import LOCK_NAME, read_lock
from gnncomm.trainer import TrainResult


def fake_checkpoint(folder, step=20, **config):
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "model": {},
        "optimizer": {},
        "scaler": {},
        "step": step,
        "generator": torch.Generator().get_state(),
        "config": Config(**dict(PRESETS["tiny"], steps=step, **config)).to_dict(),
        "history": [],
    }
    torch.save(state, folder / CHECKPOINT_NAME)
    return folder


class FakeTrain:
    """Stands in for gnncomm.run.train with the signature the CLI asks for; records each call."""

    def __init__(self, status="finished"):
        self.calls, self.status = [], status

    def __call__(self, cfg, run_dir, *, resume=False, state=None, lock=None, progress=True):
        self.calls.append(
            {
                "cfg": cfg,
                "run_dir": run_dir,
                "resume": resume,
                "state": state,
                "lock": lock,
                "lock_file": read_lock(run_dir),
            }
        )
        return TrainResult(run_dir, cfg.steps, self.status)


@pytest.fixture
def fake_train(monkeypatch):
    fake = FakeTrain()
    monkeypatch.setattr(cli, "train", fake)
    return fake


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def _subparsers(parser):
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_help_is_plain_text_and_every_flag_shows_its_default(capsys):
    parser = build_parser()
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text and "Agents on a graph" in text
    for name, sub in _subparsers(parser).items():
        assert "``" not in sub.format_help()
        formatter = sub._get_formatter()
        for action in sub._actions:
            if action.option_strings and not isinstance(action, argparse._HelpAction):
                assert "(default: " in formatter._get_help_string(action), (name, action.option_strings)


def test_train_help_documents_precedence_and_the_resume_rules():
    text = _subparsers(build_parser())["train"].format_help()
    assert "--preset < --config file < key=value overrides" in text
    assert "an --out other than DIR" in text and "--overwrite" in text


def test_precedence_preset_then_config_file_then_overrides(tmp_path, fake_train):
    path = tmp_path / "c.yaml"
    path.write_text("batch_size: 16\nhidden_dim: 32\n")
    base = ["train", "--preset", "tiny", "--config", str(path), "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "a"), "batch_size=4"]) == 0
    assert main([*base, "--out", str(tmp_path / "b")]) == 0
    first, second = (call["cfg"] for call in fake_train.calls)
    assert (first.batch_size, first.hidden_dim, first.num_agents) == (4, 32, PRESETS["tiny"]["num_agents"])
    assert second.batch_size == 16  # the file wins over the preset (it used to be the other way round)


def test_train_holds_the_lock_while_training_and_releases_it(tmp_path, fake_train):
    assert main(["train", "--out", str(tmp_path), "--no-progress", "steps=3"]) == 0
    (call,) = fake_train.calls
    assert call["lock"].held is False and call["lock_file"].pid == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()


def test_an_existing_run_is_refused_and_untouched_unless_overwrite(tmp_path, capsys, fake_train):
    fake_checkpoint(tmp_path)
    (tmp_path / "metrics.csv").write_text("old")
    (tmp_path / "agent_7.pth").write_text("old")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["train", "--out", str(tmp_path), "--no-progress"]) == 2
    line = one_error_line(capsys)
    assert "already holds a run" in line and "--resume" in line and "--overwrite" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == before and not fake_train.calls
    assert main(["train", "--out", str(tmp_path), "--overwrite", "--no-progress", "steps=3"]) == 0
    assert fake_train.calls[0]["cfg"].steps == 3 and sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_bad_config_touches_nothing_even_with_overwrite(tmp_path, capsys, fake_train):
    fake_checkpoint(tmp_path)
    assert main(["train", "--out", str(tmp_path), "--overwrite", "lr=nan"]) == 2
    assert "lr must be a finite number" in one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]


def test_resume_loads_the_checkpoint_once_and_passes_the_state_on(tmp_path, monkeypatch, fake_train):
    fake_checkpoint(tmp_path, step=20)
    loads = []
    real = cli.load_checkpoint
    monkeypatch.setattr(cli, "load_checkpoint", lambda *a, **k: loads.append(a) or real(*a, **k))
    assert main(["train", "--resume", str(tmp_path), "--no-progress", "steps=30"]) == 0
    (call,) = fake_train.calls
    assert len(loads) == 1 and call["resume"] and call["state"]["step"] == 20 and call["cfg"].steps == 30
    assert call["lock_file"].pid == os.getpid() and not (tmp_path / LOCK_NAME).exists()
    assert main(["train", "--resume", str(tmp_path), "--out", str(tmp_path), "--no-progress", "steps=40"]) == 0
    assert fake_train.calls[1]["cfg"].steps == 40  # --out naming the same folder is allowed


@pytest.mark.parametrize(
    "extra, match",
    [
        (["steps=5"], r"steps=5 is below the checkpoint's step 20 .*steps >= 20"),
        (["--out", "OTHER"], "--out OTHER names another one"),
        (["--overwrite"], "--resume and --overwrite exclude each other"),
        (["--preset", "tiny"], "--preset cannot be combined"),
        (["num_agents=6", "num_agents=8"], "num_agents is given twice"),
    ],
)
def test_resume_refusals(tmp_path, capsys, fake_train, extra, match):
    fake_checkpoint(tmp_path / "run", step=20)
    extra = [str(tmp_path / "other") if e == "OTHER" else e for e in extra]
    assert main(["train", "--resume", str(tmp_path / "run"), "--no-progress", *extra]) == 2
    assert pytest.approx(0) == len(fake_train.calls)
    line = one_error_line(capsys)
    assert __import__("re").search(match.replace("OTHER", ".*other"), line), line
    assert not (tmp_path / "run" / LOCK_NAME).exists() and not (tmp_path / "other").exists()


def test_resuming_a_finished_run_is_refused_with_how_to_train_further_or_evaluate_it(tmp_path, capsys, fake_train):
    run = fake_checkpoint(tmp_path / "run", step=20)  # saved with steps=20: finished
    before = sorted(p.name for p in run.iterdir())
    assert main(["train", "--resume", str(run), "--no-progress"]) == 2
    line = one_error_line(capsys)
    assert f"the run in {str(run)!r} is finished (step 20 of steps=20)" in line
    assert "steps= (steps > 20) to train further" in line and f"gnncomm evaluate {run} " in line
    assert main(["train", "--resume", str(run), "--no-progress", "steps=20"]) == 2  # the same number, given
    assert "is finished" in one_error_line(capsys)
    assert not fake_train.calls and sorted(p.name for p in run.iterdir()) == before  # nothing re-run or rewritten
    assert main(["train", "--resume", str(run), "--no-progress", "steps=21"]) == 0  # a larger steps= trains on
    assert fake_train.calls[0]["cfg"].steps == 21


@pytest.mark.parametrize("missing", ["nope", "empty", "file"])
def test_a_missing_run_folder_or_checkpoint_exits_2_under_every_command_with_the_same_wording(
    tmp_path, capsys, missing
):
    run = tmp_path / missing
    if missing == "empty":
        run.mkdir()
    elif missing == "file":
        run.write_text("not a run")
    lines = {}
    for command, flag, verb in [
        (["train", "--resume"], "--resume", "resume"),
        (["evaluate"], "run_dir", "evaluate"),
        (["animate"], "run_dir", "animate"),
    ]:
        assert main([*command, str(run)]) == cli.EXIT_STATUS["usage"] == 2, command
        line = one_error_line(capsys)
        assert line.startswith(f"error: {flag} {str(run)!r}"), line
        lines[verb] = line.replace(flag, "FLAG", 1).replace(verb, "VERB")
    if missing == "nope":
        assert lines["resume"] == f"error: FLAG {str(run)!r}: no such folder, so no checkpoint to VERB"
    if missing == "empty":
        assert all(f": no checkpoint ({CHECKPOINT_NAME}) there to VERB" in line for line in lines.values())
    if missing != "empty":  # the very same line, but for the flag and the verb
        assert lines["resume"] == lines["evaluate"] == lines["animate"], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if missing == "nope" else [missing])  # nothing made


def test_a_run_refused_for_this_machine_touches_nothing_even_with_overwrite(tmp_path, monkeypatch, capsys, fake_train):
    fake_checkpoint(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "--out", str(tmp_path), "--overwrite", "batch_size=7"]) == 2
    assert "batch_size=7 must be divisible by the number of processes WORLD_SIZE=2" in one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME] and not fake_train.calls


def test_other_torchrun_ranks_leave_the_folder_to_rank_0(tmp_path, monkeypatch, fake_train, capsys):
    # Checking the folder from rank 1 would race with rank 0's claim; when rank 0 fails, torchrun stops them all.
    monkeypatch.setenv("RANK", "1")
    assert main(["train", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert fake_train.calls[0]["lock"] is None and fake_train.calls[0]["lock_file"] is None
    fake_checkpoint(tmp_path / "done")
    monkeypatch.setenv("RANK", "0")
    assert main(["train", "--out", str(tmp_path / "done"), "--no-progress"]) == 2
    assert "already holds a run" in one_error_line(capsys)


def test_an_interrupted_run_exits_130_with_how_to_continue(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "train", FakeTrain(status="interrupted"))
    assert main(["train", "--out", str(tmp_path), "--no-progress"]) == 130
    assert f"gnncomm train --resume {tmp_path}" in capsys.readouterr().out


def test_an_unexpected_error_is_still_one_line_unless_asked_for_the_traceback(tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli, "train", broken)
    assert main(["train", "--out", str(tmp_path / "a"), "--no-progress"]) == 1
    assert "unexpected ZeroDivisionError: division by zero" in one_error_line(capsys)
    monkeypatch.setenv("GNNCOMM_TRACEBACK", "1")
    with pytest.raises(ZeroDivisionError):
        main(["train", "--out", str(tmp_path / "b"), "--no-progress"])


def test_an_io_error_while_training_is_one_line(tmp_path, monkeypatch, capsys):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "checkpoint.pt"))

    monkeypatch.setattr(cli, "train", disk_full)
    assert main(["train", "--out", str(tmp_path), "--no-progress"]) == 1
    assert "No space left on device" in one_error_line(capsys)


def test_warnings_are_one_line_too(tmp_path, capsys, fake_train):
    assert (
        main(
            [
                "train",
                "--out",
                str(tmp_path),
                "--no-progress",
                "topology=custom",
                "num_agents=4",
                "custom_edges=[[0, 2], [1, 3]]",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("warning: custom_edges: the graph on num_agents=4 agents has 2")


def test_train_resume_and_refusal_end_to_end(tmp_path, capsys):
    run = str(tmp_path / "run")
    common = ["--no-progress", "log_every=1", "eval_episodes=4", "anneal_steps=4"]
    assert main(["train", "--preset", "tiny", "--out", run, "steps=2", *common]) == 0
    assert main(["train", "--preset", "tiny", "--out", run, "steps=2", *common]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", "--resume", run, "--no-progress", "steps=4"]) == 0
    with open(tmp_path / "run" / "metrics.csv") as fh:
        assert [int(row["step"]) for row in csv.DictReader(fh)] == [1, 2, 3, 4]
    assert not (tmp_path / "run" / LOCK_NAME).exists()


def test_gnncomm_without_a_command_lists_every_command(capsys):
    commands = list(_subparsers(build_parser()))
    assert commands == ["train", "evaluate", "animate", "bench"]
    assert main([]) == 2
    assert "{train,evaluate,animate,bench}" in one_error_line(capsys)
    assert "{train,evaluate,animate,bench}" in build_parser().format_usage()


@pytest.mark.parametrize("flag, value", [("--out", ""), ("--out", "   "), ("--resume", ""), ("--resume", "\t")])
def test_an_empty_run_folder_is_refused_naming_the_flag(flag, value, tmp_path, monkeypatch, capsys, fake_train):
    monkeypatch.chdir(tmp_path)  # '' would otherwise be the current folder
    assert main(["train", flag, value, "--no-progress", "steps=3"]) == 2
    assert f"argument {flag}: must name a folder, got " in one_error_line(capsys)
    assert list(tmp_path.iterdir()) == [] and not fake_train.calls


def test_a_world_given_by_import_path_trains_evaluates_and_animates_from_the_command_line(tmp_path):
    root = Path(__file__).resolve().parent.parent
    run = tmp_path / "sensors"
    world = "world=examples.sensor_world:make_world"
    commands = [
        ["train", "--preset", "tiny", world, "cluster_weight=0", "steps=2", "eval_episodes=4", "--out", str(run)],
        ["evaluate", str(run), "--episodes", "4"],
        ["animate", str(run), "--out", str(tmp_path / "sensors.gif")],
    ]
    for args in commands:
        done = subprocess.run(
            [shutil.which("gnncomm") or "gnncomm", *args], cwd=root, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, (args, done.stderr[-2000:])
    saved = json.loads((run / "config.json").read_text())
    assert saved["world"] == "examples.sensor_world:make_world"
    assert (run / "report.md").is_file() and (tmp_path / "sensors.gif").stat().st_size > 0


def test_a_run_that_would_not_fit_in_memory_is_refused_before_the_folder_is_taken(tmp_path, capsys, fake_train):
    run = tmp_path / "big"
    assert main(["train", "--out", str(run), "num_agents=10000000", "steps=1"]) == 2
    line = one_error_line(capsys)
    assert "num_agents=10000000" in line and "needs about peak" in line and "available" in line
    assert "--skip-memory-check" in line and not run.exists()


def test_skip_memory_check_runs_what_the_estimate_would_refuse(tmp_path, capsys, monkeypatch, fake_train):
    import gnncomm.memory

    monkeypatch.setattr(gnncomm.memory, "available_memory", lambda device="cpu": 1024)  # 1 KiB: nothing fits
    args = ["train", "--preset", "tiny", "--no-progress", "steps=2"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    assert "needs about peak" in one_error_line(capsys) and not (tmp_path / "a").exists()
    assert main([*args, "--out", str(tmp_path / "b"), "--skip-memory-check"]) == 0


def test_a_run_stopped_by_ctrl_c_before_its_first_checkpoint_is_started_again_by_a_plain_rerun(
    tmp_path, monkeypatch, capsys
):
    from gnncomm import trainer

    def interrupted(self, progress=True):  # Ctrl-C after the run wrote its config, before any checkpoint
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.cfg.save(self.run_dir / "config.json")
        raise KeyboardInterrupt

    args = ["train", "--preset", "tiny", "--out", str(tmp_path), "--no-progress", "steps=2", "eval_episodes=4"]
    with monkeypatch.context() as patch:
        patch.setattr(trainer.Trainer, "train", interrupted)
        assert main(args) == 130
    assert (tmp_path / "config.json").is_file() and not (tmp_path / CHECKPOINT_NAME).exists()
    assert not (tmp_path / LOCK_NAME).exists()
    capsys.readouterr()
    assert main(args) == 0  # no --overwrite needed: nothing could have resumed it
    assert (tmp_path / CHECKPOINT_NAME).is_file()
