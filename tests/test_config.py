import dataclasses
import json
import math
import warnings

import networkx as nx
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnncomm import Config
from gnncomm.cli import main
from gnncomm.config import (
    PRESETS,
    DisconnectedGraphWarning,
    IgnoredNeighborsWarning,
    check_device,
    parse_overrides,
    read_config_file,
)
from gnncomm.topology import SelfLoopWarning, topology_names

FIELDS = [f.name for f in dataclasses.fields(Config)]
FLOAT_FIELDS = [f.name for f in dataclasses.fields(Config) if f.type == "float"]


def test_seed_defaults():
    cfg = Config()
    assert (cfg.num_agents, cfg.topology, cfg.k_neighbors, cfg.vocab_size, cfg.msg_dim, cfg.timesteps) == (
        10,
        "knn",
        4,
        64,
        5,
        5,
    )
    # lr moved from the seed's 1e-3 to 8e-3 after a 30-step warm-up, with the encoder-state world estimator:
    # benchmarks/learning.py
    assert (cfg.lr, cfg.warmup_steps, cfg.max_grad_norm, cfg.batch_size, cfg.heads) == (8e-3, 30, 1.0, 256, 4)
    assert (cfg.estimator_input, cfg.actions_learn_from) == ("encoder", "reward")
    assert Config(topology="knearest").topology == "knearest"


@pytest.mark.parametrize(
    "field, value, error, match",
    [
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
        ("seed", 2**63, ValueError, r"seed must be in \[0, 2\*\*63 - 1\]"),
        ("lr", 10**400, ValueError, "lr must be a finite number"),
        ("lr_decay", "linear", ValueError, r"lr_decay must be one of \['none', 'cosine'\]"),
        ("lr_final", 1.5, ValueError, r"lr_final must be in \[0, 1\], got 1.5"),
        ("warmup_steps", -1, ValueError, "warmup_steps must be >= 0"),
        ("compile_mode", "fast", ValueError, "compile_mode must be one of"),
        ("cpu_memory", "lean", ValueError, r"cpu_memory must be one of \['reuse', 'release', 'system'\]"),
    ],
)
def test_validation_names_the_field_and_range(field, value, error, match):
    with pytest.raises(error, match=match):
        Config(**{field: value})


