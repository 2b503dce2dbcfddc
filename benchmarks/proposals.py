"""Measured before/after of proposed hot-path changes to the library, applied here as patches.

Each proposal is a drop-in replacement of one library function, applied with
:func:`unittest.mock.patch.object` around a call only: the library files are not edited. The
training step is timed with and without the patch in alternation, on the same trainer and episode,
and the loss is compared to show that the change keeps the numbers.

- ``gumbel_scatter``: the hard sample of ``gumbel_softmax_sample`` as
  ``zeros_like(y).scatter_(-1, y.max(-1, keepdim=True).indices, 1)`` instead of
  ``F.one_hot(y.argmax(-1), V).to(y.dtype)`` (one pass fewer, no int64 one-hot, no cast);
- ``linear_addmm``: the shared ``AgentLinear`` as ``torch.addmm(bias, x, weight)`` instead of
  ``x @ weight + bias`` (one fused kernel; the bias gradient comes out of the same backward);
- ``lstm_split``: ``AgentLSTMCell`` (shared) as ``addmm(b, x, W[:F]) + h @ W[F:]`` instead of
  ``cat([x, h]) @ W + b`` (no ``[B*N, F+H]`` copy);
- ``all``: the three together;
- ``knn_block``: ``gnncomm.topology._KNN_BLOCK_NUMEL`` at ``2**28`` instead of ``2**22`` (for CUDA,
  where the CPU-cache-sized blocks split a kNN call into tens of chunks of small kernels; not in
  ``all``, not a CPU proposal);
- ``knn_grid_512``: ``gnncomm.topology._KNN_GRID_MIN_AGENTS`` at 512 instead of 1024, so that
  ``knn(method="auto")`` takes the grid path at N=1000 (a CPU proposal; not in ``all``).

    OMP_NUM_THREADS=1 python -m benchmarks.proposals --threads 1
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence
from unittest import mock

if __package__ in (None, ""):  # `python benchmarks/proposals.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from torch import Tensor

import gnncomm.nn.encoder as encoder_module
import gnncomm.topology as topology_module
from benchmarks.common import RESULTS, format_table, metadata, setup, write_json
from gnncomm.bench import bench_config, build_trainer, time_calls, time_interleaved
from gnncomm.nn.agent_linear import AgentLinear, AgentLSTMCell
from gnncomm.nn.gumbel import gumbel_softmax_sample, sample_gumbel

_original_linear_forward = AgentLinear.forward
_original_lstm_forward = AgentLSTMCell.forward


def gumbel_softmax_scatter(logits: Tensor, temperature: float | Tensor = 1.0, training: bool = True,
                           straight_through: bool = True, noise: Tensor | None = None,
                           generator: torch.Generator | None = None) -> Tensor:
    """``gumbel_softmax_sample`` with the hard one-hot written by ``scatter_`` (same values)."""
    if not training or not straight_through:
        return gumbel_softmax_sample(logits, temperature, training, straight_through, noise, generator)
    if noise is None:
        noise = sample_gumbel(logits.shape, generator=generator, device=logits.device, dtype=torch.float32)
    y = torch.softmax((logits.float() + noise) / temperature, dim=-1)
    hard = torch.zeros_like(y).scatter_(-1, y.max(dim=-1, keepdim=True).indices, 1.0)
    return (hard - y.detach() + y).to(logits.dtype)


def agent_linear_addmm(self: AgentLinear, x: Tensor) -> Tensor:
    if self.shared and self.bias is not None:
        return torch.addmm(self.bias[0], x, self.weight[0])
    return _original_linear_forward(self, x)


def agent_lstm_split(self: AgentLSTMCell, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    gates = self.gates
    if not (gates.shared and gates.bias is not None):
        return _original_lstm_forward(self, x, state)
    h, c = state
    F_in = x.size(-1)
    w = gates.weight[0]  # [F + H, 4H]
    i, f, g, o = torch.addmm(gates.bias[0], x, w[:F_in]).addmm_(h, w[F_in:]).chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


def _patches(name: str) -> list[Any]:
    table = {"gumbel_scatter": [mock.patch.object(encoder_module, "gumbel_softmax_sample", gumbel_softmax_scatter)],
             "linear_addmm": [mock.patch.object(AgentLinear, "forward", agent_linear_addmm)],
             "lstm_split": [mock.patch.object(AgentLSTMCell, "forward", agent_lstm_split)]}
    if name == "all":
        return [p for patches in table.values() for p in patches]
    if name == "knn_block":
        return [mock.patch.object(topology_module, "_KNN_BLOCK_NUMEL", 2**28)]
    if name == "knn_grid_512":
        return [mock.patch.object(topology_module, "_KNN_GRID_MIN_AGENTS", 512)]
    return table[name]


PROPOSALS = ("gumbel_scatter", "linear_addmm", "lstm_split", "all", "knn_block", "knn_grid_512")


@contextlib.contextmanager
def applied(name: str) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for patch in _patches(name):
            stack.enter_context(patch)
        yield


def measure(agents: int, batch_size: int, device: torch.device, proposals: Sequence[str], steps: int,
            warmup: int) -> list[dict[str, Any]]:
    cfg = bench_config(agents, batch_size, "knn", 4, str(device))
    trainer = build_trainer(cfg)
    episode = trainer.next_episode()
    temperature = torch.tensor(cfg.temperature(0), device=device)
    state = {k: v.clone() for k, v in trainer.system.state_dict().items()}

    def loss_of(name: str | None) -> Tensor:
        with applied(name) if name else contextlib.nullcontext():
            s = episode.state
            return trainer.loss_module(s.pos, s.vel, s.latent, episode.obs_noise, episode.gumbel, temperature)[0]

    def step_with(name: str | None) -> Callable[[], Any]:
        def step() -> Any:
            with applied(name) if name else contextlib.nullcontext():
                return trainer.train_step(episode, temperature)
        return step

    with torch.no_grad():
        base_loss = loss_of(None)
        diffs = {name: float((loss_of(name) - base_loss).abs()) for name in proposals}
    fns = {"before": step_with(None), **{name: step_with(name) for name in proposals}}
    for fn in fns.values():
        time_calls(fn, steps=0, warmup=warmup, device=device)
    times = time_interleaved(fns, steps=steps, device=device)
    trainer.system.load_state_dict(state)
    before, before_cpu = statistics.median(times["before"].wall), statistics.median(times["before"].cpu)
    rows = []
    for name in proposals:
        after, after_cpu = statistics.median(times[name].wall), statistics.median(times[name].cpu)
        rows.append({"agents": agents, "batch_size": batch_size, "proposal": name, "before_s": before,
                     "after_s": after, "before_cpu_s": before_cpu, "after_cpu_s": after_cpu,
                     "speedup": before / after, "speedup_cpu": before_cpu / after_cpu if after_cpu else None,
                     "loss_abs_diff": diffs[name]})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--points", nargs="+", default=["10:256", "200:13", "1000:3"], metavar="N:B")
    p.add_argument("--proposals", nargs="+", default=list(PROPOSALS[:4]), choices=PROPOSALS)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    device = setup(args.device, args.threads)
    out = Path(args.out) if args.out else RESULTS / f"proposals_{device.type}.json"
    report = {"meta": {**metadata(device, argv), "steps": args.steps}, "results": []}
    for point in args.points:
        n, b = (int(v) for v in point.split(":"))
        report["results"] += measure(n, b, device, args.proposals, args.steps, args.warmup)
        write_json(out, report)
    print(format_table(["N", "B", "proposal", "before ms", "after ms", "speed-up", "before CPU ms", "after CPU ms",
                        "speed-up (CPU time)", "|loss diff|"],
                       [[r["agents"], r["batch_size"], r["proposal"], f"{1e3 * r['before_s']:.1f}",
                         f"{1e3 * r['after_s']:.1f}", f"{r['speedup']:.3f}×", f"{1e3 * r['before_cpu_s']:.1f}",
                         f"{1e3 * r['after_cpu_s']:.1f}", f"{r['speedup_cpu']:.3f}×", f"{r['loss_abs_diff']:.1e}"]
                        for r in report["results"]]))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
