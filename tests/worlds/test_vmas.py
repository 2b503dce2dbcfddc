"""VmasWorld: VMAS scenarios behind the World protocol, trained through the simulator."""

from __future__ import annotations

import json

import pytest
import torch

import gnncomm
from gnncomm.agents import CommSystem
from gnncomm.config import Config
from gnncomm.interventions import silence
from gnncomm.world import build_world

pytest.importorskip("vmas")

from gnncomm.worlds.vmas import SUCCESS_RADIUS, VmasWorld  # noqa: E402


def _reset(world: VmasWorld, batch: int, seed: int = 0):
    return world.reset(batch, generator=torch.Generator().manual_seed(seed))


def test_identical_agents_get_their_vmas_observation_and_no_type_feature():
    world = VmasWorld("navigation", 3)
    state = _reset(world, 4)
    assert (world.num_agents, world.latent_dim, world.action_dim) == (3, 0, 2)
    assert world.obs_dim == 18 and world.agent_types == ["agent"]
    assert world.observe(state).shape == (12, 18)
    assert state.pos.shape == (4, 3, 2) and state.latent.shape == (4, 0)
    after = world.step(state, torch.zeros(12, 2))
    assert after.reward.shape == (4,) and after.obs.shape == (4, 3, 18)


def test_speaker_and_listener_are_padded_to_one_width_with_an_agent_type():
    world = VmasWorld("simple_speaker_listener")
    state = _reset(world, 6)
    assert world.num_agents == 2 and world.agent_types == ["speaker", "listener"]
    assert world.obs_dim == 11 + 2
    obs = world.observe(state).view(6, 2, 13)
    assert torch.equal(obs[:, 0, 3:11], torch.zeros(6, 8))  # the speaker's 3 values, padded
    assert torch.equal(obs[:, :, 11:], torch.eye(2).expand(6, 2, 2))  # one-hot agent type
    colours = torch.stack([lm.color for lm in world._slots[0].env.world.landmarks])
    assert torch.equal(obs[:, 0, :3], colours[state.goal])  # the speaker sees its own environment's goal


def test_each_environment_draws_its_own_goal_and_the_reward_follows_it():
    world = VmasWorld("simple_speaker_listener")
    state = _reset(world, 64)
    assert len(set(state.goal.tolist())) == 3  # VMAS alone would give one goal to the whole batch
    after = world.step(state, torch.zeros(128, 2))
    env = world._slots[0].env
    landmarks = torch.stack([lm.state.pos for lm in env.world.landmarks], dim=1)
    target = landmarks[torch.arange(64), after.goal]
    distance = (env.agents[1].state.pos - target).norm(dim=-1)
    assert after.reward == pytest.approx(-2 * distance, abs=1e-5)
    metrics = world.episode_metrics(after)
    assert torch.equal(metrics["success"], (distance < SUCCESS_RADIUS).float())


