import csv
import json
import math

import pytest
import torch

import gnncomm.train as train_mod
from gnncomm import Config
from gnncomm.checkpoint import CheckpointError, load_checkpoint
from gnncomm.cli import main
from gnncomm.config import PRESETS

TINY = dict(PRESETS["tiny"], eval_episodes=8)


def tiny(**overrides) -> Config:
    return Config(**{**TINY, **overrides})


def read_metrics(run_dir):
    with open(run_dir / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: float(v) for k, v in row.items() if k != "steps_per_s"} for row in rows]


def test_tiny_run_writes_every_output(tmp_path):
    result = train_mod.train(tiny(), tmp_path, progress=False)
    assert result.status == "finished" and result.step == 20
    for name in ("metrics.csv", "config.json", "checkpoint.pt", "topology.png", "training_progress.png",
                 "ablation.json", "agent_0.pth", "agent_3.pth"):
        assert (tmp_path / name).is_file(), name
    assert not (tmp_path / "agent_4.pth").exists()
    assert Config.load(tmp_path / "config.json") == tiny()
    ablation = json.loads((tmp_path / "ablation.json").read_text())
    for key in ("world_mse", "world_mse_silent", "world_mse_shuffled", "vocab_usage"):
        assert math.isfinite(ablation[key])
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == [5, 10, 15, 20]
    agent = torch.load(tmp_path / "agent_2.pth")
    assert agent["agent"] == 2 and agent["shared_params"] is True
    assert agent["state_dict"]["encoder.agent_embedding"].shape == (8,)


def test_per_agent_files_hold_each_agents_own_weights(tmp_path):
    train_mod.train(tiny(shared_params=False, steps=2, log_every=1), tmp_path, progress=False, evaluate=False)
    a0, a1 = (torch.load(tmp_path / f"agent_{i}.pth")["state_dict"] for i in (0, 1))
    key = "encoder.cell.gates.weight"
    assert a0[key].dim() == 2 and not torch.equal(a0[key], a1[key])
    assert torch.equal(a0["attention.lin_query.weight"], a1["attention.lin_query.weight"])


def test_loss_decreases_on_a_fixed_seed(tmp_path):
    cfg = tiny(steps=60, log_every=10, batch_size=16, lr=3e-3)
    train_mod.train(cfg, tmp_path, progress=False, evaluate=False)
    rows = read_metrics(tmp_path)
    assert rows[-1]["loss"] < 0.93 * rows[0]["loss"]
    assert rows[-1]["world"] < rows[0]["world"]


def test_resume_matches_an_uninterrupted_run(tmp_path):
    cfg = tiny(steps=12, anneal_steps=12, log_every=3, checkpoint_every=100)
    train_mod.train(cfg, tmp_path / "full", progress=False, evaluate=False)
    first = tiny(steps=6, anneal_steps=12, log_every=3, checkpoint_every=100)
    train_mod.train(first, tmp_path / "split", progress=False, evaluate=False)
    train_mod.train(cfg, tmp_path / "split", resume=True, progress=False, evaluate=False)
    assert read_metrics(tmp_path / "full") == read_metrics(tmp_path / "split")
    a = load_checkpoint(tmp_path / "full")["model"]
    b = load_checkpoint(tmp_path / "split")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_resume_continues_the_saved_run(tmp_path, capsys):
    assert main(["train", "--preset", "tiny", "--out", str(tmp_path), "--no-progress", "steps=4", "log_every=2",
                 "anneal_steps=8", "eval_episodes=4"]) == 0
    assert main(["train", "--resume", str(tmp_path), "--no-progress", "steps=8"]) == 0
    assert [r["step"] for r in read_metrics(tmp_path)] == [2, 4, 6, 8]
    assert "real / silenced" in capsys.readouterr().out


