"""gnncomm.report: the report of a tiny trained run, its files, figures, definitions and formatting."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import matplotlib.figure
import numpy as np
import pytest
from test_evaluation import PlainWorld, rename_world, write_tiny_run  # the tiny-run helpers, shared with it

from gnncomm import evaluation, plots
from gnncomm import report as R
from gnncomm.checkpoint import CheckpointError
from gnncomm.config import PRESETS, Config
from gnncomm.rollout import evaluate_rollout

REQUIRED_NUMBERS = (
    "world_mse",
    "world_mse_silent",
    "world_mse_shuffled",
    "recon_mse",
    "reward",
    "vocab_usage",
    "symbol_entropy_bits",
    "temporal_mi_bits",
    "temporal_mi_null_bits",
    "temporal_p_value",
    "across_time_mi_bits",
    "across_time_mi_null_bits",
    "across_time_p_value",
    "topsim",
    "topsim_observation",
    "posdis",
    "bosdis",
)
CENTRALITY_KEYS = {
    "attention_received",
    "attention_paid",
    "pagerank",
    "betweenness",
    "attention_received_null",
    "hub_p_adjusted",
    "graph_betweenness",
    "attention_betweenness_null",
    "attention_relay_p_adjusted",
    "far_knockout_delta",
    "far_knockout_delta_se",
    "relay_p_adjusted",
    "knockout_delta",
    "knockout_delta_se",
}
SECTIONS = (
    "ATTENTION PATTERNS",
    "SYMBOL SPECIALIZATION",
    "TEMPORAL PATTERNS",
    "COMPOSITIONALITY",
    "ABLATIONS",
    "VOCABULARY OVER TRAINING",
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A tiny trained run (4 agents, 20 steps), written once for the module."""
    return write_tiny_run(tmp_path_factory.mktemp("tiny") / "run", Config.from_dict(PRESETS["tiny"]))


@pytest.fixture(scope="module")
def report(run_dir) -> dict:
    return R.evaluate(run_dir)


@pytest.fixture
def run_copy(run_dir, tmp_path) -> Path:
    """A private copy, for tests that rewrite the report files or the checkpoint."""
    return Path(shutil.copytree(run_dir, tmp_path / "run"))


