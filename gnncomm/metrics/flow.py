r"""Information flow through agents: the causal relay test on knock-out effects.

A **relay** is an agent that information must pass through: silencing it hurts agents that do **not**
hear it directly. The data are the knock-outs of :func:`gnncomm.evaluation.knockout_effects`, one
silenced rollout per agent on the same held-out episodes as the unmodified one:

* ``receiver_delta [N, B, N]``: the rise of receiver :math:`i`'s own world error (last step) in episode
  :math:`b` when agent :math:`a` says nothing, ``[a, b, i]``;
* ``far [N, B, N]``: receiver :math:`i` never heard :math:`a` directly in episode :math:`b`: at no step was
  there an edge :math:`a \to i`, neither in the unmodified rollout nor in :math:`a`'s knock-out (the graph may
  change every step, e.g. kNN from positions, and the knock-out may move the agents). Such a receiver is two
  or more hops from :math:`a` at every step (or out of its reach); :func:`heard_directly` gives the edges.

The **far effect** of :math:`a` in episode :math:`b` (:func:`far_effects`) is the part of the knock-out's
effect that falls on far receivers,

.. math::
    e_{ab} = \frac{1}{N} \sum_i \mathbb{1}[\mathrm{far}_{abi}]\, \Delta_{abi},

on the same scale as the knock-out effect itself (the mean over all :math:`N` agents), so
``knockout_delta = near + far`` shares. It is ``0`` when :math:`a` has no far receivers.

**Rounding is no effect.** The deltas are differences of float32 errors computed through ``T`` recurrent steps,
so a knock-out that changes nothing a far receiver hears still moves its error by float32 rounding, accumulated
over the steps and layers (measured on untrained systems: up to ~40 eps relative, ~1e-6 at errors of ~1). Such
effects are small but can lean one way in most episodes, enough to pass both nulls (one untrained star of
cliques flagged an agent with a mean far effect of 6e-8). :func:`far_effects` therefore sets to ``0`` every
per-episode far effect with :math:`|e_{ab}| \le \tau`, where the evaluation takes
:math:`\tau = \sqrt{\epsilon_{32}}\, s` (:data:`ROUNDING_TOLERANCE`, the usual bound for a float32 difference
after rounding accumulates, ``3.5e-4``) times the scale :math:`s` of the receivers' errors (their mean in the
unmodified rollout): far below any effect worth reporting (trained relays: ``1e-2`` to ``1e-1``), far above
rounding.

:func:`relay_statistics` tests every agent against two nulls, each with one-sided permutation p-values
(:func:`gnncomm.metrics.stats.p_value`) Holm-corrected over agents:

1. **no effect** (``p_zero``): the episodes' far effects are symmetric about ``0``; the null flips the sign of
   each episode's effect at random. An untrained system, whose silenced agents shift far errors either way,
   passes nobody here;
2. **no more than the others** (``p_others``): in each episode the agents' far effects are exchangeable. The
   statistic is the agent's mean rank among the agents of an episode (ties averaged), so that a few episodes
   with a huge effect do not decide it; the null gives agent :math:`a` the rank of an agent drawn at random in
   every episode (a permutation of agents within each episode,
   :func:`gnncomm.metrics.stats.stratified_permutations`). A system where every agent passes information on
   equally (a ring of forwarders) has real far effects but no relay: nobody stands out.

An agent is a relay when it rejects both (an intersection-union test: ``p_adjusted`` is the larger of the two
corrected p-values, and the chance of any false relay stays ``<= alpha`` under either null).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import Tensor

from gnncomm.metrics import stats as _stats  # p_value through the module: the one p-value, seen by its spies
from gnncomm.metrics.stats import (
    Correction,
    _as_float_array,
    _check_positive_int,
    _check_probability,
    _rng,
    adjust_p_values,
    min_permutations,
    rankdata,
    stratified_permutations,
)

__all__ = [
    "RELAY_PERMUTATIONS",
    "ROUNDING_TOLERANCE",
    "detect_relays",
    "far_effects",
    "heard_directly",
    "relay_statistics",
]

ArrayLike = Any  # np.ndarray | torch.Tensor | nested sequences
SeedLike = Any  # int | np.random.Generator | torch.Generator

RELAY_PERMUTATIONS = 999
"""Default size of both relay nulls (cheap: one matrix product per null); raised to
:func:`~gnncomm.metrics.stats.min_permutations` for many agents."""

ROUNDING_TOLERANCE = float(np.sqrt(np.finfo(np.float32).eps))
"""Relative size below which a far effect is float32 rounding, not an effect (about ``3.5e-4``; see the module
docstring): :func:`gnncomm.evaluation.relay_test` passes ``tolerance = ROUNDING_TOLERANCE * scale`` to
:func:`far_effects`, ``scale`` being the receivers' mean error."""


