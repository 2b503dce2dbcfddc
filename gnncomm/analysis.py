"""Evaluation of a trained system: rollouts in eval mode, causal ablations, and the run report."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gnncomm.agents import CommSystem
from gnncomm.checkpoint import CHECKPOINT_NAME, load_checkpoint
from gnncomm.config import Config
from gnncomm.interventions import Intervention, knockout, shuffle_episodes, silence
from gnncomm.rollout import Trace, make_graph_fn, rollout, sample_episode
from gnncomm.world import SwarmWorld

EVAL_SEED_OFFSET = 10_007
"""Evaluation episodes are drawn from ``seed + EVAL_SEED_OFFSET``, never from the training stream."""


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[Config, CommSystem, SwarmWorld]:
    """The config, trained system (in eval mode) and world of a run folder."""
    from gnncomm.train import build_world
    state = load_checkpoint(Path(run_dir) / CHECKPOINT_NAME, map_location=device)
    cfg = Config.from_dict(state["config"])
    world = build_world(cfg)
    system = CommSystem.from_config(cfg, world.obs_dim).to(device)
    system.load_state_dict(state["model"])
    return cfg, system.eval(), world


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
    graph_fn = make_graph_fn(name, k, cfg.num_agents, episodes, device=device, seed=cfg.seed)
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


def attention_structure(trace: Trace, cfg: Config, *, seed: int = 0) -> dict[str, Any]:
    """Attention aggregated by agent id over every step and episode of ``trace``: the DiGraph,
    per-agent centrality, hubs and relays (see :mod:`gnncomm.metrics`)."""
    from gnncomm import metrics
    N = cfg.num_agents
    edge_index = torch.cat(trace.edge_index, dim=1).cpu()
    alpha = torch.cat([o.alpha.float().mean(-1) for o in trace.outputs]).cpu()
    num_nodes = trace.obs[0].size(0)  # B * N
    graph = metrics.attention_graph(edge_index, alpha, num_nodes, node_ids=torch.arange(num_nodes) % N)
    return {"graph": graph, "centrality": metrics.centrality(graph),
            "hubs": metrics.detect_hubs(graph, seed=seed), "relays": metrics.detect_relays(graph)}


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
