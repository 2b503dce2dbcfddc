"""gnncomm.analysis.evaluate and ``gnncomm evaluate``: the report of a tiny trained run, its files, its
statistics helpers and the command line's errors."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import gnncomm
from gnncomm import analysis, metrics
from gnncomm.agents import StepOutput
from gnncomm.cli import main
from gnncomm.config import PRESETS, Config
from gnncomm.rollout import Trace

REQUIRED_NUMBERS = ("world_mse", "world_mse_silent", "world_mse_shuffled", "recon_mse", "vocab_usage",
                    "symbol_entropy_bits", "temporal_mi_bits", "temporal_mi_null_bits", "temporal_p_value",
                    "across_time_mi_bits", "across_time_mi_null_bits", "across_time_p_value", "topsim", "posdis",
                    "bosdis")
CENTRALITY_KEYS = ("pagerank", "betweenness", "in_strength", "knockout_delta")
SECTIONS = ("ATTENTION PATTERNS", "SYMBOL SPECIALIZATION", "TEMPORAL PATTERNS", "COMPOSITIONALITY", "ABLATIONS")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A tiny trained run (4 agents, 20 steps), trained once for the module."""
    from gnncomm.train import train
    path = tmp_path_factory.mktemp("tiny") / "run"
    train(Config.from_dict(PRESETS["tiny"]), path, progress=False)
    return path


@pytest.fixture(scope="module")
def report(run_dir) -> dict:
    return gnncomm.evaluate(run_dir)


@pytest.fixture
def run_copy(run_dir, tmp_path) -> Path:
    """A private copy, for tests that rewrite the report files."""
    return Path(shutil.copytree(run_dir, tmp_path / "run"))


