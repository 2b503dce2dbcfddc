import pytest
import torch

from gnncomm.topology import full, knn
from gnncomm.world import SwarmWorld, WorldState


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
    obs = world.observe(state, world.sample_obs_noise(3, generator=generator)).view(3, 6, -1)
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
    tight = WorldState(torch.full((1, 4, 2), 3.0) + 0.01 * torch.arange(8.0).view(1, 4, 2),
                       torch.zeros(1, 4, 2), torch.zeros(1, 4))
    loose = WorldState(torch.tensor([[[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 4.0]]]), torch.zeros(1, 4, 2),
                       torch.zeros(1, 4))
    assert world.reward(tight) > world.reward(loose)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(num_agents=1), ValueError, "num_agents must be >= 2"),
    (dict(num_agents=4.0), TypeError, "num_agents"),
    (dict(num_agents=4, latent_dim=2, view_size=3), ValueError, "view_size must be in"),
    (dict(num_agents=4, dt=0.0), ValueError, "dt must be > 0"),
    (dict(num_agents=4, obs_noise=-1.0), ValueError, "obs_noise must be >= 0"),
    (dict(num_agents=4, arena_size=-2.0), ValueError, "arena_size"),
])
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
