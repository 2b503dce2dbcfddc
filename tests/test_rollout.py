"""gnncomm.rollout: episodes, the losses of a rollout, activation recomputation and the action hooks."""

from types import SimpleNamespace

import pytest
import torch

from gnncomm import CommSystem, Config
from gnncomm.config import PRESETS
from gnncomm.nn.gumbel import sample_gumbel
from gnncomm.rollout import (
    RECOMPUTE_MIN_AGENTS,
    LazyGumbel,
    make_graph_fn,
    no_actions,
    random_actions,
    recompute_steps,
    rollout,
    sample_episode,
)
from gnncomm.world import build_world


def setup(**overrides):
    cfg = Config(**{**PRESETS["tiny"], **overrides})
    world = build_world(cfg)
    torch.manual_seed(0)
    system = CommSystem.from_config(cfg, world.obs_dim)
    episode = sample_episode(world, cfg, 6, generator=torch.Generator().manual_seed(1), device="cpu")
    graph_fn = make_graph_fn(cfg.topology, cfg.k_neighbors, cfg.num_agents, 6, device="cpu")
    return cfg, world, system, episode, graph_fn


@pytest.mark.parametrize("shared", [True, False])
def test_recomputing_steps_gives_the_same_loss_and_every_gradient(shared):
    grads = {}
    for mode in ("false", "true"):
        cfg, world, system, episode, graph_fn = setup(recompute_steps=mode, shared_params=shared)
        loss, logs, _ = rollout(system, world, episode, graph_fn, cfg, 1.5)
        loss.backward()
        grads[mode] = (loss.detach(), {n: p.grad.clone() for n, p in system.named_parameters() if p.grad is not None})
    (loss_a, a), (loss_b, b) = grads["false"], grads["true"]
    assert torch.equal(loss_a, loss_b)
    assert a.keys() == b.keys() and len(a) > 10
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-6, atol=1e-8, msg=name)


def test_lazy_gumbel_draws_the_full_tensor_step_by_step_and_leaves_the_generator_where_it_would():
    shape = (4, 12, 3, 7)
    full_gen, lazy_gen = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    full = sample_gumbel(shape, generator=full_gen)
    lazy = LazyGumbel(lazy_gen, shape, "cpu")
    assert len(lazy) == 4 and repr(lazy) == "LazyGumbel(shape=[4, 12, 3, 7], rows=(0, 12), device=cpu)"
    assert torch.equal(torch.rand(5, generator=full_gen), torch.rand(5, generator=lazy_gen))
    for t in (2, 0, 3, 1, 2):  # any order, any number of times
        assert torch.equal(lazy[t], full[t])
    rows = lazy.narrow(1, 3, 6).narrow(1, 2, 4)  # as the trainer takes a rank's share, twice
    assert torch.equal(rows[1], full[1].narrow(0, 5, 4))
    assert rows[1].untyped_storage().nbytes() == 4 * 3 * 7 * 4  # a rank keeps its rows only
    with pytest.raises(ValueError, match="narrow takes rows of dim 1 within"):
        lazy.narrow(1, 10, 5)


@pytest.mark.parametrize("recompute", ["false", "true"])
def test_a_lazy_episode_gives_the_same_loss_and_gradients_and_is_drawn_again_when_recomputed(recompute, monkeypatch):
    calls = []
    draw = LazyGumbel.__getitem__
    monkeypatch.setattr(LazyGumbel, "__getitem__", lambda self, t: calls.append(t) or draw(self, t))
    results = {}
    for lazy in (False, True):
        cfg, world, system, _, graph_fn = setup(recompute_steps=recompute)
        generator = torch.Generator().manual_seed(1)
        episode = sample_episode(world, cfg, 6, generator=generator, device="cpu", lazy_gumbel=lazy)
        assert isinstance(episode.gumbel, LazyGumbel) == lazy
        loss, _, _ = rollout(system, world, episode, graph_fn, cfg, 1.5)
        forward_calls = len(calls)
        loss.backward()
        grads = {n: p.grad for n, p in system.named_parameters() if p.grad is not None}
        results[lazy] = (loss.detach(), grads, torch.rand(3, generator=generator))
    (loss_a, a, next_a), (loss_b, b, next_b) = results[False], results[True]
    assert torch.equal(loss_a, loss_b) and torch.equal(next_a, next_b)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-6, atol=1e-8, msg=name)
    T = cfg.timesteps
    # Recomputed, each step's noise is drawn again in the backward instead of being kept.
    assert forward_calls == T and len(calls) == (2 * T if recompute == "true" else T)


