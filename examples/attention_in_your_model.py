"""Use gnncomm's MessageAttention layer inside your own PyG model.

A toy task: every node holds a discrete 3-symbol message and must predict the mean of a hidden value
held by its in-neighbours. The messages are produced by a linear "speaker" through a straight-through
Gumbel-Softmax, so the whole model trains end to end through the discrete channel.

    python examples/attention_in_your_model.py
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import global_mean_pool

from gnncomm.nn import MessageAttention, gumbel_softmax_sample
from gnncomm.topology import batch_edge_index, knn

VOCAB, MSG_DIM, HIDDEN = 16, 3, 32


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.speaker = nn.Linear(1, MSG_DIM * VOCAB)
        self.listen = MessageAttention(HIDDEN, HIDDEN, VOCAB, MSG_DIM, heads=4)
        self.state = nn.Parameter(torch.zeros(HIDDEN))
        self.readout = nn.Linear(HIDDEN, 1)

    def forward(self, value, edge_index, generator=None):
        logits = self.speaker(value).view(-1, MSG_DIM, VOCAB)
        message = gumbel_softmax_sample(logits, 1.0, self.training, generator=generator)  # [N, M, V]
        x = self.state.expand(value.size(0), HIDDEN)
        out, (_, alpha) = self.listen(x, message, edge_index, return_attention_weights=True)
        return self.readout(out), alpha


def main() -> None:
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    B, N, k = 64, 12, 3
    model = Model()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(301):
        value = torch.randn(B * N, 1, generator=g)
        edge_index = knn(torch.rand(B, N, 2, generator=g), k)  # B disjoint kNN graphs
        target = torch.zeros(B * N, 1).index_add_(0, edge_index[1], value[edge_index[0]]) / k
        pred, alpha = model(value, edge_index, generator=g)
        loss = (pred - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            print(f"step {step:3d}  mse {loss.item():.3f}  (predicting 0 gives {target.pow(2).mean().item():.3f})")
    batch = torch.arange(B).repeat_interleave(N)
    print("graph-level readout with PyG pooling:", global_mean_pool(pred.detach(), batch).shape)
    print("static graphs work too:", batch_edge_index(edge_index[:, : N * k] % N, N, 2).shape)


if __name__ == "__main__":
    main()