@pytest.mark.parametrize("field", FLOAT_FIELDS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_every_float_field_refuses_nan_and_infinities(field, value):
    with pytest.raises(ValueError, match=f"^{field} must be a finite number, got"):
        Config(**{field: value})


def test_the_topology_names_come_from_the_registry():
    for name in topology_names():
        kwargs = {"custom_edges": [[0, 1], [1, 0]], "num_agents": 2, "k_neighbors": 1} if name == "custom" else {}
        assert Config(topology=name, **kwargs).topology == name
    assert Config(topology=" Small-World ").topology == "small_world"


def test_topology_is_checked_with_the_registry_for_random_regular_parity_and_small_world_degree():
    with pytest.raises(ValueError, match="k_neighbors=3 with num_agents=5 is impossible"):
        Config(topology="random_regular", num_agents=5, k_neighbors=3)
    with pytest.raises(ValueError, match=r"k_neighbors must be in \[2, num_agents - 1 = 9\] for topology 'small_"):
        Config(topology="small_world", k_neighbors=1)
    with pytest.raises(ValueError, match=r"topology_schedule entry 1 \[7, 'random_regular', 3\]: k_neighbors=3"):
        Config(num_agents=5, k_neighbors=2, topology_schedule=[[0, "ring", 2], [7, "random_regular", 3]])
    assert Config(num_agents=6, topology="random_regular", k_neighbors=3).topology == "random_regular"


@pytest.mark.parametrize(
    "device, expected",
    [("cpu", "cpu"), ("CUDA", "cuda"), ("cuda:0", "cuda:0"), ("cuda:07", "cuda:7"), (" auto ", "auto")],
)
def test_device_strings_that_parse(device, expected):
    assert Config(device=device).device == expected == check_device(device)


@pytest.mark.parametrize("device", ["cuda:x", "cuda:-1", "cuda:", "cuda:1.5", "gpu", "mps", "cuda:\u0663", ""])
def test_device_strings_that_do_not_parse(device):
    with pytest.raises(ValueError, match="device must be one of auto, cpu, cuda, cuda:N with N >= 0"):
        Config(device=device)


def test_selection_needs_per_agent_weights():
    with pytest.raises(ValueError, match="shared_params=false"):
        Config(selection_every=10)
    with pytest.raises(ValueError, match="selection_k must be in"):
        Config(selection_every=10, shared_params=False, selection_k=6)


def test_overrides_are_parsed_by_type():
    cfg = Config().with_overrides(
        [
            "num_agents=20",
            "shared_params=false",
            "lr=3e-4",
            "topology=ring",
            "topology_schedule=[[0, full, 3], [50, knn, 4]]",
            "compile=on",
        ]
    )
    assert (cfg.num_agents, cfg.shared_params, cfg.lr, cfg.topology, cfg.compile) == (20, False, 3e-4, "ring", "true")
    assert cfg.topology_at(10) == ("full", 3) and cfg.topology_at(50) == ("knn", 4)
    assert Config().with_overrides({"num-agents": "12", "lr": 0.5}).num_agents == 12
    with pytest.raises(ValueError, match="num_agents expects an int, got 'many'"):
        Config().with_overrides(["num_agents=many"])
    with pytest.raises(ValueError, match="unknown config field 'agents'"):
        Config().with_overrides(["agents=3"])
    with pytest.raises(ValueError, match="key=value"):
        Config().with_overrides(["num_agents"])
    with pytest.raises(TypeError, match="a list of 'key=value' strings or a dict"):
        Config().with_overrides("num_agents=4")


def test_a_field_given_twice_is_refused_not_last_one_wins():
    with pytest.raises(ValueError, match=r"num_agents is given twice \(num_agents=6 and num_agents=8\)"):
        Config().with_overrides(["num_agents=6", "num_agents=8"])
    with pytest.raises(ValueError, match="num_agents is given twice"):
        parse_overrides({"num_agents": 6, "num-agents": 8})


def test_a_malformed_list_override_is_a_one_line_value_error():
    with pytest.raises(ValueError, match="custom_edges is not valid YAML") as info:
        Config().with_overrides(["custom_edges=[[0,1],[1"])
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="custom_edges expects a list"):
        Config().with_overrides(["custom_edges=5"])


@pytest.mark.parametrize(
    "suffix, text",
    [
        (".toml", 'num_agents = 12\ntopology = "ring"\n'),
        (".yaml", "num_agents: 12\ntopology: ring\n"),
        (".json", '{"num_agents": 12, "topology": "ring"}'),
    ],
)
def test_load_from_files(tmp_path, suffix, text):
    path = tmp_path / f"cfg{suffix}"
    path.write_text(text)
    cfg = Config.load(path)
    assert cfg.num_agents == 12 and cfg.topology == "ring"
    cfg.save(tmp_path / "saved.json")
    assert Config.load(tmp_path / "saved.json") == cfg
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


@pytest.mark.parametrize(
    "suffix, text, match",
    [
        (".yaml", "num_agents: 6\nnum_agents: 8\n", "duplicate key 'num_agents' at line 2"),
        (".json", '{"num_agents": 6, "num_agents": 8}', "duplicate key 'num_agents'"),
        (".toml", "num_agents = 6\nnum_agents = 8\n", "not valid TOML"),
        (".yaml", "num_agents: [1, 2\n", "not valid YAML"),
        (".json", '{"num_agents": 6,}', "not valid JSON"),
        (".toml", "num_agents = \n", "not valid TOML"),
        (".yaml", "- 1\n- 2\n", "must hold a mapping"),
        (".yaml", "!!python/object/apply:os.system ['true']\n", "not valid YAML"),
    ],
)
def test_bad_files_are_one_line_value_errors_naming_the_file(tmp_path, suffix, text, match):
    path = tmp_path / f"cfg{suffix}"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        Config.load(path)
    assert "\n" not in str(info.value) and "cfg" in str(info.value)


