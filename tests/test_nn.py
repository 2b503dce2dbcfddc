import pytest
import torch
import torch.nn.functional as F

from gnncomm.nn import (
    ActionHead,
    AgentLinear,
    AgentLSTMCell,
    AttentionDecoder,
    LSTMEncoder,
    MessageAttention,
    ValueHead,
    WorldEstimator,
    gumbel_softmax_sample,
)
from gnncomm.topology import batch_edge_index, full, knn

V, M, D, H = 8, 3, 16, 4


def one_hot_messages(n, generator):
    return F.one_hot(torch.randint(0, V, (n, M), generator=generator), V).float()


def layer_inputs(n=6, generator=None):
    generator = generator or torch.Generator().manual_seed(0)
    x = torch.randn(n, D, generator=generator)
    msg = one_hot_messages(n, generator)
    pos = torch.rand(n, 2, generator=generator)
    return x, msg, knn(pos, 3)


# ---------------------------------------------------------------- Gumbel
def test_gumbel_eval_is_exact_argmax_one_hot(generator):
    logits = torch.randn(50, M, V, generator=generator)
    y = gumbel_softmax_sample(logits, 0.5, training=False)
    assert torch.equal(y, F.one_hot(logits.argmax(-1), V).float())


def test_gumbel_training_forward_is_one_hot_with_gradient(generator):
    logits = torch.randn(50, M, V, generator=generator, requires_grad=True)
    y = gumbel_softmax_sample(logits, 1.0, training=True, generator=generator)
    assert torch.equal(y.sum(-1), torch.ones(50, M))
    assert set(y.unique().tolist()) == {0.0, 1.0}
    (y * torch.randn(V, generator=generator)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_gumbel_noise_is_seeded():
    logits = torch.zeros(100, V)
    a = gumbel_softmax_sample(logits, generator=torch.Generator().manual_seed(3))
    b = gumbel_softmax_sample(logits, generator=torch.Generator().manual_seed(3))
    c = gumbel_softmax_sample(logits, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


# ---------------------------------------------------------------- MessageAttention
def test_message_attention_shapes_and_repr():
    layer = MessageAttention(D, 32, V, M, heads=H)
    x, msg, ei = layer_inputs()
    out, (ei_out, alpha) = layer(x, msg, ei, return_attention_weights=True)
    assert out.shape == (6, 32)
    assert alpha.shape == (ei.size(1), H)
    assert ei_out is ei
    assert layer(x, msg, ei).shape == (6, 32)
    assert repr(layer) == "MessageAttention(16, 32, heads=4, vocab=8, msg_dim=3, dense='auto')"
    assert repr(MessageAttention(D, 32, V, M, dense="never")).endswith("msg_dim=3, dense='never')")


def test_attention_weights_are_a_distribution_per_receiver_and_head():
    layer = MessageAttention(D, D, V, M, heads=H)
    x, msg, ei = layer_inputs(n=12)
    _, (_, alpha) = layer(x, msg, ei, return_attention_weights=True)
    assert (alpha >= 0).all() and (alpha <= 1).all()
    sums = torch.zeros(12, H).index_add_(0, ei[1], alpha)
    assert torch.allclose(sums, torch.ones(12, H), atol=1e-6)


def test_node_permutation_equivariance():
    layer = MessageAttention(D, D, V, M, heads=H)
    x, msg, ei = layer_inputs(n=10)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(1))
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(10)
    out = layer(x, msg, ei)
    out_perm = layer(x[perm], msg[perm], inv[ei])
    assert torch.allclose(out_perm, out[perm], atol=1e-5)


def test_edge_order_invariance():
    layer = MessageAttention(D, D, V, M, heads=H)
    x, msg, ei = layer_inputs(n=10)
    shuffled = ei[:, torch.randperm(ei.size(1), generator=torch.Generator().manual_seed(2))]
    assert torch.allclose(layer(x, msg, ei), layer(x, msg, shuffled), atol=1e-5)


def test_receiver_ignores_non_neighbours(generator):
    layer = MessageAttention(D, D, V, M, heads=H)
    x, msg, ei = layer_inputs(n=10)
    receiver = 0
    neighbours = set(ei[0, ei[1] == receiver].tolist())
    outsiders = [j for j in range(10) if j not in neighbours]
    changed = msg.clone()
    changed[outsiders] = one_hot_messages(len(outsiders), generator)
    changed_x = x.clone()
    changed_x[[j for j in outsiders if j != receiver]] += 5.0
    before, after = layer(x, msg, ei), layer(changed_x, changed, ei)
    assert torch.allclose(before[receiver], after[receiver], atol=1e-6)
    # a neighbour's message does matter
    j = next(iter(neighbours))
    changed[j] = F.one_hot((msg[j].argmax(-1) + 1) % V, V).float()
    assert not torch.allclose(before[receiver], layer(x, changed, ei)[receiver])


def test_batched_episodes_equal_episodes_run_alone(generator):
    layer = MessageAttention(D, D, V, M, heads=H)
    B, N = 4, 7
    pos = torch.rand(B, N, 2, generator=generator)
    x = torch.randn(B * N, D, generator=generator)
    msg = one_hot_messages(B * N, generator)
    batched = layer(x, msg, knn(pos, 3))
    for b in range(B):
        alone = layer(x[b * N : (b + 1) * N], msg[b * N : (b + 1) * N], knn(pos[b], 3))
        assert torch.allclose(batched[b * N : (b + 1) * N], alone, atol=1e-5)


def test_empty_edge_index_and_isolated_nodes_get_the_output_bias():
    layer = MessageAttention(D, D, V, M, heads=H)
    x, msg, _ = layer_inputs(n=5)
    empty = torch.empty(2, 0, dtype=torch.long)
    out, (_, alpha) = layer(x, msg, empty, return_attention_weights=True)
    assert alpha.shape == (0, H)
    assert torch.allclose(out, layer.lin_out.bias.expand(5, D))
    ei = torch.tensor([[1, 2], [0, 0]])  # nodes 1..4 hear nobody
    out = layer(x, msg, ei)
    assert torch.allclose(out[1:], layer.lin_out.bias.expand(4, D))
    assert not torch.allclose(out[0], layer.lin_out.bias)


def test_gradients_reach_message_logits_through_straight_through(generator):
    layer = MessageAttention(D, D, V, M, heads=H)
    x, _, ei = layer_inputs(n=8)
    logits = torch.randn(8, M, V, generator=generator, requires_grad=True)
    msg = gumbel_softmax_sample(logits, 1.0, training=True, generator=generator)
    layer(x, msg, ei).pow(2).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_compiled_equals_eager_with_zero_graph_breaks():
    layer = MessageAttention(D, D, V, M, heads=H)
    x, msg, ei = layer_inputs(n=8)
    explanation = torch._dynamo.explain(layer)(x, msg, ei)
    assert explanation.graph_break_count == 0
    compiled = torch.compile(layer, backend="inductor")
    assert torch.allclose(compiled(x, msg, ei), layer(x, msg, ei), atol=1e-5)


# ---------------------------------------------------------------- MessageAttention: the dense path
def run_attention(layer, x, msg, edge_index, **kwargs):
    """Output, attention (or ``None``) and every gradient of a loss that weighs outputs and weights."""
    layer.zero_grad(set_to_none=True)
    x, msg = x.clone().requires_grad_(), msg.clone().requires_grad_()
    alpha = None
    if kwargs.get("return_attention_weights"):
        out, (_, alpha) = layer(x, msg, edge_index, **kwargs)
    else:
        out = layer(x, msg, edge_index, **kwargs)
    loss = out.pow(2).sum()
    if alpha is not None:  # each edge's weight enters the loss with its own factor
        loss = loss + (alpha * torch.linspace(-1.0, 1.0, alpha.numel()).view_as(alpha)).sum()
    loss.backward()
    grads = [x.grad, msg.grad] + [p.grad if p.grad is not None else torch.zeros_like(p) for p in layer.parameters()]
    return out.detach(), None if alpha is None else alpha.detach(), grads


def assert_paths_agree(layer, x, msg, edge_index, mode, num_agents, return_attention_weights=True):
    """``layer`` with ``dense=mode`` and ``num_agents`` equals the sparse path on outputs, weights, gradients."""
    kwargs = dict(return_attention_weights=return_attention_weights)
    layer.dense = "never"
    ref = run_attention(layer, x, msg, edge_index, **kwargs)
    layer.dense = mode
    got = run_attention(layer, x, msg, edge_index, num_agents=num_agents, **kwargs)
    assert torch.allclose(got[0], ref[0], atol=1e-5)
    if return_attention_weights:
        assert got[1].shape == ref[1].shape == (edge_index.size(1), layer.heads)
        assert torch.allclose(got[1], ref[1], atol=1e-5)
    for g, r in zip(got[2], ref[2]):
        assert torch.allclose(g, r, atol=1e-5)


def dense_case(name, B, N, generator):
    """A graph of ``B`` episodes of ``N`` agents and the path ``dense="auto"`` must pick for it."""
    complete = batch_edge_index(full(N), N, B)
    if name == "full":
        return complete, "complete"
    if name == "full_shuffled":  # complete in any edge order
        return complete[:, torch.randperm(complete.size(1), generator=generator)], "complete"
    if name == "knn_complete":  # k = N - 1: complete, in distance order
        return knn(torch.rand(B, N, 2, generator=generator), N - 1), "complete"
    if name == "isolated":  # dense enough, not complete; agent 1 of episode 0 hears no one
        ei = knn(torch.rand(B, N, 2, generator=generator), N - 2)
        return ei[:, ei[1] != 1], "masked"
    raise ValueError(name)


@pytest.mark.parametrize("heads", [1, 4])
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("graph", ["full", "full_shuffled", "knn_complete", "isolated"])
def test_dense_path_equals_sparse_path_on_outputs_weights_and_gradients(graph, B, heads, generator):
    N = 7
    layer = MessageAttention(D, D, V, M, heads=heads)
    edge_index, path = dense_case(graph, B, N, generator)
    assert layer.select_path(B * N, edge_index.size(1), N) == path
    x, msg = torch.randn(B * N, D, generator=generator), one_hot_messages(B * N, generator)
    assert_paths_agree(layer, x, msg, edge_index, "auto", N)
    assert_paths_agree(layer, x, msg, edge_index, "always", N)  # the masked path on every graph


@pytest.mark.parametrize("heads", [1, 4])
@pytest.mark.parametrize("graph", ["full", "isolated"])
def test_dense_path_without_weights_runs_sdpa_and_equals_sparse_path(graph, heads, generator):
    B, N = 3, 6
    layer = MessageAttention(D, D, V, M, heads=heads)
    edge_index, _ = dense_case(graph, B, N, generator)
    x, msg = torch.randn(B * N, D, generator=generator), one_hot_messages(B * N, generator)
    for mode in ("auto", "always"):
        assert_paths_agree(layer, x, msg, edge_index, mode, N, return_attention_weights=False)


def test_forced_dense_path_counts_parallel_edges_and_self_loops_like_the_sparse_path(generator):
    B, N = 2, 5
    layer = MessageAttention(D, D, V, M, heads=H, dense="always")
    ring = torch.tensor([[1, 2, 3, 4, 0], [0, 1, 2, 3, 4]])
    extra = torch.tensor([[1, 1, 2, 3], [0, 0, 2, 0]])  # edge 1 -> 0 three times, a self-loop 2 -> 2
    edge_index = batch_edge_index(torch.cat([ring, extra], dim=1), N, B)
    x, msg = torch.randn(B * N, D, generator=generator), one_hot_messages(B * N, generator)
    assert_paths_agree(layer, x, msg, edge_index, "always", N)


def test_forced_dense_path_on_empty_graph_and_one_episode(generator):
    layer = MessageAttention(D, D, V, M, heads=H, dense="always")
    x, msg, ei = layer_inputs(n=6, generator=generator)
    empty = torch.empty(2, 0, dtype=torch.long)
    out, (_, alpha) = layer(x, msg, empty, return_attention_weights=True, num_agents=3)
    assert alpha.shape == (0, H)
    assert torch.allclose(out, layer.lin_out.bias.expand(6, D))
    assert_paths_agree(layer, x, msg, ei, "always", None)  # no num_agents: all nodes one episode


def test_select_path_decides_from_sizes_alone():
    layer = MessageAttention(D, D, V, M)
    B, N = 4, 10
    assert layer.select_path(B * N, B * N * (N - 1)) == "sparse"  # no num_agents: no promise, no dense
    assert layer.select_path(B * N, B * N * (N - 1), N) == "complete"
    assert layer.select_path(B * N, B * N * N // 2, N) == "masked"  # DENSE_MIN_DENSITY of the pairs
    assert layer.select_path(B * N, B * N * N // 2 - 1, N) == "sparse"
    assert layer.select_path(B * N, 0, N) == "sparse"
    assert layer.select_path(B * N, 0, 1) == "sparse"  # one agent per episode: nobody to hear
    assert layer.select_path(0, 0, N) == "sparse"
    layer.dense = "never"
    assert layer.select_path(B * N, B * N * (N - 1), N) == "sparse"
    layer.dense = "always"
    assert layer.select_path(B * N, 3, N) == layer.select_path(B * N, 3) == "masked"


def test_full_topology_training_graph_takes_the_complete_path(generator):
    from gnncomm.rollout import make_graph_fn

    B, N = 3, 5
    edge_index = make_graph_fn("full", 4, N, B, device="cpu")(torch.rand(B, N, 2, generator=generator))
    assert MessageAttention(D, D, V, M).select_path(B * N, edge_index.size(1), N) == "complete"


def test_num_agents_and_dense_mode_are_checked():
    layer = MessageAttention(D, D, V, M, heads=H)
    x, msg, ei = layer_inputs(n=6)
    with pytest.raises(ValueError, match="num_agents must divide num_nodes"):
        layer(x, msg, ei, num_agents=4)
    with pytest.raises(ValueError, match="num_agents must be an int >= 1"):
        layer(x, msg, ei, num_agents=0)
    with pytest.raises(ValueError, match="dense must be one of"):
        MessageAttention(D, D, V, M, dense="sometimes")


@pytest.mark.parametrize("graph", ["full", "isolated"])
def test_dense_path_has_zero_graph_breaks(graph, generator):
    B, N = 2, 5
    layer = MessageAttention(D, D, V, M, heads=H)
    edge_index, _ = dense_case(graph, B, N, generator)
    x, msg = torch.randn(B * N, D, generator=generator), one_hot_messages(B * N, generator)
    for weights in (True, False):
        explanation = torch._dynamo.explain(layer)(x, msg, edge_index, weights, num_agents=N)
        assert explanation.graph_break_count == 0


def test_dense_path_compiled_equals_eager(generator):
    B, N = 2, 5
    layer = MessageAttention(D, D, V, M, heads=H)
    edge_index = batch_edge_index(full(N), N, B)
    x, msg = torch.randn(B * N, D, generator=generator), one_hot_messages(B * N, generator)
    compiled = torch.compile(layer, backend="inductor")
    out, (_, alpha) = compiled(x, msg, edge_index, True, num_agents=N)
    ref, (_, ref_alpha) = layer(x, msg, edge_index, True, num_agents=N)
    assert torch.allclose(out, ref, atol=1e-5) and torch.allclose(alpha, ref_alpha, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(in_channels=D, out_channels=30, vocab_size=V, msg_dim=M, heads=4), "heads must divide"),
        (dict(in_channels=D, out_channels=D, vocab_size=1, msg_dim=M), "vocab_size must be >= 2"),
        (dict(in_channels=D, out_channels=D, vocab_size=V, msg_dim=0), "msg_dim must be >= 1"),
        (dict(in_channels=-3, out_channels=D, vocab_size=V, msg_dim=M), "in_channels must be >= 1"),
        (dict(in_channels=D, out_channels=D, vocab_size=V, msg_dim=M, heads=0), "heads must be >= 1"),
    ],
)
def test_message_attention_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MessageAttention(**kwargs)


def test_message_attention_wrong_types():
    with pytest.raises(TypeError, match="vocab_size"):
        MessageAttention(D, D, 8.0, M)


# ---------------------------------------------------------------- per-agent parameters
def test_agent_linear_per_agent_equals_a_loop_over_agents(generator):
    A, B = 5, 3
    lin = AgentLinear(4, 6, num_agents=A, shared=False)
    x = torch.randn(B * A, 4, generator=generator)
    out = lin(x)
    for a in range(A):
        rows = torch.arange(B) * A + a
        expected = x[rows] @ lin.weight[a] + lin.bias[a]
        assert torch.allclose(out[rows], expected, atol=1e-6)


def test_agent_lstm_cell_matches_torch_lstm_cell(generator):
    cell = AgentLSTMCell(5, 7)
    ref = torch.nn.LSTMCell(5, 7)
    W, b = cell.gates.weight[0], cell.gates.bias[0]
    with torch.no_grad():
        ref.weight_ih.copy_(W[:5].T)
        ref.weight_hh.copy_(W[5:].T)
        ref.bias_ih.copy_(b)
        ref.bias_hh.zero_()
    x, h, c = (torch.randn(4, n, generator=generator) for n in (5, 7, 7))
    ours, theirs = cell(x, (h, c)), ref(x, (h, c))
    assert torch.allclose(ours[0], theirs[0], atol=1e-6) and torch.allclose(ours[1], theirs[1], atol=1e-6)


@pytest.mark.parametrize("shared", [True, False])
def test_agent_modules_shapes(shared, generator):
    A, B, obs = 4, 3, 9
    enc = LSTMEncoder(obs, D, D, V, M, A, shared, agent_embedding_dim=4)
    state = (torch.zeros(B * A, D), torch.zeros(B * A, D))
    msg, logits, (h, c) = enc(
        torch.randn(B * A, obs, generator=generator), torch.zeros(B * A, D), state, generator=generator
    )
    assert msg.shape == logits.shape == (B * A, M, V) and h.shape == (B * A, D)
    assert AttentionDecoder(V, M, obs, D, 4, A, shared)(msg).shape == (B * A, obs)
    action = ActionHead(D, D, 2, A, shared)(h)
    assert action.shape == (B * A, 2) and action.abs().max() <= 1
    pred, _ = WorldEstimator(D, D, 3, A, shared)(h, state)
    assert pred.shape == (B * A, 3)
    assert repr(enc) == f"LSTMEncoder({obs}, {D}, vocab={V}, msg_dim={M}, shared={shared})"


@pytest.mark.parametrize("memory", [True, False])
def test_an_encoder_without_memory_ignores_the_state_it_is_given(memory, generator):
    A, B, obs = 3, 2, 5
    enc = LSTMEncoder(obs, D, D, V, M, A, agent_embedding_dim=4, memory=memory).eval()
    x, context = torch.randn(B * A, obs, generator=generator), torch.randn(B * A, D, generator=generator)
    fresh = enc(x, context, (torch.zeros(B * A, D), torch.zeros(B * A, D)))
    carried = enc(x, context, (torch.randn(B * A, D, generator=generator), torch.randn(B * A, D, generator=generator)))
    same = all(torch.equal(a, b) for a, b in zip((fresh[1], *fresh[2]), (carried[1], *carried[2])))
    assert same is not memory  # with memory the state changes the logits and the new state; without, nothing
    assert repr(enc).endswith("shared=True)" if memory else "shared=True, memory=False)")


@pytest.mark.parametrize("embed", [False, True])
def test_value_head_pools_its_episode_whatever_the_agents_order(embed, generator):
    A, B, C = 4, 3, 9
    head = ValueHead(C, D, A, embed=embed)
    x = torch.randn(B * A, C, generator=generator)
    value = head(x)
    assert value.shape == (B * A,)
    assert repr(head) == (f"ValueHead({C}, num_agents={A}, embed=True)" if embed else f"ValueHead({C}, num_agents={A})")
    # the team term is a mean: reordering the other agents of an episode leaves each agent's value as it was
    order = torch.tensor([0, 2, 3, 1])
    permuted = x.view(B, A, C)[:, order].reshape(B * A, C)
    torch.testing.assert_close(head(permuted).view(B, A), value.view(B, A)[:, order])
    # and another episode's agents do not enter it
    other = x.clone()
    other[A:] = torch.randn(other[A:].shape, generator=generator)
    torch.testing.assert_close(head(other)[:A], value[:A])


def test_message_attention_bad_inputs():
    layer = MessageAttention(D, D, V, M, heads=H)
    x, msg, ei = layer_inputs(n=6)
    with pytest.raises(ValueError, match="message must be one-hot of shape"):
        layer(x, msg[:, :2], ei)
    with pytest.raises(TypeError, match="message must be a floating-point"):
        layer(x, msg.long(), ei)
    with pytest.raises(ValueError, match="x must have shape"):
        layer(x[:, :5], msg, ei)
    with pytest.raises(ValueError, match="edge_index must have shape"):
        layer(x, msg, ei[0])
    with pytest.raises(TypeError, match="edge_index must be torch.long"):
        layer(x, msg, ei.int())
    with pytest.raises(ValueError, match=r"symbols must be message.argmax\(-1\), of shape \[6, 3\], got \[6, 2\]"):
        layer(x, msg, ei, symbols=msg.argmax(-1)[:, :2])
    with pytest.raises(TypeError, match=r"symbols must be message.argmax\(-1\), torch.long, got torch.int32"):
        layer(x, msg, ei, symbols=msg.argmax(-1).int())


@pytest.mark.parametrize("dense", ["never", "always"])
def test_inputs_of_another_dtype_than_the_parameters_are_one_line_naming_the_argument(dense):
    layer = MessageAttention(D, D, V, M, heads=H, dense=dense)
    x, msg, ei = layer_inputs(n=6)
    for args, name, given in (
        ((x.double(), msg, ei), "x", "torch.float64"),
        ((x, msg.double(), ei), "message", "torch.float64"),
    ):
        with pytest.raises(TypeError) as info:
            layer(*args)
        assert str(info.value) == (
            f"{name} must have the dtype of the layer's parameters, torch.float32, got {given} "
            f"(convert it with .to(torch.float32), or the layer with .to({given}))"
        )
    with pytest.raises(TypeError, match=r"^message must have the dtype of the layer's parameters, torch.float64, got"):
        layer.double()(x.double(), msg, ei, symbols=msg.argmax(-1))  # float64 weights, float32 messages: likewise
    assert layer(x.double(), msg.double(), ei).dtype == torch.float64  # a float64 layer takes float64 inputs


def test_mixed_dtypes_under_autocast_are_left_to_autocast_and_the_check_compiles_without_a_graph_break():
    layer = MessageAttention(D, D, V, M, heads=H)
    x, msg, ei = layer_inputs(n=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x.bfloat16(), msg, ei, num_agents=8)  # bf16 states, float32 weights and messages
        assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()

        def under_autocast(x, msg):
            return layer(x, msg.bfloat16(), ei)

        assert torch._dynamo.explain(under_autocast)(x, msg).graph_break_count == 0
    assert torch._dynamo.explain(layer)(x, msg, ei).graph_break_count == 0
    compiled = torch.compile(layer, backend="eager")
    compiled(x, msg, ei)
    with pytest.raises(TypeError, match="^x must have the dtype of the layer's parameters"):
        compiled(x.double(), msg, ei)


@pytest.mark.parametrize("flatten", [True, False])
def test_fused_symbol_projection_equals_embedding_then_linear(flatten, generator):
    from gnncomm.nn import SymbolEmbedding

    embed = SymbolEmbedding(V, M, D)
    linear = torch.nn.Linear(M * D if flatten else D, 12)
    logits = torch.randn(7, M, V, generator=generator, requires_grad=True)
    msg = gumbel_softmax_sample(logits, 1.0, generator=generator)
    ref = linear(embed(msg).flatten(1) if flatten else embed(msg))
    out = embed.project(msg, linear, flatten=flatten)
    assert torch.allclose(out, ref, atol=1e-5)
    (g_ref,) = torch.autograd.grad(ref.pow(2).sum(), logits, retain_graph=True)
    (g_out,) = torch.autograd.grad(out.pow(2).sum(), logits)
    assert torch.allclose(g_out, g_ref, atol=1e-5)


def grads_through(fn, logits, params):
    """``fn()``'s output and the gradients of a fixed loss of it for ``logits`` and every parameter."""
    out = fn()
    weight = torch.linspace(-1, 1, out.numel()).view_as(out)
    grads = torch.autograd.grad((out * weight).pow(2).sum(), [logits, *params], retain_graph=True)
    return out, grads


@pytest.mark.parametrize("flatten", [True, False, None])  # None: SymbolEmbedding.forward
def test_symbol_lookup_equals_the_one_hot_product_with_the_same_gradients(flatten, generator):
    from gnncomm.nn import SymbolEmbedding

    embed = SymbolEmbedding(V, M, D)
    linear = torch.nn.Linear(M * D if flatten else D, 12)
    logits = torch.randn(9, M, V, generator=generator, requires_grad=True)
    msg = gumbel_softmax_sample(logits, 0.7, generator=generator)
    symbols = msg.argmax(-1)
    params = [*embed.parameters(), *linear.parameters()] if flatten is not None else list(embed.parameters())

    def run(sym):
        if flatten is None:
            return lambda: embed(msg, sym)
        return lambda: embed.project(msg, linear, flatten=flatten, symbols=sym)

    out_ref, grads_ref = grads_through(run(None), logits, params)
    out, grads = grads_through(run(symbols), logits, params)
    assert torch.allclose(out, out_ref, atol=1e-6)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        assert torch.allclose(g, g_ref, atol=1e-5)
    assert grads[0].abs().sum() > 0  # the straight-through sample learns through the lookup


@pytest.mark.parametrize("n, msg_dim", [(0, 3), (5, 1), (6, 3)])
def test_symbol_lookup_takes_empty_batches_one_position_and_non_contiguous_messages(n, msg_dim, generator):
    from gnncomm.nn import SymbolEmbedding

    embed = SymbolEmbedding(V, msg_dim, D)
    logits = torch.randn(msg_dim, n, V, generator=generator, requires_grad=True)
    msg = gumbel_softmax_sample(logits, 1.0, generator=generator).transpose(0, 1)  # [n, M, V], not contiguous
    symbols = msg.argmax(-1)
    for flatten in (True, False):
        linear = torch.nn.Linear(msg_dim * D if flatten else D, 12)
        out = embed.project(msg, linear, flatten=flatten, symbols=symbols)
        ref = embed.project(msg.contiguous(), linear, flatten=flatten)
        assert out.shape == ref.shape and torch.allclose(out, ref, atol=1e-6)
        (g,) = torch.autograd.grad(out.pow(2).sum(), logits, retain_graph=True)
        (g_ref,) = torch.autograd.grad(ref.pow(2).sum(), logits, retain_graph=True)
        assert torch.allclose(g, g_ref, atol=1e-5)
    assert torch.allclose(embed(msg, symbols), embed(msg), atol=1e-6)


def test_symbol_lookup_under_bf16_autocast_is_as_close_to_float32_as_the_product(generator):
    from gnncomm.nn import SymbolEmbedding

    embed, linear = SymbolEmbedding(V, M, D), torch.nn.Linear(M * D, 12)
    msg = one_hot_messages(2000, generator).requires_grad_()  # hundreds of rows per symbol to sum up

    def run(symbols, amp):
        embed.zero_grad(), linear.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = embed.project(msg, linear, flatten=True, symbols=symbols)
        (grad_msg,) = torch.autograd.grad(out.float().pow(2).sum(), msg, retain_graph=True)
        out.float().pow(2).sum().backward()
        return [out.detach().float(), grad_msg, embed.symbol.grad.clone(), linear.weight.grad.clone()]

    reference = run(None, amp=False)
    errors = {}
    for name, symbols in (("product", None), ("lookup", msg.argmax(-1))):
        result = run(symbols, amp=True)
        assert result[2].dtype == torch.float32
        errors[name] = [float((r - ref).norm() / ref.norm()) for r, ref in zip(result, reference, strict=True)]
    for lookup, product in zip(errors["lookup"], errors["product"], strict=True):
        assert 0 < lookup < 1.5 * product + 1e-4  # bf16 rounding, no worse than the product's


def test_symbol_lookup_keeps_the_symbols_not_the_message_for_the_backward(generator):
    from gnncomm.nn import SymbolEmbedding

    embed, linear = SymbolEmbedding(V, M, D), torch.nn.Linear(D, 12)
    logits = torch.randn(50, M, V, generator=generator, requires_grad=True)
    msg = gumbel_softmax_sample(logits, 1.0, generator=generator).detach().requires_grad_()

    def saved_shapes(symbols):
        shapes = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: shapes.append(tuple(t.shape)) or t, lambda t: t):
            embed.project(msg, linear, flatten=False, symbols=symbols)
        return shapes

    assert (50 * M, V) in saved_shapes(None) or (50, M, V) in saved_shapes(None)  # the product keeps the message
    kept = saved_shapes(msg.argmax(-1))
    assert (50 * M, V) not in kept and (50, M, V) not in kept
    assert (50 * M, 1) in kept  # the symbols


