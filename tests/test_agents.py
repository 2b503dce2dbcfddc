import pytest
import torch

from gnncomm import CommSystem, Config, SwarmWorld
from gnncomm.interventions import knockout, shuffle_episodes, silence
from gnncomm.rollout import make_graph_fn, rollout, sample_episode
from gnncomm.topology import knn


def make(shared=True, N=5, B=3):
    world = SwarmWorld(N)
    system = CommSystem(
        N,
        world.obs_dim,
        world.latent_dim,
        vocab_size=8,
        msg_dim=3,
        hidden_dim=16,
        heads=4,
        shared=shared,
        agent_embedding_dim=4,
    )
    state = world.reset(B, generator=torch.Generator().manual_seed(0))
    return world, system, state


@pytest.mark.parametrize("shared", [True, False])
def test_one_step_forward_and_backward(shared):
    world, system, state = make(shared)
    obs = world.observe(state)
    out, nxt = system(obs, system.initial_state(3), knn(state.pos, 2), temperature=1.0)
    assert out.message.shape == (15, 3, 8) and out.recon.shape == obs.shape
    assert out.world_pred.shape == (15, world.latent_dim) and out.action.shape == (15, 2)
    assert out.alpha.shape == (15 * 2, 4) and nxt.enc_h.shape == (15, 16)
    loss = out.recon.pow(2).mean() + out.world_pred.pow(2).mean() + out.action.pow(2).mean()
    loss.backward()
    assert all(p.grad is not None for p in system.parameters())


@pytest.mark.parametrize("critic_input", ["features", "observations"])
def test_only_a_critic_on_observations_keeps_the_value_loss_out_of_the_policy(critic_input):
    world = SwarmWorld(5)
    system = CommSystem(
        5, world.obs_dim, world.latent_dim, vocab_size=8, msg_dim=3, hidden_dim=16, action_std=0.5,
        critic_input=critic_input,
    )  # fmt: skip
    state = world.reset(3, generator=torch.Generator().manual_seed(0))
    out, _ = system(world.observe(state), system.initial_state(3), knn(state.pos, 2), temperature=1.0)
    out.value.pow(2).mean().backward()
    grads = [(name.split(".")[0], p.grad) for name, p in system.named_parameters() if p.grad is not None]
    moved = {module for module, grad in grads if grad.abs().sum() > 0}
    if critic_input == "observations":  # a separate critic: only its own weights move
        assert moved == {"value_head"}
    else:  # one trunk: the value loss reaches what the policy speaks and hears with
        assert {"value_head", "encoder", "attention"} <= moved
    assert repr(system.value_head).endswith("embed=True)") == (critic_input == "observations")


def test_a_system_refuses_an_unknown_critic_input():
    with pytest.raises(ValueError, match=r"critic_input must be one of \['features', 'observations'\], got 'obs'"):
        CommSystem(5, 4, 0, action_std=0.5, critic_input="obs")


def test_per_agent_parameters_differ_across_agents_and_are_batched():
    world, system, state = make(shared=False)
    per_agent = system.per_agent_parameters()
    assert per_agent and all(p.size(0) == 5 for p in per_agent.values())
    assert "encoder.agent_embedding" not in per_agent  # no id embedding needed with own weights
    # Agent 2's output depends only on agent 2's slice: zeroing another agent's slice leaves it unchanged.
    obs = world.observe(state)
    out, _ = system.eval()(obs, system.initial_state(3), knn(state.pos, 2))
    with torch.no_grad():
        system.action_head.mlp[2].weight[3].zero_()
    out2, _ = system(obs, system.initial_state(3), knn(state.pos, 2))
    agent2 = torch.arange(3) * 5 + 2
    assert torch.equal(out.action[agent2], out2.action[agent2])
    assert not torch.equal(out.action[agent2 + 1], out2.action[agent2 + 1])


def test_agent_state_dict_slices_per_agent_weights():
    _, system, _ = make(shared=False)
    sd = system.agent_state_dict(1)
    assert torch.equal(sd["encoder.cell.gates.weight"], system.encoder.cell.gates.weight[1])
    assert sd["attention.lin_query.weight"].shape == system.attention.lin_query.weight.shape
    with pytest.raises(ValueError, match="agent must be in"):
        system.agent_state_dict(5)


def test_interventions():
    world, system, state = make()
    msg = torch.nn.functional.one_hot(
        torch.randint(1, 8, (15, 3), generator=torch.Generator().manual_seed(0)), 8
    ).float()
    assert (silence()(msg).argmax(-1) == 0).all()
    ko = knockout(2, 5)(msg)
    assert (ko.view(3, 5, 3, 8)[:, 2].argmax(-1) == 0).all()
    assert torch.equal(ko.view(3, 5, 3, 8)[:, [0, 1, 3, 4]], msg.view(3, 5, 3, 8)[:, [0, 1, 3, 4]])
    shuffled = shuffle_episodes(5, generator=torch.Generator().manual_seed(1))(msg).view(3, 5, 3, 8)
    original = msg.view(3, 5, 3, 8)
    for b in range(3):  # each episode now holds another episode's messages, agent slots kept
        assert any(torch.equal(shuffled[b], original[c]) for c in range(3) if c != b)


def test_rollout_is_deterministic_and_silence_changes_world_estimates():
    cfg = Config(num_agents=5, k_neighbors=2, vocab_size=8, msg_dim=3, hidden_dim=16, timesteps=3)
    world, system, _ = make()
    graph_fn = make_graph_fn("knn", 2, 5, 3, device="cpu")
    runs = []
    for _ in range(2):
        ep = sample_episode(world, cfg, 3, generator=torch.Generator().manual_seed(7), device="cpu")
        runs.append(rollout(system, world, ep, graph_fn, cfg, 1.0)[1])
    assert runs[0] == runs[1] or all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    ep = sample_episode(world, cfg, 3, generator=torch.Generator().manual_seed(7), device="cpu", training=False)
    system.eval()
    _, real, trace = rollout(system, world, ep, graph_fn, cfg, 1.0, record=True)
    _, quiet, _ = rollout(system, world, ep, graph_fn, cfg, 1.0, silence())
    assert len(trace.outputs) == 3 and not torch.equal(real["world_last"], quiet["world_last"])


@pytest.mark.parametrize("topology, dense", [("full", True), ("knn", False)])
def test_a_system_on_a_complete_graph_takes_the_dense_attention_path(monkeypatch, topology, dense):
    from gnncomm.nn import MessageAttention

    calls = []
    real = MessageAttention._dense_attention

    def spy(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MessageAttention, "_dense_attention", spy)
    cfg = Config(num_agents=10, topology=topology, k_neighbors=4, batch_size=3, timesteps=2)
    world = SwarmWorld(10)
    system = CommSystem.from_config(cfg, world.obs_dim)
    episode = sample_episode(world, cfg, 3, generator=torch.Generator().manual_seed(0), device="cpu")
    graph_fn = make_graph_fn(topology, 4, 10, 3, device="cpu")
    rollout(system, world, episode, graph_fn, cfg)
    assert bool(calls) == dense
