"""GPU-only paths: skipped on a CPU-only machine, run on a CUDA one (`python -m pytest tests/test_cuda.py`)."""

import math

import pytest
import torch

import gnncomm
import gnncomm.trainer as trainer_mod
from gnncomm import Config
from gnncomm.config import PRESETS
from gnncomm.nn import MessageAttention
from gnncomm.topology import knn

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def tiny(**overrides):
    return Config(**{**PRESETS["tiny"], "eval_episodes": 8, "device": "cuda", **overrides})


@pytest.mark.parametrize("amp, compile", [("none", "false"), ("bf16", "false"), ("fp16", "false"), ("bf16", "true")])
def test_training_on_cuda(tmp_path, amp, compile):
    result = gnncomm.train(tiny(amp=amp, compile=compile), tmp_path, progress=False)
    assert result.step == 20 and all(math.isfinite(r["loss"]) for r in result.history)
    assert math.isfinite(result.ablation["world_mse"])


def test_cuda_graphs_train_like_the_eager_step(tmp_path):
    losses = {}
    for name, overrides in (
        ("eager", {"compile": "false"}),
        ("graphs", {"compile": "true", "compile_mode": "reduce-overhead"}),
    ):
        torch._dynamo.reset()
        result = gnncomm.train(
            tiny(amp="none", steps=6, log_every=1, **overrides), tmp_path / name, progress=False, evaluate=False
        )
        losses[name] = [row["loss"] for row in result.history]
        if name == "graphs":  # Inductor falls back to plain compiled code, silently, when it skips CUDA graphs
            assert not torch._dynamo.utils.counters["inductor"]["cudagraph_skips"]
    # Adam amplifies float-order differences in near-zero gradients: compare the trajectories, not the weights.
    assert losses["graphs"] == pytest.approx(losses["eager"], rel=2e-2)


def test_fp16_uses_the_grad_scaler_and_bf16_does_not(tmp_path):
    fp16 = trainer_mod.Trainer(tiny(amp="fp16"), tmp_path / "a")
    bf16 = trainer_mod.Trainer(tiny(amp="bf16"), tmp_path / "b")
    assert fp16.scaler.is_enabled() and not bf16.scaler.is_enabled()
    assert torch.backends.cuda.matmul.allow_tf32


def test_layer_matches_cpu():
    torch.manual_seed(0)
    layer = MessageAttention(32, 32, 16, 4, heads=4)
    x = torch.randn(500, 32)
    msg = torch.nn.functional.one_hot(torch.randint(0, 16, (500, 4)), 16).float()
    ei = knn(torch.rand(5, 100, 2), 4)
    cpu = layer(x, msg, ei)
    gpu = layer.cuda()(x.cuda(), msg.cuda(), ei.cuda())
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-4)


def test_knn_on_cuda_matches_cpu():
    pos = torch.rand(3, 500, 2)
    assert torch.equal(knn(pos, 4), knn(pos.cuda(), 4).cpu())


def _dense_graphs(B, N):
    from gnncomm.topology import batch_edge_index, full

    pos = torch.rand(B, N, 2)
    lonely = knn(pos, N - 2)
    return {"complete": batch_edge_index(full(N), N, B), "masked": lonely[:, lonely[1] != 1]}


def _attention_and_grads(layer, x, msg, edge_index, **kwargs):
    layer.zero_grad(set_to_none=True)
    x, msg = x.clone().requires_grad_(), msg.clone().requires_grad_()
    out, (_, alpha) = layer(x, msg, edge_index, return_attention_weights=True, **kwargs)
    (out.pow(2).sum() + (alpha * torch.linspace(-1, 1, alpha.numel(), device=x.device).view_as(alpha)).sum()).backward()
    return [out, alpha, x.grad, msg.grad, *(p.grad for p in layer.parameters())]