def test_nan_in_a_json_file_is_refused_naming_the_field(tmp_path):
    (tmp_path / "c.json").write_text('{"lr": NaN}')
    with pytest.raises(ValueError, match="lr must be a finite number, got nan"):
        Config.load(tmp_path / "c.json")


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Config.load(tmp_path / "missing.toml")
    with pytest.raises(FileNotFoundError, match="is not a file"):
        read_config_file(tmp_path)
    (tmp_path / "c.ini").write_text("x")
    with pytest.raises(ValueError, match="must end in"):
        Config.load(tmp_path / "c.ini")
    (tmp_path / "c.yaml").write_text("num_agents: 0\n")
    with pytest.raises(ValueError, match="num_agents must be >= 2"):
        Config.load(tmp_path / "c.yaml")
    (tmp_path / "b.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="not UTF-8"):
        Config.load(tmp_path / "b.yaml")
    (tmp_path / "k.yaml").write_text("1: 2\nnum_agents: 4\n")
    with pytest.raises(ValueError, match="unknown config field"):
        Config.load(tmp_path / "k.yaml")


def test_precedence_is_preset_then_file_then_overrides(tmp_path):
    """tiny sets batch_size=8 and num_agents=4; the file wins over the preset, the overrides over both."""
    path = tmp_path / "c.yaml"
    path.write_text("batch_size: 16\nhidden_dim: 32\n")
    cfg = Config.from_sources(preset="tiny", path=path, overrides=["batch_size=4"])
    assert (cfg.batch_size, cfg.hidden_dim, cfg.num_agents, cfg.steps) == (4, 32, 4, PRESETS["tiny"]["steps"])
    assert Config.from_sources(preset="tiny", path=path).batch_size == 16
    assert Config.from_sources(preset="tiny").batch_size == 8
    # validated once, after merging: an override may fix what the file alone would not allow
    path.write_text("num_agents: 4\n")
    assert Config.from_sources(path=path, overrides=["k_neighbors=2"]).k_neighbors == 2
    with pytest.raises(ValueError, match="preset must be one of"):
        Config.from_sources(preset="huge")


def test_temperature_anneals_from_start_to_end():
    cfg = Config(steps=100, anneal_steps=100, temperature_start=2.0, temperature_end=0.5)
    assert cfg.temperature(0) == 2.0 and abs(cfg.temperature(100) - 0.5) < 1e-12
    assert cfg.temperature(50) < cfg.temperature(10) and cfg.temperature(1000) == cfg.temperature(100)
    assert Config(steps=100, anneal_steps=0).temperature(100) == 0.5  # 0: over the run's steps
    assert Config(steps=100).temperature(100) > 0.5  # the default span (600 steps) does not follow steps
    assert cfg.temperature(30, span=60) == Config(anneal_steps=60).temperature(30)


def test_a_temperature_that_would_anneal_upwards_is_refused_naming_both_fields():
    with pytest.raises(ValueError) as info:
        Config(temperature_start=1.0, temperature_end=1.5)
    assert str(info.value) == (
        "temperature_end must be in (0, temperature_start = 1.0] (the temperature anneals down), "
        "got temperature_end=1.5"
    )
    with pytest.raises(ValueError, match=r"temperature_start = 0.2\]"):
        Config().with_overrides(["temperature_start=0.2"])  # below the default end, 0.5
    assert Config(temperature_start=0.7, temperature_end=0.7).temperature(300) == 0.7  # a constant one is fine
    assert all(Config(**fields).temperature_end <= Config(**fields).temperature_start for fields in PRESETS.values())


def test_learning_rate_warms_up_then_decays_by_cosine_over_the_anneal_span():
    constant = Config(lr=1e-3, warmup_steps=0)
    assert [constant.learning_rate(s) for s in (0, 300, 10_000)] == [1e-3] * 3
    cfg = Config(lr=1e-3, lr_decay="cosine", lr_final=0.1, anneal_steps=104, warmup_steps=4)
    assert [cfg.learning_rate(s) for s in range(5)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3])
    assert cfg.learning_rate(54) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))  # half way down the cosine
    assert cfg.learning_rate(104) == cfg.learning_rate(5000) == pytest.approx(1e-4)  # then constant
    shorter = Config(lr=1e-3, lr_decay="cosine", lr_final=0.1, anneal_steps=60, warmup_steps=4)
    assert cfg.learning_rate(30, span=60) == shorter.learning_rate(30)  # an explicit span wins


