import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

import gnncomm
from gnncomm import PRESETS, Config
from gnncomm.checkpoint import (
    CHECKPOINT_NAME,
    REQUIRED_KEYS,
    CheckpointError,
    atomic_save,
    atomic_write_text,
    clean_stale_temporaries,
    load_checkpoint,
)

requires_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


def fake_state(step: int = 3, **config) -> dict:
    """A minimal well-formed training state (no model), as the trainer writes it."""
    return {
        "model": {"w": torch.zeros(2)},
        "optimizer": {"state": {}, "param_groups": []},
        "scaler": {},
        "step": step,
        "generator": torch.Generator().get_state(),
        "torch_rng": torch.get_rng_state(),
        "config": Config(**dict(PRESETS["tiny"], **config)).to_dict(),
        "history": [{"step": 1, "loss": 0.5}],
    }


class RunsCode:
    """Unpickling this object calls ``fn(*args)``: what a malicious checkpoint does."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def test_a_real_training_checkpoint_loads_with_weights_only(tmp_path):
    cfg = Config(**dict(PRESETS["tiny"], steps=2, log_every=1, shared_params=False, selection_every=1, selection_k=1))
    gnncomm.train(cfg, tmp_path, progress=False, evaluate=False)
    state = load_checkpoint(tmp_path)
    assert set(REQUIRED_KEYS) <= set(state) and state["step"] == 2
    assert Config.from_dict(state["config"]) == cfg and state["selection_log"]


@pytest.mark.parametrize("how", ["torch.save", "pickle protocol 2"])
@pytest.mark.parametrize("payload", ["os.system", "open"])
def test_a_malicious_checkpoint_is_refused_and_runs_no_code(tmp_path, how, payload):
    marker = tmp_path / "pwned"
    evil = RunsCode(os.system, f"touch {marker}") if payload == "os.system" else RunsCode(open, str(marker), "w")
    state = dict(fake_state(), model=evil)
    path = tmp_path / CHECKPOINT_NAME
    if how == "torch.save":
        torch.save(state, path)
    else:
        path.write_bytes(pickle.dumps(state, protocol=2))
    with pytest.raises(CheckpointError, match="was refused: it holds .*could run code") as info:
        load_checkpoint(tmp_path)
    assert not marker.exists()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_corrupt_or_truncated_checkpoints_are_one_line_errors(tmp_path, content):
    path = tmp_path / CHECKPOINT_NAME
    torch.save(fake_state(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if content is None else content)
    with pytest.raises(CheckpointError, match="corrupt or truncated") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda s: [1, 2], "does not hold a training state"),
        (lambda s: {k: v for k, v in s.items() if k != "history"}, r"lacks \['history'\]"),
        (lambda s: dict(s, step=-1), "step=-1"),
        (lambda s: dict(s, step=True), "step=True"),
        (lambda s: dict(s, config="num_agents=4"), "'config'"),
        (lambda s: dict(s, history=None), "'history'"),
    ],
)
def test_a_checkpoint_of_the_wrong_shape_is_refused(tmp_path, change, match):
    torch.save(change(fake_state()), tmp_path / CHECKPOINT_NAME)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(tmp_path)


def test_a_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at .*checkpoint.pt"):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


def _as_cuda_checkpoint(src: Path, dst: Path) -> None:
    """Rewrites a CPU checkpoint so that its tensors say they live on cuda:0, as a GPU run writes them."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("data.pkl"):
                assert b"X\x03\x00\x00\x00cpu" in data
                data = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
            zout.writestr(info.filename, data)


@requires_no_cuda
def test_a_cuda_checkpoint_loads_onto_the_cpu_and_says_why_it_cannot_stay_on_cuda(tmp_path):
    torch.save(fake_state(), tmp_path / "cpu.pt")
    _as_cuda_checkpoint(tmp_path / "cpu.pt", tmp_path / CHECKPOINT_NAME)
    state = load_checkpoint(tmp_path)  # map_location="cpu" by default
    assert state["model"]["w"].device.type == "cpu"
    with pytest.raises(CheckpointError, match="holds CUDA tensors but CUDA is not available"):
        load_checkpoint(tmp_path, map_location=None)
    with pytest.raises(CheckpointError, match="onto 'cuda': CUDA is not available on this machine"):
        load_checkpoint(tmp_path, map_location="cuda")


def test_a_bad_map_location_is_a_value_error(tmp_path):
    torch.save(fake_state(), tmp_path / CHECKPOINT_NAME)
    with pytest.raises(ValueError, match="map_location must be a device"):
        load_checkpoint(tmp_path, map_location="cuda:x")


def test_atomic_writes_replace_the_file_and_leave_no_temporary(tmp_path):
    atomic_write_text(tmp_path / "config.json", "{}\n")
    atomic_write_text(tmp_path / "config.json", '{"a": 1}\n')
    atomic_save({"x": torch.ones(3)}, tmp_path / "state.pt")
    assert (tmp_path / "config.json").read_text() == '{"a": 1}\n'
    assert torch.equal(torch.load(tmp_path / "state.pt")["x"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "state.pt"]


def test_a_failed_atomic_save_keeps_the_old_file_and_no_temporary(tmp_path):
    atomic_save({"step": 1}, tmp_path / CHECKPOINT_NAME)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        atomic_save({"step": 2, "bad": lambda: None}, tmp_path / CHECKPOINT_NAME)  # a lambda cannot be pickled
    assert torch.load(tmp_path / CHECKPOINT_NAME) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_NAME]


def test_stale_temporaries_are_cleaned_and_nothing_else(tmp_path):
    stale = [".checkpoint.pt.ab12cd34.tmp", ".config.json.k_9x0zzq.tmp", ".checkpoint.pt.ab12cd_4"]
    kept = [".lock", "checkpoint.pt", ".hidden", "notes.tmp", ".config.json.short.tmp", ".lock-123-abcd"]
    for name in stale + kept:
        (tmp_path / name).write_text("x")
    (tmp_path / ".dir.ab12cd34.tmp").mkdir()  # not a file: left alone
    removed = clean_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + [".dir.ab12cd34.tmp"])
    assert clean_stale_temporaries(tmp_path / "missing") == []
