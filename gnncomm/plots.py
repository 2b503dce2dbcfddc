"""Matplotlib figures of a run (Agg backend, files only)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_topology(pos: np.ndarray, edge_index: np.ndarray, weight: np.ndarray, path: str | Path, *,
                  hubs: Sequence[int] = (), relays: Sequence[int] = (), title: str = "") -> None:
    """The communication graph of one episode: agents at their positions, edges by attention weight.

    Args:
        pos: positions ``[N, 2]``.
        edge_index: ``[2, E]`` (sender, receiver) within the episode.
        weight: attention per edge ``[E]`` (mean over heads), in ``[0, 1]``.
        hubs, relays: agent ids to mark.
    """
    fig, ax = plt.subplots(figsize=(6, 6))
    w = np.asarray(weight, dtype=float)
    wmax = max(float(w.max()) if w.size else 1.0, 1e-9)
    for (s, r), a in zip(edge_index.T, w):
        ax.annotate("", xy=pos[r], xytext=pos[s],
                    arrowprops=dict(arrowstyle="-|>", color=plt.cm.viridis(a / wmax), lw=0.5 + 3.0 * a / wmax,
                                    alpha=0.3 + 0.7 * a / wmax, shrinkA=6, shrinkB=6))
    received = np.zeros(len(pos))  # attention an agent's messages receive from its listeners
    np.add.at(received, edge_index[0].astype(int), w)
    colors = ["tab:red" if i in set(hubs) else "tab:orange" if i in set(relays) else "tab:blue"
              for i in range(len(pos))]
    ax.scatter(pos[:, 0], pos[:, 1], s=80 + 400 * received / max(received.max(), 1e-9), c=colors, zorder=3,
               edgecolors="k")
    for i, p in enumerate(pos):
        ax.text(p[0], p[1], str(i), ha="center", va="center", fontsize=7, color="w", zorder=4)
    ax.set_title(title or "communication graph (size: attention received; red hub, orange relay)")
    ax.set_aspect("equal")
    sm = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(0, wmax))
    fig.colorbar(sm, ax=ax, shrink=0.7, label="attention weight")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_training(history: Sequence[dict[str, float]], path: str | Path) -> None:
    """Loss curves and vocabulary use over training from the logged rows."""
    if not history:
        return
    steps = [row["step"] for row in history]
    panels = [("loss", "total loss"), ("world", "world prediction MSE"), ("recon", "reconstruction MSE"),
              ("comm", "communication cost"), ("dispersion", "swarm dispersion"), ("vocab_usage", "vocab usage")]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6))
    for ax, (key, label) in zip(axes.flat, panels):
        ax.plot(steps, [row.get(key, np.nan) for row in history])
        ax.set_title(label)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