@pytest.mark.parametrize("dense", ["never", "always"])
def test_attention_and_decoder_with_symbols_equal_them_without(dense, generator):
    B, N = 3, 5
    layer = MessageAttention(D, D, V, M, heads=H, dense=dense)
    decoder = AttentionDecoder(V, M, 6, D, heads=H, num_agents=N)
    x = torch.randn(B * N, D, generator=generator)
    edge_index = knn(torch.rand(B, N, 2, generator=generator), 2)
    logits = torch.randn(B * N, M, V, generator=generator, requires_grad=True)
    msg = gumbel_softmax_sample(logits, 1.0, generator=generator)
    symbols = msg.argmax(-1)
    for module, call in (
        (layer, lambda sym: layer(x, msg, edge_index, num_agents=N, symbols=sym)),
        (decoder, lambda sym: decoder(msg, sym)),
    ):
        params = list(module.parameters())
        out_ref, grads_ref = grads_through(lambda: call(None), logits, params)  # noqa: B023 (called at once)
        out, grads = grads_through(lambda: call(symbols), logits, params)  # noqa: B023
        assert torch.allclose(out, out_ref, atol=1e-5)
        for g, g_ref in zip(grads, grads_ref, strict=True):
            assert torch.allclose(g, g_ref, atol=1e-5)


def test_attention_and_decoder_with_symbols_compile_with_zero_graph_breaks_and_equal_eager(generator):
    layer = MessageAttention(D, D, V, M, heads=H)
    decoder = AttentionDecoder(V, M, 6, D, heads=H)
    x, msg, ei = layer_inputs(n=8)
    symbols = msg.argmax(-1)
    calls = {
        layer: lambda fn, message: fn(x, message, ei, symbols=symbols),
        decoder: lambda fn, message: fn(message, symbols=symbols),
    }
    for module, call in calls.items():
        assert call(torch._dynamo.explain(module), msg).graph_break_count == 0
        runs = []
        for fn in (module, torch.compile(module, backend="inductor")):
            module.zero_grad(set_to_none=True)
            message = msg.clone().requires_grad_()
            out = call(fn, message)
            out.pow(2).sum().backward()
            runs.append([out.detach(), message.grad, *(p.grad for p in module.parameters())])
        for a, b in zip(*runs, strict=True):
            assert torch.allclose(a, b, atol=1e-5)
