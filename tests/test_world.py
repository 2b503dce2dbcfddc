import re

import pytest
import torch

from gnncomm.config import Config
from gnncomm.topology import full, knn
from gnncomm.world import SwarmWorld, WorldState, build_world


def rollout_positions(world, state, steps, generator, k=3):
    for _ in range(steps):
        action = torch.rand(state.pos.shape, generator=generator) * 2 - 1
        state = world.step(state, action, knn(state.pos, k))
    return state


def test_same_seed_same_trajectory():
    world = SwarmWorld(8)
    runs = []
    for _ in range(2):
        g = torch.Generator().manual_seed(5)
        runs.append(rollout_positions(world, world.reset(4, generator=g), 20, g))
    assert all(torch.equal(a, b) for a, b in zip(*runs))
    g = torch.Generator().manual_seed(6)
    other = rollout_positions(world, world.reset(4, generator=g), 20, g)
    assert not torch.equal(runs[0].pos, other.pos)


def test_no_nan_over_1000_steps_and_agents_stay_in_the_arena(generator):
    world = SwarmWorld(10)
    state = rollout_positions(world, world.reset(8, generator=generator), 1000, generator)
    for t in state:
        assert torch.isfinite(t).all()
    assert (state.pos >= 0).all() and (state.pos <= world.arena_size).all()
    speed = state.vel.norm(dim=-1)
    assert (speed <= world.max_speed + 1e-4).all()


def test_cohesion_pulls_a_straggler_towards_the_group():
    world = SwarmWorld(5, arena_size=20.0, separation=0.0, alignment=0.0)
    pos = torch.tensor([[[5.0, 5.0], [5.2, 5.0], [5.0, 5.2], [5.2, 5.2], [12.0, 5.0]]])
    state = WorldState(pos, torch.zeros_like(pos), torch.zeros(1, world.latent_dim))
    ei = full(5)
    before = (state.pos[0, 4] - state.pos[0, :4].mean(0)).norm()
    for _ in range(5):
        state = world.step(state, torch.zeros(5, 2), ei)
    after = (state.pos[0, 4] - state.pos[0, :4].mean(0)).norm()
    assert after < before - 0.1
    assert state.vel[0, 4, 0] < 0  # moving left, towards the group


def test_separation_pushes_overlapping_agents_apart():
    world = SwarmWorld(2, arena_size=10.0, cohesion=0.0, alignment=0.0)
    pos = torch.tensor([[[5.0, 5.0], [5.1, 5.0]]])
    state = WorldState(pos, torch.zeros_like(pos), torch.zeros(1, world.latent_dim))
    ei = full(2)
    for _ in range(3):
        state = world.step(state, torch.zeros(2, 2), ei)
    assert (state.pos[0, 1] - state.pos[0, 0]).norm() > 0.1 + 0.05


def test_actions_move_agents_and_are_differentiable():
    world = SwarmWorld(4, separation=0.0, cohesion=0.0, alignment=0.0)
    state = world.reset(2, generator=torch.Generator().manual_seed(0))
    state = state._replace(vel=torch.zeros_like(state.vel), pos=torch.full_like(state.pos, world.arena_size / 2))
    action = torch.zeros(8, 2, requires_grad=True)
    nxt = world.step(state, action + torch.tensor([1.0, 0.0]), full(4).repeat(1, 1))
    assert (nxt.pos[..., 0] > state.pos[..., 0]).all()
    world.dispersion(nxt).sum().backward()
    assert action.grad is not None


def test_observation_is_partial_and_noisy(generator):
    world = SwarmWorld(6, latent_dim=4, view_size=1, obs_noise=0.1)
    state = world.reset(3, generator=generator)
    obs = world.observe(state, world.sample_noise(1, 3, generator=generator)[0]).view(3, 6, -1)
    assert obs.shape[-1] == world.obs_dim == 12
    view, mask = obs[..., 4:8], obs[..., 8:]
    assert torch.equal(mask.sum(-1), torch.ones(3, 6))  # one factor each
    assert torch.equal(view[mask == 0], torch.zeros_like(view[mask == 0]))
    seen = view[mask == 1].view(3, 6)
    truth = state.latent.unsqueeze(1).expand(3, 6, 4)[mask == 1].view(3, 6)
    assert 0 < (seen - truth).abs().max() < 0.6
    # every factor is seen by someone, nobody sees everything
    assert (world.view_mask.sum(0) > 0).all() and (world.view_mask.sum(1) < 4).all()


def test_reward_prefers_a_tight_swarm():
    world = SwarmWorld(4)
    tight = WorldState(
        torch.full((1, 4, 2), 3.0) + 0.01 * torch.arange(8.0).view(1, 4, 2), torch.zeros(1, 4, 2), torch.zeros(1, 4)
    )
    loose = WorldState(
        torch.tensor([[[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 4.0]]]), torch.zeros(1, 4, 2), torch.zeros(1, 4)
    )
    assert world.reward(tight) > world.reward(loose)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(num_agents=1), ValueError, "num_agents must be >= 2"),
        (dict(num_agents=4.0), TypeError, "num_agents"),
        (dict(num_agents=4, latent_dim=2, view_size=3), ValueError, "view_size must be in"),
        (dict(num_agents=4, dt=0.0), ValueError, "dt must be finite and > 0"),
        (dict(num_agents=4, obs_noise=-1.0), ValueError, "obs_noise must be finite and >= 0"),
        (dict(num_agents=4, arena_size=-2.0), ValueError, "arena_size"),
    ],
)
def test_world_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        SwarmWorld(**kwargs)


def test_reset_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        SwarmWorld(4).reset(0)