def heard_directly(edge_indices: Sequence[Tensor], num_agents: int, num_episodes: int) -> np.ndarray:
    r"""``[B, N, N]`` booleans ``[b, speaker, listener]``: an edge ``speaker -> listener`` at any step of episode ``b``.

    Args:
        edge_indices: each step's ``edge_index [2, E]`` over the ``B * N`` nodes (episode ``b`` holds nodes
            ``b * N .. b * N + N - 1``), e.g. a trace's ``edge_index``.
        num_agents (int): :math:`N`.
        num_episodes (int): :math:`B`.

    Example:
        >>> import torch
        >>> steps = [torch.tensor([[0, 3], [1, 2]]), torch.tensor([[1], [0]])]  # 2 episodes of 2 agents
        >>> heard_directly(steps, 2, 2).astype(int).tolist()
        [[[0, 1], [1, 0]], [[0, 0], [1, 0]]]
    """
    N = _check_positive_int(num_agents, "num_agents")
    B = _check_positive_int(num_episodes, "num_episodes")
    heard = np.zeros(B * N * N, dtype=bool)
    for edge_index in edge_indices:
        src, dst = edge_index.cpu().numpy()
        heard[(dst // N) * N * N + (src % N) * N + dst % N] = True
    return heard.reshape(B, N, N)


def far_effects(receiver_delta: ArrayLike, far: ArrayLike, *, tolerance: float = 0.0) -> np.ndarray:
    r"""Each silenced agent's effect on the receivers that do not hear it, per episode ``[N, B]``.

    :math:`e_{ab} = \frac{1}{N} \sum_i \mathbb{1}[\mathrm{far}_{abi}] \Delta_{abi}` (see the module
    docstring): the share of the knock-out effect (a mean over all ``N`` receivers) borne by far receivers,
    set to ``0`` where :math:`|e_{ab}| \le` ``tolerance`` (rounding, not an effect).

    Args:
        receiver_delta: ``[N, B, N]``, ``[silenced agent, episode, receiver]``: the rise of the receiver's error.
        far: ``[N, B, N]`` booleans: the receiver never heard the silenced agent directly in that episode.
        tolerance (float, optional): largest magnitude that counts as no effect, ``>= 0``; the evaluation uses
            :data:`ROUNDING_TOLERANCE` times the errors' scale. (default: ``0.0``)

    Example:
        >>> delta = np.array([[[0.0, 0.3, 0.6]], [[0.1, 0.0, 0.0]], [[0.2, 0.2, 0.0]]])  # 3 agents, 1 episode
        >>> far = np.array([[[0, 0, 1]], [[0, 0, 1]], [[1, 0, 0]]], dtype=bool)  # 0 and 2 hear each other only via 1
        >>> far_effects(delta, far)[:, 0].round(3).tolist()
        [0.2, 0.0, 0.067]
        >>> far_effects(delta, far, tolerance=0.1)[:, 0].round(3).tolist()  # 0.067 is within the tolerance
        [0.2, 0.0, 0.0]
    """
    tol = float(tolerance) if isinstance(tolerance, (int, float)) and not isinstance(tolerance, bool) else None
    if tol is None or not tol >= 0.0 or not np.isfinite(tol):
        raise ValueError(f"tolerance must be a finite float >= 0, got {tolerance!r}")
    delta = _as_float_array(receiver_delta, "receiver_delta")
    mask = np.asarray(far, dtype=bool)
    if delta.ndim != 3 or delta.shape[0] != delta.shape[2]:
        raise ValueError(f"receiver_delta must have shape [N, B, N], got {tuple(delta.shape)}")
    if mask.shape != delta.shape:
        raise ValueError(f"far must have the shape of receiver_delta {tuple(delta.shape)}, got {tuple(mask.shape)}")
    effect = np.where(mask, delta, 0.0).sum(-1) / delta.shape[-1]  # [N, B]
    return np.where(np.abs(effect) <= tol, 0.0, effect) if tol > 0.0 else effect


def relay_statistics(
    far_effect: ArrayLike,
    *,
    num_permutations: int = RELAY_PERMUTATIONS,
    correction: Correction = "holm",
    seed: SeedLike = 0,
) -> dict[int, dict[str, float]]:
    r"""Per agent, its mean far effect against the two nulls of the module docstring.

    Args:
        far_effect: ``[N, B]``, from :func:`far_effects`: agent, episode.
        num_permutations (int, optional): size ``K`` of each null; the smallest p-value is ``1 / (K + 1)``,
            and a sign flip over ``B`` episodes has only ``2^B`` patterns. (default: :data:`RELAY_PERMUTATIONS`)
        correction (str, optional): ``"holm"``, ``"bonferroni"`` or ``"none"``, over agents. (default: ``"holm"``)
        seed (int, np.random.Generator or torch.Generator, optional): source of both nulls. (default: ``0``)

    Returns:
        dict[int, dict[str, float]]: per agent ``"far_effect"`` (mean over episodes), ``"far_effect_se"``
        (its standard error over episodes; ``0`` for one episode), ``"null_mean"`` (the mean far effect of an
        agent drawn at random), ``"mean_rank"`` (its mean rank in the episodes, ``1 .. N``), ``"p_zero"``,
        ``"p_others"``, their corrected ``"p_zero_adjusted"`` and
        ``"p_others_adjusted"``, and ``"p_adjusted"``, the larger of the two.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> effect = rng.normal(0.0, 0.01, (6, 20))
        >>> effect[2] += 0.3  # silencing agent 2 hurts the agents that do not hear it
        >>> stats = relay_statistics(effect, num_permutations=199)
        >>> [a for a, s in stats.items() if s["p_adjusted"] <= 0.05]
        [2]
    """
    E = _as_float_array(far_effect, "far_effect")
    if E.ndim != 2 or E.shape[1] < 1:
        raise ValueError(f"far_effect must have shape [N, B >= 1], got {tuple(E.shape)}")
    K = _check_positive_int(num_permutations, "num_permutations")
    adjust_p_values([], correction)
    N, B = E.shape
    if N == 0:
        return {}
    rng = _rng(seed)
    observed = E.mean(axis=1)  # [N]
    signs = rng.choice(np.array([-1.0, 1.0]), size=(K, B))
    p_zero = _stats.p_value(observed, signs @ E.T / B)  # [N]
    ranks = np.stack([rankdata(E[:, b]) for b in range(B)])  # [B, N], within each episode
    draw = stratified_permutations(np.repeat(np.arange(B), N), seed=rng)  # agents swapped within each episode
    flat = ranks.reshape(-1)  # [B * N], episode-major
    others = np.stack([flat[draw()].reshape(B, N).mean(axis=0) for _ in range(K)])  # [K, N]
    mean_rank = ranks.mean(axis=0)  # [N]
    p_others = _stats.p_value(mean_rank, others)
    zero_adj, others_adj = adjust_p_values(p_zero, correction), adjust_p_values(p_others, correction)
    se = E.std(axis=1, ddof=1) / np.sqrt(B) if B > 1 else np.zeros(N)
    return {
        a: {
            "far_effect": float(observed[a]),
            "far_effect_se": float(se[a]),
            "null_mean": float(E.mean()),
            "mean_rank": float(mean_rank[a]),
            "p_zero": float(p_zero[a]),
            "p_others": float(p_others[a]),
            "p_zero_adjusted": float(zero_adj[a]),
            "p_others_adjusted": float(others_adj[a]),
            "p_adjusted": float(max(zero_adj[a], others_adj[a])),
        }
        for a in range(N)
    }


def detect_relays(
    far_effect: ArrayLike,
    *,
    num_permutations: int | None = None,
    alpha: float = 0.05,
    correction: Correction = "holm",
    seed: SeedLike = 0,
) -> list[int]:
    r"""Agents whose silencing hurts the agents that do not hear them, beyond both nulls of :func:`relay_statistics`.

    Args:
        far_effect: ``[N, B]``, from :func:`far_effects`.
        num_permutations (int, optional): size of each null; ``None`` takes :data:`RELAY_PERMUTATIONS` or, if more,
            the fewest with which ``N`` corrected p-values can reach ``alpha``. (default: ``None``)
        alpha (float, optional): family-wise level in ``(0, 1)``. (default: ``0.05``)
        correction (str, optional): ``"holm"``, ``"bonferroni"`` or ``"none"``. (default: ``"holm"``)
        seed (int, np.random.Generator or torch.Generator, optional): (default: ``0``)

    Returns:
        list[int]: sorted agent ids.

    Example:
        >>> detect_relays(np.zeros((5, 8)))  # silencing anyone changes nothing for those who do not hear it
        []
    """
    a = _check_probability(alpha, "alpha", open_low=True, open_high=True)
    E = _as_float_array(far_effect, "far_effect")
    K = num_permutations
    if K is None:
        K = max(RELAY_PERMUTATIONS, min_permutations(max(E.shape[0], 1), a))
    tests = relay_statistics(E, num_permutations=K, correction=correction, seed=seed)
    return sorted(agent for agent, t in tests.items() if t["far_effect"] > 0.0 and t["p_adjusted"] <= a)
