"""Evaluation of a trained system: rollouts in eval mode, causal ablations, and the run report."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from gnncomm.agents import CommSystem
from gnncomm.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint
from gnncomm.config import Config
from gnncomm.interventions import Intervention, knockout, shuffle_episodes, silence
from gnncomm.rollout import Trace, make_graph_fn, rollout, sample_episode
from gnncomm.world import SwarmWorld

EVAL_SEED_OFFSET = 10_007
"""Evaluation episodes are drawn from ``seed + EVAL_SEED_OFFSET``, never from the training stream."""


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[Config, CommSystem, SwarmWorld]:
    """The config, trained system (in eval mode) and world of a run folder."""
    cfg, system, world, _ = _load_run_state(run_dir, device)
    return cfg, system, world


def _load_run_state(run_dir: str | Path, device: str | torch.device = "cpu"
                    ) -> tuple[Config, CommSystem, SwarmWorld, dict[str, Any]]:
    """:func:`load_run` plus the raw checkpoint (step, history); every failure is a CheckpointError."""
    from gnncomm.train import build_world
    path = Path(run_dir) / CHECKPOINT_NAME
    state = load_checkpoint(path, map_location=device)
    try:
        cfg = Config.from_dict(state["config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} holds an invalid config: {exc}") from None
    world = build_world(cfg)
    system = CommSystem.from_config(cfg, world.obs_dim).to(device)
    try:
        system.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} does not fit its own config: {exc}") from None
    return cfg, system.eval(), world, state


@torch.no_grad()
def evaluate_rollout(system: CommSystem, world: SwarmWorld, cfg: Config, *, episodes: int, seed: int,
                     device: str | torch.device = "cpu", intervene: Intervention | None = None,
                     record: bool = False, topology: tuple[str, int] | None = None
                     ) -> tuple[dict[str, float], Trace | None]:
    """Greedy (argmax) messages on ``episodes`` fresh episodes drawn from ``seed``.

    The same ``seed`` gives the same episodes, so conditions compared with different
    interventions see identical worlds. Returns the scalar logs and, with ``record``, the trace.
    """
    was_training = system.training
    system.eval()
    generator = torch.Generator().manual_seed(seed)
    episode = sample_episode(world, cfg, episodes, generator=generator, device=device, training=False)
    name, k = topology or cfg.topology_at(cfg.steps)
    graph_fn = make_graph_fn(name, k, cfg.num_agents, episodes, device=device, seed=cfg.seed,
                             edges=cfg.custom_edges)
    _, logs, trace = rollout(system, world, episode, graph_fn, cfg, 1.0, intervene, record)
    system.train(was_training)
    return {key: float(value) for key, value in logs.items()}, trace


def communication_ablation(system: CommSystem, world: SwarmWorld, cfg: Config, *, episodes: int | None = None,
                           seed: int | None = None, device: str | torch.device = "cpu",
                           knockouts: bool = False) -> dict[str, Any]:
    """World-estimation error (MSE at the last step) with real, silenced and shuffled messages.

    * ``silent``: every message replaced by silence, so agents rely on their own view alone;
    * ``shuffled``: each agent's message replaced by the same agent's message in another episode,
      which keeps the symbol statistics but breaks their link with this episode's world.

    With ``knockouts=True``, also silences each agent in turn: ``knockout_delta[a]`` is the increase
    in world error when agent ``a`` says nothing (its causal importance).
    """
    episodes = episodes or cfg.eval_episodes
    seed = cfg.seed + EVAL_SEED_OFFSET if seed is None else seed
    run = lambda fn: evaluate_rollout(system, world, cfg, episodes=episodes, seed=seed, device=device,  # noqa: E731
                                      intervene=fn)[0]
    real = run(None)
    silent = run(silence())
    shuffled = run(shuffle_episodes(cfg.num_agents, generator=torch.Generator().manual_seed(seed + 1)))
    report: dict[str, Any] = {
        "world_mse": real["world_last"], "world_mse_silent": silent["world_last"],
        "world_mse_shuffled": shuffled["world_last"], "recon_mse": real["recon"],
        "world_mse_ratio": real["world_last"] / max(silent["world_last"], 1e-12),
        "vocab_usage": real["vocab_usage"], "symbol_entropy_bits": real["entropy_bits"],
        "comm_cost": real["comm"], "dispersion": real["dispersion"], "episodes": episodes,
    }
    if knockouts:
        report["knockout_delta"] = [run(knockout(a, cfg.num_agents))["world_last"] - real["world_last"]
                                    for a in range(cfg.num_agents)]
    return report


def attention_structure(trace: Trace, cfg: Config, *, seed: int = 0, num_shuffles: int = 500) -> dict[str, Any]:
    """Attention aggregated by agent id over every step and episode of ``trace``: the DiGraph,
    per-agent centrality, hubs (with their per-agent null statistics) and relays (see
    :mod:`gnncomm.metrics`). ``num_shuffles`` is the size of the hubs' weight-shuffling null."""
    from gnncomm import metrics
    N = cfg.num_agents
    edge_index = torch.cat(trace.edge_index, dim=1).cpu()
    alpha = torch.cat([o.alpha.float().mean(-1) for o in trace.outputs]).cpu()
    num_nodes = trace.obs[0].size(0)  # B * N
    graph = metrics.attention_graph(edge_index, alpha, num_nodes, node_ids=torch.arange(num_nodes) % N)
    return {"graph": graph, "centrality": metrics.centrality(graph),
            "hubs": metrics.detect_hubs(graph, num_shuffles=num_shuffles, seed=seed),
            "hub_stats": metrics.hub_statistics(graph, num_shuffles=num_shuffles, seed=seed),
            "relays": metrics.detect_relays(graph)}


