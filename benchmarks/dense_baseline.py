"""The dense baseline: the same model with communication as ``[B, H, N, N]`` masked attention.

This is what one writes without PyG (the seed's style, also MAGIC's): every receiver scores every
agent of its episode, and an adjacency mask built from the graph keeps only its in-neighbours.
:class:`DenseMessageAttention` computes exactly :class:`~gnncomm.nn.MessageAttention`'s update with
that layer's own weights, so :func:`use_dense_attention` can swap it into a
:class:`~gnncomm.CommSystem` and everything else of the training step (graph building, encoder,
decoder, heads, world dynamics, optimizer) stays the same: a benchmark then compares the
communication layers alone. :func:`check_equivalence` verifies, on the same weights and graphs,
that outputs, attention weights, gradients and a whole rollout's loss agree to float tolerance.

Run ``python benchmarks/dense_baseline.py`` to print the equivalence report.
"""

from __future__ import annotations

import copy
import json
import math
import sys

import torch
from torch import Tensor, nn

from gnncomm.agents import CommSystem
from gnncomm.nn import MessageAttention


def dense_adjacency(edge_index: Tensor, batch_size: int, num_agents: int) -> Tensor:
    """``adj[b, i, j]`` is ``True`` where agent ``j`` sends to agent ``i`` in episode ``b``.

    ``edge_index`` indexes the ``B * N`` nodes of ``B`` disjoint episodes (node ``b * N + i``).
    Duplicate edges collapse into one entry (the sparse layer would count them twice; no
    topology of the library makes duplicates).
    """
    B, N = batch_size, num_agents
    adj = torch.zeros(B, N, N, dtype=torch.bool, device=edge_index.device)
    src, dst = edge_index[0], edge_index[1]
    adj[dst // N, dst % N, src % N] = True
    return adj  # [B, N, N]


class DenseMessageAttention(nn.Module):
    r""":class:`~gnncomm.nn.MessageAttention`'s update as dense masked multi-head attention.

    .. math::
        \boldsymbol{\alpha}^h = \operatorname{softmax}_j\Big(\frac{\mathbf{Q}^h
        {\mathbf{K}^h}^\top}{\sqrt{C}} + \log \mathbf{A}\Big) \odot \mathbf{A}, \qquad
        \mathbf{X}' = \mathbf{W}_O \big\Vert_h \boldsymbol{\alpha}^h \mathbf{V}^h

    per episode, with :math:`\mathbf{A} \in \{0,1\}^{N \times N}` the adjacency (receiver rows). A
    receiver with no in-neighbour gets an all-zero row, hence the bias of :math:`\mathbf{W}_O`, as
    in the sparse layer.

    Args:
        sparse (MessageAttention): the layer whose weights are used (kept as a submodule, so the
            parameters are shared, not copied).
        num_agents (int): agents per episode :math:`N`; inputs hold ``B * N`` nodes.

    Shapes:
        - **input:** ``x (B*N, F)``, ``message (B*N, M, V)``, ``edge_index (2, |E|)``.
        - **output:** ``(B*N, out_channels)``, or with ``return_attention_weights=True``
          ``(out, (edge_index, alpha (|E|, H)))``, ``alpha`` read off the dense matrix at the edges.
    """

    def __init__(self, sparse: MessageAttention, num_agents: int) -> None:
        super().__init__()
        self.sparse = sparse
        self.num_agents = num_agents

    def forward(
        self,
        x: Tensor,
        message: Tensor,
        edge_index: Tensor,
        return_attention_weights: bool = False,
        num_agents: int | None = None,
        symbols: Tensor | None = None,
    ) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
        """As :meth:`MessageAttention.forward`; ``num_agents`` must be ``None`` or the one given at construction."""
        if num_agents is not None and num_agents != self.num_agents:
            raise ValueError(f"num_agents must be None or {self.num_agents}, got {num_agents}")
        att = self.sparse
        N, H, C = self.num_agents, att.heads, att.head_channels
        B = x.size(0) // N
        query = att.lin_query(x).view(B, N, H, C).transpose(1, 2)  # [B, H, N, C]
        kv = att.embed.project(message, att.lin_key_value, flatten=True, symbols=symbols)  # as the library
        kv = kv.view(B, N, 2, H, C)
        key, value = kv.permute(2, 0, 3, 1, 4).unbind(0)  # [B, H, N, C] each
        adj = dense_adjacency(edge_index, B, N).unsqueeze(1)  # [B, 1, N, N]
        score = query @ key.transpose(-1, -2) / math.sqrt(C)  # [B, H, N, N]
        score = score.masked_fill(~adj, torch.finfo(score.dtype).min)
        alpha = torch.softmax(score, dim=-1) * adj  # zero rows for receivers without in-neighbours
        out = (alpha @ value).transpose(1, 2).reshape(B * N, H * C)  # [B*N, H*C]
        out = att.lin_out(out)
        if return_attention_weights:
            src, dst = edge_index[0], edge_index[1]
            edge_alpha = alpha[dst // N, :, dst % N, src % N]  # [E, H]
            return out, (edge_index, edge_alpha)
        return out

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.sparse!r}, num_agents={self.num_agents})"


