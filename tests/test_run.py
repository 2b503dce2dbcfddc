"""gnncomm.train: a whole run (training, then the outputs and the end-of-run evaluation)."""

import csv
import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

import gnncomm
from gnncomm import Config
from gnncomm.config import PRESETS
from gnncomm.runfolder import RunFolderError

TINY = dict(PRESETS["tiny"], eval_episodes=8)
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def tiny(**overrides) -> Config:
    return Config(**{**TINY, **overrides})


def read_metrics(run_dir):
    with open(run_dir / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    return [
        {k: float(v) for k, v in row.items() if k not in ("steps_per_s", "train_time_s", "threads") and v != ""}
        for row in rows
    ]


def test_tiny_run_writes_every_output(tmp_path):
    result = gnncomm.train(tiny(), tmp_path, progress=False)
    assert result.status == "finished" and result.step == 20
    for name in (
        "metrics.csv",
        "config.json",
        "checkpoint.pt",
        "topology.png",
        "training_progress.png",
        "ablation.json",
        "agent_0.pth",
        "agent_3.pth",
    ):
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
    gnncomm.train(tiny(shared_params=False, steps=2, log_every=1), tmp_path, progress=False, evaluate=False)
    a0, a1 = (torch.load(tmp_path / f"agent_{i}.pth")["state_dict"] for i in (0, 1))
    key = "encoder.cell.gates.weight"
    assert a0[key].dim() == 2 and not torch.equal(a0[key], a1[key])
    assert torch.equal(a0["attention.lin_query.weight"], a1["attention.lin_query.weight"])


def test_training_on_a_custom_networkx_graph(tmp_path):
    import networkx as nx

    from gnncomm.topology import from_networkx

    graph = nx.connected_watts_strogatz_graph(12, 4, 0.2, seed=1)
    cfg = tiny(steps=2, log_every=1, eval_episodes=4).with_graph(graph)
    trainer = gnncomm.Trainer(cfg, tmp_path)
    trainer.train(progress=False)
    used = trainer.loss_module.graph_fn(None)  # static: the batched copies of the graph
    single = from_networkx(graph)
    assert used.size(1) == cfg.batch_size * single.size(1)
    assert set(map(tuple, used[:, used[1] < 12].T.tolist())) == set(map(tuple, single.T.tolist()))
    result = gnncomm.train(cfg, tmp_path / "full_run", progress=False)
    assert result.ablation is not None and (tmp_path / "full_run" / "topology.png").is_file()


def test_train_and_evaluate_can_be_called_twice_in_one_process(tmp_path):
    for name in ("a", "b"):
        result = gnncomm.train(tiny(steps=2, log_every=1), tmp_path / name, progress=False)
        assert result.status == "finished"
    first = gnncomm.evaluate(tmp_path / "a", episodes=4, num_permutations=4)
    second = gnncomm.evaluate(tmp_path / "b", episodes=4, num_permutations=4)
    assert first["world_mse"] == pytest.approx(second["world_mse"])  # same seed, same run
    assert callable(gnncomm.train) and callable(gnncomm.evaluate)


# Recorded at commit 6d468b0 (before the package was restructured) with the config below, on the CPU:
# the restructure must not change what a run computes. (lr=1e-3 without warm-up, estimator_input="context",
# anneal_steps=30, actions_learn_from="all" and no vocabulary terms were that commit's behaviour; the defaults have
# moved on since, for issues 9 and 13.)
SHORT_RUN = dict(
    lr=1e-3,
    warmup_steps=0,
    vocab_weight=0.0,
    vocab_align_weight=0.0,
    estimator_input="context",
    steps=30,
    anneal_steps=30,
    actions_learn_from="all",
    batch_size=32,
    eval_episodes=64,
    log_every=10,
    checkpoint_every=30,
    seed=0,
)
SHORT_RUN_ABLATION = {
    "world_mse": 0.8563511967658997,
    "world_mse_silent": 0.8586167097091675,
    "world_mse_shuffled": 0.8567574620246887,
    "recon_mse": 0.1628001630306244,
    "vocab_usage": 0.53125,
    "symbol_entropy_bits": 3.9479916095733643,
    "comm_cost": 0.9388749599456787,
}


def test_a_short_seed_default_run_reproduces_the_numbers_recorded_before_the_restructure(tmp_path):
    result = gnncomm.train(Config(**SHORT_RUN), tmp_path, progress=False)
    for key, value in SHORT_RUN_ABLATION.items():
        assert result.ablation[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key


class StillWorld:
    """A world with no dynamics: agents never move, each sees one factor of the latent, no reward."""

    def __init__(self, num_agents: int, latent_dim: int) -> None:
        self.num_agents, self.latent_dim = num_agents, latent_dim

    @property
    def obs_dim(self) -> int:
        return self.latent_dim

    def reset(self, batch_size, *, generator=None, device=None):
        latent = torch.randn(batch_size, self.latent_dim, generator=generator, device=device)
        pos = torch.rand(batch_size, self.num_agents, 2, generator=generator, device=device)
        return gnncomm.WorldState(pos, torch.zeros_like(pos), latent)

    def sample_noise(self, steps, batch_size, *, generator=None, device=None):
        return torch.zeros(steps, batch_size, device=device)

    def observe(self, state, noise=None):
        B, N, L = state.pos.size(0), self.num_agents, self.latent_dim
        mask = torch.nn.functional.one_hot(torch.arange(N) % L, L).to(state.latent)  # [N, L]
        return (state.latent[:, None, :] * mask).reshape(B * N, L)

    def step(self, state, action, edge_index):
        return state

    def reward(self, state):
        return state.latent.new_zeros(state.latent.size(0))


def test_a_world_with_no_dynamics_trains_and_gets_an_ablation(tmp_path):
    cfg = tiny(steps=30, batch_size=16, latent_dim=2, cluster_weight=0.0)
    result = gnncomm.train(cfg, tmp_path, world=StillWorld(cfg.num_agents, cfg.latent_dim), progress=False)
    rows = read_metrics(tmp_path)
    assert rows[-1]["world"] < rows[0]["world"]
    assert math.isfinite(result.ablation["world_mse"]) and rows[-1]["reward"] == 0.0


def test_a_world_that_disagrees_with_the_config_is_refused(tmp_path):
    with pytest.raises(ValueError, match="num_agents"):
        gnncomm.train(tiny(), tmp_path, world=StillWorld(5, 4), progress=False)
    with pytest.raises(TypeError, match="lacks"):
        gnncomm.train(tiny(), tmp_path, world=object(), progress=False)


def test_an_unregistered_world_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="registered worlds"):
        gnncomm.train(tiny(world="nowhere"), tmp_path, progress=False)


def test_the_user_world_example_trains_and_gets_the_evaluate_report(tmp_path):
    spec = importlib.util.spec_from_file_location("sensor_world", EXAMPLES / "sensor_world.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = module.main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "report.md").is_file() and math.isfinite(report["world_mse"])


def test_train_takes_a_mapping_of_fields_and_a_second_call_on_the_folder_speaks_python(tmp_path):
    fields = {**TINY, "steps": 2}
    result = gnncomm.train(fields, tmp_path, progress=False, evaluate=False)  # a mapping, as Config.from_dict takes
    assert result.status == "finished" and result.step == 2
    assert Config.from_dict(json.loads((tmp_path / "config.json").read_text())) == Config.from_dict(fields)
    with pytest.raises(RunFolderError) as info:  # the README's quickstart, run a second time
        gnncomm.train(fields, tmp_path, progress=False, evaluate=False)
    message = str(info.value)
    assert "\n" not in message and message.endswith("continue it with resume=True, or replace it with overwrite=True")
    assert "--resume" not in message and "--overwrite" not in message


def test_train_refuses_a_cfg_that_is_no_config_nor_mapping_before_touching_the_folder(tmp_path):
    for bad in ("steps=3", [("steps", 3)], None, 3):
        with pytest.raises(TypeError, match=r"^cfg must be a Config or a mapping of its fields, got \w+$"):
            gnncomm.train(bad, tmp_path / "run")
    with pytest.raises(ValueError, match="^steps must be >= 1, got 0$"):
        gnncomm.train({"steps": 0}, tmp_path / "run")
    with pytest.raises(ValueError, match="unknown config field.*'stepz'"):
        gnncomm.train({"stepz": 3}, tmp_path / "run")
    assert not (tmp_path / "run").exists()