def test_the_listener_cannot_read_the_goal_from_vmas_and_silence_removes_it():
    world = VmasWorld("simple_speaker_listener")
    state = _reset(world, 32)
    other = state._replace(goal=(state.goal + 1) % 3)
    other = world._state(
        world._slots[0],
        [state.obs[:, 0, :11], state.obs[:, 1, :11]],
        state.reward,
        state.agent_reward,
        state.done,
        other.goal,
    )
    listener, listener_other = world.observe(state).view(32, 2, -1)[:, 1], world.observe(other).view(32, 2, -1)[:, 1]
    assert torch.equal(listener, listener_other)  # VMAS's own c channel carries nothing
    stepped = world.step(state, torch.rand(64, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1)
    assert torch.equal(stepped.obs[:, 1, 8:11], torch.zeros(32, 3))  # the speaker's c, as the listener reads it
    torch.manual_seed(0)
    cfg = Config(num_agents=2)
    system = CommSystem.for_world(cfg, world).eval()
    edge_index = torch.tensor([[0], [1]]).repeat(1, 32) + torch.arange(32).repeat_interleave(1) * 2

    def listener_action(s, intervene=None):
        out, _ = system(world.observe(s), system.initial_state(32), edge_index, None, 1.0, intervene)
        return out.action.view(32, 2, -1)[:, 1]

    assert not torch.allclose(listener_action(state), listener_action(other))  # messages carry the goal
    assert torch.equal(listener_action(state, silence()), listener_action(other, silence()))


def test_the_same_seed_gives_the_same_episodes_whatever_ran_in_between():
    world = VmasWorld("navigation", 3)
    first = _reset(world, 4, seed=5)
    del first
    torch.manual_seed(123)
    _reset(world, 8, seed=9)  # another batch, other draws of VMAS's shared random state
    again = _reset(world, 4, seed=5)
    fresh = _reset(VmasWorld("navigation", 3), 4, seed=5)
    assert torch.equal(again.obs, fresh.obs) and torch.equal(again.pos, fresh.pos)
    assert not torch.equal(_reset(world, 4, seed=6).pos, fresh.pos)


def test_a_live_state_keeps_its_environments_while_others_reset():
    world = VmasWorld("navigation", 3)
    kept = _reset(world, 4, seed=0)
    moved = world.step(kept, torch.ones(12, 2))
    _reset(world, 4, seed=1)  # must not take the batch `moved` lives in
    again = world.step(moved, torch.ones(12, 2))
    assert not torch.equal(again.pos, moved.pos) and int(again.slot[0]) == int(kept.slot[0])
    assert len(world._slots) == 2


def test_gradients_flow_through_the_simulator_across_windows():
    world = VmasWorld("navigation", 3)
    state = _reset(world, 4)
    for _ in range(3):  # without detach, the second backward would meet the freed graph of the first
        action = torch.zeros(12, 2, requires_grad=True)
        reward = 0.0
        for _ in range(3):
            state = world.step(state, action)
            reward = reward + state.reward.sum()
        reward.backward()
        assert action.grad is not None and action.grad.abs().sum() > 0
        state = world.detach(state)


def test_finished_episodes_restart_and_the_others_keep_going():
    world = VmasWorld("simple_speaker_listener")
    state = world.step(_reset(world, 4), torch.ones(8, 2))
    mask = torch.tensor([True, False, True, False])
    after = world.reset_done(state, mask, torch.Generator().manual_seed(3))
    assert torch.equal(after.pos[~mask], state.pos[~mask])
    assert not torch.equal(after.pos[mask], state.pos[mask])
    assert torch.equal(after.reward[mask], torch.zeros(2))


def test_a_config_names_a_scenario_its_agents_and_any_keyword():
    cfg = Config.from_sources(
        overrides=["world=vmas", "scenario=navigation", "num_agents=3", "world_kwargs={agent_radius: 0.05}"]
    )
    world = build_world(cfg)
    assert isinstance(world, VmasWorld) and world.num_agents == 3 and cfg.k_neighbors == 2
    assert world.scenario_kwargs == {"agent_radius": 0.05, "n_agents": 3}
    with pytest.raises(ValueError, match="scenario must be a VMAS scenario name"):
        VmasWorld("no_such_scenario")
    with pytest.raises(ValueError, match="world_kwargs"):
        build_world(cfg.with_overrides({"world_kwargs": {"no_such_keyword": 1}}))


def test_a_tiny_vmas_run_trains_evaluates_and_animates(tmp_path):
    cfg = Config.from_sources(
        preset="tiny",
        overrides=[
            "world=vmas",
            "scenario=simple_speaker_listener",
            "num_agents=2",
            "k_neighbors=1",
            "timesteps=3",
            "episode_steps=6",
            "steps=6",
            "log_every=2",
            "eval_every=2",
            "eval_batch=4",
            "eval_episodes=6",
        ],
    )
    result = gnncomm.train(cfg, tmp_path / "run", progress=False)
    ablation = json.loads((tmp_path / "run" / "ablation.json").read_text())
    for key in ("episode_return", "episode_return_silenced", "episode_return_shuffled", "success_rate"):
        assert isinstance(ablation[key], float)
    assert ablation["episode_steps"] == 6 and "world_mse" not in ablation
    assert "within 0.1" in ablation["success_definition"]
    rows = result.history
    assert rows[-1]["episodes_done"] == 8 and "world_last" not in rows[-1]  # 2 windows of 4 episodes per log
    report = gnncomm.evaluate(tmp_path / "run", episodes=ablation["episodes"], num_permutations=5)
    assert report["episode_return"] == pytest.approx(ablation["episode_return"], abs=1e-6)  # the same episodes
    assert report["topsim"] is None and "no latent" in report["undefined"]["topsim"]
    assert len(report["centrality"]) == 2
    gnncomm.animate(tmp_path / "run", tmp_path / "episode.gif")
    assert (tmp_path / "episode.gif").stat().st_size > 0


def test_the_same_seed_reproduces_a_vmas_run(tmp_path):
    overrides = [
        "world=vmas",
        "scenario=navigation",
        "num_agents=3",
        "timesteps=2",
        "episode_steps=4",
        "steps=4",
        "log_every=1",
        "eval_every=2",
        "eval_batch=4",
        "eval_episodes=4",
        "threads=1",
    ]
    runs = []
    for name in ("a", "b", "c"):
        seed = "seed=1" if name == "c" else "seed=0"
        cfg = Config.from_sources(preset="tiny", overrides=[*overrides, seed])
        gnncomm.train(cfg, tmp_path / name, progress=False, evaluate=False)
        rows = (tmp_path / name / "metrics.csv").read_text().splitlines()
        runs.append([",".join(row.split(",")[:-3]) for row in rows])  # without steps/s, time and threads
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_in_reference_each_environment_has_its_own_goals_and_each_agent_sees_the_one_it_names():
    world = VmasWorld("simple_reference")
    state = _reset(world, 64)
    assert state.goal.shape == (64, 2) and len(set(map(tuple, state.goal.tolist()))) > 3
    env = world._slots[0].env
    colours = torch.stack([lm.color for lm in env.world.landmarks])
    obs = world.observe(state).view(64, 2, -1)
    for i in range(2):
        assert torch.equal(obs[:, i, 8:11], colours[state.goal[:, i]])
        assert torch.equal(obs[:, i, 11:21], torch.zeros(64, 10))  # the other agent's c: silent
    after = world.step(state, torch.zeros(128, 2))
    landmarks = torch.stack([lm.state.pos for lm in env.world.landmarks], dim=1)
    rows = torch.arange(64)
    d1 = (env.agents[1].state.pos - landmarks[rows, after.goal[:, 0]]).norm(dim=-1)
    d0 = (env.agents[0].state.pos - landmarks[rows, after.goal[:, 1]]).norm(dim=-1)
    assert after.reward == pytest.approx(-(d0 + d1), abs=1e-5)
    assert torch.equal(world.episode_metrics(after)["success"], ((d0 < 0.1) & (d1 < 0.1)).float())


def test_a_detached_state_still_holds_its_environments():
    world = VmasWorld("navigation", 3)
    state = world.detach(world.step(_reset(world, 4), torch.ones(12, 2)))  # the states before it are gone
    other = _reset(world, 4, seed=1)
    assert int(other.slot[0]) != int(state.slot[0])
    moved = world.step(state, torch.ones(12, 2))  # still its own environments
    assert not torch.equal(moved.pos, other.pos)


def test_an_immovable_speakers_actions_are_masked_out():
    assert VmasWorld("simple_speaker_listener").action_mask.tolist() == [[0.0, 0.0], [1.0, 1.0]]
    assert VmasWorld("navigation", 3).action_mask.all()