def test_same_seed_gives_identical_metrics(tmp_path):
    for name in ("a", "b"):
        train_mod.train(tiny(steps=6, log_every=3), tmp_path / name, progress=False, evaluate=False)
    assert read_metrics(tmp_path / "a") == read_metrics(tmp_path / "b")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_corrupt_or_truncated_checkpoint_gives_a_clear_error(tmp_path, content):
    train_mod.train(tiny(steps=2, log_every=1), tmp_path, progress=False, evaluate=False)
    path = tmp_path / "checkpoint.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if content is None else content)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        train_mod.train(tiny(steps=4), tmp_path, resume=True, progress=False)


def test_missing_checkpoint_and_mismatched_config(tmp_path, capsys):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path)
    train_mod.train(tiny(steps=2, log_every=1), tmp_path, progress=False, evaluate=False)
    with pytest.raises(CheckpointError, match="vocab_size"):
        train_mod.train(tiny(steps=4, vocab_size=16), tmp_path, resume=True, progress=False)
    assert main(["train", "--resume", str(tmp_path / "nope"), "--no-progress"]) != 0
    assert "no checkpoint" in capsys.readouterr().err


def test_injected_nan_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = tiny(steps=20, log_every=5, checkpoint_every=5)
    real_rollout = train_mod.rollout
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        loss, logs, trace = real_rollout(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 8:  # step 8: after the step-5 checkpoint
            loss = loss * float("nan")
            logs["loss"] = loss.detach()
        return loss, logs, trace

    monkeypatch.setattr(train_mod, "rollout", poisoned)
    with pytest.raises(train_mod.NonFiniteLossError, match="non-finite loss"):
        train_mod.train(cfg, tmp_path, progress=False)
    state = load_checkpoint(tmp_path)
    assert state["step"] == 5
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_interrupt_saves_a_checkpoint(tmp_path, monkeypatch):
    trainer = train_mod.Trainer(tiny(steps=20), tmp_path)
    original = trainer.train_step

    def step_then_interrupt(*args):
        logs = original(*args)
        if trainer.step == 6:  # counted before increment: interrupt after the 7th step
            trainer._on_interrupt(2, None)
        return logs

    monkeypatch.setattr(trainer, "train_step", step_then_interrupt)
    result = trainer.train(progress=False)
    assert result.status == "interrupted" and result.step == 7
    assert load_checkpoint(tmp_path)["step"] == 7


def test_compile_path_runs_on_cpu(tmp_path):
    cfg = tiny(steps=2, log_every=1, compile="true", timesteps=1, batch_size=4)
    result = train_mod.train(cfg, tmp_path, progress=False, evaluate=False)
    assert result.step == 2 and all(math.isfinite(r["loss"]) for r in result.history)


def test_static_and_curriculum_topologies_train(tmp_path):
    cfg = tiny(steps=4, log_every=2, topology="ring", topology_schedule=[[0, "full", 2], [2, "knn", 2]])
    trainer = train_mod.Trainer(cfg, tmp_path)
    seen = []
    original = trainer.train_step

    def record(*args):
        seen.append(trainer.loss_module.topology)
        return original(*args)

    trainer.train_step = record
    trainer.train(progress=False)
    assert seen == [("full", 2), ("full", 2), ("knn", 2), ("knn", 2)]


def test_training_on_a_custom_networkx_graph(tmp_path):
    import networkx as nx

    from gnncomm.topology import from_networkx
    graph = nx.connected_watts_strogatz_graph(12, 4, 0.2, seed=1)
    cfg = tiny(steps=2, log_every=1, eval_episodes=4).with_graph(graph)
    trainer = train_mod.Trainer(cfg, tmp_path)
    trainer.train(progress=False)
    used = trainer.loss_module.graph_fn(None)  # static: the batched copies of the graph
    single = from_networkx(graph)
    assert used.size(1) == cfg.batch_size * single.size(1)
    assert set(map(tuple, used[:, used[1] < 12].T.tolist())) == set(map(tuple, single.T.tolist()))
    result = train_mod.train(cfg, tmp_path / "full_run", progress=False)
    assert result.ablation is not None and (tmp_path / "full_run" / "topology.png").is_file()
