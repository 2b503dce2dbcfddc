"""Smoke runs of the benchmarks at tiny sizes: JSON schema and the dense-equivalence check, no timings."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks import compile as compile_bench
from benchmarks import dense_baseline, knn, layer, profile_step, throughput
from gnncomm.bench import PeakMemory, default_batch_size, run_bench, time_calls
from gnncomm.cli import main as cli_main

META_KEYS = {"device", "device_name", "threads", "torch", "torch_geometric", "git", "command", "load_avg_1_5_15"}


def _positive(x: object) -> bool:
    return isinstance(x, (int, float)) and x > 0


def test_dense_baseline_equals_library():
    report = dense_baseline.check_equivalence("cpu")
    assert report["passed"], json.dumps(report, indent=2)
    assert set(report["layer"]["cases"]) >= {"knn4", "ring", "full", "knn3_isolated", "empty"}


def test_dense_layer_swaps_into_system_with_shared_weights():
    from gnncomm.agents import CommSystem

    system = CommSystem(5, 12, 4, vocab_size=8, msg_dim=2, hidden_dim=16)
    params = list(system.parameters())
    dense_baseline.use_dense_attention(system)
    assert isinstance(system.attention, dense_baseline.DenseMessageAttention)
    assert [id(p) for p in system.parameters()] == [id(p) for p in params]
    dense_baseline.use_dense_attention(system)  # idempotent
    assert isinstance(system.attention.sparse, torch.nn.Module)


def test_throughput_quick_schema(tmp_path):
    out = tmp_path / "throughput.json"
    argv = [
        "--agents",
        "6",
        "--bn",
        "24",
        "--extra",
        "6:2",
        "--modes",
        "eager",
        "bf16",
        "--steps",
        "1",
        "--warmup",
        "1",
        "--timesteps",
        "2",
        "--out",
        str(out),
    ]
    assert throughput.main(argv) == 0
    report = json.loads(out.read_text())
    assert META_KEYS <= set(report["meta"])
    assert report["equivalence"]["passed"]
    results = report["results"]
    # eager on ring, knn, full and bf16 on knn, for N=6 with B=4 (B*N near 24) and the extra B=2; lib and dense
    assert len(results) == 2 * 4 * 2
    assert {(r["topology"], r["mode"]) for r in results} == {
        ("ring", "eager"),
        ("knn", "eager"),
        ("full", "eager"),
        ("knn", "bf16"),
    }
    for r in results:
        assert r["status"] == "ok", r
        assert r["impl"] in ("lib", "dense")
        assert _positive(r["agent_steps_per_s"]) and _positive(r["step_time_s"]) and r["step_cpu_s"] >= 0
        assert len(r["step_times_s"]) == len(r["step_cpu_times_s"]) == 1
        assert r["peak_mem_bytes"] >= 0 and r["mem_method"]
        assert 0 <= r["knn_share"] and (r["knn_time_s"] == 0) == (r["topology"] != "knn")  # eager: a share
    assert {(r["agents"], r["batch_size"]) for r in report["ratios"]} == {(6, 4), (6, 2)}
    assert all(_positive(r["speedup"]) for r in report["ratios"])
    assert "speedup_vs_dense_N6" not in report["goals"]  # goals are read at N = 10, 200, 1000 only
    assert out.with_suffix(".png").stat().st_size > 0


def test_throughput_skips_what_does_not_fit(tmp_path):
    out = tmp_path / "t.json"
    argv = [
        "--agents",
        "8",
        "--bn",
        "16",
        "--extra",
        "--topologies",
        "full",
        "--modes",
        "eager",
        "--mem-limit-gb",
        "1e-6",
        "--out",
        str(out),
        "--no-plot",
    ]
    assert throughput.main(argv) == 0
    results = json.loads(out.read_text())["results"]
    assert [r["status"] for r in results] == ["skipped", "skipped"]
    assert all("exceeds the memory budget" in r["note"] and r["est_bytes"] > 0 for r in results)


def test_throughput_scaling_mode(tmp_path):
    out = tmp_path / "scaling.json"
    argv = [
        "--scaling",
        "--agents",
        "6",
        "12",
        "--bn",
        "24",
        "--topologies",
        "ring",
        "--steps",
        "1",
        "--warmup",
        "1",
        "--timesteps",
        "2",
        "--no-plot",
        "--out",
        str(out),
    ]
    assert throughput.main(argv) == 0
    results = json.loads(out.read_text())["results"]
    assert [(r["agents"], r["batch_size"], r["impl"], r["status"]) for r in results] == [
        (6, 4, "lib", "ok"),
        (12, 2, "lib", "ok"),
    ]


def test_estimates_rank_dense_and_full_above_sparse():
    N, B, T = 10_000, 1, 5
    sparse = throughput.estimate_bytes("lib", "knn", N, B, T)
    assert throughput.estimate_bytes("dense", "knn", N, B, T) > 10 * sparse
    assert throughput.estimate_bytes("lib", "full", N, B, T) > 10 * sparse


def test_layer_quick_schema(tmp_path):
    out = tmp_path / "layer.json"
    assert layer.main(["--agents", "6", "20", "--bn", "40", "--steps", "2", "--warmup", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert META_KEYS <= set(report["meta"]) and report["equivalence"]["passed"]
    assert {(r["agents"], r["layer"]) for r in report["results"]} == {
        (n, name) for n in (6, 20) for name in layer.LAYERS
    }
    for r in report["results"]:
        assert r["status"] == "ok" and _positive(r["time_s"]) and r["edges"] == r["batch_size"] * r["agents"] * 4
        assert _positive(r["time_over_message_attention"])


def test_knn_quick_schema(tmp_path):
    out = tmp_path / "knn.json"
    assert knn.main(["--quick", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert META_KEYS <= set(report["meta"])
    methods = {r["method"] for r in report["results"]}
    assert {"library", "dense_cdist"} <= methods
    for r in report["results"]:
        assert r["status"] == "ok" and _positive(r["time_s"]) and _positive(r["step_time_s"])
        assert r["share_of_step"] > 0 and r["peak_mem_bytes"] >= 0


def test_knn_dense_reference_finds_the_same_neighbour_sets():
    pos = torch.rand(2, 30, 2, generator=torch.Generator().manual_seed(0))
    ours, ref = knn.knn(pos, 3), knn.knn_dense_cdist(pos, 3)
    assert torch.equal(ours[1], ref[1])
    assert torch.equal(ours[0].view(-1, 3).sort(-1).values, ref[0].view(-1, 3).sort(-1).values)


def test_profile_step_quick(tmp_path):
    out = tmp_path / "profile.json"
    argv = ["--agents", "6", "--batch-size", "2", "--timesteps", "2", "--steps", "1", "--out", str(out)]
    assert profile_step.main(argv) == 0
    report = json.loads(out.read_text())
    assert _positive(report["step_ms"]) and report["top_ops"]
    assert {"phase.forward", "phase.backward", "fwd.attention", "fwd.graph"} <= set(report["breakdown_ms"])


def test_run_bench_and_cli(capsys):
    result = run_bench(agents=6, batch_size=2, topology="knn", k=2, steps=1, warmup=1, timesteps=2)
    assert result["agents"] == 6 and result["batch_size"] == 2 and result["threads"] >= 1
    assert _positive(result["agent_steps_per_s"]) and "agent-steps/s" in result["summary"]
    assert (
        cli_main(
            [
                "bench",
                "--agents",
                "6",
                "--batch-size",
                "2",
                "--topology",
                "ring",
                "--steps",
                "1",
                "--warmup",
                "1",
                "--timesteps",
                "2",
                "--json",
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed["topology"] == "ring" and printed["knn_share"] == 0.0


def test_timing_helpers():
    calls = []
    times = time_calls(lambda: calls.append(1), steps=3, warmup=2, device=torch.device("cpu"))
    assert len(times.wall) == len(times.cpu) == 3 and len(calls) == 5 and min(times.wall + times.cpu) >= 0
    with PeakMemory("cpu") as mem:
        block = torch.ones(8 * 2**20)  # 32 MiB
        block += 1
    assert mem.peak_bytes is not None and mem.method.startswith("cpu_")
    assert default_batch_size(10) == 256 and default_batch_size(20_000) == 1
    with pytest.raises(ValueError, match="steps and warmup"):
        run_bench(agents=6, batch_size=1, steps=0)


def test_learning_quick_writes_the_share_curves(tmp_path):
    from benchmarks import learning

    out = tmp_path / "learning.json"
    assert (
        learning.main(["--quick", "--settings", "L4", "L4-knn2", "--candidate", "fast:lr=3e-3", "--out", str(out)]) == 0
    )
    report = json.loads(out.read_text())
    assert META_KEYS <= set(report["meta"])
    assert [(r["setting"], r["label"]) for r in report["results"]] == [
        ("L4", "defaults"),
        ("L4", "fast"),
        ("L4-knn2", "defaults"),
        ("L4-knn2", "fast"),
    ]
    for r in report["results"]:
        assert set(r["final"]) >= {"share", "world_mse", "world_mse_silent", "steps", "train_time_s"}
        assert set(r["reference"]) == {"own_view", "floor"}
        assert r["curve"] and all(set(p) >= {"step", "train_time_s", "share"} for p in r["curve"])
    assert {c["setting"] for c in report["reference_checks"]} == {"L4", "L4-knn2"}
    assert (tmp_path / "learning.png").stat().st_size > 0


def test_learning_candidate_parsing():
    from benchmarks.learning import parse_candidate

    assert parse_candidate("fast:lr=3e-3,batch_size=64") == ("fast", {"lr": "3e-3", "batch_size": "64"})
    assert parse_candidate("lr=3e-3") == ("lr=3e-3", {"lr": "3e-3"})
    with pytest.raises(SystemExit):
        parse_candidate("nonsense")


def test_compile_quick_compiles_one_graph_for_the_whole_episode(tmp_path):
    out = tmp_path / "compile.json"
    assert compile_bench.main(["--quick", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert META_KEYS <= set(report["meta"])
    (row,) = report["results"]
    assert row["graphs"] == 1  # one step traced once, reused for the T steps; step 0 does not recompile
    assert _positive(row["compile_s"]) and _positive(row["eager_step_s"]) and _positive(row["compiled_step_s"])


def test_vmas_quick_schema(tmp_path):
    pytest.importorskip("vmas")
    from benchmarks import vmas

    out = tmp_path / "vmas.json"
    assert vmas.main(["--side", "gnncomm", "--task", "simple_speaker_listener", "--quick", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    curve, final = data["curve"], data["final"]
    assert curve[0]["frames"] == 0 and curve[-1]["frames"] == final["frames"] > 0
    assert [p["frames"] for p in curve] == sorted({p["frames"] for p in curve})  # no point twice
    for key in ("eval_return", "eval_return_silenced", "success_rate", "success_rate_silenced", "frames_per_s"):
        assert isinstance(final[key], float)
    assert data["settings"]["world"] == "vmas" and data["settings"]["episode_steps"] == vmas.EPISODE_STEPS
    assert final["frames"] % (data["settings"]["batch_size"] * data["settings"]["timesteps"]) == 0
    plot = tmp_path / "vmas.png"
    assert vmas.main(["--plot", str(out), "--out", str(plot)]) == 0 and plot.stat().st_size > 0


def test_vmas_navigation_breakdown_adds_up_to_the_evaluation_return(tmp_path):
    pytest.importorskip("vmas")
    from benchmarks import vmas

    out = tmp_path / "nav.json"
    argv = "--side gnncomm --task navigation --algorithm ppo --quick --set encoder_memory=false".split()
    assert vmas.main([*argv, "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    final, parts = data["final"], data["final"]["breakdown"]
    assert data["settings"]["encoder_memory"] is False
    assert parts["eval_return"] == pytest.approx(final["eval_return"], abs=1e-5)  # the same episodes, read twice
    assert parts["progress_return"] + parts["collision_return"] == pytest.approx(parts["eval_return"], abs=1e-5)
    assert parts["collision_return"] <= 0 and 0 <= parts["episodes_with_collision"] <= 1 and parts["ceiling"] > 0


def test_navigation_breakdown_on_a_hand_made_episode():
    from benchmarks.vmas import navigation_breakdown

    rewards = torch.tensor([[[0.5, 0.2], [-1.0, -0.9]], [[0.3, 0.3], [0.0, 0.0]]])  # the second ends after step 0
    collisions = torch.tensor([[[0.0, 0.0], [-1.0, -1.0]], [[0.0, 0.0], [0.0, 0.0]]])
    out = navigation_breakdown(rewards, collisions, torch.tensor([False, True]), torch.tensor([[1.0, 1.0], [0.5, 0.5]]))
    assert out["eval_return"] == pytest.approx((-0.6 + 0.3) / 2) and out["collision_return"] == pytest.approx(-0.5)
    assert out["progress_return"] == pytest.approx((0.4 + 0.3) / 2) and out["ceiling"] == pytest.approx(0.76)
    assert out["episodes_with_collision"] == 0.5 and out["reached"] == 0.5 and out["episodes"] == 2
