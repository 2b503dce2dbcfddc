"""Large populations (per-agent weights stay one batched product at N=1000) and the curriculum
topology (graphs switch at the boundaries; torch.compile compiles once per schedule entry at most)."""

import math
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import gnncomm
import gnncomm.trainer as trainer_mod
from gnncomm import Config
from gnncomm.agents import CommSystem
from gnncomm.checkpoint import load_checkpoint
from gnncomm.config import PRESETS
from gnncomm.nn import AgentLinear
from gnncomm.topology import knn

TINY = dict(PRESETS["tiny"], eval_episodes=4)


class OpCounter(TorchDispatchMode):
    """Counts the aten ops a forward dispatches."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


# ---------------------------------------------------------------- large populations
def test_per_agent_linear_at_1000_agents_equals_a_loop_over_a_few_agents(generator):
    A, B = 1000, 3
    lin = AgentLinear(5, 7, num_agents=A, shared=False)
    x = torch.randn(B * A, 5, generator=generator)
    with OpCounter() as counter:
        out = lin(x)  # [B*A, 7]
    assert counter.ops["aten.baddbmm"] == 1 and counter.ops["aten.bmm"] == 0 and counter.ops["aten.mm"] == 0
    for a in (0, 1, 537, 999):
        for b in range(B):
            expected = x[b * A + a] @ lin.weight[a] + lin.bias[a]
            torch.testing.assert_close(out[b * A + a], expected, rtol=1e-5, atol=1e-6)


def system_step_ops(num_agents: int) -> Counter:
    torch.manual_seed(0)
    system = CommSystem(num_agents, 12, 4, vocab_size=8, msg_dim=2, heads=2, hidden_dim=8, shared=False)
    B = 2
    obs = torch.randn(B * num_agents, 12)
    edge_index = knn(torch.rand(B, num_agents, 2), 3)
    with OpCounter() as counter:
        system(obs, system.initial_state(B), edge_index)
    return counter.ops


def test_a_per_agent_step_dispatches_the_same_ops_at_10_and_1000_agents():
    small, large = system_step_ops(10), system_step_ops(1000)
    assert large == small  # no op count grows with N: no Python loop over agents
    assert small["aten.baddbmm"] >= 5  # every per-agent layer is one batched product


def test_train_with_1000_per_agent_agents_runs_on_the_cpu(tmp_path):
    cfg = Config(
        **dict(
            TINY, num_agents=1000, k_neighbors=4, batch_size=2, steps=2, log_every=1, timesteps=2, shared_params=False
        )
    )
    result = gnncomm.train(cfg, tmp_path, progress=False, evaluate=False)
    assert result.step == 2 and all(math.isfinite(row["loss"]) for row in result.history)
    state = load_checkpoint(tmp_path)["model"]
    assert state["encoder.cell.gates.weight"].shape[0] == 1000
    assert (tmp_path / "agents.pth").is_file() and not (tmp_path / "agent_0.pth").exists()  # above AGENT_FILES_MAX
    assert (
        gnncomm.load_agent(tmp_path, 999)["encoder.cell.gates.weight"].shape
        == state["encoder.cell.gates.weight"][0].shape
    )


# ---------------------------------------------------------------- curriculum topology
def test_curriculum_switches_graphs_at_the_boundaries_with_bounded_recompiles(tmp_path, compile_counter):
    schedule = [[0, "full", 2], [2, "ring", 2], [4, "knn", 2], [6, "full", 3]]
    cfg = Config(
        **dict(
            TINY,
            steps=10,
            log_every=2,
            compile="true",
            topology="ring",
            k_neighbors=0,  # the tiny preset's k=2 is for knn; ring ignores k
            topology_schedule=schedule,
            timesteps=2,
            batch_size=4,
        )
    )
    trainer = trainer_mod.Trainer(cfg, tmp_path)
    seen = []
    original = trainer.train_step

    def record(episode, temperature):
        edges = trainer.loss_module.graph_fn(episode.state.pos).size(1)
        seen.append((*trainer.loss_module.topology, edges))
        return original(episode, temperature)

    trainer.train_step = record
    trainer.train(progress=False)
    B, N = 4, 4
    full, two_per_node = B * N * (N - 1), B * N * 2
    assert (
        seen
        == [("full", 2, full)] * 2
        + [("ring", 2, two_per_node)] * 2
        + [("knn", 2, two_per_node)] * 2
        + [("full", 3, full)] * 4
    )
    assert [(e["step"], e["topology"]) for e in trainer.selection_log] == [(2, "ring"), (4, "knn"), (6, "full")]
    # compiled once per schedule entry at most, never per step, and in one graph each time
    assert 1 <= compile_counter.frame_count <= len(schedule)
    assert not torch._dynamo.utils.counters["graph_break"]


def test_resuming_a_curriculum_logs_no_spurious_switch(tmp_path):
    schedule = [[0, "full", 2], [3, "ring", 2]]
    cfg = Config(**dict(TINY, steps=6, log_every=2, topology_schedule=schedule))
    gnncomm.train(Config(**{**cfg.to_dict(), "steps": 2}), tmp_path, progress=False, evaluate=False)
    gnncomm.train(cfg, tmp_path, resume=True, progress=False, evaluate=False)
    events = (tmp_path / "events.jsonl").read_text().splitlines()
    assert len(events) == 1 and '"step": 3' in events[0] and '"ring"' in events[0]