def test_custom_graph_from_networkx():
    cfg = Config().with_graph(nx.path_graph(6))
    assert cfg.num_agents == 6 and cfg.topology == "custom" and len(cfg.custom_edges[0]) == 10
    with pytest.warns(DisconnectedGraphWarning, match="9 connected components"):  # an edge_index keeps num_agents
        assert Config().with_graph(torch.tensor([[0, 1], [1, 0]])).custom_edges == [[0, 1], [1, 0]]
    with pytest.raises(ValueError, match="needs custom_edges"):
        Config(topology="custom")
    with pytest.raises(ValueError, match="agent ids must be in"):
        Config(topology="custom", custom_edges=[[0, 1], [1, 12]])


def test_a_custom_graph_without_edges_is_refused():
    with pytest.raises(ValueError, match="custom_edges must hold at least one edge"):
        Config(topology="custom", custom_edges=[[], []])
    with pytest.raises(ValueError, match="custom_edges must hold at least one edge"):
        Config().with_graph(nx.empty_graph(5))


def test_a_dropped_networkx_self_loop_warns_with_how_many_were_dropped():
    graph = nx.Graph([(0, 1), (1, 2), (1, 1), (2, 2)])
    with pytest.warns(SelfLoopWarning, match=r"^graph: dropped 2 self-loop\(s\); an edge_index holds none") as record:
        cfg = Config().with_graph(graph)
    assert cfg.custom_edges == [[1, 0, 2, 1], [0, 1, 1, 2]]
    assert record[0].filename == __file__  # shown at the caller's line, not inside gnncomm


def test_a_listener_that_hears_nobody_in_a_directed_graph_warns_naming_it():
    graph = nx.DiGraph([("a", "b"), ("b", "c"), ("c", "b")])  # "a" talks, but nobody talks to "a"
    with pytest.warns(DisconnectedGraphWarning, match=r"^graph: 1 node\(s\) send but have no in-neighbour, .*: 'a'$"):
        assert Config().with_graph(graph).num_agents == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Config().with_graph(nx.DiGraph([(0, 1), (1, 2), (2, 0)]))  # everyone hears someone: no warning


@pytest.mark.parametrize("topology", ["full", "ring", "star", "grid", "erdos_renyi", "er", "custom"])
def test_k_neighbors_given_to_a_topology_that_ignores_it_warns_naming_the_field(topology):
    edges = [list(range(10)), [*range(1, 10), 0]] if topology == "custom" else []  # a connected cycle
    match = rf"^k_neighbors=3 is ignored by topology '{topology}': only knn, small_world and random_regular"
    with pytest.warns(IgnoredNeighborsWarning, match=match):
        Config(topology=topology, num_agents=10, k_neighbors=3, custom_edges=edges)


def test_k_neighbors_left_at_auto_or_at_its_auto_value_or_used_by_the_topology_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Config(topology="full")  # 0: auto
        Config(topology="full", k_neighbors=4)  # what auto gives at num_agents=10: a saved config re-validated
        Config(topology="ring", num_agents=3, k_neighbors=2)  # min(4, num_agents - 1)
        for topology in ("knn", "knearest", "small_world", "random_regular"):
            Config(topology=topology, k_neighbors=2)
        Config.from_sources(preset="tiny", overrides=["topology=ring"])  # the preset's k=2 was not the user's
        for name in PRESETS:
            Config.from_sources(preset=name)
    assert Config.from_sources(preset="tiny", overrides=["topology=ring"]).k_neighbors == 3  # auto
    with pytest.warns(IgnoredNeighborsWarning, match="k_neighbors=2 is ignored by topology 'ring'"):
        Config.from_sources(preset="tiny", overrides=["topology=ring", "k_neighbors=2"])  # the user's own k


def test_a_disconnected_custom_graph_is_accepted_with_a_warning_naming_the_components():
    graph = nx.Graph([(0, 1), (2, 3)])
    graph.add_node(4)
    with pytest.warns(DisconnectedGraphWarning, match="has 3 connected components"):
        cfg = Config().with_graph(graph)
    assert cfg.num_agents == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Config().with_graph(nx.cycle_graph(5))  # connected: no warning
        Config(custom_edges=[[0], [1]])  # not used by the topology: not checked for connectivity


