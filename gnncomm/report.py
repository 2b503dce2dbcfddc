"""What ``gnncomm evaluate`` writes: the emergence report of a trained run, its figures and definitions.

:func:`evaluate` rolls out held-out episodes of a trained run and computes every diagnostic next to a
null model: attention structure (hubs, relays, centrality), symbol use and specialization, temporal
dependence, compositionality, and causal ablations. It writes :data:`REPORT_JSON`, :data:`REPORT_MD` and
the figures of :data:`FIGURES`; :data:`DEFINITIONS` says what every number means. Every p-value comes
from the single permutation test of :mod:`gnncomm.metrics.stats`.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gnncomm import metrics, plots
from gnncomm.config import Config
from gnncomm.evaluation import (
    attention_matrix,
    attention_structure,
    communication_ablation,
    end_of_run_episodes,
    knockout_effects,
    knockout_vs_centrality,
    load_run,
    relay_test,
)
from gnncomm.rollout import EVAL_SEED_OFFSET, Trace, evaluate_rollout
from gnncomm.world import World

__all__ = [
    "DEFINITIONS",
    "FIGURES",
    "REPORT_JSON",
    "REPORT_MD",
    "evaluate",
    "format_report",
    "plot_episode_topology",
]

LATENT_BINS = 4
"""Quantile bins per latent factor when a factor must be a discrete attribute (posdis, bosdis, MI)."""
TOPSIM_PAIRS = 2000
"""Message pairs per agent for topographic similarity (sub-sampled above this)."""
TOP_SYMBOLS = 5
"""Most frequent non-silent symbols whose meaning is reported."""
NARROWING_BITS = 0.1
"""The language 'narrowed' over training if its symbol entropy fell by more than this (or its usage fell)."""
REPORT_JSON, REPORT_MD = "report.json", "report.md"
FIGURES = {
    "attention_heatmap": "attention_heatmap.png",
    "vocab_over_training": "vocab_over_training.png",
    "symbol_transitions": "symbol_transitions.png",
    "knockout_vs_centrality": "knockout_vs_centrality.png",
}
CENTRALITY_TESTED = ("attention_received", "pagerank", "betweenness")
"""The centralities correlated with the knock-out effect."""

_GRAPH_DOC = "gnncomm.metrics.graph (module docstring)"
DEFINITIONS: dict[str, str] = {
    "null models": "every '_null' number is the mean of the statistic over its permutation null; p-values are "
    "one-sided, (1 + #{null >= observed}) / (1 + K) with K permutations (float ties count as "
    "exceeding), so never 0 (gnncomm.metrics.stats.p_value, the one p-value of the package).",
    "world_mse": "MSE of the world-latent estimate at the last step, greedy messages; _silent: every message "
    "replaced by silence; _shuffled: each agent hears the same agent's message from another episode. "
    "reward: the world's cooperative reward (SwarmWorld: minus the swarm's dispersion), mean per step.",
    "episode_return": "for a world without a latent (a task such as a VMAS scenario): per held-out episode, the sum "
    "over its steps of the agents' mean reward (BenchMARL's evaluation return), averaged over episodes; "
    "_silenced and _shuffled as for world_mse. success_rate: the share of episodes that end in the "
    "scenario's success (success_definition says what that is), where the world defines one.",
    "attention graph": "attention (mean over heads) on each directed pair of agent ids, averaged over every step and "
    "episode in which the edge existed; edges point along message flow, speaker -> listener, "
    f"weighted by the attention the listener pays the speaker (see {_GRAPH_DOC}).",
    "attention_received": "sum over an agent's listeners of the attention they pay it: how much its messages are "
    f"heard. attention_paid: the sum over its speakers of the attention it pays ({_GRAPH_DOC}).",
    "pagerank": "networkx PageRank (damping 0.85) on the reversed attention graph, a walk from a listener to the "
    f"speakers it attends to: high for agents attended to by attended agents ({_GRAPH_DOC}).",
    "betweenness": "networkx betweenness (normalised) with edge length 1/attention, so strong attention is a short "
    f"path ({_GRAPH_DOC}).",
    "hubs": "agents whose attention_received beats a degree-preserving null that permutes the edge weights over the "
    "existing edges (hub_shuffles = K shuffles; attention_received_null is its mean); an agent is a hub when "
    "its Holm-adjusted p <= 0.05. With K shuffles the smallest reachable p-value is 1/(K+1). Holm multiplies "
    "the i-th smallest of the N agents' p-values by N-i+1 (kept non-decreasing), so the chance of any false "
    "hub stays <= 0.05.",
    "relays": "agents that information flows through, tested causally (gnncomm.metrics.flow): silencing the agent "
    "(its knock-out) raises the world error of agents that never heard it directly at any step of the episode "
    "(2 or more hops away on each step's graph) or, in a world without a latent whose agents have rewards of their "
    "own (agent_rewards, e.g. VMAS), lowers their own return (each agent's rewards summed over the episode); "
    "far_knockout_delta is that harm, as a share of knockout_delta. Per-episode far effects within run.relay_tolerance "
    "(sqrt(float32 eps) = 3.5e-4 times the receivers' mean error, or mean summed |reward|) are float32 rounding and "
    "count as 0. "
    "Two nulls over the episodes, each with relay_permutations = K draws: the far effect is no more than zero "
    "(each episode's sign flipped at random) and no more than another agent's (the agents' ranks permuted within "
    "each episode); a relay rejects both, relay_p_adjusted (the larger Holm-adjusted p) <= 0.05. With K draws "
    "the smallest reachable p-value is 1/(K+1). Holm multiplies the i-th smallest of the N agents' p-values by "
    "N-i+1 (kept non-decreasing), so the chance of any false relay stays <= 0.05.",
    "attention_relays": "what attention adds to the graph: agents with positive (attention-weighted) betweenness "
    "that beats the hubs' weight-shuffle null, betweenness recomputed on each of attention_relay_shuffles = K "
    "shuffles (attention_betweenness_null is its mean), Holm-adjusted p <= 0.05; an agent on many paths only "
    "because of the topology (a bridge, a star's centre) is none, whatever flows through it.",
    "graph_betweenness": "what the topology forces: networkx betweenness (normalised) of the communication graph "
    "alone, without attention, averaged over the step graphs (gnncomm.metrics.graph).",
    "knockout_delta": "increase of world_mse when that one agent is silenced in every episode (for a world without "
    "a latent: the fall in episode_return), paired over the same episodes; _se is the standard error over "
    "episodes.",
    "knockout_vs_centrality": "Spearman rho between knockout_delta and each centrality over agents, with a one-sided "
    "p-value from permuting agents; hub_mean/non_hub_mean compare the two groups.",
    "temporal": "within-message: I(s_j; s_j+1) pooled over positions, agents, steps and episodes; the null "
    "permutes s_j+1 only among pairs of the same speaker and position, so per-position and per-speaker "
    "symbol habits are kept and only the link between the two symbols is destroyed "
    "(gnncomm.metrics.within_message_dependence). across-time: I(message_t; message_t+1) of the same "
    "agent (whole messages as symbols), null permuted among episodes with the same agent and t "
    "(gnncomm.metrics.across_time_dependence). Both include dependence that comes from talking about the "
    "same episode's world.",
    "specialization": "I(symbol at position j of the last step; latent factor f cut into 4 quantile bins), pooled "
    "over agents; the null permutes the latents across episodes, and the p-value tests the best "
    "factor's MI against the null of the best. Top symbols: the same for 'symbol present in the "
    "message'.",
    "agent_symbol_mi": "I(agent id; symbol): how much agents use different symbols (dialects or division of "
    "labour); null permutes agents within each step, episode and position.",
    "topsim": "per agent, Spearman rho between the Euclidean distance of the episode latents and the Hamming "
    "distance of the agent's last-step messages, averaged over agents (same-speaker pairs only, so "
    "speaker identity does not count as meaning); null permutes latents across episodes. "
    "topsim_observation: the same with the latent factors the agent itself observes (noise-free, from the "
    "world's view_mask) and its step-0 message (before it heard anything).",
    "posdis_bosdis": "Chaabouni et al. (2020) with attributes = the latent factors cut into 4 quantile bins and "
    "messages = each agent's last-step message, averaged over agents; null permutes latents across "
    "episodes (shows the plug-in MI bias). The topsim/posdis/bosdis nulls use num_permutations // 4 "
    "shuffles, since each shuffle re-scores every agent.",
    "vocab_over_training": "vocab_usage and entropy_bits logged in metrics.csv while training, of the greedy "
    "(argmax) symbols of each training batch (vocab_usage_sampled is the Gumbel-sampled usage, near 1 "
    "throughout); 'narrowed' means usage fell or entropy fell by more than 0.1 bits from the first to the last log.",
}


def evaluate(
    run_dir: str | Path,
    *,
    episodes: int | None = None,
    device: str | torch.device = "cpu",
    seed: int | None = None,
    num_permutations: int = 200,
    world: World | None = None,
) -> dict[str, Any]:
    """The emergence report of a trained run: runs greedy evaluation episodes and every diagnostic.

    Loads ``run_dir/checkpoint.pt``, rolls out ``episodes`` held-out episodes (recorded), and computes
    attention structure (hubs, relays, centrality), symbol use and specialization, temporal
    dependence, compositionality, and causal ablations (silence, shuffle, per-agent knock-outs),
    each next to a null model. Writes :data:`REPORT_JSON`, :data:`REPORT_MD` and the figures of
    :data:`FIGURES` into ``run_dir``; prints nothing. The meaning of every number is in
    ``report["definitions"]``.

    Args:
        run_dir: a run folder written by :func:`gnncomm.train`.
        episodes (int, optional): evaluation episodes (``>= 2``); if ``None``, those of the run's own
            end-of-run evaluation (:func:`gnncomm.evaluation.end_of_run_episodes`: ``eval_episodes``, capped
            for large populations), so that the report agrees with ``ablation.json``.
        device: where to run the rollouts.
        seed (int, optional): seed of the episodes and of every null; ``cfg.seed + EVAL_SEED_OFFSET``
            (the episodes of the training run's ``ablation.json``) if ``None``.
        num_permutations (int): size of every permutation null. (default: ``200``)
        world (World, optional): the world the run trained in, for a world not registered in this
            session (see :func:`gnncomm.evaluation.load_run`). (default: ``None``)

    Returns:
        dict: the report, equal to ``json.load(open(run_dir / "report.json"))``: plain JSON numbers,
        with ``None`` (and a reason in ``report["undefined"]``) where a number is undefined.

    Raises:
        CheckpointError: ``run_dir`` is not a folder with a readable checkpoint, or its world cannot be
            built.
        ValueError: ``episodes`` or ``num_permutations`` out of range.
    """
    if episodes is not None and (isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 2):
        raise ValueError(f"episodes must be an int >= 2 (pairs of episodes are compared), got {episodes!r}")
    if isinstance(num_permutations, bool) or not isinstance(num_permutations, int) or num_permutations < 1:
        raise ValueError(f"num_permutations must be an int >= 1, got {num_permutations!r}")
    run_dir = Path(run_dir)
    cfg, system, world, state = load_run(run_dir, device, world=world)
    episodes = episodes or end_of_run_episodes(cfg)  # the run's own held-out episodes: one answer
    seed = cfg.seed + EVAL_SEED_OFFSET if seed is None else seed
    rng = np.random.default_rng(seed)
    B, N, T, M, V, L = episodes, cfg.num_agents, cfg.episode_length, cfg.msg_dim, cfg.vocab_size, world.latent_dim
    name, k = cfg.topology_at(cfg.steps)
    undefined: dict[str, str] = {}

    # ---- one recorded rollout with real messages: everything observational comes from it
    _, trace = evaluate_rollout(system, world, cfg, episodes=B, seed=seed, device=device, record=True)
    symbols = torch.stack([o.message.argmax(-1) for o in trace.outputs]).view(T, B, N, M).cpu().numpy()
    latent = trace.states[0].latent.float().cpu().numpy() if L else None  # [B, L], constant over an episode
    bins = metrics.quantile_bins(latent, LATENT_BINS) if L else None  # [B, L]
    first_obs = trace.obs[0].float().view(B, N, -1).cpu().numpy()  # [B, N, obs_dim]

    report: dict[str, Any] = {
        "run": {
            "run_dir": str(run_dir),
            "step": int(state.get("step", 0)),
            "episodes": B,
            "seed": seed,
            "num_permutations": num_permutations,
            "world": cfg.world,
            "topology": name,
            "k": k,
            "num_agents": N,
            "vocab_size": V,
            "msg_dim": M,
            "timesteps": T,
            "latent_dim": L,
            "view_size": cfg.view_size,
        },
    }
    ablation = communication_ablation(system, world, cfg, episodes=B, seed=seed, device=device)
    report.update(
        {
            key: ablation[key]
            for key in (
                "world_mse",
                "world_mse_silent",
                "world_mse_shuffled",
                "world_mse_ratio",
                "episode_return",
                "episode_return_silenced",
                "episode_return_shuffled",
                "episode_return_no_actions",
                "success_rate",
                "success_rate_silenced",
                "success_definition",
                "goal_distance",
                "goal_distance_silenced",
                "recon_mse",
                "comm_cost",
                "reward",
            )
            if key in ablation
        }
    )
    if ablation.get("success_rate") is None:
        undefined.update(dict.fromkeys(("success_rate", "success_rate_silenced"), ablation["success_rate_reason"]))
    report.update(_language_report(symbols, V, num_permutations, rng))
    if L:
        report.update(_specialization_report(symbols[-1], bins, num_permutations, rng))
    else:
        keys = ("position_factor_mi_bits", "position_factor_mi_null_bits")
        report.update({**dict.fromkeys(keys), "position_specialization": [], "symbol_specialization": []})
        undefined.update(dict.fromkeys(keys, "the world has no latent: symbols cannot specialise on its factors"))
    report.update(_temporal_report(symbols, V, num_permutations, rng, undefined))
    # Each shuffle of a compositionality null re-scores every agent (N metric calls): a quarter of the shuffles.
    report.update(
        _compositionality_report(
            symbols,
            latent,
            _seen_factors(world, latent) if L else first_obs,
            bins,
            V,
            max(num_permutations // 4, 1),
            rng,
            undefined,
        )
    )

    # ---- attention structure and causal knock-outs
    structure = attention_structure(trace, cfg, seed=seed)
    # One silenced rollout per agent gives the knock-outs and, from the same rollouts, the causal relay test.
    effects = knockout_effects(system, world, cfg, episodes=B, seed=seed, device=device, real=trace)
    del trace
    relay = relay_test(system, world, cfg, episodes=B, seed=seed, device=device, effects=effects)
    report["run"].update(
        hub_shuffles=structure["hub_shuffles"],
        hub_null=structure["hub_null"],
        relay_permutations=relay["relay_permutations"],
        relay_tolerance=relay["relay_tolerance"],
        attention_relay_shuffles=structure["attention_relay_shuffles"],
    )
    report["hubs"], report["relays"] = structure["hubs"], relay["relays"]
    report["attention_relays"] = structure["attention_relays"]
    report["centrality"] = _centrality_report(structure, effects.delta, relay["relay_stats"])
    for skipped, keys, per_agent in (
        (relay["relays_skipped"], ("relays", "run.relay_permutations", "run.relay_tolerance"), RELAY_KEYS),
        (
            structure["attention_relays_skipped"],
            ("attention_relays", "run.attention_relay_shuffles"),
            ATTENTION_RELAY_KEYS,
        ),
    ):
        if skipped:
            undefined.update(dict.fromkeys(keys, skipped))
            undefined.update({f"centrality.{a}.{key}": skipped for a in report["centrality"] for key in per_agent})
    agents = sorted(report["centrality"], key=int)
    report["knockout_vs_centrality"], reasons = knockout_vs_centrality(
        [report["centrality"][a]["knockout_delta"] for a in agents],
        {key: [report["centrality"][a][key] for a in agents] for key in CENTRALITY_TESTED},
        report["hubs"],
        num_permutations=num_permutations,
        seed=rng,
    )
    undefined.update({f"knockout_vs_centrality.{key}": reason for key, reason in reasons.items()})
    history = _training_history(run_dir, state)
    report["vocab_over_training"] = _training_summary(history, undefined)

    # ---- files
    _write_figures(run_dir, report, attention_matrix(structure["graph"], N), symbols, history)
    report["figures"] = dict(FIGURES)
    report["definitions"] = DEFINITIONS
    report = _json_safe(report, "", undefined)
    report["undefined"] = undefined  # last, so it also holds the reasons _json_safe added
    (run_dir / REPORT_JSON).write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    (run_dir / REPORT_MD).write_text(format_report(report, markdown=True) + "\n")
    return report


def plot_episode_topology(
    trace: Trace,
    cfg: Config,
    path: str | Path,
    *,
    hubs: Sequence[int] = (),
    relays: Sequence[int] | None = (),
    episode: int = 0,
    step: int = -1,
    episodes: int | None = None,
) -> None:
    """``topology.png``: one evaluation episode's graph at ``step``, edges drawn by attention.

    The hubs and relays (the causal relays of :func:`gnncomm.evaluation.relay_test`) are computed over every
    episode of the evaluation, not from this one episode; the title says so.

    Args:
        trace: a recorded :func:`~gnncomm.rollout.evaluate_rollout`.
        hubs, relays: agent ids drawn red and orange (``relays=None``: not tested).
        episode, step: which episode of the trace, and which step (``-1``: the last).
        episodes: how many held-out episodes the hubs and relays come from (for the title).
    """
    N = cfg.num_agents
    edge_index, out, state = trace.edge_index[step].cpu(), trace.outputs[step], trace.states[step]
    keep = (edge_index[1] // N) == episode
    local = (edge_index[:, keep] - episode * N).numpy()
    weight = out.alpha.float().mean(-1).cpu()[keep].numpy()
    pos = state.pos[episode].float().cpu().numpy()
    name, k = cfg.topology_at(cfg.steps)
    source = f"{episodes} held-out episodes" if episodes else "all held-out episodes"
    marks = "causal relays not tested" if relays is None else f"hubs {list(hubs)}, causal relays {list(relays)}"
    plots.plot_topology(
        pos,
        local,
        weight,
        path,
        hubs=hubs,
        relays=relays or (),
        title=f"communication graph: {name} (k={k}), {N} agents, held-out episode {episode} at step "
        f"{step % cfg.timesteps}\ncoloured edges: attention clearly above uniform; marker size: attention received"
        f"\n{marks}, tested over {source}",
    )


# ---------------------------------------------------------------------------- report sections
def _seen_factors(world: World, latent: np.ndarray) -> np.ndarray | None:
    """``[B, N, L]``: the latent factors each agent observes, noise-free; ``None`` if the world does not say."""
    view_mask = getattr(world, "view_mask", None)
    if view_mask is None:
        return None
    mask = torch.as_tensor(view_mask).float().cpu().numpy()  # [N, L]
    return latent[:, None, :] * mask[None]


def _language_report(symbols: np.ndarray, V: int, K: int, rng: np.random.Generator) -> dict[str, Any]:
    """Vocabulary, entropies, silence and per-agent symbol use over every step of every episode."""
    T, B, N, M = symbols.shape
    flat = symbols.reshape(-1, M)  # [T*B*N, M]
    agent = np.broadcast_to(np.arange(N)[None, None, :, None], symbols.shape)  # [T, B, N, M]
    block = np.arange(T * B * M).reshape(T, B, 1, M).repeat(N, axis=2)  # one stratum per (t, b, j)
    dialect = metrics.mutual_information_test(
        agent.reshape(-1), symbols.reshape(-1), strata=block.reshape(-1), num_permutations=K, seed=rng
    )
    per_agent = {}
    for a in range(N):
        own = symbols[:, :, a].reshape(-1, M)
        counts = np.bincount(own.reshape(-1), minlength=V)
        per_agent[str(a)] = {
            "vocab_usage": metrics.vocab_usage(own, V),
            "entropy_bits": metrics.symbol_entropy(own, V),
            "silence_rate": float((own == 0).mean()),
            "top_symbol": int(counts.argmax()),
            "top_symbol_rate": float(counts.max() / own.size),
        }
    return {
        "vocab_usage": metrics.vocab_usage(flat, V),
        "symbols_used": int((np.bincount(flat.reshape(-1), minlength=V) > 0).sum()),
        "symbol_entropy_bits": metrics.symbol_entropy(flat, V),
        "symbol_entropy_per_position_bits": metrics.symbol_entropy(flat, V, per_position=True).tolist(),
        "message_entropy_bits": metrics.entropy_bits(flat),
        "max_entropy_bits": math.log2(V),
        "silence_rate": float((flat == 0).mean()),
        "agent_symbol_mi_bits": dialect.value,
        "agent_symbol_mi_null_bits": dialect.null_mean,
        "agent_symbol_p_value": dialect.p_value,
        "per_agent_language": per_agent,
    }


def _specialization_report(last: np.ndarray, bins: np.ndarray, K: int, rng: np.random.Generator) -> dict[str, Any]:
    """What each message position and each frequent symbol says about which latent factor (last step)."""
    B, N, M = last.shape
    L = bins.shape[1]

    def factor_test(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, metrics.PermutationResult]:
        """MI of ``x [B, N]`` (pooled over agents) with every factor, the null's mean MI per factor,
        and the test of the best factor's MI against the null distribution of the best."""
        stats = [metrics.mutual_information_statistic(x.reshape(-1), np.repeat(bins[:, f], N)) for f in range(L)]

        def mis(perm: np.ndarray) -> np.ndarray:  # [L]; episode b reads the latents of episode perm[b]
            pooled = (perm[:, None] * N + np.arange(N)).reshape(-1)
            return np.array([stat(pooled) for stat in stats])

        observed = mis(np.arange(B))
        null = np.stack([mis(rng.permutation(B)) for _ in range(K)])  # [K, L], one permutation for every factor
        return observed, null.mean(axis=0), metrics.PermutationResult.from_null(observed.max(), null.max(axis=1))

    positions, mi, mi_null = [], [], []
    for j in range(M):
        observed, null, test = factor_test(last[:, :, j])
        mi.append(observed.tolist())
        mi_null.append(null.tolist())
        positions.append(
            {
                "position": j,
                "best_factor": int(observed.argmax()),
                "mi_bits": test.value,
                "null_bits": test.null_mean,
                "p_value": test.p_value,
            }
        )
    counts = np.bincount(last.reshape(-1), minlength=1)
    counts[0] = 0  # silence is not a word
    top = [int(v) for v in np.argsort(-counts, kind="stable")[:TOP_SYMBOLS] if counts[v] > 0]
    symbols = []
    for v in top:
        observed, _, test = factor_test((last == v).any(-1).astype(np.int64))
        symbols.append(
            {
                "symbol": v,
                "rate": float(counts[v] / last.size),
                "best_factor": int(observed.argmax()),
                "mi_bits": test.value,
                "null_bits": test.null_mean,
                "p_value": test.p_value,
            }
        )
    return {
        "position_factor_mi_bits": mi,
        "position_factor_mi_null_bits": mi_null,
        "position_specialization": positions,
        "symbol_specialization": symbols,
    }


def _temporal_report(
    symbols: np.ndarray, V: int, K: int, rng: np.random.Generator, undefined: dict[str, str]
) -> dict[str, Any]:
    """Within-message (s_j -> s_j+1) and across-time (message_t -> message_t+1) dependence."""
    T, B, N, M = symbols.shape
    speaker = np.broadcast_to(np.arange(N), (T, B, N))  # [T, B, N]
    out: dict[str, Any] = {}
    keys = ("temporal_mi_bits", "temporal_mi_null_bits", "temporal_z", "temporal_p_value", "top_transitions")
    if M < 2:
        out.update(dict.fromkeys(keys))
        undefined.update(dict.fromkeys(keys, f"msg_dim={M}: a message has no symbol j+1"))
    else:
        test = metrics.within_message_dependence(symbols, speakers=speaker, num_permutations=K, seed=rng)
        x, y = symbols[..., :-1].reshape(-1), symbols[..., 1:].reshape(-1)
        strata = (speaker[..., None] * (M - 1) + np.arange(M - 1)).reshape(-1)  # the null's (speaker, j) strata
        out.update(
            temporal_mi_bits=test.mi_bits,
            temporal_mi_null_bits=test.null_mean_bits,
            temporal_z=test.z_score,
            temporal_p_value=test.p_value,
            top_transitions=_top_transitions(x, y, strata, V),
        )
    keys = ("across_time_mi_bits", "across_time_mi_null_bits", "across_time_z", "across_time_p_value")
    if T < 2:
        out.update(dict.fromkeys(keys))
        undefined.update(dict.fromkeys(keys, f"timesteps={T}: an episode has no step t+1"))
    else:
        test = metrics.across_time_dependence(
            symbols.reshape(T, B * N, M), speakers=np.tile(np.arange(N), B), num_permutations=K, seed=rng
        )
        out.update(
            across_time_mi_bits=test.mi_bits,
            across_time_mi_null_bits=test.null_mean_bits,
            across_time_z=test.z_score,
            across_time_p_value=test.p_value,
        )
    return out


def _top_transitions(x: np.ndarray, y: np.ndarray, strata: np.ndarray, V: int, top: int = 5) -> list[dict[str, Any]]:
    """The symbol bigrams ``a -> b`` most in excess of their count under within-stratum independence."""
    observed = np.bincount(x * V + y, minlength=V * V).reshape(V, V).astype(np.float64)
    expected = np.zeros((V, V))
    for s in np.unique(strata):
        keep = strata == s
        expected += np.outer(np.bincount(x[keep], minlength=V), np.bincount(y[keep], minlength=V)) / keep.sum()
    excess = observed - expected
    rows = observed.sum(axis=1)
    order = np.argsort(-excess, axis=None, kind="stable")[:top]
    return [
        {
            "from": int(a),
            "to": int(b),
            "count": int(observed[a, b]),
            "expected": float(expected[a, b]),
            "probability": float(observed[a, b] / rows[a]),
        }
        for a, b in zip(*np.unravel_index(order, (V, V)))
        if excess[a, b] > 0
    ]


def _compositionality_report(
    symbols: np.ndarray,
    latent: np.ndarray | None,
    seen: np.ndarray | None,
    bins: np.ndarray | None,
    V: int,
    K: int,
    rng: np.random.Generator,
    undefined: dict[str, str],
) -> dict[str, Any]:
    """topsim (latent and own observation), posdis and bosdis per agent, averaged, each against a null.

    A world without a latent (``latent`` and ``bins`` ``None``) has only ``topsim_observation``, with ``seen`` the
    agents' own first observations ``[B, N, obs_dim]``."""
    _, B, N, M = symbols.shape
    last, first = symbols[-1], symbols[0]  # [B, N, M]
    pairs = min(TOPSIM_PAIRS, B * (B - 1) // 2)
    identity = np.arange(B)

    def draw() -> np.ndarray:
        return rng.permutation(B)

    def topsim(meanings: Callable[[int], np.ndarray], msgs: np.ndarray) -> Callable[[np.ndarray], float]:
        return lambda idx: float(
            np.mean(
                [
                    metrics.topographic_similarity(meanings(a)[idx], msgs[:, a], max_pairs=pairs, seed=a)
                    for a in range(N)
                ]
            )
        )

    # Per agent, symbols renumbered densely (silence stays 0): posdis and bosdis skip constant columns, so
    # the scores are unchanged, but bosdis then builds one count column per used symbol instead of V - 1.
    dense = [np.unique(np.concatenate([[0], last[:, a].ravel()]), return_inverse=True) for a in range(N)]
    dense = [(inv[1:].reshape(B, M), len(used)) for used, inv in dense]

    def disent(fn: Callable[..., float]) -> Callable[[np.ndarray], float]:
        return lambda idx: float(np.mean([fn(bins[idx], msgs, max(size, 2)) for msgs, size in dense]))

    no_latent = "the world has no latent (a task judged by its reward): there is no world state to compare with"
    no_view = "the world has no view_mask (which latent factors each agent observes), so an agent's own view is unknown"
    statistics = {
        "topsim": no_latent if latent is None else topsim(lambda a: latent, last),
        "topsim_observation": no_view if seen is None else topsim(lambda a: seen[:, a], first),
        "posdis": no_latent if bins is None else disent(metrics.posdis),
        "bosdis": no_latent if bins is None else disent(metrics.bosdis),
    }
    out: dict[str, Any] = {}
    for key, statistic in statistics.items():
        names = (key, f"{key}_null", f"{key}_p_value")
        if isinstance(statistic, str):
            out.update(dict.fromkeys(names))
            undefined.update(dict.fromkeys(names, statistic))
            continue
        test = metrics.permutation_test(statistic, draw, K, identity=identity)
        out.update({key: test.value, f"{key}_null": test.null_mean, f"{key}_p_value": test.p_value})
    return out


RELAY_KEYS = ("far_knockout_delta", "far_knockout_delta_se", "relay_p_adjusted")
"""Per-agent keys of the causal relay test (undefined when it is skipped)."""
ATTENTION_RELAY_KEYS = ("graph_betweenness", "attention_betweenness_null", "attention_relay_p_adjusted")
"""Per-agent keys of the graph's betweenness and the attention relay test (undefined when they are skipped)."""


def _centrality_report(
    structure: dict[str, Any], knock: np.ndarray, relay: dict[int, dict[str, float]] | None
) -> dict[str, dict[str, float | None]]:
    """Per agent id (as a string key): the centralities of :func:`attention_structure` (names of
    :mod:`gnncomm.metrics.graph`), the graph's betweenness, the hub, attention relay and (causal) relay tests
    ``relay`` (:func:`gnncomm.metrics.relay_statistics`), and the knock-out effect ``knock [N, 2]``."""
    hub, attention = structure["hub_stats"], structure["attention_relay_stats"]
    graph = structure["graph_betweenness"]
    return {
        str(a): {
            **c,
            "attention_received_null": hub[a]["null_mean"],
            "hub_p_adjusted": hub[a]["p_adjusted"],
            "graph_betweenness": None if graph is None else graph[a],
            "attention_betweenness_null": None if attention is None else attention[a]["null_mean"],
            "attention_relay_p_adjusted": None if attention is None else attention[a]["p_adjusted"],
            "far_knockout_delta": None if relay is None else relay[a]["far_effect"],
            "far_knockout_delta_se": None if relay is None else relay[a]["far_effect_se"],
            "relay_p_adjusted": None if relay is None else relay[a]["p_adjusted"],
            "knockout_delta": float(knock[a, 0]),
            "knockout_delta_se": float(knock[a, 1]),
        }
        for a, c in structure["centrality"].items()
    }


def _training_history(run_dir: Path, state: dict[str, Any]) -> list[dict[str, float]]:
    """The logged training rows: ``metrics.csv`` if readable, else the checkpoint's history."""
    rows: list[dict[str, float]] = []
    try:
        with open(run_dir / "metrics.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                rows.append({k: float(v) for k, v in row.items() if k and v not in (None, "")})
    except (OSError, ValueError):
        rows = []
    if not rows:
        rows = [dict(r) for r in state.get("history", []) if isinstance(r, dict)]
    return [r for r in rows if "step" in r and "vocab_usage" in r and "entropy_bits" in r]


def _training_summary(history: list[dict[str, float]], undefined: dict[str, str]) -> dict[str, Any]:
    keys = (
        "first_step",
        "last_step",
        "vocab_usage_first",
        "vocab_usage_last",
        "entropy_bits_first",
        "entropy_bits_last",
        "narrowed",
    )
    if not history:
        undefined.update(
            {f"vocab_over_training.{k}": "no training log (metrics.csv or checkpoint history)" for k in keys}
        )
        return dict.fromkeys(keys)
    first, last = history[0], history[-1]
    return {
        "first_step": int(first["step"]),
        "last_step": int(last["step"]),
        "vocab_usage_first": first["vocab_usage"],
        "vocab_usage_last": last["vocab_usage"],
        "entropy_bits_first": first["entropy_bits"],
        "entropy_bits_last": last["entropy_bits"],
        "narrowed": bool(
            last["vocab_usage"] < first["vocab_usage"] or last["entropy_bits"] < first["entropy_bits"] - NARROWING_BITS
        ),
    }


def _write_figures(
    run_dir: Path, report: dict[str, Any], matrix: np.ndarray, symbols: np.ndarray, history: list[dict[str, float]]
) -> None:
    V, M = report["run"]["vocab_size"], report["run"]["msg_dim"]
    hubs, relays = report["hubs"], report["relays"] or []
    plots.plot_attention_heatmap(matrix, run_dir / FIGURES["attention_heatmap"], hubs=hubs, relays=relays)
    plots.plot_vocab_over_training(
        [r["step"] for r in history],
        [r["vocab_usage"] for r in history],
        [r["entropy_bits"] for r in history],
        run_dir / FIGURES["vocab_over_training"],
        vocab_size=V,
        evaluation=(report["run"]["step"], report["vocab_usage"], report["symbol_entropy_bits"]),
    )
    flat = symbols.reshape(-1, M)
    transitions = metrics.symbol_transition_matrix(flat, V) if M >= 2 else np.zeros((V, V), dtype=np.int64)
    plots.plot_symbol_transitions(
        transitions,
        run_dir / FIGURES["symbol_transitions"],
        title="" if M >= 2 else f"msg_dim={M}: no transitions within a message",
    )
    agents = sorted(report["centrality"], key=int)
    c = report["centrality"]
    plots.plot_knockout_vs_centrality(
        [c[a]["knockout_delta"] for a in agents],
        [c[a]["knockout_delta_se"] for a in agents],
        {key: [c[a][key] for a in agents] for key in ("attention_received", "pagerank")},
        run_dir / FIGURES["knockout_vs_centrality"],
        hubs=hubs,
        relays=relays,
    )


def _json_safe(obj: Any, path: str, undefined: dict[str, str]) -> Any:
    """Plain JSON types; a non-finite float becomes ``None`` with a reason in ``undefined``."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v, f"{path}.{k}" if path else str(k), undefined) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v, f"{path}[{i}]", undefined) for i, v in enumerate(obj)]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        if not math.isfinite(float(obj)):
            undefined.setdefault(path, "not a finite number")
            return None
        return float(obj)
    return obj


# ---------------------------------------------------------------------------- formatting
def _fmt(value: Any, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def _test(report: dict[str, Any], key: str, null: str, p: str, spec: str = ".3f") -> str:
    return f"{_fmt(report[key], spec)} (null {_fmt(report[null], spec)}, p={_fmt(report[p], '.3g')})"


def _report_sections(r: dict[str, Any]) -> list[tuple[str, list[str], tuple[list[str], list[list[str]]] | None]]:
    """The report as ``(title, lines, optional table)`` sections, in the order the CLI prints them."""
    run, cent, kvc = r["run"], r["centrality"], r["knockout_vs_centrality"]
    roles = (
        ("hub", set(r["hubs"])),
        ("relay", set(r["relays"] or [])),
        ("attn-relay", set(r["attention_relays"] or [])),
    )
    rows = [
        [
            a,
            " ".join(role for role, group in roles if int(a) in group) or "-",
            _fmt(c["attention_received"]),
            _fmt(c["attention_received_null"]),
            _fmt(c["hub_p_adjusted"], ".3g"),
            _fmt(c["pagerank"]),
            _fmt(c["graph_betweenness"]),
            _fmt(c["betweenness"]),
            _fmt(c["attention_relay_p_adjusted"], ".3g"),
            f"{_fmt(c['far_knockout_delta'], '+.4f')} ± {_fmt(c['far_knockout_delta_se'], '.4f')}",
            _fmt(c["relay_p_adjusted"], ".3g"),
            f"{_fmt(c['knockout_delta'], '+.4f')} ± {_fmt(c['knockout_delta_se'], '.4f')}",
        ]
        for a, c in sorted(cent.items(), key=lambda kv: int(kv[0]))
    ]
    attention = (
        [
            "agent",
            "role",
            "attention_received",
            "null",
            "hub p (Holm)",
            "pagerank",
            "graph betweenness",
            "attention betweenness",
            "attn-relay p (Holm)",
            "far knockout ± se",
            "relay p (Holm)",
            "knockout ± se",
        ],
        rows,
    )

    def listed(key: str) -> str:
        name = key.replace("_", " ")
        return f"{name} {r[key]}" if r[key] is not None else f"{name} n/a ({r['undefined'].get(key, 'not tested')})"

    spec = ", ".join(
        f"pos {s['position']}: z{s['best_factor']} {s['mi_bits']:.3f} bits "
        f"(null {s['null_bits']:.3f}, p={s['p_value']:.3g})"
        for s in r["position_specialization"]
    )
    words = ", ".join(
        f"'{s['symbol']}' {100 * s['rate']:.1f}% -> z{s['best_factor']} {s['mi_bits']:.3f} bits "
        f"(null {s['null_bits']:.3f}, p={s['p_value']:.3g})"
        for s in r["symbol_specialization"]
    )
    trans = (
        ", ".join(
            f"{t['from']}->{t['to']} {t['count']}x (expected {t['expected']:.0f}, P={t['probability']:.2f})"
            for t in r["top_transitions"] or []
        )
        or "none above chance"
    )
    sp = kvc["spearman"]
    vt = r["vocab_over_training"]
    training = (
        "no training log"
        if vt["first_step"] is None
        else f"usage {vt['vocab_usage_first']:.3f} -> {vt['vocab_usage_last']:.3f}, entropy "
        f"{vt['entropy_bits_first']:.2f} -> {vt['entropy_bits_last']:.2f} bits (steps {vt['first_step']}"
        f"-{vt['last_step']}, greedy symbols of the training batches): "
        f"{'narrowed' if vt['narrowed'] else 'did not narrow'}; "
        f"greedy evaluation: usage {r['vocab_usage']:.3f}, entropy {r['symbol_entropy_bits']:.2f} bits"
    )
    return [
        (
            "Attention patterns: hubs and relays",
            [
                (
                    "mean attention by agent id over all steps and episodes, speaker -> listener; attention_received = "
                    "attention an agent's messages receive; null = degree-preserving weight shuffle "
                    f"({run['hub_shuffles']} shuffles for hubs, {_fmt(run['attention_relay_shuffles'], 'd')} for "
                    "attention relays)"
                ),
                (
                    "graph betweenness: what the topology forces; attention betweenness vs its shuffle null: what "
                    "attention adds (attention relays); far knockout: what silencing the agent costs agents that never "
                    "hear it directly, tested causally (relays: above zero and above the other agents, "
                    f"{_fmt(run['relay_permutations'], 'd')} draws per null)"
                ),
                f"hubs {r['hubs']}   {listed('relays')}   {listed('attention_relays')}",
            ],
            attention,
        ),
        (
            "Symbol specialization",
            [
                (
                    f"vocabulary: {r['symbols_used']}/{run['vocab_size']} symbols used ({r['vocab_usage']:.3f}), "
                    f"entropy {r['symbol_entropy_bits']:.2f} of {r['max_entropy_bits']:.2f} bits, "
                    f"silence {100 * r['silence_rate']:.1f}%"
                ),
                "entropy per position (bits): "
                + " ".join(f"{h:.2f}" for h in r["symbol_entropy_per_position_bits"])
                + f"; whole messages {r['message_entropy_bits']:.2f} bits",
                "agents speak differently, I(agent; symbol) = "
                + _test(r, "agent_symbol_mi_bits", "agent_symbol_mi_null_bits", "agent_symbol_p_value"),
                *(
                    [
                        f"what each position says (last step, latent factor z_f in {LATENT_BINS} bins): {spec}",
                        f"what frequent symbols say: {words or 'no non-silent symbol'}",
                    ]
                    if r["position_factor_mi_bits"] is not None
                    else ["what positions and symbols say about the world: n/a (the world has no latent)"]
                ),
            ],
            None,
        ),
        (
            "Temporal patterns",
            [
                "within a message, I(s_j; s_j+1) = "
                + _test(r, "temporal_mi_bits", "temporal_mi_null_bits", "temporal_p_value")
                + f", z={_fmt(r['temporal_z'], '.1f')}",
                "across time, I(m_t; m_t+1) = "
                + _test(r, "across_time_mi_bits", "across_time_mi_null_bits", "across_time_p_value")
                + f", z={_fmt(r['across_time_z'], '.1f')}",
                f"transitions most above chance: {trans}",
            ],
            None,
        ),
        (
            "Compositionality",
            [
                "topsim (latent vs last-step message) " + _test(r, "topsim", "topsim_null", "topsim_p_value"),
                "topsim (own view vs step-0 message)  "
                + _test(r, "topsim_observation", "topsim_observation_null", "topsim_observation_p_value"),
                "posdis " + _test(r, "posdis", "posdis_null", "posdis_p_value"),
                "bosdis " + _test(r, "bosdis", "bosdis_null", "bosdis_p_value"),
            ],
            None,
        ),
        (
            "Ablations",
            [
                (
                    f"world MSE (last step): real {r['world_mse']:.4f}, silenced {r['world_mse_silent']:.4f}, shuffled "
                    f"{r['world_mse_shuffled']:.4f}; real/silenced {r['world_mse_ratio']:.3f}"
                )
                if "world_mse" in r
                else (
                    f"episode return ({run['timesteps']} steps): real {r['episode_return']:.4f}, silenced "
                    f"{r['episode_return_silenced']:.4f}, shuffled {r['episode_return_shuffled']:.4f}"
                    + (
                        f"; success {_fmt(r.get('success_rate'), '.3f')} real, "
                        f"{_fmt(r.get('success_rate_silenced'), '.3f')} silenced ({r.get('success_definition')})"
                        if r.get("success_rate") is not None
                        else ""
                    )
                ),
                (
                    f"reconstruction MSE {r['recon_mse']:.4f}, communication cost {r['comm_cost']:.3f}, "
                    f"reward {_fmt(r['reward'], '.4f')}"
                ),
                "knockout vs centrality, Spearman rho: "
                + ", ".join(f"{k} {_fmt(v['rho'], '+.2f')} (p={_fmt(v['p_value'], '.3g')})" for k, v in sp.items()),
                f"mean knockout: hubs {_fmt(kvc['hub_mean_knockout'], '+.4f')}, others "
                f"{_fmt(kvc['non_hub_mean_knockout'], '+.4f')}"
                + (
                    f" ({r['undefined'].get('knockout_vs_centrality.hub_mean_knockout')})"
                    if kvc["hub_mean_knockout"] is None
                    else ""
                ),
            ],
            None,
        ),
        ("Vocabulary over training", [training], None),
    ]


def format_report(report: dict[str, Any], *, markdown: bool = False) -> str:
    """The report of :func:`evaluate` as aligned text for a terminal, or as Markdown (``report.md``)."""
    run = report["run"]
    head = (
        f"{run['run_dir']}: step {run['step']}, {run['episodes']} held-out episodes, {run['topology']} "
        f"(k={run['k']}), {run['num_agents']} agents, V={run['vocab_size']}, M={run['msg_dim']}, "
        f"T={run['timesteps']}"
    )
    out = [f"# gnncomm evaluation report\n\n{head}" if markdown else f"gnncomm evaluate {head}"]
    for title, lines, table in _report_sections(report):
        out.append(f"\n## {title}\n" if markdown else f"\n{title.upper()}")
        out.extend(f"- {line}" if markdown else f"  {line}" for line in lines)
        if table is not None:
            header, rows = table
            if markdown:
                out += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                out += ["| " + " | ".join(row) + " |" for row in rows]
            else:
                widths = [max(len(x) for x in col) for col in zip(header, *rows)]
                out += ["  " + "  ".join(x.rjust(w) for x, w in zip(row, widths)) for row in [header, *rows]]
    if report.get("undefined"):
        out.append("\n## Undefined values\n" if markdown else "\nUNDEFINED")
        out.extend(f"{'-' if markdown else ' '} {k}: {v}" for k, v in report["undefined"].items())
    if markdown:
        out.append("\n## Figures\n")
        out.extend(f"![{name}]({file})" for name, file in report.get("figures", {}).items())
        out.append("\n## Definitions\n")
        out.extend(f"- **{k}**: {v}" for k, v in report.get("definitions", {}).items())
    else:
        out.append(
            f"\nwritten to {run['run_dir']}: {REPORT_JSON}, {REPORT_MD}, "
            + ", ".join(report.get("figures", {}).values())
        )
    return "\n".join(out)