# ---------------------------------------------------------------------------- evaluate on a trained run
def test_evaluate_writes_report_and_figures(run_dir, report):
    for name in (analysis.REPORT_JSON, analysis.REPORT_MD):
        assert (run_dir / name).stat().st_size > 0
    for name in ("attention_heatmap.png", "vocab_over_training.png", "symbol_transitions.png",
                 "knockout_vs_centrality.png"):
        assert (run_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert set(report["figures"].values()) == set(analysis.FIGURES.values())
    markdown = (run_dir / analysis.REPORT_MD).read_text()
    assert markdown.startswith("# gnncomm evaluation report")
    assert "| agent | role | in-strength" in markdown and "![attention_heatmap](attention_heatmap.png)" in markdown


def test_report_has_every_required_key_as_a_finite_number(report):
    for key in REQUIRED_NUMBERS:
        value = report[key]
        assert isinstance(value, float) and math.isfinite(value), (key, value)
    assert 0.0 < report["temporal_p_value"] <= 1.0 and 0.0 < report["across_time_p_value"] <= 1.0
    assert report["vocab_usage"] >= 1 / 8 and 0 <= report["symbol_entropy_bits"] <= 3.0
    assert all(isinstance(a, int) for a in report["hubs"] + report["relays"])
    assert sorted(report["centrality"], key=int) == ["0", "1", "2", "3"]
    for agent, values in report["centrality"].items():
        for key in CENTRALITY_KEYS:
            assert isinstance(values[key], float) and math.isfinite(values[key]), (agent, key)
    assert set(report["knockout_vs_centrality"]["spearman"]) == {"in_strength", "pagerank", "betweenness"}


def test_report_is_plain_json_with_a_reason_for_every_null(run_dir, report):
    text = (run_dir / analysis.REPORT_JSON).read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == report  # gnncomm.evaluate returns exactly what it wrote

    def nulls(obj, path=""):
        if isinstance(obj, dict):
            for k, v in obj.items():
                yield from nulls(v, f"{path}.{k}" if path else k)
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                yield from nulls(v, f"{path}[{i}]")
        elif obj is None:
            yield path
    def explained(path: str) -> bool:  # a reason may be given for the value or for a parent entry
        parts = path.split(".")
        return any(".".join(parts[:i]) in report["undefined"] for i in range(1, len(parts) + 1))
    missing = [p for p in nulls({k: v for k, v in report.items() if k != "undefined"}) if not explained(p)]
    assert missing == []


def test_ablation_and_knockouts_match_communication_ablation(run_dir, report):
    cfg, system, world = analysis.load_run(run_dir)
    ablation = analysis.communication_ablation(system, world, cfg, episodes=report["run"]["episodes"],
                                               seed=report["run"]["seed"], knockouts=True)
    for key in ("world_mse", "world_mse_silent", "world_mse_shuffled", "recon_mse"):
        assert report[key] == pytest.approx(ablation[key], rel=1e-6)
    # evaluate computes knock-outs per episode (for their standard error); the means must agree.
    knock = [report["centrality"][str(a)]["knockout_delta"] for a in range(cfg.num_agents)]
    assert knock == pytest.approx(ablation["knockout_delta"], abs=1e-6)
    assert all(report["centrality"][str(a)]["knockout_delta_se"] > 0 for a in range(cfg.num_agents))


def test_vocabulary_numbers_match_the_rollout_logs(run_dir, report):
    cfg, system, world = analysis.load_run(run_dir)
    logs, _ = analysis.evaluate_rollout(system, world, cfg, episodes=report["run"]["episodes"],
                                        seed=report["run"]["seed"])
    assert report["vocab_usage"] == pytest.approx(logs["vocab_usage"])
    assert report["symbol_entropy_bits"] == pytest.approx(logs["entropy_bits"], abs=1e-4)


def test_vocab_over_training_comes_from_metrics_csv(report):
    vt = report["vocab_over_training"]
    tiny = PRESETS["tiny"]
    assert (vt["first_step"], vt["last_step"]) == (tiny["log_every"], tiny["steps"])
    assert isinstance(vt["narrowed"], bool)


def test_evaluate_is_deterministic_and_honours_episodes(run_copy):
    first = analysis.evaluate(run_copy, episodes=6, num_permutations=8)
    (run_copy / "metrics.csv").unlink()  # the training log then comes from the checkpoint's history
    second = analysis.evaluate(run_copy, episodes=6, num_permutations=8)
    assert first == second
    assert first["run"]["episodes"] == 6 and first["run"]["num_permutations"] == 8


def test_evaluate_rejects_bad_arguments(run_dir, tmp_path):
    with pytest.raises(ValueError, match="episodes"):
        analysis.evaluate(run_dir, episodes=1)
    with pytest.raises(ValueError, match="num_permutations"):
        analysis.evaluate(run_dir, num_permutations=0)
    with pytest.raises(analysis.CheckpointError, match="does not exist"):
        analysis.evaluate(tmp_path / "nowhere")
    with pytest.raises(analysis.CheckpointError, match="no checkpoint"):
        analysis.evaluate(tmp_path)


# ---------------------------------------------------------------------------- the command line
def test_cli_prints_diagnostics_in_order(run_copy, capsys):
    assert main(["evaluate", str(run_copy), "--episodes", "6"]) == 0
    out = capsys.readouterr().out
    positions = [out.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    assert "hubs [" in out and "relays [" in out and "knockout vs centrality" in out
    assert json.loads((run_copy / "report.json").read_text())["run"]["episodes"] == 6


def test_cli_json_prints_the_report(run_copy, capsys):
    assert main(["evaluate", str(run_copy), "--episodes", "4", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((run_copy / "report.json").read_text())


def test_cli_corrupt_checkpoint_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert main(["evaluate", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "error:" in captured.err and "corrupt" in captured.err and captured.out == ""


def test_cli_missing_run_dir_is_a_clear_error(tmp_path, capsys):
    # In-process: an uncaught exception (a traceback) would fail this test instead of returning.
    for path in (tmp_path / "missing", tmp_path):  # no folder; a folder without a checkpoint
        assert main(["evaluate", str(path)]) == 1
        captured = capsys.readouterr()
        assert captured.err.startswith("error: cannot evaluate") and captured.out == ""
        assert "does not exist" in captured.err or "no checkpoint" in captured.err


# ---------------------------------------------------------------------------- formatting
def test_format_report_survives_undefined_values(report):
    broken = json.loads(json.dumps(report))
    for key in ("temporal_mi_bits", "temporal_mi_null_bits", "temporal_z", "temporal_p_value", "top_transitions"):
        broken[key] = None
    broken["knockout_vs_centrality"]["spearman"]["pagerank"] = {"rho": None, "p_value": None}
    broken["vocab_over_training"] = dict.fromkeys(broken["vocab_over_training"])
    text = analysis.format_report(broken)
    assert "I(s_j; s_j+1) = n/a" in text and "pagerank n/a" in text and "no training log" in text


# ---------------------------------------------------------------------------- attention aggregation path
def _hand_built_trace(weight_of_speaker, num_agents: int = 8, episodes: int = 3, steps: int = 2) -> Trace:
    """Complete graphs where every listener splits its attention by ``weight_of_speaker(speaker)``."""
    N = num_agents
    pairs = [(s, r) for r in range(N) for s in range(N) if s != r]
    local = torch.tensor(pairs).T  # [2, E] sender, receiver
    raw = torch.tensor([weight_of_speaker(s) for s, _ in pairs], dtype=torch.float)
    per_receiver = torch.zeros(N).index_add_(0, local[1], raw)
    alpha = (raw / per_receiver[local[1]]).unsqueeze(-1).repeat(1, 2)  # [E, heads=2], softmax-like per receiver
    edge_index = torch.cat([local + b * N for b in range(episodes)], dim=1)
    out = StepOutput(*([None] * 7), alpha=alpha.repeat(episodes, 1))
    obs = torch.zeros(episodes * N, 3)
    return Trace([out] * steps, [edge_index] * steps, [None] * steps, [obs] * steps)


def test_hand_built_hub_is_flagged_through_the_report_path():
    cfg = Config(num_agents=8, k_neighbors=3)
    trace = _hand_built_trace(lambda s: 10.0 if s == 3 else 1.0)
    structure = analysis.attention_structure(trace, cfg, seed=0)
    assert structure["hubs"] == [3]
    cent = analysis._centrality_report(structure, np.zeros((8, 2)))
    received = {a: c["in_strength"] for a, c in cent.items()}
    assert max(received, key=received.get) == "3"
    assert received["3"] == pytest.approx(7 * 10 / 16)  # 7 listeners, each 10 / (10 + 6)
    assert cent["3"]["hub_p_adjusted"] <= analysis.HUB_ALPHA < cent["0"]["hub_p_adjusted"]
    matrix = analysis._attention_matrix(structure["graph"], 8)  # [listener, speaker]
    assert np.isnan(np.diag(matrix)).all()
    assert np.nanargmax(matrix[0]) == 3 and matrix[0, 3] == pytest.approx(10 / 16)


def test_uniform_attention_flags_no_hub_through_the_report_path():
    cfg = Config(num_agents=8, k_neighbors=3)
    structure = analysis.attention_structure(_hand_built_trace(lambda s: 1.0), cfg, seed=0)
    assert structure["hubs"] == [] and structure["relays"] == []
    cent = analysis._centrality_report(structure, np.zeros((8, 2)))
    assert [c["in_strength"] for c in cent.values()] == pytest.approx([1.0] * 8)  # 7 listeners x 1/7


def test_knockout_vs_centrality_compares_hubs_with_the_rest():
    cent = {str(a): {"in_strength": float(a), "pagerank": float(a), "betweenness": 0.0,
                     "knockout_delta": 0.1 * a} for a in range(6)}
    undefined: dict[str, str] = {}
    out = analysis._knockout_vs_centrality(cent, [5], 99, np.random.default_rng(0), undefined)
    assert out["spearman"]["in_strength"]["rho"] == pytest.approx(1.0)
    assert out["spearman"]["in_strength"]["p_value"] < 0.05
    assert out["spearman"]["betweenness"]["rho"] is None
    assert "constant" in undefined["knockout_vs_centrality.spearman.betweenness"]
    assert out["hub_mean_knockout"] == pytest.approx(0.5)
    assert out["hub_minus_non_hub"] == pytest.approx(0.5 - 0.2)
    out = analysis._knockout_vs_centrality(cent, [], 9, np.random.default_rng(0), undefined)
    assert out["hub_mean_knockout"] is None and "no hub" in undefined["knockout_vs_centrality.hub_mean_knockout"]


# ---------------------------------------------------------------------------- statistics helpers
def test_within_strata_permutes_only_inside_each_stratum():
    rng = np.random.default_rng(0)
    for strata in (np.repeat(np.arange(4), 25), np.array([0] * 10 + [1] * 3 + [2] * 40)):  # equal, unequal
        strata = strata[rng.permutation(strata.size)]
        draw = analysis._within_strata(strata, rng)
        index = draw()
        assert sorted(index) == list(range(strata.size))
        assert np.array_equal(strata[index], strata)
        assert not np.array_equal(index, np.arange(strata.size))


def test_mi_statistic_matches_metrics():
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 5, 300), rng.integers(3, 9, 300)
    idx = rng.permutation(300)
    assert analysis._mi_statistic(x, y)(idx) == pytest.approx(metrics.mutual_information(x, y[idx]), abs=1e-12)


def test_position_habits_are_not_grammar_but_planted_transitions_are():
    """Symbols drawn independently with a different alphabet per position: pooled I(s_j; s_j+1) is large,
    and the plain shuffled null calls it significant; the report's speaker-and-position null does not."""
    rng = np.random.default_rng(0)
    T, B, N, M = 2, 100, 2, 3
    habits = np.stack([rng.integers(1 + 4 * j, 5 + 4 * j, (T, B, N)) for j in range(M)], axis=-1)  # [T, B, N, M]
    assert metrics.within_message_dependence(habits, num_permutations=50).p_value < 0.05
    undefined: dict[str, str] = {}
    out = analysis._temporal_report(habits, 16, 50, np.random.default_rng(0), undefined)
    assert out["temporal_mi_bits"] > 0.5 and out["temporal_p_value"] > 0.05
    planted = habits.copy()
    planted[..., 1] = planted[..., 0] + 4  # symbol at j=1 determined by symbol at j=0
    out = analysis._temporal_report(planted, 16, 50, np.random.default_rng(0), undefined)
    assert out["temporal_p_value"] < 0.05
    assert out["top_transitions"][0]["probability"] == pytest.approx(1.0)
    assert out["top_transitions"][0]["to"] == out["top_transitions"][0]["from"] + 4


def test_temporal_report_guards_single_symbol_messages_and_single_steps():
    undefined: dict[str, str] = {}
    out = analysis._temporal_report(np.ones((1, 4, 2, 1), dtype=np.int64), 4, 5, np.random.default_rng(0),
                                    undefined)
    assert out["temporal_mi_bits"] is None and "msg_dim=1" in undefined["temporal_mi_bits"]
    assert out["across_time_mi_bits"] is None and "timesteps=1" in undefined["across_time_mi_bits"]


def test_quantile_bins_are_balanced():
    x = np.random.default_rng(0).normal(size=(400, 3))
    bins = analysis._quantile_bins(x, 4)
    assert bins.shape == (400, 3) and set(np.unique(bins)) == {0, 1, 2, 3}
    assert all(np.bincount(bins[:, f]).tolist() == [100] * 4 for f in range(3))


def test_json_safe_turns_non_finite_numbers_into_null_with_a_reason():
    undefined: dict[str, str] = {"b.c": "known reason"}
    out = analysis._json_safe({"a": np.float32(1.5), "b": {"c": float("nan"), "d": [np.int64(2), -math.inf]},
                               "e": np.bool_(True)}, "", undefined)
    assert out == {"a": 1.5, "b": {"c": None, "d": [2, None]}, "e": True}
    assert type(out["a"]) is float and type(out["b"]["d"][0]) is int and type(out["e"]) is bool
    assert undefined == {"b.c": "known reason", "b.d[1]": "not a finite number"}
    json.dumps(out, allow_nan=False)


def test_figures_accept_degenerate_inputs(tmp_path):
    from gnncomm import plots
    plots.plot_vocab_over_training([], [], [], tmp_path / "vocab.png", vocab_size=8)
    plots.plot_symbol_transitions(np.zeros((8, 8), dtype=np.int64), tmp_path / "transitions.png")
    plots.plot_attention_heatmap(np.full((3, 3), np.nan), tmp_path / "heatmap.png", hubs=[1])
    plots.plot_knockout_vs_centrality([0.0, 0.0], [0.0, 0.0], {"in-strength": [1.0, 1.0]}, tmp_path / "ko.png")
    for name in ("vocab.png", "transitions.png", "heatmap.png", "ko.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