def plot_episode_topology(trace: Trace, cfg: Config, path: str | Path, *, hubs: list[int] = (),
                          relays: list[int] = (), episode: int = 0, step: int = -1) -> None:
    """``topology.png``: one evaluation episode's graph at ``step``, edges drawn by attention."""
    from gnncomm.plots import plot_topology
    N = cfg.num_agents
    edge_index, out, state = trace.edge_index[step].cpu(), trace.outputs[step], trace.states[step]
    keep = (edge_index[1] // N) == episode
    local = (edge_index[:, keep] - episode * N).numpy()
    weight = out.alpha.float().mean(-1).cpu()[keep].numpy()
    pos = state.pos[episode].float().cpu().numpy()
    name, k = cfg.topology_at(cfg.steps)
    plot_topology(pos, local, weight, path, hubs=hubs, relays=relays,
                  title=f"{name} (k={k}), episode {episode}, step {step % cfg.timesteps}: red hubs, orange relays")


# ============================================================================ the emergence report
HUB_ALPHA = 0.05
"""Family-wise level of the hub test (:func:`gnncomm.metrics.detect_hubs`'s default)."""
LATENT_BINS = 4
"""Quantile bins per latent factor when a factor must be a discrete attribute (posdis, bosdis, MI)."""
TOPSIM_PAIRS = 2000
"""Message pairs per agent for topographic similarity (sub-sampled above this)."""
TOP_SYMBOLS = 5
"""Most frequent non-silent symbols whose meaning is reported."""
NARROWING_BITS = 0.1
"""The language 'narrowed' over training if its symbol entropy fell by more than this (or its usage fell)."""
REPORT_JSON, REPORT_MD = "report.json", "report.md"
FIGURES = {"attention_heatmap": "attention_heatmap.png", "vocab_over_training": "vocab_over_training.png",
           "symbol_transitions": "symbol_transitions.png", "knockout_vs_centrality": "knockout_vs_centrality.png"}

DEFINITIONS: dict[str, str] = {
    "null models": "every '_null' number is the mean of the statistic over num_permutations shuffles; p-values are "
                   "one-sided, (1 + #{null >= observed}) / (1 + K), so never 0.",
    "world_mse": "MSE of the world-latent estimate at the last step, greedy messages; _silent: every message "
                 "replaced by silence; _shuffled: each agent hears the same agent's message from another episode.",
    "attention graph": "attention (mean over heads) on each directed pair of agent ids, averaged over every step and "
                       "episode in which the edge existed; a listener -> speaker edge means 'listener attends to "
                       "speaker'.",
    "in_strength": "attention an agent's messages receive (sum over its listeners); metrics.centrality calls this "
                   "out_strength of the sender -> receiver graph. attention_paid is the opposite direction.",
    "pagerank": "weighted PageRank (damping 0.85) of the listener -> speaker graph: high for agents attended to by "
                "attended agents (metrics.centrality's 'influence'); flow_pagerank is the sender -> receiver walk.",
    "hubs": "agents whose in_strength beats a degree-preserving shuffle of the edge weights (Holm-corrected "
            "p <= 0.05, metrics.detect_hubs with direction='out').",
    "relays": "agents with betweenness (edge length 1/attention) above the 80th percentile that both listen and are "
              "listened to (metrics.detect_relays).",
    "knockout_delta": "increase of world_mse when that one agent is silenced in every episode (paired over the "
                      "same episodes; _se is the standard error over episodes).",
    "knockout_vs_centrality": "Spearman rho between knockout_delta and each centrality over agents, with a one-sided "
                              "p-value from permuting agents; hub_mean/non_hub_mean compare the two groups.",
    "temporal": "within-message: I(s_j; s_j+1) pooled over positions, agents, steps and episodes; the null "
                "permutes s_j+1 only among pairs of the same speaker and position, so per-position and per-speaker "
                "symbol habits are kept and only the link between the two symbols is destroyed. across-time: "
                "I(message_t; message_t+1) of the same agent (whole messages as symbols), null permuted among "
                "episodes with the same agent and t. Both include dependence that comes from talking about the "
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
              "topsim_observation: the same with the latent factors the agent itself observes (noise-free) and its "
              "step-0 message (before it heard anything).",
    "posdis_bosdis": "Chaabouni et al. (2020) with attributes = the latent factors cut into 4 quantile bins and "
                     "messages = each agent's last-step message, averaged over agents; null permutes latents across "
                     "episodes (shows the plug-in MI bias). The topsim/posdis/bosdis nulls use num_permutations // 4 "
                     "shuffles, since each shuffle re-scores every agent.",
    "vocab_over_training": "vocab_usage and entropy_bits logged in metrics.csv while training (Gumbel-sampled "
                           "messages, so usage is higher than with greedy messages); 'narrowed' means usage fell or "
                           "entropy fell by more than 0.1 bits from the first to the last log.",
}


def evaluate(run_dir: str | Path, *, episodes: int | None = None, device: str | torch.device = "cpu",
             seed: int | None = None, num_permutations: int = 200) -> dict[str, Any]:
    """The emergence report of a trained run: runs greedy evaluation episodes and every diagnostic.

    Loads ``run_dir/checkpoint.pt``, rolls out ``episodes`` held-out episodes (recorded), and computes
    attention structure (hubs, relays, centrality), symbol use and specialization, temporal
    dependence, compositionality, and causal ablations (silence, shuffle, per-agent knock-outs),
    each next to a null model. Writes ``report.json``, ``report.md`` and the figures of
    :data:`FIGURES` into ``run_dir``; prints nothing. The meaning of every number is in
    ``report["definitions"]``.

    Args:
        run_dir: a run folder written by :func:`gnncomm.train.train`.
        episodes (int, optional): evaluation episodes (``>= 2``); the config's ``eval_episodes`` if
            ``None``.
        device: where to run the rollouts.
        seed (int, optional): seed of the episodes and of every null; ``cfg.seed + EVAL_SEED_OFFSET``
            (the episodes of the training run's ``ablation.json``) if ``None``.
        num_permutations (int): size of every permutation null. (default: ``200``)

    Returns:
        dict: the report, equal to ``json.load(open(run_dir / "report.json"))``: plain JSON numbers,
        with ``None`` (and a reason in ``report["undefined"]``) where a number is undefined.

    Raises:
        CheckpointError: ``run_dir`` is not a folder with a readable checkpoint.
        ValueError: ``episodes`` or ``num_permutations`` out of range.
    """
    import json

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run folder {str(run_dir)!r} does not exist or is not a folder")
    if episodes is not None and (isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 2):
        raise ValueError(f"episodes must be an int >= 2 (pairs of episodes are compared), got {episodes!r}")
    if isinstance(num_permutations, bool) or not isinstance(num_permutations, int) or num_permutations < 1:
        raise ValueError(f"num_permutations must be an int >= 1, got {num_permutations!r}")
    cfg, system, world, state = _load_run_state(run_dir, device)
    episodes = episodes or max(cfg.eval_episodes, 2)
    seed = cfg.seed + EVAL_SEED_OFFSET if seed is None else seed
    rng = np.random.default_rng(seed)
    B, N, T, M, V, L = episodes, cfg.num_agents, cfg.timesteps, cfg.msg_dim, cfg.vocab_size, cfg.latent_dim
    name, k = cfg.topology_at(cfg.steps)
    undefined: dict[str, str] = {}

    # ---- one recorded rollout with real messages: everything observational comes from it
    _, trace = evaluate_rollout(system, world, cfg, episodes=B, seed=seed, device=device, record=True)
    symbols = torch.stack([o.message.argmax(-1) for o in trace.outputs]).view(T, B, N, M).cpu().numpy()
    latent = trace.states[0].latent.float().cpu().numpy()  # [B, L], constant over an episode
    seen = latent[:, None, :] * world.view_mask.numpy()[None]  # [B, N, L] the factors each agent sees (noise-free)
    bins = _quantile_bins(latent, LATENT_BINS)  # [B, L]
    real_error = _episode_world_error(trace, N)  # [B]

    report: dict[str, Any] = {
        "run": {"run_dir": str(run_dir), "step": int(state.get("step", 0)), "episodes": B, "seed": seed,
                "num_permutations": num_permutations, "topology": name, "k": k, "num_agents": N,
                "vocab_size": V, "msg_dim": M, "timesteps": T, "latent_dim": L, "view_size": cfg.view_size},
    }
    ablation = communication_ablation(system, world, cfg, episodes=B, seed=seed, device=device)
    report.update({key: ablation[key] for key in ("world_mse", "world_mse_silent", "world_mse_shuffled",
                                                  "world_mse_ratio", "recon_mse", "comm_cost")})
    report.update(_language_report(symbols, V, num_permutations, rng))
    report.update(_specialization_report(symbols[-1], bins, num_permutations, rng))
    report.update(_temporal_report(symbols, V, num_permutations, rng, undefined))
    # Each shuffle of a compositionality null re-scores every agent (N metric calls): a quarter of the shuffles.
    report.update(_compositionality_report(symbols, latent, seen, bins, V, max(num_permutations // 4, 1), rng))

    # ---- attention structure and causal knock-outs
    num_shuffles = max(500, math.ceil(2 * N / HUB_ALPHA))  # the smallest Holm-adjusted p must reach HUB_ALPHA
    structure = attention_structure(trace, cfg, seed=seed, num_shuffles=num_shuffles)
    del trace
    knock = _knockout_errors(system, world, cfg, B, seed, device, real_error)
    report["hubs"], report["relays"] = structure["hubs"], structure["relays"]
    report["centrality"] = _centrality_report(structure, knock)
    report["knockout_vs_centrality"] = _knockout_vs_centrality(report["centrality"], report["hubs"],
                                                               num_permutations, rng, undefined)
    history = _training_history(run_dir, state)
    report["vocab_over_training"] = _training_summary(history, undefined)

    # ---- files
    matrix = _attention_matrix(structure["graph"], N)
    _write_figures(run_dir, report, matrix, symbols, history)
    report["figures"] = dict(FIGURES)
    report["definitions"] = DEFINITIONS
    report = _json_safe(report, "", undefined)
    report["undefined"] = undefined  # last, so it also holds the reasons _json_safe added
    (run_dir / REPORT_JSON).write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    (run_dir / REPORT_MD).write_text(format_report(report, markdown=True) + "\n")
    return report


# ---------------------------------------------------------------------------- statistics helpers
def _quantile_bins(x: np.ndarray, num_bins: int) -> np.ndarray:
    """Each column of ``x [S, F]`` cut at its own quantiles into ``num_bins`` integer bins."""
    edges = np.quantile(x, np.linspace(0, 1, num_bins + 1)[1:-1], axis=0)  # [num_bins - 1, F]
    return np.stack([np.searchsorted(edges[:, f], x[:, f], side="right") for f in range(x.shape[1])], axis=1)


def _permutation_test(statistic: Callable[[np.ndarray], float], draw: Callable[[], np.ndarray],
                      identity: np.ndarray, num_permutations: int) -> dict[str, float]:
    """``statistic(identity)`` against ``statistic(draw())`` repeated: value, null mean/std, z, one-sided p."""
    null = np.array([statistic(draw()) for _ in range(num_permutations)], dtype=np.float64)
    return _summary(float(statistic(identity)), null)


def _summary(observed: float, null: np.ndarray) -> dict[str, float]:
    """Observed value, null mean/std, z-score (0 for a degenerate null) and one-sided p-value."""
    mean, std = float(null.mean()), float(null.std())
    exceed = int((null >= observed - 1e-12 * max(1.0, abs(observed))).sum())  # float ties count as exceeding
    return {"value": observed, "null_mean": mean, "null_std": std,
            "z": (observed - mean) / std if std > 0 else 0.0, "p_value": (1.0 + exceed) / (1.0 + null.size)}


def _within_strata(strata: np.ndarray, rng: np.random.Generator) -> Callable[[], np.ndarray]:
    """Draws index permutations that only move elements among those of the same stratum."""
    order = np.argsort(strata, kind="stable")
    grouped = strata[order]
    sizes = np.unique(grouped, return_counts=True)[1]
    if np.all(sizes == sizes[0]):  # equal strata (every use here): one row per stratum, shuffled row-wise
        rows = order.reshape(sizes.size, sizes[0])

        def draw() -> np.ndarray:
            index = np.empty_like(order)
            index[order] = rng.permuted(rows, axis=1).reshape(-1)
            return index
        return draw

    def draw_unequal() -> np.ndarray:
        index = np.empty_like(order)
        index[order] = order[np.argsort(grouped + rng.random(order.size), kind="stable")]  # random within stratum
        return index
    return draw_unequal


def _mi_statistic(x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], float]:
    """``idx -> I(x; y[idx])`` in bits, the estimator of :func:`gnncomm.metrics.mutual_information`.

    The symbols are coded once, not re-sorted for every permutation of a null (which made the nulls of
    100k-sample tests the slowest part of the report).
    """
    from gnncomm.metrics import _codes as dense, _mi_codes  # private on purpose: same estimator, coded once
    cx, kx = dense(np.asarray(x))
    cy, ky = dense(np.asarray(y))
    return lambda idx: _mi_codes(cx, kx, cy[idx], ky)


# ---------------------------------------------------------------------------- report sections
def _language_report(symbols: np.ndarray, V: int, K: int, rng: np.random.Generator) -> dict[str, Any]:
    """Vocabulary, entropies, silence and per-agent symbol use over every step of every episode."""
    from gnncomm import metrics
    T, B, N, M = symbols.shape
    flat = symbols.reshape(-1, M)  # [T*B*N, M]
    agent = np.broadcast_to(np.arange(N)[None, None, :, None], symbols.shape)  # [T, B, N, M]
    block = np.arange(T * B * M).reshape(T, B, 1, M).repeat(N, axis=2)  # one stratum per (t, b, j)
    x, y = agent.reshape(-1), symbols.reshape(-1)
    dialect = _permutation_test(_mi_statistic(x, y), _within_strata(block.reshape(-1), rng), np.arange(y.size), K)
    per_agent = {}
    for a in range(N):
        own = symbols[:, :, a].reshape(-1, M)
        counts = np.bincount(own.reshape(-1), minlength=V)
        per_agent[str(a)] = {"vocab_usage": metrics.vocab_usage(own, V),
                             "entropy_bits": metrics.symbol_entropy(own, V),
                             "silence_rate": float((own == 0).mean()),
                             "top_symbol": int(counts.argmax()), "top_symbol_rate": float(counts.max() / own.size)}
    return {"vocab_usage": metrics.vocab_usage(flat, V),
            "symbols_used": int((np.bincount(flat.reshape(-1), minlength=V) > 0).sum()),
            "symbol_entropy_bits": metrics.symbol_entropy(flat, V),
            "symbol_entropy_per_position_bits": metrics.symbol_entropy(flat, V, per_position=True).tolist(),
            "message_entropy_bits": metrics.entropy_bits(flat), "max_entropy_bits": math.log2(V),
            "silence_rate": float((flat == 0).mean()),
            "agent_symbol_mi_bits": dialect["value"], "agent_symbol_mi_null_bits": dialect["null_mean"],
            "agent_symbol_p_value": dialect["p_value"], "per_agent_language": per_agent}


def _specialization_report(last: np.ndarray, bins: np.ndarray, K: int, rng: np.random.Generator
                           ) -> dict[str, Any]:
    """What each message position and each frequent symbol says about which latent factor (last step)."""
    B, N, M = last.shape
    L = bins.shape[1]

    def factor_test(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """MI of ``x [B, N]`` (pooled over agents) with every factor, the null's mean MI per factor,
        and the test of the best factor's MI against the null distribution of the best."""
        stats = [_mi_statistic(x.reshape(-1), np.repeat(bins[:, f], N)) for f in range(L)]
        pooled = lambda perm: (perm[:, None] * N + np.arange(N)).reshape(-1)  # noqa: E731  (episode b reads perm[b])
        mis = lambda perm: np.array([stat(pooled(perm)) for stat in stats])  # noqa: E731  [L]
        observed = mis(np.arange(B))
        null = np.stack([mis(rng.permutation(B)) for _ in range(K)])  # [K, L]
        return observed, null.mean(axis=0), _summary(float(observed.max()), null.max(axis=1))

    positions, mi, mi_null = [], [], []
    for j in range(M):
        observed, null, test = factor_test(last[:, :, j])
        mi.append(observed.tolist())
        mi_null.append(null.tolist())
        positions.append({"position": j, "best_factor": int(observed.argmax()), "mi_bits": test["value"],
                          "null_bits": test["null_mean"], "p_value": test["p_value"]})
    counts = np.bincount(last.reshape(-1), minlength=1)
    counts[0] = 0  # silence is not a word
    top = [int(v) for v in np.argsort(-counts, kind="stable")[:TOP_SYMBOLS] if counts[v] > 0]
    symbols = []
    for v in top:
        observed, _, test = factor_test((last == v).any(-1).astype(np.int64))
        symbols.append({"symbol": v, "rate": float(counts[v] / last.size), "best_factor": int(observed.argmax()),
                        "mi_bits": test["value"], "null_bits": test["null_mean"], "p_value": test["p_value"]})
    return {"position_factor_mi_bits": mi, "position_factor_mi_null_bits": mi_null,
            "position_specialization": positions, "symbol_specialization": symbols}


def _temporal_report(symbols: np.ndarray, V: int, K: int, rng: np.random.Generator,
                     undefined: dict[str, str]) -> dict[str, Any]:
    """Within-message (s_j -> s_j+1) and across-time (message_t -> message_t+1) dependence."""
    T, B, N, M = symbols.shape
    out: dict[str, Any] = {}
    keys = ("temporal_mi_bits", "temporal_mi_null_bits", "temporal_z", "temporal_p_value", "top_transitions")
    if M < 2:
        out.update(dict.fromkeys(keys))
        undefined.update(dict.fromkeys(keys, f"msg_dim={M}: a message has no symbol j+1"))
    else:
        x, y = symbols[..., :-1].reshape(-1), symbols[..., 1:].reshape(-1)
        strata = np.broadcast_to(np.arange(N)[:, None] * (M - 1) + np.arange(M - 1), (T, B, N, M - 1)).reshape(-1)
        test = _permutation_test(_mi_statistic(x, y), _within_strata(strata, rng), np.arange(y.size), K)
        out.update(temporal_mi_bits=test["value"], temporal_mi_null_bits=test["null_mean"], temporal_z=test["z"],
                   temporal_p_value=test["p_value"], top_transitions=_top_transitions(x, y, strata, V))
    keys = ("across_time_mi_bits", "across_time_mi_null_bits", "across_time_z", "across_time_p_value")
    if T < 2:
        out.update(dict.fromkeys(keys))
        undefined.update(dict.fromkeys(keys, f"timesteps={T}: an episode has no step t+1"))
    else:
        ids = np.unique(symbols.reshape(-1, M), axis=0, return_inverse=True)[1].reshape(T, B, N)  # message ids
        x, y = ids[:-1].reshape(-1), ids[1:].reshape(-1)
        strata = np.broadcast_to((np.arange(T - 1)[:, None] * N + np.arange(N))[:, None, :], (T - 1, B, N)).reshape(-1)
        test = _permutation_test(_mi_statistic(x, y), _within_strata(strata, rng), np.arange(y.size), K)
        out.update(across_time_mi_bits=test["value"], across_time_mi_null_bits=test["null_mean"],
                   across_time_z=test["z"], across_time_p_value=test["p_value"])
    return out


def _top_transitions(x: np.ndarray, y: np.ndarray, strata: np.ndarray, V: int, top: int = 5
                     ) -> list[dict[str, Any]]:
    """The symbol bigrams ``a -> b`` most in excess of their count under within-stratum independence."""
    observed = np.bincount(x * V + y, minlength=V * V).reshape(V, V).astype(np.float64)
    expected = np.zeros((V, V))
    for s in np.unique(strata):
        keep = strata == s
        expected += np.outer(np.bincount(x[keep], minlength=V), np.bincount(y[keep], minlength=V)) / keep.sum()
    excess = observed - expected
    rows = observed.sum(axis=1)
    order = np.argsort(-excess, axis=None, kind="stable")[:top]
    return [{"from": int(a), "to": int(b), "count": int(observed[a, b]), "expected": float(expected[a, b]),
             "probability": float(observed[a, b] / rows[a])}
            for a, b in zip(*np.unravel_index(order, (V, V))) if excess[a, b] > 0]


def _compositionality_report(symbols: np.ndarray, latent: np.ndarray, seen: np.ndarray, bins: np.ndarray,
                             V: int, K: int, rng: np.random.Generator) -> dict[str, Any]:
    """topsim (latent and own observation), posdis and bosdis per agent, averaged, each against a null."""
    from gnncomm import metrics
    T, B, N, M = symbols.shape
    last, first = symbols[-1], symbols[0]  # [B, N, M]
    pairs = min(TOPSIM_PAIRS, B * (B - 1) // 2)
    draw = lambda: rng.permutation(B)  # noqa: E731
    identity = np.arange(B)

    def topsim(meanings: Callable[[int], np.ndarray], msgs: np.ndarray) -> Callable[[np.ndarray], float]:
        return lambda idx: float(np.mean([metrics.topographic_similarity(meanings(a)[idx], msgs[:, a],
                                                                         max_pairs=pairs, seed=a)
                                          for a in range(N)]))

    # Per agent, symbols renumbered densely (silence stays 0): posdis and bosdis skip constant columns, so
    # the scores are unchanged, but bosdis then builds one count column per used symbol instead of V - 1.
    dense = [np.unique(np.concatenate([[0], last[:, a].ravel()]), return_inverse=True) for a in range(N)]
    dense = [(inv[1:].reshape(B, M), len(used)) for used, inv in dense]

    def disent(fn: Callable[..., float]) -> Callable[[np.ndarray], float]:
        return lambda idx: float(np.mean([fn(bins[idx], msgs, max(size, 2)) for msgs, size in dense]))

    tests = {"topsim": _permutation_test(topsim(lambda a: latent, last), draw, identity, K),
             "topsim_observation": _permutation_test(topsim(lambda a: seen[:, a], first), draw, identity, K),
             "posdis": _permutation_test(disent(metrics.posdis), draw, identity, K),
             "bosdis": _permutation_test(disent(metrics.bosdis), draw, identity, K)}
    out: dict[str, Any] = {}
    for key, test in tests.items():
        out.update({key: test["value"], f"{key}_null": test["null_mean"], f"{key}_p_value": test["p_value"]})
    return out


def _episode_world_error(trace: Trace, num_agents: int) -> np.ndarray:
    """World-latent MSE at the last step, per episode ``[B]`` (its mean is the logs' ``world_last``)."""
    pred = trace.outputs[-1].world_pred.float()  # [B*N, L]
    latent = trace.states[-1].latent.float().repeat_interleave(num_agents, dim=0)  # [B*N, L]
    return (pred - latent).pow(2).view(-1, num_agents * latent.size(-1)).mean(-1).cpu().numpy()


def _knockout_errors(system: CommSystem, world: SwarmWorld, cfg: Config, episodes: int, seed: int,
                     device: str | torch.device, real_error: np.ndarray) -> np.ndarray:
    """Per agent: mean and standard error over episodes of the paired world-error increase ``[N, 2]``."""
    out = np.zeros((cfg.num_agents, 2))
    for a in range(cfg.num_agents):
        _, trace = evaluate_rollout(system, world, cfg, episodes=episodes, seed=seed, device=device,
                                    intervene=knockout(a, cfg.num_agents), record=True)
        delta = _episode_world_error(trace, cfg.num_agents) - real_error  # [B], same episodes
        out[a] = delta.mean(), delta.std(ddof=1) / math.sqrt(delta.size)
    return out


def _centrality_report(structure: dict[str, Any], knock: np.ndarray) -> dict[str, dict[str, float]]:
    """Per agent id (as a string key), in the report's listener -> speaker orientation (see DEFINITIONS):
    ``in_strength`` is the attention the agent's messages receive and ``pagerank`` the walk along attention.

    Args:
        structure: :func:`attention_structure`'s result (metrics' sender -> receiver orientation).
        knock: ``[N, 2]`` knock-out effect and its standard error per agent id.
    """
    return {str(a): {"pagerank": c["influence"], "betweenness": c["betweenness"], "in_strength": c["out_strength"],
                     "knockout_delta": float(knock[a, 0]), "knockout_delta_se": float(knock[a, 1]),
                     "hub_p_adjusted": structure["hub_stats"][a]["p_adjusted"],
                     "in_strength_null": structure["hub_stats"][a]["null_mean"],
                     "attention_paid": c["in_strength"], "flow_pagerank": c["pagerank"]}
            for a, c in structure["centrality"].items()}


def _knockout_vs_centrality(centrality: dict[str, dict[str, float]], hubs: list[int], K: int,
                            rng: np.random.Generator, undefined: dict[str, str]) -> dict[str, Any]:
    """Does an agent's causal importance follow its centrality, and do hubs matter more?"""
    from gnncomm import metrics
    agents = sorted(centrality, key=int)
    knock = np.array([centrality[a]["knockout_delta"] for a in agents])
    n = len(agents)
    out: dict[str, Any] = {"spearman": {}}
    for key in ("in_strength", "pagerank", "betweenness"):
        value = np.array([centrality[a][key] for a in agents])
        reason = (f"needs >= 3 agents, got {n}" if n < 3 else "knockout_delta is constant over agents"
                  if np.ptp(knock) == 0 else f"{key} is constant over agents" if np.ptp(value) == 0 else None)
        if reason:
            out["spearman"][key] = {"rho": None, "p_value": None}
            undefined[f"knockout_vs_centrality.spearman.{key}"] = reason
            continue
        test = _permutation_test(lambda i: metrics.spearman(knock[i], value), lambda: rng.permutation(n),
                                 np.arange(n), K)
        out["spearman"][key] = {"rho": test["value"], "p_value": test["p_value"]}
    is_hub = np.array([int(a) in set(hubs) for a in agents])
    if is_hub.any() and not is_hub.all():
        out.update(hub_mean_knockout=float(knock[is_hub].mean()), non_hub_mean_knockout=float(knock[~is_hub].mean()))
        out["hub_minus_non_hub"] = out["hub_mean_knockout"] - out["non_hub_mean_knockout"]
    else:
        out.update(hub_mean_knockout=None, non_hub_mean_knockout=None, hub_minus_non_hub=None)
        reason = "no hub was detected" if not is_hub.any() else "every agent is a hub"
        for key in ("hub_mean_knockout", "non_hub_mean_knockout", "hub_minus_non_hub"):
            undefined[f"knockout_vs_centrality.{key}"] = reason
    return out


def _attention_matrix(graph: Any, num_agents: int) -> np.ndarray:
    """``[listener, speaker]`` mean attention by agent id; NaN where the pair never met."""
    matrix = np.full((num_agents, num_agents), np.nan)
    for speaker, listener, weight in graph.edges(data="weight"):
        matrix[listener, speaker] = weight
    return matrix


def _training_history(run_dir: Path, state: dict[str, Any]) -> list[dict[str, float]]:
    """The logged training rows: ``metrics.csv`` if readable, else the checkpoint's history."""
    import csv
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
    keys = ("first_step", "last_step", "vocab_usage_first", "vocab_usage_last", "entropy_bits_first",
            "entropy_bits_last", "narrowed")
    if not history:
        undefined.update({f"vocab_over_training.{k}": "no training log (metrics.csv or checkpoint history)"
                          for k in keys})
        return dict.fromkeys(keys)
    first, last = history[0], history[-1]
    return {"first_step": int(first["step"]), "last_step": int(last["step"]),
            "vocab_usage_first": first["vocab_usage"], "vocab_usage_last": last["vocab_usage"],
            "entropy_bits_first": first["entropy_bits"], "entropy_bits_last": last["entropy_bits"],
            "narrowed": bool(last["vocab_usage"] < first["vocab_usage"]
                             or last["entropy_bits"] < first["entropy_bits"] - NARROWING_BITS)}


def _write_figures(run_dir: Path, report: dict[str, Any], matrix: np.ndarray, symbols: np.ndarray,
                   history: list[dict[str, float]]) -> None:
    from gnncomm import metrics, plots
    V, M = report["run"]["vocab_size"], report["run"]["msg_dim"]
    hubs, relays = report["hubs"], report["relays"]
    plots.plot_attention_heatmap(matrix, run_dir / FIGURES["attention_heatmap"], hubs=hubs, relays=relays)
    plots.plot_vocab_over_training([r["step"] for r in history], [r["vocab_usage"] for r in history],
                                   [r["entropy_bits"] for r in history], run_dir / FIGURES["vocab_over_training"],
                                   vocab_size=V, evaluation=(report["run"]["step"], report["vocab_usage"],
                                                             report["symbol_entropy_bits"]))
    flat = symbols.reshape(-1, M)
    transitions = (metrics.symbol_transition_matrix(flat, V) if M >= 2 else np.zeros((V, V), dtype=np.int64))
    plots.plot_symbol_transitions(transitions, run_dir / FIGURES["symbol_transitions"],
                                  title="" if M >= 2 else f"msg_dim={M}: no transitions within a message")
    agents = sorted(report["centrality"], key=int)
    c = report["centrality"]
    plots.plot_knockout_vs_centrality(
        [c[a]["knockout_delta"] for a in agents], [c[a]["knockout_delta_se"] for a in agents],
        {"in-strength (attention received)": [c[a]["in_strength"] for a in agents],
         "PageRank (listener -> speaker)": [c[a]["pagerank"] for a in agents]},
        run_dir / FIGURES["knockout_vs_centrality"], hubs=hubs, relays=relays)


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
    hub, relay = set(r["hubs"]), set(r["relays"])
    rows = [[a, " ".join(role for role, group in (("hub", hub), ("relay", relay)) if int(a) in group) or "-",
             _fmt(c["in_strength"]), _fmt(c["in_strength_null"]), _fmt(c["hub_p_adjusted"], ".3g"),
             _fmt(c["pagerank"]), _fmt(c["betweenness"]), f"{_fmt(c['knockout_delta'], '+.4f')} "
             f"± {_fmt(c['knockout_delta_se'], '.4f')}"] for a, c in sorted(cent.items(), key=lambda kv: int(kv[0]))]
    attention = (["agent", "role", "in-strength", "null", "p (Holm)", "pagerank", "betweenness", "knockout ± se"], rows)
    spec = ", ".join(f"pos {s['position']}: z{s['best_factor']} {s['mi_bits']:.3f} bits "
                     f"(null {s['null_bits']:.3f}, p={s['p_value']:.3g})" for s in r["position_specialization"])
    words = ", ".join(f"'{s['symbol']}' {100 * s['rate']:.1f}% -> z{s['best_factor']} {s['mi_bits']:.3f} bits "
                      f"(null {s['null_bits']:.3f}, p={s['p_value']:.3g})" for s in r["symbol_specialization"])
    trans = ", ".join(f"{t['from']}->{t['to']} {t['count']}x (expected {t['expected']:.0f}, "
                      f"P={t['probability']:.2f})" for t in r["top_transitions"] or []) or "none above chance"
    sp = kvc["spearman"]
    vt = r["vocab_over_training"]
    training = ("no training log" if vt["first_step"] is None else
                f"usage {vt['vocab_usage_first']:.3f} -> {vt['vocab_usage_last']:.3f}, entropy "
                f"{vt['entropy_bits_first']:.2f} -> {vt['entropy_bits_last']:.2f} bits (steps {vt['first_step']}"
                f"-{vt['last_step']}, sampled messages): {'narrowed' if vt['narrowed'] else 'did not narrow'}; "
                f"greedy evaluation: usage {r['vocab_usage']:.3f}, entropy {r['symbol_entropy_bits']:.2f} bits")
    return [
        ("Attention patterns: hubs and relays", [
            "mean attention by agent id over all steps and episodes; in-strength = attention an agent's messages "
            "receive; null = degree-preserving weight shuffle",
            f"hubs {r['hubs']}   relays {r['relays']}"], attention),
        ("Symbol specialization", [
            f"vocabulary: {r['symbols_used']}/{run['vocab_size']} symbols used ({r['vocab_usage']:.3f}), "
            f"entropy {r['symbol_entropy_bits']:.2f} of {r['max_entropy_bits']:.2f} bits, "
            f"silence {100 * r['silence_rate']:.1f}%",
            "entropy per position (bits): " + " ".join(f"{h:.2f}" for h in r["symbol_entropy_per_position_bits"])
            + f"; whole messages {r['message_entropy_bits']:.2f} bits",
            "agents speak differently, I(agent; symbol) = "
            + _test(r, "agent_symbol_mi_bits", "agent_symbol_mi_null_bits", "agent_symbol_p_value"),
            f"what each position says (last step, latent factor z_f in {LATENT_BINS} bins): {spec}",
            f"what frequent symbols say: {words or 'no non-silent symbol'}"], None),
        ("Temporal patterns", [
            "within a message, I(s_j; s_j+1) = " + _test(r, "temporal_mi_bits", "temporal_mi_null_bits",
                                                         "temporal_p_value") + f", z={_fmt(r['temporal_z'], '.1f')}",
            "across time, I(m_t; m_t+1) = " + _test(r, "across_time_mi_bits", "across_time_mi_null_bits",
                                                    "across_time_p_value") + f", z={_fmt(r['across_time_z'], '.1f')}",
            f"transitions most above chance: {trans}"], None),
        ("Compositionality", [
            "topsim (latent vs last-step message) " + _test(r, "topsim", "topsim_null", "topsim_p_value"),
            "topsim (own view vs step-0 message)  " + _test(r, "topsim_observation", "topsim_observation_null",
                                                            "topsim_observation_p_value"),
            "posdis " + _test(r, "posdis", "posdis_null", "posdis_p_value"),
            "bosdis " + _test(r, "bosdis", "bosdis_null", "bosdis_p_value")], None),
        ("Ablations", [
            f"world MSE (last step): real {r['world_mse']:.4f}, silenced {r['world_mse_silent']:.4f}, shuffled "
            f"{r['world_mse_shuffled']:.4f}; real/silenced {r['world_mse_ratio']:.3f}",
            f"reconstruction MSE {r['recon_mse']:.4f}, communication cost {r['comm_cost']:.3f}",
            "knockout vs centrality, Spearman rho: " + ", ".join(
                f"{k} {_fmt(v['rho'], '+.2f')} (p={_fmt(v['p_value'], '.3g')})" for k, v in sp.items()),
            f"mean knockout: hubs {_fmt(kvc['hub_mean_knockout'], '+.4f')}, others "
            f"{_fmt(kvc['non_hub_mean_knockout'], '+.4f')}"
            + (f" ({r['undefined'].get('knockout_vs_centrality.hub_mean_knockout')})"
               if kvc["hub_mean_knockout"] is None else "")], None),
        ("Vocabulary over training", [training], None),
    ]


def format_report(report: dict[str, Any], *, markdown: bool = False) -> str:
    """The report of :func:`evaluate` as aligned text for a terminal, or as Markdown (``report.md``)."""
    run = report["run"]
    head = (f"{run['run_dir']}: step {run['step']}, {run['episodes']} held-out episodes, {run['topology']} "
            f"(k={run['k']}), {run['num_agents']} agents, V={run['vocab_size']}, M={run['msg_dim']}, "
            f"T={run['timesteps']}")
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
        out.append(f"\nwritten to {run['run_dir']}: {REPORT_JSON}, {REPORT_MD}, "
                   + ", ".join(report.get("figures", {}).values()))
    return "\n".join(out)