def test_step_bad_action_and_edge_index():
    world = SwarmWorld(4)
    state = world.reset(2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="action must have shape"):
        world.step(state, torch.zeros(8, 3), full(4))
    with pytest.raises(ValueError, match="edge_index must be a long tensor"):
        world.step(state, torch.zeros(8, 2), full(4).float())


@pytest.mark.parametrize("latent_dim, k", [(4, 1), (4, 5), (6, 3), (12, 2)])
def test_reference_errors_match_an_oracle_estimator_on_sampled_worlds(latent_dim, k):
    from benchmarks.learning import oracle_errors

    world = SwarmWorld(10, latent_dim=latent_dim, obs_noise=0.3)
    analytic = world.reference_errors(k)
    oracle = oracle_errors(world, k, episodes=20000, seed=1)
    assert oracle["own_view"] == pytest.approx(analytic["own_view"], rel=0.03)
    assert oracle["floor"] == pytest.approx(analytic["floor"], rel=0.05, abs=2e-3)
    assert 0 <= analytic["floor"] < analytic["own_view"] <= 1


def test_reference_errors_by_hand():
    # L=4, N=10, sigma=0.1, one reading: own view (0.01/1.01 + 3)/4; factors 0, 1 seen by 3 agents, 2, 3 by 2
    errors = SwarmWorld(10, latent_dim=4, obs_noise=0.1).reference_errors(1)
    assert errors["own_view"] == pytest.approx((0.01 / 1.01 + 3) / 4)
    assert errors["floor"] == pytest.approx((2 * 0.01 / 3.01 + 2 * 0.01 / 2.01) / 4)
    # a factor nobody sees stays at the prior variance 1
    assert SwarmWorld(2, latent_dim=3).reference_errors(5)["floor"] > 1 / 3


def test_message_share_on_hand_made_numbers():
    from gnncomm.world import message_share

    world = SwarmWorld(10, latent_dim=4, obs_noise=0.0)  # own view 0.75, floor 0
    assert message_share(world, 5, 0.75) == pytest.approx(0.0)
    assert message_share(world, 5, 0.0) == pytest.approx(1.0)
    assert message_share(world, 5, 0.375) == pytest.approx(0.5)
    assert message_share(world, 5, 1.5) == pytest.approx(-1.0)  # worse than one's own view
    assert message_share(object(), 5, 0.1) is None


def test_swarm_world_implements_the_world_protocol_and_the_registry_builds_it():
    from gnncomm import Config
    from gnncomm.world import World, build_world, register_world, world_names

    assert isinstance(SwarmWorld(4), World)
    assert isinstance(build_world(Config()), SwarmWorld) and "swarm" in world_names()
    with pytest.raises(ValueError, match="registered worlds"):
        build_world(Config(world="nowhere"))
    with pytest.raises(TypeError, match="callable"):
        register_world("bad", 3)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(obs_noise="0.1"), TypeError, "obs_noise"),
        (dict(dt=float("inf")), ValueError, "dt"),
        (dict(damping=float("nan")), ValueError, "damping"),
        (dict(arena_size=float("inf")), ValueError, "arena_size"),
        (dict(max_speed=0.0), ValueError, "max_speed"),
        (dict(cohesion=True), TypeError, "cohesion"),
    ],
)
def test_world_parameters_are_checked_with_one_line_errors_naming_them(kwargs, error, match):
    with pytest.raises(error, match=match):
        SwarmWorld(4, **kwargs)


@pytest.mark.parametrize("bad", [-1, 8])
def test_step_rejects_edge_indices_outside_the_batch(bad):
    world = SwarmWorld(4)
    state = world.reset(2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"edge_index must hold node indices in \[0, B \* N - 1 = 7\]"):
        world.step(state, torch.zeros(8, 2), torch.tensor([[0, bad], [1, 2]]))


def test_an_installed_package_names_its_world_through_the_entry_point_group(monkeypatch):
    from importlib import metadata

    import gnncomm.world as world_mod

    point = metadata.EntryPoint(name="Twin", value="gnncomm.world:SwarmWorld", group=world_mod.ENTRY_POINT_GROUP)
    monkeypatch.setattr(
        metadata, "entry_points", lambda group=None: [point] if group == world_mod.ENTRY_POINT_GROUP else []
    )
    monkeypatch.setattr(world_mod, "resolve_factory", lambda path: lambda cfg: SwarmWorld(cfg.num_agents))
    assert isinstance(world_mod.build_world(Config(world="twin", num_agents=3)), SwarmWorld)
    with pytest.raises(ValueError, match=r"registered worlds \['swarm', 'vmas', .*'twin'\]"):
        world_mod.build_world(Config(world="nowhere"))


def test_a_world_import_path_that_does_not_resolve_is_one_line_naming_it():
    for path, says in (
        ("no_such_module_xyz:make", "cannot import 'no_such_module_xyz'"),
        ("gnncomm.world:no_such_factory", "has no attribute 'no_such_factory'"),
        ("gnncomm.world:ENTRY_POINT_GROUP", "names a str, not a callable factory"),
    ):
        with pytest.raises(ValueError, match=re.escape(says)):
            build_world(Config(world=path))


def test_the_swarms_agent_rewards_are_each_agents_share_of_its_reward():
    world = SwarmWorld(6, latent_dim=2)
    state = world.reset(4, generator=torch.Generator().manual_seed(0))
    shares = world.agent_rewards(state)
    assert shares.shape == (4, 6) and (shares <= 0).all()
    assert torch.allclose(shares.mean(-1), world.reward(state))
    far = state._replace(pos=state.pos.clone())
    far.pos[:, 0] += 100.0  # agent 0 leaves the group: its own share falls
    assert (world.agent_rewards(far)[:, 0] < world.agent_rewards(state)[:, 0]).all()