def test_config_json_never_holds_nan_or_infinity(tmp_path):
    cfg = Config()
    cfg.lr = math.nan  # a dataclass field can be assigned after validation
    with pytest.raises(ValueError, match="lr must be a finite number"):
        cfg.save(tmp_path / "config.json")
    assert not (tmp_path / "config.json").exists()
    text = Config().to_json()
    assert "NaN" not in text and "Infinity" not in text and Config.from_dict(json.loads(text)) == Config()


def test_every_field_is_documented_and_gnncomm_train_fields_lists_them_with_their_defaults(capsys):
    from gnncomm.cli import main
    from gnncomm.config import field_docs

    fields = field_docs()
    assert [name for name, _, _ in fields] == [f.name for f in dataclasses.fields(Config)]
    assert not [name for name, _, doc in fields if len(doc) < 10]  # a field without its docstring fails here
    assert main(["train", "--fields"]) == 0
    out = capsys.readouterr().out
    assert "warmup_steps = 30\n" in out and "lr = 0.008\n" in out and 'topology = "knn"\n' in out
    assert out.count(" = ") >= len(fields)


def test_cli_reports_bad_config_without_traceback(capsys):
    assert main(["train", "--no-progress", "k_neighbors=50"]) == 2
    err = capsys.readouterr().err
    assert "k_neighbors must be in" in err and "Traceback" not in err


# ---------------------------------------------------------------------- property-based
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.integers(-3, 70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    st.sampled_from(
        [
            "ring",
            "knn",
            "custom",
            "random_regular",
            "small_world",
            "cuda:-1",
            "cuda:x",
            "cuda:0",
            "auto",
            "fp16",
            "bf16",
            "true",
            "off",
            "swarm",
            "",
        ]
    ),
)
_VALUES = st.one_of(
    _SCALARS,
    st.lists(st.integers(-2, 12), max_size=4),
    st.lists(st.lists(st.integers(-2, 12), max_size=4), max_size=3),
    st.lists(
        st.tuples(
            st.integers(-1, 60),
            st.sampled_from(["ring", "knn", "small_world", "random_regular", "custom", "bad", 3]),
            st.integers(-1, 12),
        ).map(list),
        max_size=3,
    ),
    st.lists(_SCALARS, max_size=3),
)
_KEYS = st.one_of(st.sampled_from(FIELDS), st.from_regex(r"[a-z_\-]{1,12}", fullmatch=True))
_STRINGS = {
    "topology": ["ring", "knn", "custom", "random_regular", "small_world", "er", "grid", "star", "hexagon"],
    "device": ["cpu", "cuda:x", "cuda:-1", "auto", "CPU", "tpu"],
    "amp": ["none", "bf16", "fp16", "fp8"],
    "compile": ["auto", "true", "off", "maybe"],
    "world": ["swarm", " Swarm ", ""],
}


def _typed(name: str) -> st.SearchStrategy:
    """Mostly values of the field's type (edge cases included), sometimes anything."""
    kind = {f.name: f.type for f in dataclasses.fields(Config)}[name]
    typed = {
        "int": st.one_of(st.integers(-3, 70), st.integers(-(10**20), 10**20)),
        "float": st.one_of(st.floats(-1, 5), st.floats(allow_nan=True, allow_infinity=True)),
        "bool": st.booleans(),
        "str": st.one_of(st.sampled_from(_STRINGS.get(name, ["x"])), st.text(max_size=8)),
        "list": st.one_of(
            st.lists(st.lists(st.integers(-2, 12), max_size=4), max_size=3),
            st.lists(
                st.tuples(st.integers(-1, 60), st.sampled_from(_STRINGS["topology"]), st.integers(-1, 12)).map(list),
                max_size=3,
            ),
        ),
        "dict": st.one_of(
            st.dictionaries(st.text(max_size=6), _SCALARS, max_size=3),
            st.dictionaries(st.integers(-2, 3), _SCALARS, max_size=2),
        ),
    }[kind]
    return st.integers(0, 9).flatmap(lambda i: _VALUES if i == 0 else typed)