def test_lazy_gumbel_refuses_a_generator_that_does_not_draw_serially():
    cuda_like = SimpleNamespace(device=torch.device("cuda", 0))  # only its device is read before the check
    with pytest.raises(ValueError, match="LazyGumbel needs a CPU generator"):
        LazyGumbel(cuda_like, (2, 3, 4, 5), "cpu")


def test_recompute_auto_switches_on_at_the_documented_size():
    cfg = Config(recompute_steps="auto")
    assert not recompute_steps(cfg, RECOMPUTE_MIN_AGENTS - 1) and recompute_steps(cfg, RECOMPUTE_MIN_AGENTS)
    assert recompute_steps(Config(recompute_steps="on"), 10) and not recompute_steps(
        Config(recompute_steps="false"), 10**9
    )
    with pytest.raises(ValueError, match="recompute_steps must be one of"):
        Config(recompute_steps="sometimes")


def test_switched_off_and_random_actions_move_the_swarm_differently_on_the_same_episode():
    cfg, world, system, episode, graph_fn = setup()
    logs = {}
    for name, act in (
        ("trained", None),
        ("off", no_actions),
        ("random", random_actions(3)),
        ("again", random_actions(3)),
    ):
        with torch.no_grad():
            logs[name] = rollout(system, world, episode, graph_fn, cfg, 1.0, act=act)[1]["dispersion"]
    assert logs["random"] == logs["again"]  # seeded
    assert len({float(logs[k]) for k in ("trained", "off", "random")}) == 3


def test_language_losses_do_not_reach_the_actions_unless_asked():
    for mode, reaches in (("reward", False), ("all", True)):
        cfg, world, system, episode, graph_fn = setup(actions_learn_from=mode, cluster_weight=0.0)
        loss, _, _ = rollout(system, world, episode, graph_fn, cfg, 1.0)
        loss.backward()
        head = [p.grad for p in system.action_head.parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in head) == reaches, mode


def test_the_vocabulary_terms_add_their_weights_times_the_logged_values_to_the_loss():
    losses = {}
    for weights in ((0.0, 0.0), (0.5, 0.0), (0.0, 2.0)):
        cfg, world, system, episode, graph_fn = setup(vocab_weight=weights[0], vocab_align_weight=weights[1])
        losses[weights], logs, _ = rollout(system, world, episode, graph_fn, cfg, 1.0)
    entropy, position = logs["vocab_term"], logs["vocab_align_term"]
    assert 0.0 < float(entropy) <= 1.0 and 0.0 < float(position) < float(entropy)
    torch.testing.assert_close(losses[0.5, 0.0] - losses[0.0, 0.0], 0.5 * entropy)
    torch.testing.assert_close(losses[0.0, 2.0] - losses[0.0, 0.0], 2.0 * position)


def test_with_recomputation_the_vocabulary_terms_keep_no_per_message_tensor_for_the_backward():
    saved = {}
    for weights in ((0.0, 0.0), (0.05, 0.15)):
        cfg, world, system, episode, graph_fn = setup(
            recompute_steps="true", vocab_weight=weights[0], vocab_align_weight=weights[1]
        )
        sizes = []

        def pack(t, sizes=sizes):
            sizes.append(t.numel())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            rollout(system, world, episode, graph_fn, cfg, 1.0)
        saved[weights] = sum(sizes)
    BN, M, V = 6 * cfg.num_agents, cfg.msg_dim, cfg.vocab_size
    # the terms keep only [T, M, V]-sized tensors; a softmax of the messages would be B*N*M*V per step
    assert 0 < saved[0.05, 0.15] - saved[0.0, 0.0] < BN * M * V


def test_the_rollout_graph_of_a_dynamic_topology_does_not_refuse_nan_positions():
    # knn refuses NaN for a user, but a diverged training run must end with NonFiniteLossError, not a usage error
    graph_fn = make_graph_fn("knn", 2, 5, 2, device="cpu")
    pos = torch.rand(2, 5, 2, generator=torch.Generator().manual_seed(0))
    pos[0, 1] = float("nan")
    edge_index = graph_fn(pos)
    assert edge_index.shape == (2, 2 * 5 * 2)
    assert int(edge_index.min()) >= 0 and int(edge_index.max()) < 2 * 5
