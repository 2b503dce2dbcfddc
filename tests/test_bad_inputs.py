"""The battery of bad inputs: each gives a one-line error that names the parameter, never a traceback.

CLI cases run ``gnncomm.cli.main`` and expect a non-zero exit, exactly one stderr line starting with
``error:``, and nothing written where nothing should be. API cases expect the documented exception type
with a one-line message. A bad input never reaches training (the trainer is replaced by a tripwire).
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import networkx as nx
import pytest
import torch

import gnncomm
from gnncomm import PRESETS, Config, MessageAttention, cli
from gnncomm.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint
from gnncomm.cli import main
from gnncomm.config import IgnoredNeighborsWarning
from gnncomm.runfolder import RunFolderError, claim_run_dir
from gnncomm.topology import DisconnectedGraphWarning, SelfLoopWarning, from_networkx, knn

NO_CUDA = not torch.cuda.is_available()
MARKER = "pwned"


# ---------------------------------------------------------------------- fixtures on disk
def fake_checkpoint(folder: Path, step: int = 20) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "model": {},
        "optimizer": {},
        "scaler": {},
        "step": step,
        "generator": torch.Generator().get_state(),
        "config": Config(**dict(PRESETS["tiny"], steps=step)).to_dict(),
        "history": [],
    }
    torch.save(state, folder / CHECKPOINT_NAME)
    return folder


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def evil_checkpoint(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"model": _RunsCode(folder.parent / MARKER), "step": 1}, folder / CHECKPOINT_NAME)
    return folder


def corrupt_checkpoint(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CHECKPOINT_NAME).write_bytes(b"PK\x03\x04 not really a zip")
    return folder


def write(path: Path, text: str | bytes) -> str:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def a_file(tmp: Path) -> str:
    return write(tmp / "file", "x")


# ---------------------------------------------------------------------- the CLI battery
# (name the error must contain, argv builder given the test's folder)
CLI_CASES = [
    # learning from reward (algorithm=ppo)
    ("algorithm", lambda d: ["train", "algorithm=reinforce"]),
    ("ppo_messages", lambda d: ["train", "algorithm=ppo", "ppo_messages=gumbel"]),
    ("critic_input", lambda d: ["train", "algorithm=ppo", "critic_input=state"]),
    ("message_noise", lambda d: ["train", "algorithm=ppo", "message_noise=-0.1"]),
    ("message_noise", lambda d: ["train", "message_noise=0"]),
    ("gamma", lambda d: ["train", "algorithm=ppo", "gamma=1.01"]),
    ("gae_lambda", lambda d: ["train", "algorithm=ppo", "gae_lambda=nan"]),
    ("clip_coef", lambda d: ["train", "algorithm=ppo", "clip_coef=0"]),
    ("ppo_epochs", lambda d: ["train", "algorithm=ppo", "ppo_epochs=0"]),
    ("minibatches", lambda d: ["train", "algorithm=ppo", "batch_size=8", "minibatches=9"]),
    ("entropy_coef", lambda d: ["train", "algorithm=ppo", "entropy_coef=-0.01"]),
    ("action_std", lambda d: ["train", "algorithm=ppo", "action_std=0"]),
    ("selection_every", lambda d: ["train", "algorithm=ppo", "selection_every=5", "shared_params=false"]),
    # config fields given as overrides
    ("num_agents", lambda d: ["train", "num_agents=1"]),
    ("num_agents", lambda d: ["train", "num_agents=6", "num_agents=8"]),
    ("num_agents", lambda d: ["train", "num_agents=6.5"]),
    ("lr", lambda d: ["train", "lr=nan"]),
    ("lr", lambda d: ["train", "lr=inf"]),
    ("lr", lambda d: ["train", "lr=1e999"]),
    ("temperature_start", lambda d: ["train", "temperature_start=-1"]),
    ("temperature_end", lambda d: ["train", "temperature_end=nan"]),
    ("max_grad_norm", lambda d: ["train", "max_grad_norm=0"]),
    ("weight_decay", lambda d: ["train", "weight_decay=nan"]),
    ("obs_noise", lambda d: ["train", "obs_noise=inf"]),
    ("arena_size", lambda d: ["train", "arena_size=-inf"]),
    ("mutation_std", lambda d: ["train", "mutation_std=nan"]),
    ("comm_weight", lambda d: ["train", "comm_weight=-0.5"]),
    ("cluster_weight", lambda d: ["train", "cluster_weight=inf"]),
    ("device", lambda d: ["train", "device=cuda:x"]),
    ("device", lambda d: ["train", "device=cuda:-1"]),
    ("device", lambda d: ["train", "device=tpu"]),
    ("topology", lambda d: ["train", "topology=hexagon"]),
    ("k_neighbors", lambda d: ["train", "topology=random_regular", "num_agents=5", "k_neighbors=3"]),
    ("k_neighbors", lambda d: ["train", "topology=small_world", "k_neighbors=1"]),
    ("k_neighbors", lambda d: ["train", "k_neighbors=50"]),
    ("custom_edges", lambda d: ["train", "topology=custom"]),
    ("custom_edges", lambda d: ["train", "topology=custom", "custom_edges=[[],[]]"]),
    ("custom_edges", lambda d: ["train", "custom_edges=[[0,1],[1"]),
    ("custom_edges", lambda d: ["train", "custom_edges=[[0,1],[1,0.5]]"]),
    ("custom_edges", lambda d: ["train", "topology=custom", "custom_edges=[[0,1],[1,1]]"]),
    ("custom_edges", lambda d: ["train", "topology=custom", "custom_edges=[[0,1],[1,99]]"]),
    ("custom_edges", lambda d: ["train", "custom_edges={a: 1}"]),
    (
        "topology_schedule",
        lambda d: ["train", "num_agents=5", "k_neighbors=2", "topology_schedule=[[0, random_regular, 3]]"],
    ),
    ("topology_schedule", lambda d: ["train", "topology_schedule=[[0, hexagon, 2]]"]),
    ("topology_schedule", lambda d: ["train", "topology_schedule=[[5, ring, 2], [3, knn, 4]]"]),
    ("topology_schedule", lambda d: ["train", "topology_schedule=[[0, custom, 2]]"]),
    ("shared_params", lambda d: ["train", "shared_params=maybe"]),
    ("encoder_memory", lambda d: ["train", "encoder_memory=maybe"]),
    ("steps", lambda d: ["train", "steps=ten"]),
    ("seed", lambda d: ["train", "seed=-1"]),
    ("heads", lambda d: ["train", "heads=5"]),
    ("amp", lambda d: ["train", "amp=fp8"]),
    ("compile", lambda d: ["train", "compile=maybe"]),
    ("world", lambda d: ["train", "world= "]),
    ("selection_every", lambda d: ["train", "selection_every=10"]),
    ("world", lambda d: ["train", "world=mars"]),
    ("agents", lambda d: ["train", "agents=3"]),
    ("num_agents", lambda d: ["train", "num_agents"]),
    # config files
    ("config file", lambda d: ["train", "--config", str(d / "missing.yaml")]),
    ("config file", lambda d: ["train", "--config", write(d / "c.yaml", "num_agents: [1, 2\n")]),
    ("config file", lambda d: ["train", "--config", write(d / "c.toml", "num_agents = \n")]),
    ("config file", lambda d: ["train", "--config", write(d / "c.json", '{"num_agents": 6,}')]),
    ("config file", lambda d: ["train", "--config", write(d / "c.toml", "num_agents = 6\nnum_agents = 8\n")]),
    ("num_agents", lambda d: ["train", "--config", write(d / "c.yaml", "num_agents: 6\nnum_agents: 8\n")]),
    ("num_agents", lambda d: ["train", "--config", write(d / "c.json", '{"num_agents": 6, "num_agents": 8}')]),
    ("lr", lambda d: ["train", "--config", write(d / "c.json", '{"lr": NaN}')]),
    ("config file", lambda d: ["train", "--config", write(d / "c.yaml", "- 1\n- 2\n")]),
    ("config file", lambda d: ["train", "--config", write(d / "c.ini", "num_agents=4")]),
    ("config file", lambda d: ["train", "--config", write(d / "c.yaml", b"\xff\xfe\x00")]),
    ("config file", lambda d: ["train", "--config", str(d)]),
    ("agents", lambda d: ["train", "--config", write(d / "c.yaml", "agents: 4\n")]),
    ("config file", lambda d: ["train", "--config", write(d / "c.yaml", "!!python/object/apply:os.system [true]\n")]),
    ("--preset", lambda d: ["train", "--preset", "huge"]),
    # run folders
    ("--out", lambda d: ["train", "--out", a_file(d)]),
    ("--out", lambda d: ["train", "--out", str(Path(a_file(d)) / "run")]),
    ("--overwrite", lambda d: ["train", "--out", str(fake_checkpoint(d / "run"))]),
    ("--out", lambda d: ["train", "--resume", str(fake_checkpoint(d / "run")), "--out", str(d / "other")]),
    ("--resume", lambda d: ["train", "--resume", str(d / "nope")]),
    ("--resume", lambda d: ["train", "--resume", str(d)]),
    ("--overwrite", lambda d: ["train", "--resume", str(fake_checkpoint(d / "run")), "--overwrite"]),
    ("--preset", lambda d: ["train", "--resume", str(fake_checkpoint(d / "run")), "--preset", "tiny"]),
    ("--config", lambda d: ["train", "--resume", str(fake_checkpoint(d / "run")), "--config", "c.yaml"]),
    ("steps", lambda d: ["train", "--resume", str(fake_checkpoint(d / "run", step=20)), "steps=5"]),
    ("num_agents", lambda d: ["train", "--resume", str(fake_checkpoint(d / "run")), "num_agents=1"]),
    ("checkpoint", lambda d: ["train", "--resume", str(evil_checkpoint(d / "run"))]),
    ("checkpoint", lambda d: ["train", "--resume", str(corrupt_checkpoint(d / "run"))]),
    ("--out", lambda d: ["train", "--out", ""]),
    ("--out", lambda d: ["train", "--out", "  "]),
    ("--resume", lambda d: ["train", "--resume", ""]),
    ("steps", lambda d: ["train", "--resume", str(fake_checkpoint(d / "run"))]),  # finished: nothing to train
    ("temperature_start", lambda d: ["train", "temperature_start=0.5", "temperature_end=1"]),
    # bench
    ("--agents", lambda d: ["bench", "--agents", "0"]),
    ("--agents", lambda d: ["bench", "--agents", "-5"]),
    ("--agents", lambda d: ["bench", "--agents", "ten"]),
    ("--batch-size", lambda d: ["bench", "--batch-size", "0"]),
    ("--k", lambda d: ["bench", "--k", "100", "--agents", "10"]),
    ("--k", lambda d: ["bench", "--k", "0"]),
    ("--topology", lambda d: ["bench", "--topology", "hexagon"]),
    ("--topology", lambda d: ["bench", "--topology", "custom"]),
    ("--k", lambda d: ["bench", "--topology", "random_regular", "--agents", "5", "--k", "3"]),
    ("--k", lambda d: ["bench", "--topology", "small_world", "--agents", "10", "--k", "1"]),
    ("--steps", lambda d: ["bench", "--steps", "0"]),
    ("--warmup", lambda d: ["bench", "--warmup", "0"]),
    ("--timesteps", lambda d: ["bench", "--timesteps", "0"]),
    ("--device", lambda d: ["bench", "--device", "cuda:x"]),
    ("--amp", lambda d: ["bench", "--amp", "fp16"]),
    ("--amp", lambda d: ["bench", "--amp", "fp8"]),
    # evaluate
    ("--episodes", lambda d: ["evaluate", str(d), "--episodes", "1"]),
    ("--device", lambda d: ["evaluate", str(d), "--device", "cuda:-1"]),
    ("nope", lambda d: ["evaluate", str(d / "nope")]),
    ("run_dir", lambda d: ["evaluate", str(d)]),  # a folder without a checkpoint
    ("run_dir", lambda d: ["animate", str(d / "nope")]),
    ("file", lambda d: ["evaluate", a_file(d)]),
    ("checkpoint", lambda d: ["evaluate", str(corrupt_checkpoint(d / "run"))]),
    ("checkpoint", lambda d: ["evaluate", str(evil_checkpoint(d / "run"))]),
    # animate
    ("--out", lambda d: ["animate", str(d), "--out", ""]),
    ("--out", lambda d: ["animate", str(d), "--out", str(d / "episode.png")]),
    ("--out", lambda d: ["animate", str(d), "--out", str(d / "missing" / "episode.gif")]),
    ("--out", lambda d: ["animate", str(d), "--out", "/nonexistent_gnncomm_dir/x.gif"]),
    ("--out", lambda d: ["animate", str(d), "--out", str(d)]),
    # the command line itself
    ("train", lambda d: []),
    ("{train,evaluate,animate,bench}", lambda d: []),
    ("fly", lambda d: ["fly"]),
    ("--bogus", lambda d: ["train", "--bogus"]),
]
CUDA_CASES = [
    ("device", lambda d: ["train", "device=cuda"]),
    ("device", lambda d: ["train", "--out", str(fake_checkpoint(d / "run")), "--overwrite", "device=cuda:1"]),
    ("amp", lambda d: ["train", "amp=fp16"]),
    ("amp", lambda d: ["train", "--resume", str(fake_checkpoint(d / "run")), "amp=fp16"]),
    ("--device", lambda d: ["bench", "--device", "cuda"]),
    ("--device", lambda d: ["evaluate", str(fake_checkpoint(d / "run")), "--device", "cuda"]),
    ("--device", lambda d: ["evaluate", str(d), "--device", "cuda:0"]),
]


@pytest.fixture
def tripwire(monkeypatch):
    """Replaces training and benchmarking: a bad input must be refused before either starts."""
    reached = []
    monkeypatch.setattr(cli, "train", lambda *a, **k: reached.append("train"))
    monkeypatch.setattr(cli, "run_bench", lambda *a, **k: reached.append("bench"))
    return reached


def _check_cli(name, make_argv, tmp_path, monkeypatch, capsys, tripwire):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # the default --out (runs/default) would land here
    argv = make_argv(tmp_path)
    before = _snapshot(tmp_path)
    capsys.readouterr()
    rc = main(argv)
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert rc != 0, (argv, out)
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err
    assert name in lines[0], (name, lines[0])
    assert not tripwire
    assert list(work.iterdir()) == []  # nothing written where nothing should be
    assert not (tmp_path / MARKER).exists()  # no checkpoint ran code
    assert _snapshot(tmp_path) == before  # nothing written, removed or changed; no lock left behind


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize("name, make_argv", CLI_CASES, ids=[f"cli{i:02d}-{c[0]}" for i, c in enumerate(CLI_CASES)])
def test_a_bad_command_line_is_one_error_line(name, make_argv, tmp_path, monkeypatch, capsys, tripwire):
    _check_cli(name, make_argv, tmp_path, monkeypatch, capsys, tripwire)


@pytest.mark.skipif(not NO_CUDA, reason="needs a machine without CUDA")
@pytest.mark.parametrize("name, make_argv", CUDA_CASES, ids=[f"cuda{i}" for i in range(len(CUDA_CASES))])
def test_asking_for_cuda_without_cuda_is_one_error_line(name, make_argv, tmp_path, monkeypatch, capsys, tripwire):
    _check_cli(name, make_argv, tmp_path, monkeypatch, capsys, tripwire)


# ---------------------------------------------------------------------- the API battery
def _config(**kwargs):
    return lambda d: Config(**kwargs)


def _overrides(*items):
    return lambda d: Config().with_overrides(list(items))


def _graph(graph):
    return lambda d: Config().with_graph(graph() if callable(graph) else graph)


def _claim(make_dir, **flags):
    return lambda d: claim_run_dir(make_dir(d), **{"resume": False, "overwrite": False, **flags})


def _locked(d: Path) -> Path:
    d.mkdir(exist_ok=True)
    claim_run_dir(d, resume=False, overwrite=False)  # held by this very process: a second writer
    return d


def _pickled(obj) -> Callable:
    def make(d: Path) -> Path:
        d.mkdir(exist_ok=True)
        (d / CHECKPOINT_NAME).write_bytes(pickle.dumps(obj, protocol=2))
        return d

    return make


def _saved(obj) -> Callable:
    def make(d: Path) -> Path:
        d.mkdir(exist_ok=True)
        torch.save(obj, d / CHECKPOINT_NAME)
        return d

    return make


def _attention(x=torch.float32, message=torch.float32, weights=torch.float32):
    layer = MessageAttention(4, 8, 5, 2, heads=2).to(weights)
    one_hot = torch.nn.functional.one_hot(torch.tensor([[0, 1], [2, 3], [4, 0]]), 5)
    return layer(torch.zeros(3, 4, dtype=x), one_hot.to(message), torch.tensor([[0, 1], [1, 2]]))


API_CASES = [
    # Config fields
    ("num_agents", (ValueError,), _config(num_agents=0)),
    ("num_agents", (TypeError,), _config(num_agents="10")),
    ("num_agents", (TypeError,), _config(num_agents=True)),
    ("k_neighbors", (ValueError,), _config(k_neighbors=-1)),
    ("k_neighbors", (ValueError,), _config(topology="random_regular", num_agents=7, k_neighbors=3)),
    ("lr", (ValueError,), _config(lr=float("nan"))),
    ("lr", (ValueError,), _config(lr=-1e-3)),
    ("max_grad_norm", (ValueError,), _config(max_grad_norm=float("inf"))),
    ("obs_noise", (TypeError,), _config(obs_noise="0.1")),
    ("obs_noise", (ValueError,), _config(obs_noise=float("nan"))),
    ("arena_size", (ValueError,), _config(arena_size=float("inf"))),
    ("temperature_end", (ValueError,), _config(temperature_end=0.0)),
    ("recon_weight", (ValueError,), _config(recon_weight=float("-inf"))),
    ("world_weight", (ValueError,), _config(world_weight=float("nan"))),
    ("value_coef", (ValueError,), _config(algorithm="ppo", value_coef=-1.0)),
    ("minibatches", (ValueError,), _config(algorithm="ppo", batch_size=2, minibatches=0)),
    ("ppo_epochs", (TypeError,), _config(algorithm="ppo", ppo_epochs=2.5)),
    ("device", (ValueError,), _config(device="cuda:x")),
    ("device", (ValueError,), _config(device="cuda:-1")),
    ("device", (TypeError,), _config(device=0)),
    ("topology", (ValueError,), _config(topology="hexagon")),
    ("topology", (TypeError,), _config(topology=None)),
    ("custom_edges", (ValueError,), _config(topology="custom", custom_edges=[[], []])),
    ("custom_edges", (ValueError,), _config(custom_edges=[[0, 1]])),
    ("custom_edges", (ValueError,), _config(custom_edges=[1, 2])),
    ("custom_edges", (TypeError,), _config(custom_edges=[["a"], [1]])),
    ("custom_edges", (TypeError,), _config(custom_edges="0-1")),
    ("topology_schedule", (ValueError,), _config(topology_schedule=[[0, "ring"]])),
    ("topology_schedule", (ValueError,), _config(topology_schedule=[[True, "ring", 2]])),
    ("topology_schedule", (ValueError,), _config(topology_schedule=[[0, "small_world", 1]])),
    ("seed", (ValueError,), _config(seed=2**64)),
    ("view_size", (ValueError,), _config(view_size=5)),
    ("unknown", (TypeError,), _config(unknown=1)),
    # with_overrides and from_dict
    ("num_agents", (ValueError,), _overrides("num_agents=6", "num-agents=8")),
    ("lr", (ValueError,), _overrides("lr=nan")),
    ("custom_edges", (ValueError,), _overrides("custom_edges=[[0,1],[1")),
    ("steps", (ValueError,), _overrides("steps=1.5")),
    ("overrides", (TypeError,), lambda d: Config().with_overrides("num_agents=4")),
    ("override", (TypeError,), lambda d: Config().with_overrides([4])),
    ("config", (TypeError,), lambda d: Config.from_dict([("num_agents", 4)])),
    # with_graph
    ("custom_edges", (ValueError,), _graph(lambda: nx.empty_graph(5))),
    ("num_agents", (ValueError,), _graph(lambda: nx.empty_graph(1))),
    ("graph", (TypeError,), _graph("0-1 1-2")),
    ("graph", (TypeError,), _graph(lambda: torch.tensor([[0.0, 1.0], [1.0, 0.0]]))),
    ("graph", (ValueError,), _graph(lambda: torch.tensor([[0, 1, 2]]))),
    ("custom_edges", (ValueError,), _graph(lambda: torch.tensor([[0, 1], [1, 10]]))),
    ("custom_edges", (ValueError,), _graph(lambda: torch.tensor([[-1, 1], [1, 0]]))),
    # load_checkpoint
    ("no checkpoint", (CheckpointError,), lambda d: load_checkpoint(d)),
    ("no checkpoint", (CheckpointError,), lambda d: load_checkpoint(d / "missing.pt")),
    ("refused", (CheckpointError,), lambda d: load_checkpoint(evil_checkpoint(d / "run"))),
    ("refused", (CheckpointError,), lambda d: load_checkpoint(_pickled({"x": _RunsCode(d / MARKER)})(d / "run"))),
    ("corrupt", (CheckpointError,), lambda d: load_checkpoint(corrupt_checkpoint(d / "run"))),
    ("does not hold a training state", (CheckpointError,), lambda d: load_checkpoint(_saved([1, 2])(d / "run"))),
    ("lacks", (CheckpointError,), lambda d: load_checkpoint(_saved({"step": 1})(d / "run"))),
    ("map_location", (ValueError,), lambda d: load_checkpoint(fake_checkpoint(d / "run"), map_location="gpu")),
    # claim_run_dir
    ("--out", (RunFolderError,), _claim(a_file)),
    ("--out", (RunFolderError,), _claim(lambda d: Path(a_file(d)) / "run")),
    ("--overwrite", (RunFolderError,), _claim(lambda d: fake_checkpoint(d / "run"))),
    ("--resume", (RunFolderError,), _claim(lambda d: d, resume=True)),
    ("--resume", (RunFolderError,), _claim(lambda d: d / "nope", resume=True)),
    ("--overwrite", (RunFolderError,), _claim(lambda d: d, resume=True, overwrite=True)),
    (f"process {os.getpid()}", (RunFolderError,), _claim(_locked)),
    ("run_dir", (TypeError,), lambda d: claim_run_dir(3, resume=False, overwrite=False)),
    ("overwrite=True", (RunFolderError,), _claim(lambda d: fake_checkpoint(d / "run"), interface="python")),
    ("resume=True", (RunFolderError,), _claim(lambda d: d, resume=True, overwrite=True, interface="python")),
    ("interface", (ValueError,), _claim(lambda d: d, interface="web")),
    # temperature schedule
    ("temperature_start", (ValueError,), _config(temperature_start=1.0, temperature_end=1.5)),
    ("temperature_end", (ValueError,), _config(temperature_end=3.0)),
    # gnncomm.train from Python
    ("cfg", (TypeError,), lambda d: gnncomm.train("steps=3", d / "run")),
    ("cfg", (TypeError,), lambda d: gnncomm.train(None, d / "run")),
    ("steps", (ValueError,), lambda d: gnncomm.train({"steps": -1}, d / "run")),
    ("overwrite=True", (RunFolderError,), lambda d: gnncomm.train({"steps": 1}, fake_checkpoint(d / "run"))),
    ("resume=False", (RunFolderError,), lambda d: gnncomm.train({"steps": 1}, d, resume=True)),
    # MessageAttention
    ("x must have the dtype", (TypeError,), lambda d: _attention(x=torch.float64)),
    ("message must have the dtype", (TypeError,), lambda d: _attention(message=torch.float64)),
    ("message must have the dtype", (TypeError,), lambda d: _attention(message=torch.bfloat16)),
    ("x must have the dtype", (TypeError,), lambda d: _attention(x=torch.float32, weights=torch.float64)),
]
API_CASES += [
    # kNN positions
    ("pos must hold finite positions", (ValueError,), lambda d: knn(torch.tensor([[0.0, 0.0], [math.nan, 1.0]]), 1)),
    ("pos must hold finite positions", (ValueError,), lambda d: knn(torch.tensor([[0.0, math.inf], [1.0, 1.0]]), 1)),
    ("pos must hold finite positions", (ValueError,), lambda d: knn(torch.full((2, 5, 3), -math.inf), 2)),
]
if NO_CUDA:
    API_CASES.append(
        (
            "CUDA is not available",
            (CheckpointError,),
            lambda d: load_checkpoint(fake_checkpoint(d / "run"), map_location="cuda"),
        )
    )


@pytest.mark.parametrize("name, errors, call", API_CASES, ids=[f"api{i:02d}-{c[0]}" for i, c in enumerate(API_CASES)])
def test_a_bad_api_input_raises_a_one_line_error_naming_the_parameter(name, errors, call, tmp_path):
    with pytest.raises(errors) as info:
        call(tmp_path)
    message = str(info.value)
    assert "\n" not in message and name in message, message
    assert not (tmp_path / MARKER).exists()


# ---------------------------------------------------------------------- accepted, with one warning line
WARNING_CASES = [
    ("k_neighbors=3", IgnoredNeighborsWarning, lambda d: Config(topology="full", k_neighbors=3)),
    ("k_neighbors=2", IgnoredNeighborsWarning, lambda d: Config(topology="star", num_agents=6, k_neighbors=2)),
    ("dropped 1 self-loop", SelfLoopWarning, lambda d: from_networkx(nx.Graph([(0, 0), (0, 1)]))),
    (
        "dropped 2 self-loop",
        SelfLoopWarning,
        lambda d: Config().with_graph(nx.DiGraph([(0, 0), (0, 1), (1, 1), (1, 0)])),
    ),
    (
        "hear nobody: 'a'",
        DisconnectedGraphWarning,
        lambda d: from_networkx(nx.DiGraph([("a", "b"), ("b", "c"), ("c", "b")])),
    ),
    (
        "hear nobody: 0, 1",
        DisconnectedGraphWarning,
        lambda d: Config().with_graph(nx.DiGraph([(0, 2), (1, 2), (2, 3), (3, 2)])),
    ),
]


@pytest.mark.parametrize("name, category, call", WARNING_CASES, ids=[f"warn{i}" for i in range(len(WARNING_CASES))])
def test_an_unusual_input_is_accepted_with_one_warning_line_naming_what_is_ignored(name, category, call, tmp_path):
    with pytest.warns(category) as record:
        call(tmp_path)
    (warning,) = [w for w in record if issubclass(w.category, category)]
    message = str(warning.message)
    assert "\n" not in message and name in message, message


def test_the_battery_has_at_least_150_bad_inputs():
    assert len(CLI_CASES) + len(API_CASES) + len(CUDA_CASES) + len(WARNING_CASES) >= 150