_TEXTS = st.one_of(
    st.text(max_size=16),
    st.integers(-3, 70).map(str),
    st.floats().map(str),
    st.sampled_from(
        [
            "nan",
            "inf",
            "-1",
            "0",
            "1e400",
            "[[0,1],[1",
            "[[0,1],[1,0]]",
            "cuda:x",
            "true",
            "random_regular",
            "custom",
            "[[0, custom, 2]]",
            "[[0, ring, 2], [5, knn, 3]]",
        ]
    ),
)
_CONFIG_KWARGS = st.lists(st.sampled_from(FIELDS), unique=True, max_size=4).flatmap(
    lambda names: st.fixed_dictionaries({name: _typed(name) for name in names})
)


def _assert_clean(exc: BaseException, names: list[str]) -> None:
    message = str(exc)
    assert "\n" not in message, message
    assert any(name in message for name in names), (names, message)


@settings(max_examples=500, deadline=None)
@given(_CONFIG_KWARGS)
def test_fuzzed_config_fields_load_or_raise_a_one_line_error_naming_a_field(kwargs):
    with warnings.catch_warnings():
        for noise in (DisconnectedGraphWarning, IgnoredNeighborsWarning, SelfLoopWarning):
            warnings.simplefilter("ignore", noise)
        try:
            cfg = Config(**kwargs)
        except (ValueError, TypeError) as exc:
            _assert_clean(exc, list(kwargs))
            return
        assert Config.from_dict(json.loads(cfg.to_json())) == cfg  # a valid config survives config.json (reloading
        # it warns again of what it ignores, as loading did)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_KEYS, _TEXTS), min_size=1, max_size=3))
def test_fuzzed_overrides_load_or_raise_a_one_line_error_naming_the_key(pairs):
    overrides = [f"{key}={text}" for key, text in pairs]
    with warnings.catch_warnings():
        for noise in (DisconnectedGraphWarning, IgnoredNeighborsWarning, SelfLoopWarning):
            warnings.simplefilter("ignore", noise)
        try:
            cfg = Config().with_overrides(overrides)
        except (ValueError, TypeError) as exc:
            _assert_clean(exc, [key.strip().replace("-", "_") for key, _ in pairs])
            return
    cfg.validate()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(FIELDS),
            st.one_of(
                st.text(max_size=12),
                st.sampled_from(
                    [
                        "nan",
                        "inf",
                        "-1",
                        "0",
                        "1e400",
                        "[[0,1],[1",
                        "[[0,1],[1,0]]",
                        "cuda:x",
                        "random_regular",
                        "[[0, custom, 2]]",
                        "true",
                    ]
                ),
            ),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_fuzzed_cli_overrides_exit_0_or_print_one_error_line(pairs):
    """The CLI path, up to (not into) training: a valid config reaches the (stubbed) trainer."""
    import contextlib
    import io
    import tempfile
    from unittest import mock

    from gnncomm import cli

    reached = []
    stderr = io.StringIO()
    with (
        tempfile.TemporaryDirectory() as out,
        warnings.catch_warnings(),
        contextlib.redirect_stderr(stderr),
        mock.patch.object(cli, "_run_train", lambda cfg, run_dir, **kw: reached.append(cfg) or _Done()),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        for noise in (DisconnectedGraphWarning, IgnoredNeighborsWarning, SelfLoopWarning):
            warnings.simplefilter("ignore", noise)
        rc = main(["train", "--out", out, "--no-progress", *[f"{key}={text}" for key, text in pairs]])
    if rc == 0:
        assert reached and stderr.getvalue() == ""
        return
    lines = stderr.getvalue().splitlines()
    assert rc == 2 and not reached and len(lines) == 1 and lines[0].startswith("error: "), stderr.getvalue()
    assert any(key in lines[0] for key, _ in pairs), lines


class _Done:
    status, step, ablation = "finished", 0, None


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 12), st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=12))
def test_fuzzed_graphs_load_or_raise_a_one_line_error(num_nodes, edges):
    graph = nx.Graph()
    graph.add_nodes_from(range(num_nodes))
    graph.add_edges_from(edges)
    with warnings.catch_warnings():
        for noise in (DisconnectedGraphWarning, IgnoredNeighborsWarning, SelfLoopWarning):
            warnings.simplefilter("ignore", noise)
        try:
            cfg = Config().with_graph(graph)
        except (ValueError, TypeError) as exc:
            _assert_clean(exc, ["num_agents", "custom_edges", "k_neighbors"])
            return
    assert cfg.num_agents == graph.number_of_nodes() and cfg.custom_edges[0]