def _nulls(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _nulls(v, f"{path}.{k}" if path else k)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _nulls(v, f"{path}[{i}]")
    elif obj is None:
        yield path


def _unexplained_nulls(report: dict) -> list[str]:
    def explained(path: str) -> bool:  # a reason may be given for the value or for a parent entry
        parts = path.split(".")
        return any(".".join(parts[:i]) in report["undefined"] for i in range(1, len(parts) + 1))

    return [p for p in _nulls({k: v for k, v in report.items() if k != "undefined"}) if not explained(p)]


# ---------------------------------------------------------------------------- evaluate on a trained run
def test_evaluate_writes_the_report_and_the_figures(run_dir, report):
    for name in (R.REPORT_JSON, R.REPORT_MD):
        assert (run_dir / name).stat().st_size > 0
    for name in R.FIGURES.values():
        assert (run_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert report["figures"] == R.FIGURES
    markdown = (run_dir / R.REPORT_MD).read_text()
    assert markdown.startswith("# gnncomm evaluation report")
    assert "| agent | role | attention_received |" in markdown
    assert "![attention_heatmap](attention_heatmap.png)" in markdown


def test_report_has_every_required_key_as_a_finite_number(report):
    for key in REQUIRED_NUMBERS:
        value = report[key]
        assert isinstance(value, float) and math.isfinite(value), (key, value)
    assert 0.0 < report["temporal_p_value"] <= 1.0 and 0.0 < report["across_time_p_value"] <= 1.0
    assert report["vocab_usage"] >= 1 / 8 and 0 <= report["symbol_entropy_bits"] <= 3.0
    assert all(isinstance(a, int) for a in report["hubs"] + report["relays"] + report["attention_relays"])
    assert sorted(report["centrality"], key=int) == ["0", "1", "2", "3"]
    for agent, values in report["centrality"].items():
        assert set(values) == CENTRALITY_KEYS, agent
        for key, value in values.items():
            assert isinstance(value, float) and math.isfinite(value), (agent, key)
    assert set(report["knockout_vs_centrality"]["spearman"]) == {"attention_received", "pagerank", "betweenness"}
    assert report["run"]["hub_shuffles"] >= 500 and report["run"]["attention_relay_shuffles"] >= 200
    assert report["run"]["relay_permutations"] >= 999
    assert 0.0 < report["run"]["relay_tolerance"] < 1e-3  # rounding: sqrt(float32 eps) times the errors' scale


def test_report_uses_one_set_of_centrality_names(run_dir, report):
    text = (run_dir / R.REPORT_JSON).read_text() + (run_dir / R.REPORT_MD).read_text()
    for old in ("in_strength", "out_strength", "influence", "flow_pagerank"):
        assert old not in text, old
    assert "dispersion" not in report and "reward" in report  # the world-agnostic name of the rollout log


def test_report_is_plain_json_with_a_reason_for_every_null(run_dir, report):
    text = (run_dir / R.REPORT_JSON).read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == report  # evaluate returns exactly what it wrote
    assert _unexplained_nulls(report) == []


def test_ablation_and_knockouts_match_the_evaluation_functions(run_dir, report):
    cfg, system, world, _ = evaluation.load_run(run_dir)
    ablation = evaluation.communication_ablation(
        system, world, cfg, episodes=report["run"]["episodes"], seed=report["run"]["seed"], knockouts=True
    )
    for key in ("world_mse", "world_mse_silent", "world_mse_shuffled", "recon_mse", "reward"):
        assert report[key] == pytest.approx(ablation[key], rel=1e-6)
    knock = [report["centrality"][str(a)]["knockout_delta"] for a in range(cfg.num_agents)]
    assert knock == pytest.approx(ablation["knockout_delta"], abs=1e-6)  # per-episode means agree
    assert all(report["centrality"][str(a)]["knockout_delta_se"] > 0 for a in range(cfg.num_agents))


def test_vocabulary_numbers_match_the_rollout_logs(run_dir, report):
    cfg, system, world, _ = evaluation.load_run(run_dir)
    logs, _ = evaluate_rollout(system, world, cfg, episodes=report["run"]["episodes"], seed=report["run"]["seed"])
    assert report["vocab_usage"] == pytest.approx(logs["vocab_usage"])
    assert report["symbol_entropy_bits"] == pytest.approx(logs["entropy_bits"], abs=1e-4)


def test_top_transitions_are_above_their_expected_count(report):
    for t in report["top_transitions"]:
        assert t["count"] > t["expected"] and 0.0 < t["probability"] <= 1.0


def test_vocab_over_training_comes_from_metrics_csv(report):
    vt = report["vocab_over_training"]
    tiny = PRESETS["tiny"]
    assert (vt["first_step"], vt["last_step"]) == (tiny["log_every"], tiny["steps"])
    assert isinstance(vt["narrowed"], bool)


def test_evaluate_is_deterministic_and_honours_episodes(run_copy):
    first = R.evaluate(run_copy, episodes=6, num_permutations=8)
    (run_copy / "metrics.csv").unlink()  # the training log then comes from the checkpoint's history
    second = R.evaluate(run_copy, episodes=6, num_permutations=8)
    assert first == second
    assert first["run"]["episodes"] == 6 and first["run"]["num_permutations"] == 8


def test_evaluate_rejects_bad_arguments(run_dir, tmp_path):
    with pytest.raises(ValueError, match="episodes"):
        R.evaluate(run_dir, episodes=1)
    with pytest.raises(ValueError, match="num_permutations"):
        R.evaluate(run_dir, num_permutations=0)
    with pytest.raises(CheckpointError, match="does not exist"):
        R.evaluate(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        R.evaluate(tmp_path)
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        R.evaluate(tmp_path)


def test_a_world_without_view_mask_leaves_only_topsim_observation_undefined(run_copy):
    rename_world(run_copy, "lab")
    with pytest.raises(CheckpointError, match="world="):
        R.evaluate(run_copy, episodes=4, num_permutations=4)
    report = R.evaluate(run_copy, episodes=4, num_permutations=4, world=PlainWorld(Config.from_dict(PRESETS["tiny"])))
    assert report["run"]["world"] == "lab"
    assert report["topsim_observation"] is None and "view_mask" in report["undefined"]["topsim_observation"]
    assert isinstance(report["topsim"], float) and isinstance(report["reward"], float)
    assert _unexplained_nulls(report) == []


def test_single_symbol_messages_and_single_steps_are_reported_as_undefined(tmp_path):
    cfg = Config.from_dict({**PRESETS["tiny"], "msg_dim": 1, "timesteps": 1, "steps": 2, "log_every": 1})
    report = R.evaluate(write_tiny_run(tmp_path / "run", cfg), episodes=4, num_permutations=4)
    assert report["temporal_mi_bits"] is None and "msg_dim=1" in report["undefined"]["temporal_mi_bits"]
    assert report["across_time_mi_bits"] is None and "timesteps=1" in report["undefined"]["across_time_mi_bits"]
    assert _unexplained_nulls(report) == []
    assert (tmp_path / "run" / R.FIGURES["symbol_transitions"]).stat().st_size > 0


# ---------------------------------------------------------------------------- definitions and formatting
def test_definitions_explain_the_hub_and_relay_tests(report):
    assert report["definitions"] == R.DEFINITIONS
    assert "never heard it directly" in R.DEFINITIONS["relays"] and "topology" in R.DEFINITIONS["graph_betweenness"]
    for key in ("hubs", "relays"):
        assert "1/(K+1)" in R.DEFINITIONS[key] and "Holm" in R.DEFINITIONS[key], key
    for key in ("attention graph", "attention_received", "pagerank", "betweenness"):
        assert "gnncomm.metrics.graph" in R.DEFINITIONS[key], key


def test_format_report_prints_the_sections_in_order(report):
    text = R.format_report(report)
    positions = [text.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    assert "hubs [" in text and "relays [" in text and "attention relays [" in text and "knockout vs centrality" in text
    markdown = R.format_report(report, markdown=True)
    assert all(f"**{key}**" in markdown for key in R.DEFINITIONS)


def test_format_report_survives_undefined_values(report):
    broken = json.loads(json.dumps(report))
    for key in (
        "temporal_mi_bits",
        "temporal_mi_null_bits",
        "temporal_z",
        "temporal_p_value",
        "top_transitions",
        "relays",
    ):
        broken[key] = None
    broken["knockout_vs_centrality"]["spearman"]["pagerank"] = {"rho": None, "p_value": None}
    broken["vocab_over_training"] = dict.fromkeys(broken["vocab_over_training"])
    broken["run"]["relay_shuffles"] = None
    for values in broken["centrality"].values():
        values.update(betweenness_null=None, relay_p_adjusted=None)
    text = R.format_report(broken)
    assert "I(s_j; s_j+1) = n/a" in text and "pagerank n/a" in text and "no training log" in text
    assert "relays n/a" in text


# ---------------------------------------------------------------------------- figures
def test_plot_episode_topology_draws_one_episode(run_dir, tmp_path):
    cfg, system, world, _ = evaluation.load_run(run_dir)
    _, trace = evaluate_rollout(system, world, cfg, episodes=3, seed=0, record=True)
    R.plot_episode_topology(trace, cfg, tmp_path / "topology.png", hubs=[1], relays=[2], episode=2)
    R.plot_episode_topology(trace, cfg, tmp_path / "untested.png", relays=None, step=0)
    for name in ("topology.png", "untested.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_every_figure_has_a_title_and_axis_labels(tmp_path, monkeypatch):
    figures: list[matplotlib.figure.Figure] = []
    plt = plots.pyplot()
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig: (figures.append(fig), close(fig)))
    pos = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    plots.plot_topology(pos, np.array([[0, 1], [1, 2]]), np.array([0.5, 1.0]), tmp_path / "a.png", hubs=[0])
    plots.plot_training([{"step": 1, "loss": 1.0, "reward": -0.1}, {"step": 2, "loss": 0.5}], tmp_path / "b.png")
    plots.plot_attention_heatmap(np.eye(3), tmp_path / "c.png")
    plots.plot_vocab_over_training([1, 2], [0.5, 0.4], [2.0, 1.5], tmp_path / "d.png", vocab_size=8)
    plots.plot_symbol_transitions(np.ones((4, 4), dtype=np.int64), tmp_path / "e.png")
    plots.plot_knockout_vs_centrality([0.1, 0.2], [0.01, 0.01], {"attention_received": [1.0, 2.0]}, tmp_path / "f.png")
    assert len(figures) == 6
    for fig in figures:
        main = fig.axes[0]
        assert main.get_title() or fig._suptitle is not None
        assert main.get_xlabel() and main.get_ylabel()


def test_figures_accept_degenerate_inputs(tmp_path):
    plots.plot_vocab_over_training([], [], [], tmp_path / "vocab.png", vocab_size=8)
    plots.plot_symbol_transitions(np.zeros((8, 8), dtype=np.int64), tmp_path / "transitions.png")
    plots.plot_attention_heatmap(np.full((3, 3), np.nan), tmp_path / "heatmap.png", hubs=[1])
    plots.plot_knockout_vs_centrality([0.0, 0.0], [0.0, 0.0], {"attention_received": [1.0, 1.0]}, tmp_path / "ko.png")
    plots.plot_training([], tmp_path / "training.png")  # nothing logged: no file, no error
    for name in ("vocab.png", "transitions.png", "heatmap.png", "ko.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "training.png").exists()


def test_topology_legends_and_titles_name_the_causal_relays_and_the_hubs(tmp_path, monkeypatch):
    figures: list[matplotlib.figure.Figure] = []
    plt = plots.pyplot()
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig: (figures.append(fig), close(fig)))
    pos = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    plots.plot_topology(pos, np.array([[0, 1], [1, 2]]), np.array([0.5, 1.0]), tmp_path / "a.png", hubs=[0], relays=[1])
    plots.plot_attention_heatmap(np.eye(3), tmp_path / "c.png", hubs=[0], relays=[1])
    legend = [t.get_text() for t in figures[0].axes[0].get_legend().get_texts()]
    assert legend == ["agent", plots.RELAY_LABEL, plots.HUB_LABEL] and "causal relay" in plots.RELAY_LABEL
    assert all("causal relay" in fig.axes[0].get_title() for fig in figures)
