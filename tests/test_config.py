import networkx as nx
import pytest

from gnncomm import Config
from gnncomm.cli import main


def test_seed_defaults():
    cfg = Config()
    assert (cfg.num_agents, cfg.topology, cfg.k_neighbors, cfg.vocab_size, cfg.msg_dim, cfg.timesteps) == \
        (10, "knn", 4, 64, 5, 5)
    assert (cfg.lr, cfg.max_grad_norm, cfg.batch_size, cfg.heads) == (1e-3, 1.0, 256, 4)
    assert Config(topology="knearest").topology == "knearest"


@pytest.mark.parametrize("field, value, error, match", [
    ("num_agents", 1, ValueError, "num_agents must be >= 2, got 1"),
    ("num_agents", 2.5, TypeError, "num_agents must be an int"),
    ("k_neighbors", 10, ValueError, r"k_neighbors must be in \[1, num_agents - 1 = 9\], got 10"),
    ("vocab_size", 1, ValueError, "vocab_size must be >= 2"),
    ("heads", 5, ValueError, "heads must divide hidden_dim=64"),
    ("topology", "hexagon", ValueError, "topology must be one of"),
    ("amp", "fp8", ValueError, "amp must be one of"),
    ("lr", 0.0, ValueError, "lr must be > 0"),
    ("batch_size", -4, ValueError, "batch_size must be >= 1"),
    ("view_size", 9, ValueError, "view_size must be in"),
    ("shared_params", "yes", TypeError, "shared_params must be a bool"),
    ("device", "tpu", ValueError, "device must be one of"),
    ("topology_schedule", [[5, "ring", 2], [3, "knn", 4]], ValueError, "increasing"),
    ("topology_schedule", [[0, "ring", 20]], ValueError, "topology_schedule k must be in"),
])
def test_validation_names_the_field_and_range(field, value, error, match):
    with pytest.raises(error, match=match):
        Config(**{field: value})


def test_selection_needs_per_agent_weights():
    with pytest.raises(ValueError, match="shared_params=false"):
        Config(selection_every=10)
    with pytest.raises(ValueError, match="selection_k must be in"):
        Config(selection_every=10, shared_params=False, selection_k=6)


def test_overrides_are_parsed_by_type():
    cfg = Config().with_overrides(["num_agents=20", "shared_params=false", "lr=3e-4", "topology=ring",
                                   "topology_schedule=[[0, full, 3], [50, knn, 4]]"])
    assert (cfg.num_agents, cfg.shared_params, cfg.lr, cfg.topology) == (20, False, 3e-4, "ring")
    assert cfg.topology_at(10) == ("full", 3) and cfg.topology_at(50) == ("knn", 4)
    with pytest.raises(ValueError, match="num_agents expects a int"):
        Config().with_overrides(["num_agents=many"])
    with pytest.raises(ValueError, match="unknown config field 'agents'"):
        Config().with_overrides(["agents=3"])
    with pytest.raises(ValueError, match="key=value"):
        Config().with_overrides(["num_agents"])


@pytest.mark.parametrize("suffix, text", [
    (".toml", 'num_agents = 12\ntopology = "ring"\n'),
    (".yaml", "num_agents: 12\ntopology: ring\n"),
    (".json", '{"num_agents": 12, "topology": "ring"}'),
])
def test_load_from_files(tmp_path, suffix, text):
    path = tmp_path / f"cfg{suffix}"
    path.write_text(text)
    cfg = Config.load(path)
    assert cfg.num_agents == 12 and cfg.topology == "ring"
    cfg.save(tmp_path / "saved.json")
    assert Config.load(tmp_path / "saved.json") == cfg


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Config.load(tmp_path / "missing.toml")
    (tmp_path / "c.ini").write_text("x")
    with pytest.raises(ValueError, match="must end in"):
        Config.load(tmp_path / "c.ini")
    (tmp_path / "c.yaml").write_text("num_agents: 0\n")
    with pytest.raises(ValueError, match="num_agents must be >= 2"):
        Config.load(tmp_path / "c.yaml")


def test_temperature_anneals_from_start_to_end():
    cfg = Config(steps=100, temperature_start=2.0, temperature_end=0.5)
    assert cfg.temperature(0) == 2.0 and abs(cfg.temperature(100) - 0.5) < 1e-12
    assert cfg.temperature(50) < cfg.temperature(10) and cfg.temperature(1000) == cfg.temperature(100)


def test_custom_graph_from_networkx():
    cfg = Config().with_graph(nx.path_graph(6))
    assert cfg.num_agents == 6 and cfg.topology == "custom" and len(cfg.custom_edges[0]) == 10
    with pytest.raises(ValueError, match="needs custom_edges"):
        Config(topology="custom")
    with pytest.raises(ValueError, match="agent ids must be in"):
        Config(topology="custom", custom_edges=[[0, 1], [1, 12]])


def test_cli_reports_bad_config_without_traceback(capsys):
    assert main(["train", "--no-progress", "k_neighbors=50"]) == 2
    err = capsys.readouterr().err
    assert "k_neighbors must be in" in err and "Traceback" not in err
