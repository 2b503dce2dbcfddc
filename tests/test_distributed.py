"""DDP over gloo on the CPU: ``torchrun --nproc_per_node=2 -m gnncomm train`` launched by the tests.

The workers are real ``torchrun`` processes (the path users take), rendezvousing on a free port
of 127.0.0.1 with gloo bound to the loopback interface.
"""

import csv
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

import gnncomm
from gnncomm import Config
from gnncomm.checkpoint import load_checkpoint
from gnncomm.config import PRESETS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs gloo"),
]

REPO = Path(__file__).resolve().parents[1]
# The same computation split differently over processes sums the batch mean and the gradient
# all-reduce in another order, so the weights agree to float rounding (about 3e-8 seen)...
ATOL, RTOL = 1e-6, 1e-5
# ...except the key half of an attention's key/value bias: softmax over keys ignores a bias
# shared by all keys, so its true gradient is 0 and its computed one pure rounding noise, which
# AdamW (dividing by sqrt(exp_avg_sq)) turns into steps of up to about lr. Those entries are only
# held to 2 * lr per step.
KEY_BIASES = ("attention.lin_key_value.bias", "decoder.lin_key_value.bias")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_env() -> dict[str, str]:
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    if Path("/sys/class/net/lo").exists():
        env["GLOO_SOCKET_IFNAME"] = "lo"  # gloo's own connections stay on the loopback interface too
    return env


def torchrun(args: list[str], nproc: int = 2, timeout: float = 240) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node=nproc -m gnncomm train ARGS`` on 127.0.0.1; retried once if the port was taken.

    The launcher and its workers run in their own session, so a hang is killed whole at ``timeout``.
    """
    env = worker_env()
    for _ in range(2):
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={nproc}",
            "--master_addr=127.0.0.1",
            f"--master_port={free_port()}",
            "-m",
            "gnncomm",
            "train",
            "--no-progress",
            *args,
        ]
        proc = subprocess.Popen(
            cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            pytest.fail(f"torchrun hung for {timeout} s:\n{stdout[-3000:]}\n{stderr[-6000:]}")
        if proc.returncode == 0 or "address already in use" not in (stdout + stderr).lower():
            break
    assert proc.returncode == 0, f"torchrun failed ({proc.returncode}):\n{stdout[-3000:]}\n{stderr[-6000:]}"
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def overrides(cfg: Config) -> list[str]:
    """``key=value`` strings that rebuild ``cfg`` from the defaults."""
    default = Config().to_dict()
    return [f"{k}={v}" for k, v in cfg.to_dict().items() if v != default[k] and k != "topology_schedule"]


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    with open(run_dir / "metrics.csv") as fh:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(fh)]


def assert_same_parameters(a: Path, b: Path) -> float:
    """The checkpoints' weights and AdamW moments agree within float tolerance; returns the max
    weight difference outside the key biases."""
    sa, sb = load_checkpoint(a), load_checkpoint(b)
    assert sa["step"] == sb["step"]
    cfg = Config.from_dict(sa["config"])
    worst = 0.0
    for key, value in sa["model"].items():
        other = sb["model"][key]
        if key in KEY_BIASES:
            half = value.size(0) // 2
            assert (other[:half] - value[:half]).abs().max() <= 2 * cfg.lr * sa["step"], key
            value, other = value[half:], other[half:]
        torch.testing.assert_close(other, value, atol=ATOL, rtol=RTOL, msg=key)
        worst = max(worst, (other - value).abs().max().item())
    return worst


def test_two_processes_match_one_process_with_the_total_batch(tmp_path):
    cfg = Config(**dict(PRESETS["tiny"], steps=4, batch_size=8, log_every=2, eval_episodes=4, checkpoint_every=100))
    proc = torchrun(["--preset", "tiny", "--out", str(tmp_path / "ddp"), *overrides(cfg)])
    gnncomm.train(cfg, tmp_path / "single", progress=False, evaluate=False)

    worst = assert_same_parameters(tmp_path / "single", tmp_path / "ddp")
    print(f"max |param(2 processes) - param(1 process)| after {cfg.steps} steps: {worst:.2e}")
    for one, two in zip(read_metrics(tmp_path / "single"), read_metrics(tmp_path / "ddp"), strict=True):
        # means over the whole batch; the vocabulary terms are batch-level, reduced across ranks
        for key in ("loss", "recon", "world", "comm", "vocab_term", "vocab_align_term", "reward", "grad_norm"):
            assert two[key] == pytest.approx(one[key], rel=1e-4, abs=1e-6), key
    assert Config.load(tmp_path / "ddp" / "config.json") == cfg
    # only rank 0 evaluated: the report was printed once, and the files are rank 0's
    assert proc.stdout.count("communication ablation") == 1
    for name in ("checkpoint.pt", "ablation.json", "agent_3.pth", "topology.png", "training_progress.png"):
        assert (tmp_path / "ddp" / name).is_file(), name


def test_checkpoints_resume_at_another_world_size(tmp_path):
    # per-agent weights with survival selection (every rank must select alike) and cluster_weight=0
    cfg = Config(
        **dict(
            PRESETS["tiny"],
            steps=6,
            anneal_steps=6,
            batch_size=8,
            log_every=2,
            eval_episodes=4,
            checkpoint_every=100,
            shared_params=False,
            selection_every=2,
            selection_k=1,
            cluster_weight=0.0,
        )
    )
    gnncomm.train(cfg, tmp_path / "straight", progress=False, evaluate=False)

    mixed = tmp_path / "mixed"
    gnncomm.train(Config(**{**cfg.to_dict(), "steps": 2}), mixed, progress=False, evaluate=False)  # 1 process
    torchrun(["--resume", str(mixed), "steps=4"])  # 2 processes
    assert load_checkpoint(mixed)["step"] == 4
    gnncomm.train(cfg, mixed, resume=True, progress=False, evaluate=False)  # 1 process again

    assert_same_parameters(tmp_path / "straight", mixed)
    a, b = (load_checkpoint(p)["selection_log"] for p in (tmp_path / "straight", mixed))
    assert [(e["step"], e["donors"], e["recipients"]) for e in a] == [
        (e["step"], e["donors"], e["recipients"]) for e in b
    ] and len(a) == 3
    assert [r["step"] for r in read_metrics(mixed)] == [2, 4, 6]


def test_ctrl_c_stops_every_rank_at_the_same_step_with_a_checkpoint(tmp_path):
    # torchrun forwards SIGINT to its workers; they agree at a log boundary and stop together
    env = worker_env()
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        "-m",
        "gnncomm",
        "train",
        "--no-progress",
        "--preset",
        "tiny",
        "--out",
        str(tmp_path),
        "steps=1000000",
        "log_every=4",
        "checkpoint_every=1000000",
        "eval_episodes=4",
    ]
    proc = subprocess.Popen(
        cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (tmp_path / "metrics.csv").is_file() and len(read_metrics(tmp_path)) >= 1:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    stops = re.findall(r"interrupted at step (\d+)", stdout)
    assert len(stops) == 2 and stops[0] == stops[1], stdout + stderr[-3000:]
    step = int(stops[0])
    assert step % 4 == 0 and load_checkpoint(tmp_path)["step"] == step
