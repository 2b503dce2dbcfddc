r"""Survival selection: the fittest agents' weights are copied, mutated, onto the least fit.

With per-agent weights (``shared_params=False``) and ``selection_every = M > 0``, the trainer
calls :func:`survival_selection` after every ``M``-th optimizer step:

1. **Fitness.** Every agent's *individual loss* is measured on a held-out batch of episodes with
   greedy (argmax) messages. It is the agent-separable part of the training loss, everything but
   the shared reward term, which no agent owns:

   .. math::
       \ell_a = w_z \sum_t \frac{t+1}{\sum_s (s+1)} \overline{\lVert \hat{\mathbf{z}}_{a,t}
       - \mathbf{z} \rVert^2} + w_r \frac{1}{T} \sum_t \overline{\lVert \hat{\mathbf{o}}_{a,t}
       - \mathbf{o}_{a,t} \rVert^2} + w_c \frac{1}{T} \sum_t \overline{(1 - \mathbf{s}_{a,t,0})}

   (means over episodes and features), and the fitness is :math:`f_a = -\ell_a`: higher is
   fitter. The episodes come from a generator seeded by ``(cfg.seed, step)``, so the training
   stream is untouched and a resumed run selects exactly as an uninterrupted one.
2. **Ranking.** :func:`rank_agents`: the ``k = selection_k`` fittest agents are the donors, the
   ``k`` least fit the recipients; donor ``i`` (``i``-th fittest) replaces recipient ``i``
   (``i``-th least fit).
3. **Reproduction.** :func:`copy_agents` copies the donors' slices of every per-agent parameter
   (:meth:`~gnncomm.CommSystem.per_agent_parameters`) onto the recipients and adds mutation noise
   :math:`\sigma\, \mathrm{std}(W)\, \epsilon`, with :math:`\sigma` = ``mutation_std``,
   :math:`\mathrm{std}(W)` the std of the whole parameter tensor (all agents) and
   :math:`\epsilon` a standard normal truncated to :math:`[-3, 3]`, so a copy is never further
   than :math:`3 \sigma\, \mathrm{std}(W)` from its donor. The shared attention channel is not
   touched.
4. **Optimizer state.** AdamW's moment estimates (``exp_avg``, ``exp_avg_sq`` and, with amsgrad,
   ``max_exp_avg_sq``) are copied from the donors' slices too: a recipient continues its donor's
   optimisation trajectory. Resetting them to zero instead would make the next updates of the
   recipients about :math:`\sqrt{1/(1-\beta_2)}\,(1-\beta_1) \approx 3` times larger than
   usual, since AdamW's step counter (one per tensor, shared by all agents) is not reset.

Under DDP every rank does the identical thing: the fitness is computed on every rank and then
broadcast from rank 0 (so nondeterministic kernels cannot split the ranks' choices), and the
mutation noise is drawn from a CPU generator seeded by ``(cfg.seed, step)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from gnncomm.agents import CommSystem
from gnncomm.config import Config
from gnncomm.rollout import agent_losses, evaluate_rollout
from gnncomm.world import World

SELECTION_MIN_EPISODES = 16
"""Fitness is measured on ``max(batch_size, SELECTION_MIN_EPISODES)`` held-out episodes."""
MUTATION_TRUNCATION = 3.0
"""Mutation noise is a standard normal clamped to ``[-3, 3]`` before scaling."""
FITNESS_DEFINITION = (
    "-(world_weight * step-weighted world MSE + recon_weight * reconstruction MSE + "
    "comm_weight * comm cost) of each agent, greedy messages on held-out episodes"
)
_EPISODE_STREAM, _MUTATION_STREAM = 0, 1


def selection_seed(seed: int, step: int, stream: int) -> int:
    """A seed derived from ``(seed, step, stream)`` alone, independent of the training generator.

    >>> selection_seed(0, 100, 0) == selection_seed(0, 100, 0), selection_seed(0, 100, 0) == selection_seed(0, 100, 1)
    (True, False)
    """
    state = np.random.SeedSequence([seed, step, stream, 0x5E1EC7]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1  # 63 bits: a valid torch seed


def rank_agents(fitness: Tensor | Sequence[float], k: int) -> tuple[list[int], list[int]]:
    """The ``k`` fittest agents (fittest first) and the ``k`` least fit (least fit first).

    Higher fitness is fitter; NaN counts as least fit; ties go to the lower agent index.

    Args:
        fitness: one value per agent ``[N]``.
        k: agents per side, ``1 <= k <= N // 2`` (donors and recipients never overlap).

    Returns:
        ``(donors, recipients)``: donor ``donors[i]`` replaces recipient ``recipients[i]``.

    >>> rank_agents(torch.tensor([0.1, 0.9, 0.5, 0.2, float("nan")]), 2)
    ([1, 2], [4, 0])
    """
    values = [float(v) for v in (fitness.tolist() if isinstance(fitness, Tensor) else fitness)]
    N = len(values)
    if not 1 <= k <= N // 2:
        raise ValueError(f"k must be in [1, num_agents // 2 = {N // 2}], got {k}")
    order = sorted(range(N), key=lambda a: (-values[a] if not math.isnan(values[a]) else math.inf, a))
    return order[:k], order[::-1][:k]


@torch.no_grad()
def copy_agents(
    system: CommSystem,
    optimizer: torch.optim.Optimizer | None,
    donors: Sequence[int],
    recipients: Sequence[int],
    *,
    mutation_std: float,
    generator: torch.Generator,
) -> None:
    r"""Copies the donors' per-agent weights (and optimizer moments) onto the recipients, mutated.

    For every tensor :math:`W` of :meth:`~gnncomm.CommSystem.per_agent_parameters` (agents along
    dim 0), in sorted-name order so the noise stream is the same on every rank:

    .. math::
        W_{r_i} \leftarrow W_{d_i} + \sigma\, \mathrm{std}(W)\, \mathrm{clamp}(\epsilon, -3, 3),
        \qquad \epsilon \sim \mathcal{N}(0, I)

    and every optimizer state tensor of the shape of :math:`W` (AdamW's ``exp_avg``,
    ``exp_avg_sq``, ``max_exp_avg_sq``) gets ``state[r_i] = state[d_i]``; scalar state (the step
    counter) is left as it is.

    Args:
        system: a :class:`~gnncomm.CommSystem` with ``shared=False``.
        optimizer: the optimizer over ``system``'s parameters, or ``None``.
        donors, recipients: agent indices of equal length, disjoint.
        mutation_std: :math:`\sigma \geq 0`, relative to each tensor's std.
        generator: the source of the mutation noise (a CPU generator gives device-independent noise).
    """
    if system.shared:
        raise ValueError("copy_agents needs per-agent weights (shared_params=False)")
    src, dst = list(donors), list(recipients)
    if len(src) != len(dst) or set(src) & set(dst):
        raise ValueError(f"donors and recipients must be disjoint and of equal length, got {src} and {dst}")
    if any(not 0 <= a < system.num_agents for a in src + dst):
        raise ValueError(f"agent indices must be in [0, {system.num_agents - 1}], got {src} and {dst}")
    if mutation_std < 0:
        raise ValueError(f"mutation_std must be >= 0, got {mutation_std}")
    params = system.per_agent_parameters()
    for name in sorted(params):
        param = params[name]
        index_src = torch.tensor(src, device=param.device)
        index_dst = torch.tensor(dst, device=param.device)
        noise = torch.randn((len(dst), *param.shape[1:]), generator=generator, device=generator.device)
        noise = noise.clamp_(-MUTATION_TRUNCATION, MUTATION_TRUNCATION).to(param.device)
        scale = mutation_std * param.float().std()  # std of the whole tensor, before the copy
        param[index_dst] = (param[index_src].float() + scale * noise).to(param.dtype)
        state = optimizer.state.get(param, {}) if optimizer is not None else {}
        for buf in state.values():
            if isinstance(buf, Tensor) and buf.shape == param.shape:
                buf[index_dst] = buf[index_src]


def survival_selection(
    system: CommSystem,
    optimizer: torch.optim.Optimizer | None,
    world: World,
    cfg: Config,
    *,
    step: int,
    topology: tuple[str, int],
    device: torch.device | str = "cpu",
    distributed: bool = False,
) -> dict[str, Any]:
    """One selection event at training step ``step``; returns the event to log.

    Args:
        system, optimizer: the population being trained and its optimizer (moments are copied too).
        world, cfg: the run's world and config.
        step: the training step, which seeds the held-out episodes and the mutation noise.
        topology: the ``(name, k)`` graph in force, on which fitness is measured.
        device: where to run the fitness rollouts.
        distributed: under DDP, rank 0's fitness is broadcast so that every rank makes the same choice.

    Returns:
        A JSON-able dict: ``event="selection"``, ``step``, ``donors``, ``recipients`` (donor ``i``
        replaced recipient ``i``), ``fitness`` (per agent, higher is fitter), ``fitness_definition``,
        ``episodes``, ``mutation_std`` and ``optimizer_state``.
    """
    episodes = max(cfg.batch_size, SELECTION_MIN_EPISODES)
    _, trace = evaluate_rollout(
        system,
        world,
        cfg,
        episodes=episodes,
        device=device,
        record=True,
        topology=topology,
        seed=selection_seed(cfg.seed, step, _EPISODE_STREAM),
    )
    fitness = -agent_losses(trace, cfg)
    if distributed:  # rank 0's ranking for all: GPU kernels need not agree bit for bit
        dist.broadcast(fitness, src=0)
    donors, recipients = rank_agents(fitness, cfg.selection_k)
    generator = torch.Generator().manual_seed(selection_seed(cfg.seed, step, _MUTATION_STREAM))
    copy_agents(system, optimizer, donors, recipients, mutation_std=cfg.mutation_std, generator=generator)
    return {
        "event": "selection",
        "step": step,
        "donors": donors,
        "recipients": recipients,
        "fitness": [round(f, 6) if math.isfinite(f) else None for f in fitness.tolist()],
        "fitness_definition": FITNESS_DEFINITION,
        "episodes": episodes,
        "mutation_std": cfg.mutation_std,
        "optimizer_state": "AdamW moments copied from the donors",
    }