@pytest.mark.parametrize("path", ["complete", "masked"])
def test_dense_path_on_cuda_equals_sparse_path(path):
    torch.manual_seed(0)
    B, N = 5, 40
    layer = MessageAttention(32, 32, 16, 4, heads=4).cuda()
    edge_index = _dense_graphs(B, N)[path].cuda()
    assert layer.select_path(B * N, edge_index.size(1), N) == path
    x = torch.randn(B * N, 32, device="cuda")
    msg = torch.nn.functional.one_hot(torch.randint(0, 16, (B * N, 4)), 16).float().cuda()
    dense = _attention_and_grads(layer, x, msg, edge_index, num_agents=N)
    sparse = _attention_and_grads(layer, x, msg, edge_index)
    for d, s in zip(dense, sparse):
        assert torch.allclose(d, s, atol=1e-4)
    out = layer(x, msg, edge_index, num_agents=N)  # scaled_dot_product_attention
    assert torch.allclose(out, sparse[0], atol=1e-4)


@pytest.mark.parametrize("path", ["complete", "masked"])
def test_dense_path_makes_no_host_sync(path):
    B, N = 4, 16
    layer = MessageAttention(32, 32, 16, 4, heads=4).cuda()
    edge_index = _dense_graphs(B, N)[path].cuda()
    x = torch.randn(B * N, 32, device="cuda")
    msg = torch.nn.functional.one_hot(torch.randint(0, 16, (B * N, 4)), 16).float().cuda()
    layer(x, msg, edge_index, return_attention_weights=True, num_agents=N)  # warm up lazy initialisation
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for weights in (True, False):
            result = layer(x, msg, edge_index, return_attention_weights=weights, num_agents=N)
            out = result[0] if weights else result
            out.sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_swarm_world_keeps_its_view_mask_on_the_device_and_observes_as_on_the_cpu():
    from gnncomm.world import SwarmWorld

    world = SwarmWorld(6, latent_dim=4)
    state = world.reset(3, generator=torch.Generator().manual_seed(0))
    on_gpu = type(state)(*(x.cuda() for x in state))
    world.reset(1, device="cuda")  # draws there: the mask is copied once
    assert world._masks[on_gpu.pos.device][1].device.type == "cuda"
    torch.testing.assert_close(world.observe(on_gpu).cpu(), world.observe(state))
    world.view_mask = world.view_mask.flip(0)  # a replaced mask is never read from the stale copy
    torch.testing.assert_close(world.observe(on_gpu).cpu(), world.observe(state))


def test_symbol_lookup_on_cuda_is_as_close_to_float32_under_bf16_as_the_product_and_makes_no_host_sync():
    from gnncomm.nn import SymbolEmbedding

    torch.manual_seed(0)
    V, M, D = 16, 4, 32
    embed, linear = SymbolEmbedding(V, M, D).cuda(), torch.nn.Linear(M * D, 24).cuda()
    # thousands of rows per symbol: a bf16 scatter-add (atomics in the storage dtype) would drift visibly
    msg = torch.nn.functional.one_hot(torch.randint(0, V, (20_000, M)), V).float().cuda().requires_grad_()

    def run(symbols, amp):
        embed.zero_grad(), linear.zero_grad()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            out = embed.project(msg, linear, flatten=True, symbols=symbols)
        out.float().pow(2).mean().backward()
        return [embed.symbol.grad.clone(), linear.weight.grad.clone()]

    reference = run(None, amp=False)
    errors = {}
    for name, symbols in (("product", None), ("lookup", msg.argmax(-1))):
        errors[name] = [float((r - ref).norm() / ref.norm()) for r, ref in zip(run(symbols, True), reference)]
    for lookup, product in zip(errors["lookup"], errors["product"]):
        assert lookup < 3 * product + 1e-3  # the lookup rounds each position's add; a bf16 scatter-add drifts far more
    symbols = msg.argmax(-1)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        embed.project(msg, linear, flatten=True, symbols=symbols).sum().backward()
        embed.project(msg, linear, flatten=False, symbols=symbols).sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
