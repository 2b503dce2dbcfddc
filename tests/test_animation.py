"""gnncomm animate: a GIF of one held-out episode, one frame per step."""

import os
from pathlib import Path

import pytest
from PIL import Image

import gnncomm
from gnncomm.animation import animate, check_gif_path
from gnncomm.checkpoint import CheckpointError
from gnncomm.cli import main
from gnncomm.config import PRESETS


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    gnncomm.train(gnncomm.Config(**dict(PRESETS["tiny"], steps=4, eval_episodes=8)), run_dir, progress=False)
    return run_dir


def test_the_run_writes_an_episode_gif_with_one_frame_per_step(tiny_run):
    gif = tiny_run / "episode.gif"
    assert gif.stat().st_size > 0
    assert Image.open(gif).n_frames == PRESETS["tiny"]["timesteps"]


def test_animate_cli_writes_the_requested_episode(tiny_run, tmp_path, capsys):
    out = tmp_path / "ep3.gif"
    assert main(["animate", str(tiny_run), "--episode", "3", "--out", str(out)]) == 0
    assert Image.open(out).n_frames == PRESETS["tiny"]["timesteps"]
    assert f"wrote {out}" in capsys.readouterr().out


def test_animate_refuses_an_episode_outside_the_evaluation(tiny_run, tmp_path):
    with pytest.raises(ValueError, match=r"episode must be an int in \[0, 7\]"):
        animate(tiny_run, tmp_path / "x.gif", episode=8)


def test_animate_on_a_folder_without_a_checkpoint_is_one_clear_line(tmp_path, capsys):
    with pytest.raises(CheckpointError):
        animate(tmp_path)
    assert main(["animate", str(tmp_path)]) == 2  # a bad argument, as under train --resume
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: run_dir {str(tmp_path)!r}: no checkpoint (checkpoint.pt) there to animate"]


@pytest.mark.parametrize(
    "out, match",
    [
        ("episode.png", r"^out must be a \.gif file, got '.*episode\.png'$"),
        ("", r"^out must name a \.gif file, got ''$"),
        (
            "missing/episode.gif",
            r"^out must be in an existing folder, got '.*missing/episode\.gif' \('.*missing' is not",
        ),
        (".", r"^out must be a \.gif file, got '.*'$"),
    ],
)
def test_animate_refuses_an_out_that_is_no_gif_in_an_existing_folder_and_creates_nothing(
    tiny_run, tmp_path, out, match
):
    target = str(tmp_path / out) if out not in ("", ".") else out
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(ValueError, match=match):
        animate(tiny_run, target)
    assert main(["animate", str(tiny_run), "--out", target]) == 2
    assert sorted(tmp_path.rglob("*")) == before  # no GIF data in a .png, no folder made for it


def test_animate_cli_names_out_in_one_line_and_never_creates_a_folder_at_the_root(tiny_run, capsys):
    missing = "/nonexistent_gnncomm_dir"
    for out, words in (
        (f"{missing}/x.gif", f"argument --out: must be in an existing folder, got '{missing}/x.gif'"),
        ("x.png", "argument --out: must be a .gif file, got 'x.png'"),
        ("  ", "argument --out: must name a .gif file"),
    ):
        capsys.readouterr()
        assert main(["animate", str(tiny_run), "--out", out]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {words}"), err
    assert not os.path.exists(missing) and not os.path.exists("x.png")
    assert check_gif_path("a.GIF") == Path("a.GIF")  # the suffix in any case