def use_dense_attention(system: CommSystem) -> CommSystem:
    """Swaps ``system.attention`` for a :class:`DenseMessageAttention` on the same weights, in place.

    The parameters are the same objects, so an optimizer built before the swap still updates them.
    """
    if not isinstance(system.attention, DenseMessageAttention):
        system.attention = DenseMessageAttention(system.attention, system.num_agents)
    return system


# ---------------------------------------------------------------------------------------------
# Equivalence check
# ---------------------------------------------------------------------------------------------
def _graphs(B: int, N: int, generator: torch.Generator) -> dict[str, Tensor]:
    from gnncomm.topology import batch_edge_index, full, knn, ring

    pos = torch.rand(B, N, 2, generator=generator) * 4
    lonely = knn(pos, 3)
    lonely = lonely[:, lonely[1] != 1]  # agent 1 of episode 0 hears no one
    return {
        "knn4": knn(pos, 4),
        "ring": batch_edge_index(ring(N), N, B),
        "full": batch_edge_index(full(N), N, B),
        "knn3_isolated": lonely,
        "empty": torch.empty(2, 0, dtype=torch.long),
    }


def _max_diff(a: Tensor, b: Tensor) -> float:
    """Largest absolute difference, relative to the largest magnitude of ``b`` when that exceeds 1."""
    if a.numel() == 0:
        return 0.0
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1.0))


