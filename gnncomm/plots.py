"""Matplotlib figures of a run (Agg backend, files only).

Every figure has axis labels and a title that says what is shown. Attention graphs point along message
flow, ``speaker -> listener``, with the names of :mod:`gnncomm.metrics.graph` (``attention_received``...).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gnncomm.metrics.live import ABOVE_UNIFORM

if TYPE_CHECKING:
    import matplotlib.pyplot as plt


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only), imported at the first figure: training and evaluation
    without figures do not pay its start-up time and 28 MiB of resident memory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


LABEL_ALL_AGENTS = 30
"""Up to this many agents every agent carries its id; above, only hubs and causal relays do (legibility)."""

HUB_LABEL = "hub (attention received above its shuffle null)"
"""Legend entry of the hubs (:func:`gnncomm.metrics.detect_hubs`)."""
RELAY_LABEL = "causal relay (its silence hurts agents 2+ hops away)"
"""Legend entry of the relays: the causal test of :func:`gnncomm.evaluation.relay_test`, not the attention relays."""


def draw_episode(
    ax: plt.Axes,
    pos: np.ndarray,
    edge_index: np.ndarray,
    weight: np.ndarray,
    *,
    hubs: Sequence[int] = (),
    relays: Sequence[int] = (),
    arena: float | None = None,
    labels: Sequence[str] | None = None,
) -> None:
    """One episode's agents and attention on ``ax``, legible from 10 to a few hundred agents.

    Each listener's edges are drawn by the attention it pays: clearly above uniform (``ABOVE_UNIFORM /
    in-degree``, as in :func:`gnncomm.metrics.attention_concentration`) in colour and width by weight, the
    others as faint grey lines. Marker size grows with ``attention_received``. Hubs are red squares, causal
    relays (:func:`gnncomm.evaluation.relay_test`) orange diamonds, the others blue dots.

    Args:
        pos: positions ``[N, 2]``.
        edge_index: ``[2, E]`` (speaker, listener) within the episode.
        weight: attention per edge ``[E]`` (mean over heads): what the listener pays the speaker.
        hubs, relays: agent ids to mark: the hubs and the causal relays.
        arena: side of the square arena, to fix the axes (``None``: fit the agents).
        labels: optional text per agent (e.g. its message), drawn beside it.
    """
    plt = pyplot()
    from matplotlib.collections import LineCollection

    N = len(pos)
    w = np.asarray(weight, dtype=float)
    src, dst = edge_index[0].astype(int), edge_index[1].astype(int)
    degree = np.bincount(dst, minlength=N).astype(float)
    strong = w > ABOVE_UNIFORM / np.maximum(degree[dst], 1.0)
    if not strong.all():
        faint = [(pos[a], pos[b]) for a, b in zip(src[~strong], dst[~strong])]
        width = 0.6 if N <= LABEL_ALL_AGENTS else 0.3
        ax.add_collection(LineCollection(faint, colors="0.8", linewidths=width, zorder=1))
    order = np.argsort(w[strong])
    segments = [(pos[a], pos[b]) for a, b in zip(src[strong][order], dst[strong][order])]
    if segments:
        values = w[strong][order]
        lines = LineCollection(
            segments, cmap="viridis", norm=plt.Normalize(0, 1), linewidths=0.5 + 3.0 * values, zorder=2
        )
        lines.set_array(values)
        ax.add_collection(lines)
        if N <= LABEL_ALL_AGENTS:  # arrow heads show who listens
            for (a, b), v in zip(segments, values):
                ax.annotate(
                    "",
                    xy=b,
                    xytext=a,
                    arrowprops={
                        "arrowstyle": "-|>",
                        "color": plt.cm.viridis(v),
                        "lw": 0,
                        "shrinkB": 7,
                        "mutation_scale": 8 + 6 * v,
                    },
                )
    received = np.bincount(src, weights=w, minlength=N)  # attention_received: what an agent's listeners pay it
    scale = min(1.0, LABEL_ALL_AGENTS / N)
    size = scale * (60 + 300 * received / max(received.max(), 1e-9))
    hub, relay = set(hubs), set(relays) - set(hubs)
    plain = np.array([i not in hub and i not in relay for i in range(N)])
    ax.scatter(
        pos[plain, 0],
        pos[plain, 1],
        s=size[plain],
        c="tab:blue",
        edgecolors="k",
        linewidths=0.5,
        zorder=3,
        label="agent",
    )
    for ids, color, marker, name in (
        (sorted(relay), "tab:orange", "D", RELAY_LABEL),
        (sorted(hub), "tab:red", "s", HUB_LABEL),
    ):
        if ids:
            ax.scatter(
                pos[ids, 0],
                pos[ids, 1],
                s=size[ids] + 40 * scale,
                c=color,
                marker=marker,
                edgecolors="k",
                zorder=4,
                label=name,
            )
    for i, p in enumerate(pos):
        if N <= LABEL_ALL_AGENTS or i in hub or i in relay:
            ax.annotate(
                str(i),
                p,
                xytext=(0, 0),
                textcoords="offset points",
                ha="center",
                va="center",
                fontsize=7 if N <= LABEL_ALL_AGENTS else 6,
                color="w",
                zorder=5,
                fontweight="bold",
            )
        if labels is not None and (N <= LABEL_ALL_AGENTS or i in hub or i in relay):
            ax.annotate(
                labels[i],
                p,
                xytext=(6, -9),
                textcoords="offset points",
                fontsize=6,
                family="monospace",
                zorder=5,
                color="0.2",
            )
    if arena is not None:
        ax.set_xlim(0, arena)
        ax.set_ylim(0, arena)
    else:
        ax.autoscale_view()
    ax.set_aspect("equal")
    ax.set_xlabel("x position")
    ax.set_ylabel("y position")
    ax.legend(loc="upper right", fontsize=7, markerscale=0.6, framealpha=0.8)


def plot_topology(
    pos: np.ndarray,
    edge_index: np.ndarray,
    weight: np.ndarray,
    path: str | Path,
    *,
    hubs: Sequence[int] = (),
    relays: Sequence[int] = (),
    title: str = "",
    arena: float | None = None,
) -> None:
    """``topology.png``: one episode drawn by :func:`draw_episode`, with a colour bar for attention.

    Args:
        pos, edge_index, weight, hubs, relays, arena: see :func:`draw_episode`.
        title: the figure's title (a default one if empty).
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 7))
    draw_episode(ax, pos, edge_index, weight, hubs=hubs, relays=relays, arena=arena)
    ax.set_title(title or "communication graph (size: attention_received; red: hub, orange: causal relay)", fontsize=8)
    sm = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(0, 1))
    fig.colorbar(sm, ax=ax, shrink=0.7, label="attention the listener pays")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_training(history: Sequence[dict[str, float]], path: str | Path) -> None:
    """``training_progress.png``: the seed's signals to watch while a run trains, one panel each.

    Losses falling; messages carrying the world (held-out world error with real against silenced
    messages); the language narrowing (greedy vocabulary usage and effective size, below the seed's 0.7);
    attention concentrating (largest weight per listener against uniform, and the share of listeners
    with a hub); the swarm clustering (dispersion with the trained actions against none).
    """
    plt = pyplot()
    if not history:
        return
    steps = np.array([row["step"] for row in history], dtype=float)

    def series(key: str) -> tuple[np.ndarray, np.ndarray]:
        values = np.array([row.get(key, np.nan) for row in history], dtype=float)
        keep = np.isfinite(values)
        return steps[keep], values[keep]

    def draw(ax: plt.Axes, keys: Sequence[tuple[str, str, str]], title: str, ylabel: str) -> None:
        for key, label, style in keys:
            x, y = series(key)
            if y.size:
                ax.plot(x, y, style, ms=3, label=label)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)

    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5))
    draw(
        axes[0, 0],
        [
            ("world", "world (train, step-weighted)", "-"),
            ("recon", "reconstruction", "-"),
            ("comm", "communication cost", "-"),
            ("vocab_term", "vocabulary term: H(symbol marginal) / log V", "-."),
        ],
        "losses falling",
        "loss",
    )
    draw(
        axes[0, 1],
        [("eval_world_mse", "real messages", "o-"), ("eval_world_mse_silent", "silenced", "s-")],
        "messages carry the world (held-out world error)",
        "world MSE at the last step",
    )
    if axes[0, 1].lines:
        axes[0, 1].axhline(1.0, color="0.5", lw=0.8, ls=":")
    else:  # a world without a latent: the episode return with real and silenced messages
        draw(
            axes[0, 1],
            [("eval_return", "real messages", "o-"), ("eval_return_silent", "silenced", "s-")],
            "messages carry the task (held-out episode return)",
            "return per episode",
        )
    draw(
        axes[0, 2],
        [("eval_share", "share of what messages could add", "o-")],
        "how much of the gap messages close",
        "(own view - real) / (own view - floor)",
    )
    if not axes[0, 2].lines:  # no Bayes references: the task's success, else the training episodes' return
        draw(
            axes[0, 2],
            [("eval_success", "real messages", "o-"), ("eval_success_silent", "silenced", "s-")],
            "task success (held-out)",
            "success rate",
        )
    if not axes[0, 2].lines:
        draw(axes[0, 2], [("episode_return", "whole training episodes", "-")], "episode return (train)", "return")
    draw(
        axes[1, 0],
        [
            ("vocab_usage", "greedy usage", "-"),
            ("effective_vocab", "effective size 2^H / V", "-"),
            ("vocab_usage_sampled", "sampled usage (Gumbel)", ":"),
        ],
        "the language narrowing",
        "share of V",
    )
    axes[1, 0].axhline(0.7, color="tab:red", lw=0.8, ls="--", label="seed's signal: < 0.7")
    axes[1, 0].legend(fontsize=7)
    draw(
        axes[1, 1],
        [
            ("attn_max", "largest weight per listener", "-"),
            ("attn_uniform", "uniform (1 / in-degree)", "--"),
            ("attn_hub_share", "listeners with a weight > 0.2 and > 1.25x uniform", "-"),
        ],
        "attention concentrating",
        "attention weight / share",
    )
    draw(
        axes[1, 2],
        [("eval_dispersion", "trained actions", "o-"), ("eval_dispersion_no_actions", "no actions", "s-")],
        "the swarm clustering (held-out dispersion)",
        "mean dispersion",
    )
    if not axes[1, 2].lines:  # a world without dispersion: its reward
        draw(
            axes[1, 2],
            [("eval_reward", "trained actions", "o-"), ("eval_reward_no_actions", "no actions", "s-")],
            "cooperative reward (held-out)",
            "reward",
        )
    fig.suptitle(
        "training progress: the seed's signals (train = Gumbel-sampled batch; held-out = greedy probes)", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _mark_agents(ax, labels: Sequence, hubs: Sequence[int], relays: Sequence[int], axis: str) -> None:
    """Colours the agent tick labels: red hubs, orange causal relays."""
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    for tick, agent in zip(ticks, labels):
        if agent in set(hubs):
            tick.set_color("tab:red")
            tick.set_fontweight("bold")
        elif agent in set(relays):
            tick.set_color("tab:orange")


def plot_attention_heatmap(
    matrix: np.ndarray, path: str | Path, *, hubs: Sequence[int] = (), relays: Sequence[int] = (), title: str = ""
) -> None:
    """Agent x agent mean attention: row = listener, column = speaker; blank where they never met.

    Args:
        matrix: ``[N, N]`` mean attention ``[listener, speaker]``, ``NaN`` for pairs that were never neighbours.
        hubs, relays: agent ids whose labels are coloured red and orange: the hubs and the causal relays.
        title: the figure's title (a default one if empty).
    """
    plt = pyplot()
    m = np.ma.masked_invalid(np.asarray(matrix, dtype=float))
    N = m.shape[0]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 + 0.35 * min(N, 40)), max(3.5, 1.2 + 0.35 * min(N, 40))))
    image = ax.imshow(m, cmap="viridis", vmin=0.0, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8, label="mean attention")
    if N <= 40:
        ax.set_xticks(range(N))
        ax.set_yticks(range(N))
        _mark_agents(ax, range(N), hubs, relays, "x")
        _mark_agents(ax, range(N), hubs, relays, "y")
    ax.set_xlabel("speaker (attended to)")
    ax.set_ylabel("listener")
    ax.set_title(
        title or "mean attention the listener pays the speaker\nby agent id (red: hub, orange: causal relay)",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_vocab_over_training(
    steps: Sequence[float],
    vocab_usage: Sequence[float],
    entropy_bits: Sequence[float],
    path: str | Path,
    *,
    vocab_size: int | None = None,
    evaluation: tuple[float, float, float] | None = None,
) -> None:
    """Vocabulary usage and symbol entropy against the training step (the language narrowing).

    Args:
        steps, vocab_usage, entropy_bits: the logged training rows (greedy symbols of each training batch).
        vocab_size: draws ``log2 V``, the largest possible entropy.
        evaluation: ``(step, vocab_usage, entropy_bits)`` of greedy evaluation messages, drawn as stars.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    if len(steps) == 0:
        ax.text(0.5, 0.5, "no training log", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.plot(steps, vocab_usage, "o-", color="tab:blue", ms=3, label="vocabulary usage")
        ax.set_ylim(0, 1.05)
        right = ax.twinx()
        right.plot(steps, entropy_bits, "s-", color="tab:green", ms=3, label="symbol entropy (bits)")
        if evaluation is not None:
            ax.plot(
                [evaluation[0]],
                [evaluation[1]],
                "*",
                color="tab:blue",
                ms=12,
                mec="k",
                label="usage, greedy evaluation",
            )
            right.plot(
                [evaluation[0]],
                [evaluation[2]],
                "*",
                color="tab:green",
                ms=12,
                mec="k",
                label="entropy, greedy evaluation",
            )
        if vocab_size:
            right.axhline(
                np.log2(vocab_size), color="tab:green", ls=":", lw=1, label=f"log2 V = {np.log2(vocab_size):.1f}"
            )
        right.set_ylim(bottom=0)
        right.set_ylabel("symbol entropy (bits)")
        lines = ax.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], loc="lower left", fontsize=8)
    ax.set_xlabel("training step")
    ax.set_ylabel("fraction of symbols used")
    ax.set_title("vocabulary usage and symbol entropy over training")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_symbol_transitions(counts: np.ndarray, path: str | Path, *, title: str = "") -> None:
    """``P(s_j+1 = b | s_j = a)`` over the symbols that occur, from a ``[V, V]`` count matrix.

    ``title`` replaces the default title (and is written in the empty plot when no symbol occurs).
    """
    plt = pyplot()
    counts = np.asarray(counts, dtype=float)
    used = np.nonzero((counts.sum(0) + counts.sum(1)) > 0)[0]
    fig, ax = plt.subplots(figsize=(2 + 0.25 * min(max(len(used), 4), 48),) * 2)
    default = "symbol transitions within messages, P(s_j+1 | s_j) (0 = silence)"
    ax.set_title(title or default, fontsize=9)
    if used.size == 0:
        ax.text(0.5, 0.5, title or "no transitions", ha="center", va="center", transform=ax.transAxes)
    else:
        sub = counts[np.ix_(used, used)]
        rows = sub.sum(1, keepdims=True)
        prob = np.divide(sub, rows, out=np.zeros_like(sub), where=rows > 0)
        image = ax.imshow(prob, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
        fig.colorbar(image, ax=ax, shrink=0.8, label="P(next | current)")
        if used.size <= 48:
            ax.set_xticks(range(used.size), [str(v) for v in used], fontsize=7, rotation=90)
            ax.set_yticks(range(used.size), [str(v) for v in used], fontsize=7)
    ax.set_xlabel("symbol at j+1")
    ax.set_ylabel("symbol at j")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_knockout_vs_centrality(
    knockout: Sequence[float],
    knockout_se: Sequence[float],
    centralities: dict[str, Sequence[float]],
    path: str | Path,
    *,
    hubs: Sequence[int] = (),
    relays: Sequence[int] = (),
) -> None:
    """Causal importance (world-error increase when an agent is silenced) against each centrality.

    Args:
        knockout, knockout_se: per agent id ``0..N-1``, the knock-out effect and its standard error.
        centralities: centrality name (e.g. ``"attention_received"``, the x-axis label) -> per-agent values.
        hubs, relays: agent ids drawn red and orange: the hubs and the causal relays.
    """
    plt = pyplot()
    k = np.asarray(knockout, dtype=float)
    se = np.asarray(knockout_se, dtype=float)
    colors = ["tab:red" if a in set(hubs) else "tab:orange" if a in set(relays) else "tab:blue" for a in range(k.size)]
    fig, axes = plt.subplots(1, len(centralities), figsize=(5 * len(centralities), 4), squeeze=False)
    for ax, (label, values) in zip(axes[0], centralities.items()):
        x = np.asarray(values, dtype=float)
        ax.errorbar(x, k, yerr=se, fmt="none", ecolor="0.6", lw=1, zorder=1)
        ax.scatter(x, k, c=colors, edgecolors="k", zorder=2)
        for a in range(k.size):
            ax.annotate(str(a), (x[a], k[a]), xytext=(4, 3), textcoords="offset points", fontsize=7)
        ax.axhline(0.0, color="0.5", lw=0.8, ls="--")
        ax.set_title(f"knockout_delta vs {label}", fontsize=9)
        ax.set_xlabel(label)
        ax.set_ylabel("knockout_delta: world MSE increase")
        ax.grid(alpha=0.3)
    fig.suptitle("causal importance vs centrality (red: hub, orange: causal relay; bars: 1 s.e.)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
