import json

import pytest
import torch

import gnncomm
import gnncomm.trainer as trainer_mod
from gnncomm import Config
from gnncomm.agents import CommSystem
from gnncomm.checkpoint import load_checkpoint
from gnncomm.config import PRESETS
from gnncomm.selection import MUTATION_TRUNCATION, copy_agents, rank_agents, selection_seed

TINY = dict(PRESETS["tiny"], eval_episodes=8, shared_params=False)


def per_agent_system(num_agents: int = 6) -> tuple[CommSystem, torch.optim.AdamW]:
    torch.manual_seed(0)
    system = CommSystem(num_agents, 12, 4, vocab_size=8, msg_dim=2, heads=2, hidden_dim=8, shared=False)
    optimizer = torch.optim.AdamW(system.parameters(), lr=1e-3)
    for p in system.parameters():  # one step, so the optimizer holds moments to copy
        p.grad = torch.randn_like(p)
    optimizer.step()
    return system, optimizer


def snapshot(system: CommSystem) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in system.named_parameters()}


def assert_copied(before, after, per_agent, donors, recipients, mutation_std):
    """Recipients hold their donors' weights plus noise within the truncation bound; nothing else moved."""
    moved = False
    for name, old in before.items():
        new = after[name]
        if name not in per_agent:
            assert torch.equal(new, old), name
            continue
        others = [a for a in range(old.size(0)) if a not in recipients]
        assert torch.equal(new[others], old[others]), name
        bound = MUTATION_TRUNCATION * mutation_std * old.std() + 1e-6
        delta = new[recipients] - old[donors]
        assert delta.abs().max() <= bound, name
        moved |= bool(delta.abs().max() > 0)
    assert moved == (mutation_std > 0)


def test_rank_agents_orders_donors_and_recipients():
    assert rank_agents(torch.tensor([0.3, 0.1, 0.9, 0.5, 0.2, 0.0]), 2) == ([2, 3], [5, 1])
    assert rank_agents([1.0, 1.0, 1.0, 1.0], 1) == ([0], [3])  # ties: the lower index ranks fitter
    assert rank_agents([float("nan"), 1.0, 2.0, 3.0], 1) == ([3], [0])  # NaN is least fit
    with pytest.raises(ValueError, match=r"k must be in \[1, num_agents // 2 = 2\], got 3"):
        rank_agents([0.0] * 5, 3)


@pytest.mark.parametrize("mutation_std", [0.0, 0.05])
def test_copy_agents_copies_weights_with_bounded_noise_and_the_adam_moments(mutation_std):
    system, optimizer = per_agent_system()
    before = snapshot(system)
    per_agent = system.per_agent_parameters()
    assert per_agent and all(p.size(0) == 6 for p in per_agent.values())
    donors, recipients = [1, 2], [5, 0]
    copy_agents(
        system, optimizer, donors, recipients, mutation_std=mutation_std, generator=torch.Generator().manual_seed(0)
    )
    assert_copied(before, snapshot(system), per_agent, donors, recipients, mutation_std)
    for param in per_agent.values():
        state = optimizer.state[param]
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(state[key][recipients], state[key][donors])
        assert state["step"].dim() == 0


def test_copy_agents_is_deterministic_given_the_generator():
    results = []
    for _ in range(2):
        system, optimizer = per_agent_system()
        copy_agents(system, optimizer, [0], [3], mutation_std=0.1, generator=torch.Generator().manual_seed(7))
        results.append(snapshot(system))
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])


def test_copy_agents_rejects_bad_arguments():
    system, optimizer = per_agent_system(4)
    gen = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="disjoint"):
        copy_agents(system, optimizer, [0, 1], [1, 2], mutation_std=0.1, generator=gen)
    with pytest.raises(ValueError, match=r"agent indices must be in \[0, 3\]"):
        copy_agents(system, optimizer, [0], [4], mutation_std=0.1, generator=gen)
    shared = CommSystem(4, 12, 4, vocab_size=8, msg_dim=2, heads=2, hidden_dim=8, shared=True)
    with pytest.raises(ValueError, match="per-agent weights"):
        copy_agents(shared, None, [0], [1], mutation_std=0.1, generator=gen)


def test_selection_event_in_training_replaces_the_weakest_and_is_logged(tmp_path):
    cfg = Config(**{**TINY, "steps": 4, "log_every": 2, "selection_every": 2, "selection_k": 1, "mutation_std": 0.05})
    trainer = trainer_mod.Trainer(cfg, tmp_path)
    per_agent = set(trainer.system.per_agent_parameters())
    seen = []
    original = trainer._select

    def checked_select():
        before, generator_state = snapshot(trainer.system), trainer.generator.get_state()
        original()
        event = trainer.selection_log[-1]
        assert event["event"] == "selection" and event["step"] == trainer.step
        assert torch.equal(trainer.generator.get_state(), generator_state)  # the training stream is untouched
        assert_copied(before, snapshot(trainer.system), per_agent, event["donors"], event["recipients"], 0.05)
        seen.append(event)

    trainer._select = checked_select
    trainer.train(progress=False)
    assert [e["step"] for e in seen] == [2, 4]
    logged = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert logged == seen == trainer.selection_log
    for event in logged:
        fitness = event["fitness"]
        assert len(fitness) == cfg.num_agents
        assert event["donors"] == [max(range(4), key=lambda a: (fitness[a], -a))]
        assert event["recipients"] == [min(range(4), key=lambda a: (fitness[a], -a))]
    assert load_checkpoint(tmp_path)["selection_log"] == logged


def test_selection_resumes_exactly(tmp_path):
    cfg = Config(**{**TINY, "steps": 6, "anneal_steps": 6, "log_every": 2, "selection_every": 2, "selection_k": 1})
    gnncomm.train(cfg, tmp_path / "full", progress=False, evaluate=False)
    gnncomm.train(Config(**{**cfg.to_dict(), "steps": 3}), tmp_path / "split", progress=False, evaluate=False)
    gnncomm.train(cfg, tmp_path / "split", resume=True, progress=False, evaluate=False)
    a, b = (load_checkpoint(tmp_path / name) for name in ("full", "split"))
    assert a["selection_log"] == b["selection_log"] and len(a["selection_log"]) == 3
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_selection_seed_depends_on_seed_step_and_stream():
    seeds = {selection_seed(s, t, c) for s in (0, 1) for t in (2, 4) for c in (0, 1)}
    assert len(seeds) == 8 and all(0 <= s < 2**63 for s in seeds)
