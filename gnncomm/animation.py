"""``gnncomm animate``: one held-out episode as a GIF, with matplotlib's own Pillow writer.

Each frame is one step of the episode: the agents at their positions, the attention each listener
pays its speakers (coloured edges where it is clearly above uniform), every agent's message, and the
hubs and relays of the run (from ``ablation.json`` when the run has one, so the animation shows the
same answer as the run's other outputs; the relays are the causal test of
:func:`gnncomm.evaluation.relay_test`, run here when ``ablation.json`` predates it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gnncomm.evaluation import attention_structure, end_of_run_episodes, load_run, relay_test
from gnncomm.plots import LABEL_ALL_AGENTS, draw_episode, pyplot
from gnncomm.rollout import EVAL_SEED_OFFSET, evaluate_rollout
from gnncomm.world import World

MESSAGE_ROWS = 20
"""Messages listed beside the arena per frame (hubs and relays first)."""


def format_message(symbols: list[int]) -> str:
    """A message as text: symbol ids joined by dots, silence (0) as ``_``.

    >>> format_message([3, 0, 12])
    '3._.12'
    """
    return ".".join("_" if s == 0 else str(s) for s in symbols)


def check_gif_path(out: str | Path, *, name: str = "out") -> Path:
    """``out`` as a :class:`~pathlib.Path` if a GIF can be written there; raises a one-line ``ValueError`` naming
    ``name`` otherwise: an empty name, a suffix other than ``.gif``, a folder, or a parent folder that does not
    exist (it is never created).

    >>> check_gif_path("episode.png")
    Traceback (most recent call last):
    ...
    ValueError: out must be a .gif file, got 'episode.png'
    """
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path to a .gif file, got {type(out).__name__}")
    text = str(out)
    if not text.strip():
        raise ValueError(f"{name} must name a .gif file, got {text!r}")
    path = Path(out)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"{name} must be a .gif file, got {text!r}")
    if path.is_dir():
        raise ValueError(f"{name} must be a .gif file, got the folder {text!r}")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise ValueError(f"{name} must be in an existing folder, got {text!r} ({str(parent)!r} is not a folder)")
    return path


def animate(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    episode: int = 0,
    fps: float = 1.0,
    device: str = "cpu",
    world: World | None = None,
) -> Path:
    """Writes a GIF of held-out ``episode`` of the run in ``run_dir``, one frame per step; returns its path.

    The episodes are those of the end-of-run evaluation (same seed and count), so ``episode 0`` is the
    episode drawn in ``topology.png``.

    Args:
        run_dir: a run folder with a checkpoint.
        out: the GIF's path, a ``.gif`` in an existing folder (default: ``run_dir/episode.gif``).
        episode: which held-out episode, ``0 <= episode < the evaluation's episodes``.
        fps: frames (steps) per second.
        device: where to run the rollout.
        world: the run's world when it is not a registered one (see :func:`gnncomm.evaluation.load_run`).

    Raises:
        CheckpointError: ``run_dir`` holds no readable checkpoint.
        ValueError: ``episode`` or ``fps`` out of range, or ``out`` not a ``.gif`` in an existing folder
            (see :func:`check_gif_path`).
    """
    if out is not None:
        out = check_gif_path(out)
    plt = pyplot()
    from matplotlib.animation import FuncAnimation, PillowWriter

    run_dir = Path(run_dir)
    cfg, system, world, _ = load_run(run_dir, device, world=world)
    summary = _read_ablation(run_dir)
    episodes = int(summary.get("structure_episodes") or end_of_run_episodes(cfg))
    if isinstance(episode, bool) or not isinstance(episode, int) or not 0 <= episode < episodes:
        raise ValueError(f"episode must be an int in [0, {episodes - 1}], got {episode!r}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    seed = cfg.seed + EVAL_SEED_OFFSET
    _, trace = evaluate_rollout(system, world, cfg, episodes=episodes, seed=seed, device=device, record=True)
    # An ablation.json with relay_p_adjusted holds the causal relays; an older one the attention relays.
    if "hubs" in summary and "relay_p_adjusted" in summary:
        hubs, relays = summary["hubs"], summary.get("relays") or []
    else:
        hubs = attention_structure(trace, cfg, seed=seed, with_centrality=False)["hubs"]
        relays = relay_test(system, world, cfg, episodes=episodes, seed=seed, device=device)["relays"] or []
    N, T = cfg.num_agents, cfg.timesteps
    frames = []
    for t in range(T):
        edge_index = trace.edge_index[t].cpu()
        keep = (edge_index[1] // N) == episode
        frames.append(
            {
                "pos": trace.states[t].pos[episode].float().cpu().numpy(),
                "edges": (edge_index[:, keep] - episode * N).numpy(),
                "weight": trace.outputs[t].alpha.float().mean(-1).cpu()[keep].numpy(),
                "messages": trace.outputs[t].message.argmax(-1).view(-1, N, cfg.msg_dim)[episode].cpu().tolist(),
            }
        )
    del trace
    low = min(float(f["pos"].min()) for f in frames)
    high = max(float(f["pos"].max()) for f in frames)
    pad = 0.05 * (high - low + 1e-9)
    order = sorted(range(N), key=lambda a: (a not in hubs, a not in relays, a))[:MESSAGE_ROWS]
    fig, (ax, side) = plt.subplots(1, 2, figsize=(11, 6.5), gridspec_kw={"width_ratios": [3, 1.4]})

    def draw(t: int) -> None:
        ax.clear()
        side.clear()
        frame = frames[t]
        labels = [format_message(m) for m in frame["messages"]]
        draw_episode(
            ax,
            frame["pos"],
            frame["edges"],
            frame["weight"],
            hubs=hubs,
            relays=relays,
            labels=labels if N <= 12 else None,
        )
        ax.set_xlim(low - pad, high + pad)
        ax.set_ylim(low - pad, high + pad)
        ax.set_title(
            f"held-out episode {episode}, step {t + 1} of {T}: {N} agents\n"
            f"hubs {hubs}, relays {relays} (over {episodes} episodes); edges: attention paid",
            fontsize=9,
        )
        side.axis("off")
        side.set_title(f"messages at step {t + 1} ({cfg.msg_dim} symbols, _ = silence)", fontsize=9)
        rows = [f"{a:>4} {'H' if a in hubs else 'R' if a in relays else ' '} {labels[a]}" for a in order]
        if N > len(order):
            rows.append(f"... and {N - len(order)} more agents")
        side.text(
            0.0,
            1.0,
            "\n".join(rows),
            va="top",
            ha="left",
            family="monospace",
            fontsize=8 if N <= LABEL_ALL_AGENTS else 7,
            transform=side.transAxes,
        )

    out = out if out is not None else run_dir / "episode.gif"
    animation = FuncAnimation(fig, draw, frames=T, interval=1000 / fps)
    tmp = out.with_name(f".{out.name}.tmp.gif")
    animation.save(tmp, writer=PillowWriter(fps=fps), dpi=90)
    tmp.replace(out)  # atomic: a reader never sees half a GIF
    plt.close(fig)
    return out


def _ids(agents: list[int], shown: int = 8) -> str:
    """Agent ids for a title, at most ``shown`` of them.

    >>> _ids([1, 2]), _ids(list(range(10)), shown=3)
    ('[1, 2]', '[0, 1, 2, +7 more]')
    """
    return (
        str(agents)
        if len(agents) <= shown
        else "[" + ", ".join(map(str, agents[:shown])) + f", +{len(agents) - shown} more]"
    )


def _read_ablation(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "ablation.json").read_text())
    except (OSError, ValueError):
        return {}