def check_layer(device: str | torch.device = "cpu", atol: float = 1e-5, seed: int = 0) -> dict:
    """Sparse vs dense layer on the same weights: outputs, attention weights and all gradients.

    Compared with the sparse path (``MessageAttention`` without ``num_agents``): the dense baseline
    (``out``, ``alpha``, ``grad``) and the library given ``num_agents`` (``lib_path``, the path
    :meth:`~gnncomm.nn.MessageAttention.select_path` picks, and ``lib_diff``, its largest difference).
    Differences are absolute, or relative to the largest reference magnitude where that exceeds 1.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    B, N, F, V, M = 3, 12, 32, 16, 3
    sparse = MessageAttention(F, F, V, M, heads=4).to(device)
    layers = {"sparse": sparse, "dense": DenseMessageAttention(sparse, N), "lib": sparse}
    x0 = torch.randn(B * N, F, generator=gen).to(device)
    weight = torch.randn(B * N * N, 4, generator=gen).to(device)  # a loss that weighs each edge's alpha
    msg0 = torch.nn.functional.one_hot(torch.randint(V, (B * N, M), generator=gen), V).float().to(device)
    cases = {}
    for name, edge_index in _graphs(B, N, gen).items():
        edge_index = edge_index.to(device)
        results = {}
        for impl, layer in layers.items():
            layer.zero_grad(set_to_none=True)
            x, msg = x0.clone().requires_grad_(), msg0.clone().requires_grad_()
            if impl == "sparse":  # the reference: the per-edge path, whatever the graph
                out, (_, alpha) = _sparse_path(layer, x, msg, edge_index)
            else:  # the library as CommSystem calls it (dense path on complete graphs), or the baseline
                out, (_, alpha) = layer(x, msg, edge_index, return_attention_weights=True, num_agents=N)
            (out.pow(2).sum() + (alpha * weight[: alpha.size(0)]).sum()).backward()
            grads = [x.grad, msg.grad] + [
                p.grad if p.grad is not None else torch.zeros_like(p) for p in sparse.parameters()
            ]
            results[impl] = [out.detach(), alpha.detach(), *grads]
        ref = results["sparse"]
        diff = {
            "out": _max_diff(results["dense"][0], ref[0]),
            "alpha": _max_diff(results["dense"][1], ref[1]),
            "grad": max(_max_diff(u, v) for u, v in zip(results["dense"][2:], ref[2:])),
            "lib_diff": max(_max_diff(u, v) for u, v in zip(results["lib"], ref)),
        }
        path = sparse.select_path(B * N, edge_index.size(1), N)
        cases[name] = {**diff, "lib_path": path, "passed": all(v <= atol for v in diff.values())}
    return {"passed": all(c["passed"] for c in cases.values()), "atol": atol, "cases": cases}


def _sparse_path(layer: MessageAttention, x: Tensor, msg: Tensor, edge_index: Tensor):
    """``layer`` on its per-edge path, whatever its ``dense`` mode."""
    mode, layer.dense = layer.dense, "never"
    try:
        return layer(x, msg, edge_index, return_attention_weights=True)
    finally:
        layer.dense = mode


def check_rollout(device: str | torch.device = "cpu", atol: float = 1e-4, seed: int = 0) -> dict:
    """The whole training objective (3-step rollouts on kNN and full graphs): the sparse layer (forced
    with ``dense="never"``) against the dense baseline and against the library as it trains (its dense
    path on complete graphs)."""
    from gnncomm.config import Config
    from gnncomm.rollout import make_graph_fn, rollout, sample_episode
    from gnncomm.world import build_world

    report: dict = {"atol": atol}
    for topology in ("knn", "full"):
        cfg = Config(
            num_agents=8,
            k_neighbors=3 if topology == "knn" else 0,  # full ignores k: leave it at auto
            batch_size=4,
            timesteps=3,
            hidden_dim=32,
            vocab_size=16,
            msg_dim=3,
            topology=topology,
        )
        world = build_world(cfg)
        torch.manual_seed(seed)
        lib = CommSystem.from_config(cfg, world.obs_dim).to(device)
        sparse = copy.deepcopy(lib)
        sparse.attention.dense = "never"
        systems = {"sparse": sparse, "dense": use_dense_attention(copy.deepcopy(lib)), "lib": lib}
        episode = sample_episode(
            world, cfg, cfg.batch_size, generator=torch.Generator().manual_seed(seed), device=device
        )
        graph_fn = make_graph_fn(cfg.topology, cfg.k_neighbors, cfg.num_agents, cfg.batch_size, device=device)
        losses, grads = {}, {}
        for impl, system in systems.items():
            loss, _, _ = rollout(system, world, episode, graph_fn, cfg)
            loss.backward()
            losses[impl] = loss.detach()
            grads[impl] = [p.grad for p in system.parameters()]
        for impl in ("dense", "lib"):
            report[f"{topology}_{impl}"] = {
                "loss": _max_diff(losses[impl], losses["sparse"]),
                "grad": max(_max_diff(u, v) for u, v in zip(grads[impl], grads["sparse"])),
            }
    report["passed"] = all(v <= atol for r in report.values() if isinstance(r, dict) for v in r.values())
    return report


def check_equivalence(device: str | torch.device = "cpu") -> dict:
    """Layer and whole-rollout equivalence of the dense baseline with the library; ``passed`` is the verdict."""
    layer, whole = check_layer(device), check_rollout(device)
    return {"passed": layer["passed"] and whole["passed"], "layer": layer, "rollout": whole}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="check that the dense baseline equals the library's layer")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    report = check_equivalence(args.device)
    print(json.dumps(report, indent=2))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
