"""gnncomm.evaluation: loading a run, ablations and knock-outs, and the attention structure of a trace."""

from __future__ import annotations

import csv
import math
import re
import shutil
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch

from gnncomm import evaluation, metrics
from gnncomm.agents import CommSystem, StepOutput
from gnncomm.checkpoint import CHECKPOINT_NAME, CheckpointError, atomic_save
from gnncomm.config import PRESETS, Config
from gnncomm.rollout import Trace, evaluate_rollout, make_graph_fn, rollout, sample_episode
from gnncomm.world import SwarmWorld, build_world


# ---------------------------------------------------------------------------- a tiny run, without the training loop
def write_tiny_run(path: Path, cfg: Config) -> Path:
    """A run folder of ``cfg``: ``cfg.steps`` Adam steps on the rollout loss, ``metrics.csv`` every
    ``log_every`` steps and ``checkpoint.pt`` with the keys of :mod:`gnncomm.checkpoint`. Independent of the
    training loop, so these tests do not move with it."""
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    world = build_world(cfg)
    system = CommSystem.from_config(cfg, world.obs_dim)
    optimizer = torch.optim.Adam(system.parameters(), lr=cfg.lr)
    generator = torch.Generator().manual_seed(cfg.seed)
    name, k = cfg.topology_at(cfg.steps)
    graph_fn = make_graph_fn(name, k, cfg.num_agents, cfg.batch_size, device="cpu", seed=cfg.seed)
    history = []
    for step in range(1, cfg.steps + 1):
        episode = sample_episode(world, cfg, cfg.batch_size, generator=generator, device="cpu")
        loss, logs, _ = rollout(system, world, episode, graph_fn, cfg, 1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % cfg.log_every == 0:
            history.append({"step": step, **{key: float(value) for key, value in logs.items()}})
    with open(path / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    atomic_save(
        {
            "model": system.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": None,
            "step": cfg.steps,
            "generator": generator.get_state(),
            "config": cfg.to_dict(),
            "history": history,
        },
        path / CHECKPOINT_NAME,
    )
    return path


class PlainWorld:
    """A user's world: the World protocol and nothing else (no view_mask, no dispersion)."""

    def __init__(self, cfg: Config) -> None:
        self._swarm = SwarmWorld(cfg.num_agents, cfg.latent_dim, cfg.view_size, cfg.obs_noise, cfg.arena_size or None)
        self.num_agents, self.latent_dim = cfg.num_agents, cfg.latent_dim

    @property
    def obs_dim(self) -> int:
        return self._swarm.obs_dim

    def reset(self, *args, **kwargs):
        return self._swarm.reset(*args, **kwargs)

    def sample_noise(self, *args, **kwargs):
        return self._swarm.sample_noise(*args, **kwargs)

    def observe(self, *args, **kwargs):
        return self._swarm.observe(*args, **kwargs)

    def step(self, *args, **kwargs):
        return self._swarm.step(*args, **kwargs)

    def reward(self, state):
        return self._swarm.reward(state)


def rename_world(run_dir: Path, world: str) -> None:
    """Rewrites the run's config to name a world this session has not registered."""
    state = torch.load(run_dir / CHECKPOINT_NAME, weights_only=False)
    state["config"]["world"] = world
    atomic_save(state, run_dir / CHECKPOINT_NAME)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A tiny trained run (4 agents, 20 steps), written once for the module."""
    return write_tiny_run(tmp_path_factory.mktemp("tiny") / "run", Config.from_dict(PRESETS["tiny"]))


@pytest.fixture
def run_copy(run_dir, tmp_path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "run"))


# ---------------------------------------------------------------------------- load_run
def test_load_run_returns_the_config_an_eval_mode_system_the_world_and_the_checkpoint(run_dir):
    run = evaluation.load_run(run_dir)
    cfg, system, world, state = run
    assert run.cfg is cfg and cfg.num_agents == 4 and not system.training
    assert world.num_agents == 4 and state["step"] == PRESETS["tiny"]["steps"]
    assert [row["step"] for row in state["history"]] == [5, 10, 15, 20]


def test_load_run_failures_are_checkpoint_errors(run_dir, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        evaluation.load_run(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        evaluation.load_run(tmp_path)
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        evaluation.load_run(tmp_path)
    state = torch.load(run_dir / CHECKPOINT_NAME, weights_only=False)
    state["config"]["hidden_dim"] = 8  # the weights no longer fit the config
    atomic_save(state, tmp_path / CHECKPOINT_NAME)
    with pytest.raises(CheckpointError, match="does not fit its own config"):
        evaluation.load_run(tmp_path)
    state["config"] = {"num_agents": -3}
    atomic_save(state, tmp_path / CHECKPOINT_NAME)
    with pytest.raises(CheckpointError, match="invalid config"):
        evaluation.load_run(tmp_path)


def test_a_run_in_an_unregistered_world_needs_the_world_passed(run_copy):
    rename_world(run_copy, "lab")
    with pytest.raises(CheckpointError, match="world="):
        evaluation.load_run(run_copy)
    run = evaluation.load_run(run_copy, world=PlainWorld(Config.from_dict(PRESETS["tiny"])))
    assert run.cfg.world == "lab" and isinstance(run.world, PlainWorld)


def test_a_world_that_does_not_fit_the_run_is_refused(run_dir):
    with pytest.raises(CheckpointError, match="num_agents"):
        evaluation.load_run(run_dir, world=SwarmWorld(5, 4))
    with pytest.raises(CheckpointError, match="World"):
        evaluation.load_run(run_dir, world=object())


# ---------------------------------------------------------------------------- ablations and knock-outs
def test_communication_ablation_reports_the_reward_of_any_world(run_dir):
    cfg, system, world, _ = evaluation.load_run(run_dir)
    ablation = evaluation.communication_ablation(system, world, cfg, episodes=6)
    generic = {
        "world_mse",
        "world_mse_silent",
        "world_mse_shuffled",
        "world_mse_ratio",
        "recon_mse",
        "vocab_usage",
        "symbol_entropy_bits",
        "comm_cost",
        "reward",
        "reward_no_actions",
        "reward_random_actions",
        "episodes",
        "episode_return",
        "episode_return_silenced",
        "episode_return_shuffled",
        "episode_return_no_actions",
        "episode_return_random_actions",
        "episode_steps",
        "success_rate",
        "success_rate_silenced",
        "success_rate_reason",
    }
    swarm_only = {
        "dispersion",
        "dispersion_no_actions",
        "dispersion_random_actions",
        "dispersion_ratio",
        "world_mse_own_view",
        "world_mse_floor",
        "message_share",
    }
    assert set(ablation) == generic | swarm_only
    numbers = {k: v for k, v in ablation.items() if not k.startswith("success_rate")}
    assert all(math.isfinite(v) for v in numbers.values()) and ablation["episodes"] == 6
    assert ablation["success_rate"] is None and "no success" in ablation["success_rate_reason"]
    assert ablation["episode_return"] == pytest.approx(ablation["reward"] * cfg.timesteps)
    assert ablation["world_mse_ratio"] == pytest.approx(ablation["world_mse"] / ablation["world_mse_silent"])
    assert ablation["reward"] <= 0.0  # SwarmWorld: minus the dispersion
    plain = evaluation.communication_ablation(system, PlainWorld(cfg), cfg, episodes=6)
    assert plain == {k: ablation[k] for k in generic}  # the same numbers through the protocol alone


def test_knockout_errors_agree_with_the_ablation_knockouts(run_dir):
    cfg, system, world, _ = evaluation.load_run(run_dir)
    ablation = evaluation.communication_ablation(system, world, cfg, episodes=6, seed=3, knockouts=True)
    knock = evaluation.knockout_errors(system, world, cfg, episodes=6, seed=3)
    assert knock.shape == (cfg.num_agents, 2)
    assert knock[:, 0] == pytest.approx(ablation["knockout_delta"], abs=1e-6)  # per-episode means agree
    assert np.all(knock[:, 1] > 0)
    with pytest.raises(ValueError, match="episodes"):
        evaluation.knockout_errors(system, world, cfg, episodes=1, seed=3)


def test_episode_world_error_averages_to_the_logged_world_error(run_dir):
    cfg, system, world, _ = evaluation.load_run(run_dir)
    logs, trace = evaluate_rollout(system, world, cfg, episodes=5, seed=1, record=True)
    error = evaluation.episode_world_error(trace, cfg.num_agents)
    assert error.shape == (5,) and float(error.mean()) == pytest.approx(logs["world_last"], rel=1e-5)


# ---------------------------------------------------------------------------- knock-outs against centrality
def test_knockout_vs_centrality_compares_hubs_with_the_rest():
    knock = [0.1 * a for a in range(6)]
    centralities = {"attention_received": [float(a) for a in range(6)], "betweenness": [0.0] * 6}
    out, undefined = evaluation.knockout_vs_centrality(knock, centralities, [5], num_permutations=99, seed=0)
    assert out["spearman"]["attention_received"]["rho"] == pytest.approx(1.0)
    assert out["spearman"]["attention_received"]["p_value"] < 0.05
    assert out["spearman"]["betweenness"] == {"rho": None, "p_value": None}
    assert "constant" in undefined["spearman.betweenness"]
    assert out["hub_mean_knockout"] == pytest.approx(0.5)
    assert out["hub_minus_non_hub"] == pytest.approx(0.5 - 0.2)
    out, undefined = evaluation.knockout_vs_centrality(knock, centralities, [], num_permutations=9)
    assert out["hub_mean_knockout"] is None and "no hub" in undefined["hub_mean_knockout"]
    out, undefined = evaluation.knockout_vs_centrality(knock[:2], {"pagerank": [0.1, 0.2]}, [0], num_permutations=9)
    assert out["spearman"]["pagerank"]["rho"] is None and ">= 3 agents" in undefined["spearman.pagerank"]


# ---------------------------------------------------------------------------- attention structure of a trace
def _hand_built_trace(weight_of_speaker, num_agents: int = 8, episodes: int = 3, steps: int = 2) -> Trace:
    """Complete graphs where every listener splits its attention by ``weight_of_speaker(speaker)``."""
    N = num_agents
    pairs = [(s, r) for r in range(N) for s in range(N) if s != r]
    local = torch.tensor(pairs).T  # [2, E] speaker, listener
    raw = torch.tensor([weight_of_speaker(s) for s, _ in pairs], dtype=torch.float)
    per_listener = torch.zeros(N).index_add_(0, local[1], raw)
    alpha = (raw / per_listener[local[1]]).unsqueeze(-1).repeat(1, 2)  # [E, heads=2], softmax-like per listener
    edge_index = torch.cat([local + b * N for b in range(episodes)], dim=1)
    out = StepOutput(*([None] * 7), alpha=alpha.repeat(episodes, 1))
    obs = torch.zeros(episodes * N, 3)
    return Trace([out] * steps, [edge_index] * steps, [None] * steps, [obs] * steps)


def test_a_hand_built_hub_is_flagged_with_the_new_centrality_names():
    cfg = Config(num_agents=8, k_neighbors=3)
    structure = evaluation.attention_structure(_hand_built_trace(lambda s: 10.0 if s == 3 else 1.0), cfg, seed=0)
    assert structure["hubs"] == [3]
    centrality = structure["centrality"]
    assert set(centrality[0]) == {"attention_received", "attention_paid", "pagerank", "betweenness"}
    received = {a: c["attention_received"] for a, c in centrality.items()}
    assert max(received, key=received.get) == 3
    assert max(centrality, key=lambda a: centrality[a]["pagerank"]) == 3
    assert received[3] == pytest.approx(7 * 10 / 16)  # 7 listeners, each 10 / (10 + 6)
    assert all(c["attention_paid"] == pytest.approx(1.0) for c in centrality.values())  # softmax per listener
    assert structure["hub_stats"][3]["p_adjusted"] <= evaluation.ALPHA < structure["hub_stats"][0]["p_adjusted"]
    assert structure["hub_shuffles"] >= 500 and structure["attention_relay_shuffles"] >= 200
    matrix = evaluation.attention_matrix(structure["graph"], 8)  # [listener, speaker]
    assert np.isnan(np.diag(matrix)).all()
    assert np.nanargmax(matrix[0]) == 3 and matrix[0, 3] == pytest.approx(10 / 16)


def test_uniform_attention_flags_no_hub_and_no_attention_relay():
    cfg = Config(num_agents=8, k_neighbors=3)
    structure = evaluation.attention_structure(_hand_built_trace(lambda s: 1.0), cfg, seed=0)
    assert structure["hubs"] == [] and structure["attention_relays"] == []
    assert structure["graph_betweenness"] == pytest.approx([0.0] * 8)  # a complete graph: no one is in between
    received = [c["attention_received"] for c in structure["centrality"].values()]
    assert received == pytest.approx([1.0] * 8)  # 7 listeners x 1/7


def test_attention_relays_of_large_populations_are_skipped_with_a_reason():
    N = evaluation.ATTENTION_RELAY_MAX_AGENTS + 1
    cfg = Config(num_agents=N, k_neighbors=3)
    structure = evaluation.attention_structure(
        _hand_built_trace(lambda s: 5.0 if s == 0 else 1.0, num_agents=N, episodes=1, steps=1), cfg, seed=0
    )
    assert structure["attention_relays"] is None and structure["attention_relay_stats"] is None
    assert structure["graph_betweenness"] is None
    assert "ATTENTION_RELAY_MAX_AGENTS" in structure["attention_relays_skipped"]
    assert structure["hubs"] == [0]  # the hub test still runs, with enough shuffles for N agents
    assert structure["hub_shuffles"] >= N / evaluation.ALPHA - 1


class RecordingSwarm(SwarmWorld):
    """A swarm that remembers the state each observation is taken from (for the hand-made head below)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list = []

    def observe(self, state, noise=None):
        self.seen.append(state)
        return super().observe(state, noise)


class CentroidHead(torch.nn.Module):
    """A hand-made action head: full force towards the episode's centroid, whatever the agent heard."""

    def __init__(self, world: RecordingSwarm) -> None:
        super().__init__()
        self.world = world

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = self.world.seen[-1].pos  # [B, N, 2], the state this step's observation came from
        pull = pos.mean(dim=1, keepdim=True) - pos
        return (pull / pull.norm(dim=-1, keepdim=True).clamp_min(1e-6)).reshape(-1, 2)


class ChunkedPlainWorld(PlainWorld):
    """A PlainWorld with ``independent_episodes`` if told, recording the batch size of every state it observes."""

    def __init__(self, cfg: Config, independent: bool) -> None:
        super().__init__(cfg)
        self.sizes: list[int] = []
        if independent:
            self.independent_episodes = True

    def observe(self, state, noise=None):
        self.sizes.append(state.pos.size(0))
        return super().observe(state, noise)


def test_only_a_world_with_independent_episodes_is_evaluated_in_chunks_with_the_same_numbers():
    cfg = Config(**PRESETS["tiny"])
    system = CommSystem.from_config(cfg, PlainWorld(cfg).obs_dim)
    logs = {}
    for independent in (True, False):
        world = ChunkedPlainWorld(cfg, independent)
        logs[independent] = evaluation.evaluate_episodes(system, world, cfg, episodes=8, seed=0, chunk=2)
        assert set(world.sizes) == ({2} if independent else {8})
    for key in ("world", "recon", "reward", "vocab_usage"):
        assert logs[True][key] == pytest.approx(logs[False][key], rel=1e-5)


def test_ablation_compares_trained_idle_and_random_actions_on_identical_episodes():
    cfg = Config(**dict(PRESETS["tiny"], eval_episodes=32))
    world = RecordingSwarm(cfg.num_agents, cfg.latent_dim)
    system = CommSystem.from_config(cfg, world.obs_dim)
    system.action_head = CentroidHead(world)
    ablation = evaluation.communication_ablation(system, world, cfg, episodes=32, seed=3)
    first = [s for s in world.seen if s is not None][:: cfg.timesteps]  # the first state of every rollout
    chunks = 32 // evaluation.evaluation_chunk(cfg)  # each condition runs its episodes a training batch at a time
    assert chunks == 4
    assert len(first) == 5 * chunks  # real, silenced, shuffled, no actions, random actions
    assert not torch.equal(first[0].pos, first[1].pos)  # the chunks hold different episodes...
    for f, same in zip(first, first[:chunks] * 5):  # ...and every condition the same ones
        assert torch.equal(f.pos, same.pos) and torch.equal(f.latent, same.latent)
    assert ablation["dispersion"] < ablation["dispersion_no_actions"]
    assert ablation["dispersion"] < ablation["dispersion_random_actions"]
    assert ablation["dispersion_ratio"] == pytest.approx(ablation["dispersion"] / ablation["dispersion_no_actions"])
    assert ablation["reward"] == pytest.approx(-ablation["dispersion"])  # the swarm's reward is -dispersion
    assert ablation["world_mse_floor"] < ablation["world_mse_own_view"]


@pytest.mark.parametrize(
    "text, says",
    [
        ('{"num_agents": "four"}', "is not a valid config (num_agents must be an int"),
        ("{not json", "is not a valid config"),
        ("lr=0.5", "differs from the checkpoint's config in ['lr']"),
    ],
)
def test_a_config_json_that_is_invalid_or_disagrees_with_the_checkpoint_is_said_not_ignored(run_copy, text, says):
    if text == "lr=0.5":  # the checkpoint's own config, one field changed
        text = Config.from_dict(PRESETS["tiny"]).with_overrides(["lr=0.5"]).to_json()
    (run_copy / "config.json").write_text(text)
    with pytest.warns(evaluation.ConfigFileWarning, match=re.escape(says)):
        cfg = evaluation.load_run(run_copy).cfg
    assert cfg.lr == Config.from_dict(PRESETS["tiny"]).lr  # the checkpoint's config is the one used


def test_a_config_json_that_matches_the_checkpoint_loads_without_a_word(run_copy):
    cfg = evaluation.load_run(run_copy).cfg
    cfg.save(run_copy / "config.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error", evaluation.ConfigFileWarning)
        evaluation.load_run(run_copy)


# ---------------------------------------------------------------------------- relays: information flow, tested causally
class ForwardingSystem(torch.nn.Module):
    """A hand-made system: each agent keeps a belief about every latent factor: its own reading where it sees the
    factor, else what it last heard. It says its belief (position ``f`` of its message: factor ``f``, quantised to
    symbols ``1 .. V-1``; silence where it knows nothing) and listens to every in-neighbour equally, except that
    nobody listens to the speakers in ``ignore`` (attention 0). Its world estimate is its belief (``0`` where it
    knows nothing). It does not move."""

    def __init__(self, num_agents: int, latent_dim: int, *, ignore: tuple[int, ...] = (), vocab_size: int = 33):
        super().__init__()
        self.num_agents, self.latent_dim, self.vocab_size = num_agents, latent_dim, vocab_size
        self.ignore = torch.tensor(ignore, dtype=torch.long)

    def initial_state(self, batch_size: int, device=None):
        from gnncomm.agents import AgentState

        BN, L = batch_size * self.num_agents, self.latent_dim
        return AgentState(
            torch.zeros(BN, 1), torch.zeros(BN, 1), torch.zeros(BN, L), torch.zeros(BN, L), torch.zeros(BN, 1)
        )

    def forward(self, obs, state, edge_index, noise=None, temperature=1.0, intervene=None):
        from gnncomm.agents import AgentState

        L, V, N = self.latent_dim, self.vocab_size, self.num_agents
        view, seen = obs[:, 4 : 4 + L], obs[:, 4 + L : 4 + 2 * L] > 0.5  # SwarmWorld's layout
        belief = torch.where(seen, view, state.world_h)
        known = seen | (state.world_c > 0.5)
        level = ((belief.clamp(-3, 3) + 3) / 6 * (V - 2)).round().long() + 1
        message = torch.nn.functional.one_hot(torch.where(known, level, 0), V).float()  # [B*N, M=L, V]
        heard = message if intervene is None else intervene(message)
        symbol = heard.argmax(-1)  # [B*N, L]
        value = (symbol - 1).float() / (V - 2) * 6 - 3
        src, dst = edge_index
        weight = (~torch.isin(src % N, self.ignore)).float()  # [E]
        total = torch.zeros(obs.size(0)).index_add_(0, dst, weight)
        alpha = (weight / total[dst].clamp_min(1e-12)).unsqueeze(-1)  # [E, heads=1]
        w = alpha * (symbol[src] > 0).float()  # [E, L]
        num = torch.zeros_like(belief).index_add_(0, dst, w * value[src])
        den = torch.zeros_like(belief).index_add_(0, dst, w)
        belief = torch.where(seen, view, torch.where(den > 0, num / den.clamp_min(1e-12), belief))
        known = known | (den > 0)
        zeros = torch.zeros(obs.size(0), 1)
        out = StepOutput(
            message, 10 * message, heard, zeros, torch.zeros(obs.size(0), 2), torch.zeros_like(obs),
            torch.where(known, belief, 0.0), alpha,
        )  # fmt: skip
        return out, AgentState(zeros, zeros, belief, known.float(), zeros)


def _groups_world(graph, groups: list[list[int]]) -> tuple[Config, SwarmWorld]:
    """The config of ``graph`` and a swarm where group ``g`` sees latent factor ``g`` only."""
    cfg = Config(latent_dim=len(groups), timesteps=4, eval_episodes=16, vocab_size=33, msg_dim=len(groups))
    cfg = cfg.with_graph(graph)
    world = SwarmWorld(cfg.num_agents, len(groups))
    mask = torch.zeros(cfg.num_agents, len(groups))
    for g, members in enumerate(groups):
        mask[members, g] = 1.0
    world.view_mask = mask
    return cfg, world


def test_the_bridges_of_a_barbell_that_forward_what_they_hear_are_the_relays_and_no_other_agent():
    import networkx as nx

    cfg, world = _groups_world(nx.barbell_graph(4, 0), [[0, 1, 2, 3], [4, 5, 6, 7]])  # bridge 3 - 4
    effects = evaluation.knockout_effects(ForwardingSystem(8, 2), world, cfg, episodes=16, seed=0)
    assert effects.far[3, 0].tolist() == [False] * 5 + [True] * 3  # 5, 6, 7 never hear 3
    far = evaluation.metrics.far_effects(effects.receiver_delta, effects.far)  # [N, B]
    assert (far[[0, 1, 2, 5, 6, 7]] == 0).all()  # without them their group still has its view, and the bridge
    assert (far[[3, 4]].mean(axis=1) > 0.1).all()  # without a bridge the far side never learns the other factor
    out = evaluation.relay_test(ForwardingSystem(8, 2), world, cfg, episodes=16, seed=0, effects=effects)
    assert out["relays"] == [3, 4] and out["relays_skipped"] is None
    assert out["relay_stats"][3]["p_adjusted"] <= evaluation.ALPHA < out["relay_stats"][0]["p_adjusted"]
    assert out["relay_permutations"] >= 8 / evaluation.ALPHA - 1


def test_the_knockouts_run_in_chunks_keep_the_numbers_of_recorded_traces_and_reuse_the_ablations_real_rollout():
    import networkx as nx

    cfg, world = _groups_world(nx.barbell_graph(4, 0), [[0, 1, 2, 3], [4, 5, 6, 7]])
    cfg = cfg.with_overrides({"batch_size": 4})
    system = ForwardingSystem(8, 2)
    _, trace = evaluate_rollout(system, world, cfg, episodes=16, seed=0, record=True)
    whole = evaluation.knockout_effects(system, world, cfg, episodes=16, seed=0, real=trace)  # at once, as the trace
    harm = evaluation.EpisodeHarm(world, cfg, 16)
    tally = evaluation.AttentionTally.for_structure(cfg)

    def on_real_step(t, first, step):
        harm(t, first, step)
        tally.add_step(t, first, step)

    evaluation.communication_ablation(system, world, cfg, episodes=16, seed=0, chunk=4, on_real_step=on_real_step)
    chunked = evaluation.knockout_effects(system, world, cfg, episodes=16, seed=0, real=harm, chunk=4)
    assert np.allclose(chunked.delta, whole.delta, atol=1e-6)
    assert np.allclose(chunked.receiver_delta, whole.receiver_delta, atol=1e-6)
    assert np.array_equal(chunked.far, whole.far) and chunked.scale == pytest.approx(whole.scale)
    out = evaluation.relay_test(system, world, cfg, episodes=16, seed=0, real=harm, chunk=4)
    assert out["relays"] == [3, 4]
    from_tally = evaluation.attention_structure(tally, cfg, seed=0, with_centrality=False)
    from_trace = evaluation.attention_structure(trace, cfg, seed=0, with_centrality=False)
    assert from_tally["graph_betweenness"] == pytest.approx(from_trace["graph_betweenness"])
    assert from_tally["attention_relays"] == from_trace["attention_relays"] and from_tally["graph"] is not None
    with pytest.raises(ValueError, match="for_structure"):
        evaluation.attention_structure(evaluation.AttentionTally(8), cfg)


def test_bridges_whose_messages_nobody_attends_to_are_no_relays():
    import networkx as nx

    cfg, world = _groups_world(nx.barbell_graph(4, 0), [[0, 1, 2, 3], [4, 5, 6, 7]])
    out = evaluation.relay_test(ForwardingSystem(8, 2, ignore=(3, 4)), world, cfg, episodes=16, seed=0)
    assert out["relays"] == []
    assert all(s["far_effect"] == 0.0 and s["p_adjusted"] == 1.0 for s in out["relay_stats"].values())


def test_an_untrained_system_on_a_ring_has_no_relay_in_most_seeds():
    """Null data: no forced bottleneck and nothing learnt. At level 0.05 per run, two or more runs of five
    with a relay happen with probability about 0.02."""
    runs_with_relays = 0
    for seed in range(5):
        cfg = Config(**dict(PRESETS["tiny"], num_agents=8, topology="ring", k_neighbors=0, seed=seed))
        torch.manual_seed(seed)
        world = build_world(cfg)
        system = CommSystem.for_world(cfg, world).eval()
        out = evaluation.relay_test(system, world, cfg, episodes=16, seed=seed)
        runs_with_relays += bool(out["relays"])
    assert runs_with_relays <= 1


def test_relays_are_skipped_with_a_reason_above_the_cap_and_without_a_latent():
    cfg = Config(num_agents=evaluation.RELAY_MAX_AGENTS + 1, k_neighbors=3)
    out = evaluation.relay_test(None, SwarmWorld(cfg.num_agents), cfg, episodes=2, seed=0)
    assert out["relays"] is None and "RELAY_MAX_AGENTS" in out["relays_skipped"]

    class SharedRewardOnly(SwarmWorld):  # SwarmWorld has agent_rewards since PPO: hide it
        def __getattribute__(self, name: str):
            if name == "agent_rewards":
                raise AttributeError(name)
            return super().__getattribute__(name)

    world = SharedRewardOnly(4)
    world.latent_dim = 0  # a task: a reward shared by all agents, no world error of their own
    out = evaluation.relay_test(None, world, Config(num_agents=4), episodes=2, seed=0)
    assert out["relays"] is None and "no latent and no agent_rewards" in out["relays_skipped"]
    assert out["relay_tolerance"] is None


class GuessState(NamedTuple):
    pos: torch.Tensor
    factors: torch.Tensor
    """``[B, L]``: hidden factors, but no latent: the world is judged by its rewards alone."""
    agent_reward: torch.Tensor
    latent: torch.Tensor


class GuessWorld:
    """A task without a latent: each episode hides factors ``[B, L]``; the members of group ``g`` see factor ``g``
    (in :class:`SwarmWorld`'s observation layout, which :class:`ForwardingSystem` reads) and each agent is paid minus
    the squared error of its action to the factors. Without ``agent_rewards``: the world's reward only."""

    latent_dim = 0

    def __init__(self, num_agents: int, groups: list[list[int]]) -> None:
        self.num_agents, self.factors = num_agents, len(groups)
        self.view_mask = torch.zeros(num_agents, self.factors)
        for g, members in enumerate(groups):
            self.view_mask[members, g] = 1.0

    @property
    def obs_dim(self) -> int:
        return 4 + 2 * self.factors

    def reset(self, batch_size: int, *, generator=None, device=None) -> GuessState:
        factors = torch.randn(batch_size, self.factors, generator=generator)
        B, N = batch_size, self.num_agents
        return GuessState(torch.zeros(B, N, 2), factors, torch.zeros(B, N), torch.zeros(B, 0))

    def sample_noise(self, steps: int, batch_size: int, *, generator=None, device=None) -> torch.Tensor:
        return torch.zeros(steps, batch_size, self.num_agents, 0)

    def observe(self, state: GuessState, noise=None) -> torch.Tensor:
        B, N, L = state.pos.size(0), self.num_agents, self.factors
        view = state.factors[:, None, :] * self.view_mask  # [B, N, L]
        obs = torch.cat([torch.zeros(B, N, 4), view, self.view_mask.expand(B, N, L)], dim=-1)
        return obs.reshape(B * N, -1)

    def step(self, state: GuessState, action: torch.Tensor, edge_index: torch.Tensor) -> GuessState:
        guess = action.view(-1, self.num_agents, action.size(-1))[..., : self.factors]  # [B, N, L]
        return state._replace(agent_reward=-(guess - state.factors[:, None]).pow(2).mean(-1))

    def reward(self, state: GuessState) -> torch.Tensor:
        return state.agent_reward.mean(-1)


class OwnRewardGuessWorld(GuessWorld):
    """:class:`GuessWorld` whose agents are each paid their own reward, as VMAS's are."""

    def agent_rewards(self, state: GuessState) -> torch.Tensor:
        return state.agent_reward


class SharedRewardGuessWorld(GuessWorld):
    """:class:`GuessWorld` whose ``agent_rewards`` gives every agent the team's reward."""

    def agent_rewards(self, state: GuessState) -> torch.Tensor:
        return self.reward(state)[:, None].expand(-1, self.num_agents)


class GuessingForwarder(ForwardingSystem):
    """:class:`ForwardingSystem` whose action is its world estimate: its guess of the factors."""

    def forward(self, *args, **kwargs):
        out, state = super().forward(*args, **kwargs)
        return out._replace(action=out.world_pred), state


def test_without_a_latent_the_bridges_whose_silence_costs_the_far_side_its_own_return_are_the_relays():
    import networkx as nx

    groups = [[0, 1, 2, 3], [4, 5, 6, 7]]
    cfg, _ = _groups_world(nx.barbell_graph(4, 0), groups)  # bridge 3 - 4
    world = OwnRewardGuessWorld(8, groups)
    system = GuessingForwarder(8, 2)
    effects = evaluation.knockout_effects(system, world, cfg, episodes=16, seed=0)
    assert effects.receiver_delta is not None and effects.receivers_skipped is None
    _, trace = evaluate_rollout(system, world, cfg, episodes=16, seed=0, record=True)
    assert len(trace.agent_rewards) == cfg.timesteps and trace.agent_rewards[0].shape == (16, 8)
    own_return = torch.stack(trace.agent_rewards).sum(0).numpy()  # [B, N]
    assert np.allclose(evaluation.agent_harm(trace, 8), -own_return)
    far = evaluation.metrics.far_effects(effects.receiver_delta, effects.far)  # [N, B]
    assert (far[[0, 1, 2, 5, 6, 7]] == 0).all()
    assert (far[[3, 4]].mean(axis=1) > 0.1).all()  # without a bridge the far side never learns the other factor
    out = evaluation.relay_test(system, world, cfg, episodes=16, seed=0, effects=effects)
    assert out["relays"] == [3, 4] and out["relays_skipped"] is None
    assert out["relay_tolerance"] == pytest.approx(evaluation.metrics.ROUNDING_TOLERANCE * effects.scale)
    assert evaluation.relay_test(system, world, cfg, episodes=16, seed=0)["relays"] == [3, 4]  # runs its knock-outs


@pytest.mark.parametrize(
    "world, says",
    [
        (GuessWorld(8, [[0, 1, 2, 3], [4, 5, 6, 7]]), "no latent and no agent_rewards"),
        (SharedRewardGuessWorld(8, [[0, 1, 2, 3], [4, 5, 6, 7]]), "are equal at every step"),
    ],
)
def test_without_a_latent_agents_without_rewards_of_their_own_get_the_skip_reason(world, says):
    import networkx as nx

    cfg, _ = _groups_world(nx.barbell_graph(4, 0), [[0, 1, 2, 3], [4, 5, 6, 7]])
    out = evaluation.relay_test(GuessingForwarder(8, 2), world, cfg, episodes=4, seed=0)
    assert out["relays"] is None and out["relay_stats"] is None and says in out["relays_skipped"]
    effects = evaluation.knockout_effects(GuessingForwarder(8, 2), world, cfg, episodes=4, seed=0)
    assert effects.receiver_delta is None and says in effects.receivers_skipped
    assert effects.delta.shape == (8, 2)  # the knock-outs' fall in return is still measured
    with pytest.raises(ValueError, match="receivers=True needs each agent's own harm"):
        evaluation.knockout_effects(GuessingForwarder(8, 2), world, cfg, episodes=4, seed=0, receivers=True)


def test_far_effects_of_float32_rounding_flag_no_relay():
    """Knock-outs that change nothing a far receiver hears still move its error by rounding: tiny deltas that can
    lean one way in most episodes. Below the tolerance they are no effect, so nobody is flagged."""
    rng = np.random.default_rng(0)
    N, B = 8, 64
    eps = float(np.finfo(np.float32).eps)
    error = 1.0 + rng.random((B, N))  # receivers' own errors of about 1..2
    delta = rng.normal(0.0, 8 * eps, (N, B, N)) * error  # rounding: a few eps of each error
    delta[5] = np.abs(delta[5])  # one agent's rounding leans up in every episode
    far = np.ones((N, B, N), dtype=bool)
    far[np.arange(N), :, np.arange(N)] = False
    assert evaluation.metrics.detect_relays(evaluation.metrics.far_effects(delta, far)) == [5]  # without the tolerance
    effects = evaluation.KnockoutEffects(np.zeros((N, 2)), delta, far, float(error.mean()))
    out = evaluation.relay_test(None, SwarmWorld(N), Config(num_agents=N, k_neighbors=3), episodes=B, seed=0,
                                effects=effects)  # fmt: skip
    assert out["relays"] == [] and out["relays_skipped"] is None
    assert all(s["far_effect"] == 0.0 and s["p_adjusted"] == 1.0 for s in out["relay_stats"].values())


# --------------------------------------------------------------------------- memory of the evaluation (issue 24)
def _evaluation_and_training_bytes(tmp_path: Path, **overrides) -> tuple[int, int, int]:
    """Live tensor bytes at the peak of: a training step (after a first one made the gradients and moments), the
    end-of-run evaluation's rollouts (with the hub tally) and one live probe, at N = 2,000 and batch_size=1."""
    from gnncomm.memory import LiveTensorBytes
    from gnncomm.trainer import Trainer

    cfg = Config(num_agents=2000, batch_size=1, steps=2, eval_episodes=64, threads=1, **overrides)
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.loss_module.set_topology(*cfg.topology_at(0), trainer.local_batch, trainer.rt.device)
    temperature = torch.tensor(1.0)
    trainer.train_step(trainer.next_episode(), temperature)
    with LiveTensorBytes() as train:
        trainer.train_step(trainer.next_episode(), temperature)
    tally = evaluation.AttentionTally(cfg.num_agents)
    with LiveTensorBytes() as end_of_run:
        episodes = evaluation.end_of_run_episodes(cfg)
        evaluation.communication_ablation(
            trainer.system, trainer.world, cfg, episodes=episodes, seed=1, on_real_step=tally.add_step
        )
    with LiveTensorBytes() as probe:
        trainer.probe()
    trainer.close()
    assert episodes == 4 and evaluation.evaluation_chunk(cfg) == 2
    return train.peak, end_of_run.peak, probe.peak


def test_the_evaluation_and_the_live_probe_hold_fewer_tensor_bytes_than_the_training_step_at_2000_agents(tmp_path):
    # recomputed steps: the training step's smallest peak, about 2.3 times one greedy step's; 4 episodes at once
    # (the evaluation before issue 24) would hold 1.7 times the training step
    train, end_of_run, probe = _evaluation_and_training_bytes(tmp_path, recompute_steps="true")
    assert 0 < end_of_run < train
    assert 0 < probe < train


# --------------------------------------------------------------------------- the hub test's error rate (issue 24)
def _hubs_in_random_attention(num_agents: int, episodes: int, seed: int, method: str, plant: float = 0.0):
    """The hubs and p-values that the test flags in random attention (no agent special), with ``plant`` added to
    the attention every listener pays agent 0 (a real hub) when it is positive."""
    from benchmarks.hub_null import random_attention

    speakers, _, weight, _ = random_attention(num_agents, episodes, seed).pairs()
    weight = weight + plant * (speakers == 0)
    shuffles = max(metrics.HUB_SHUFFLES, metrics.min_permutations(num_agents, evaluation.ALPHA))
    stats = metrics.pair_hub_statistics(speakers, weight, num_agents, num_shuffles=shuffles, seed=seed, method=method)
    hubs = [a for a, s in stats.items() if s["p_adjusted"] <= evaluation.ALPHA]
    return hubs, np.array([s["p_value"] for s in stats.values()])


@pytest.mark.parametrize("num_agents, episodes", [(100, 81), (2000, 4)])
def test_the_large_population_hub_test_flags_no_agent_in_random_attention_and_its_p_values_are_calibrated(
    num_agents, episodes
):
    assert evaluation.HUB_LARGE_METHOD == "exact"
    p_values = []
    for seed in range(5):
        hubs, p = _hubs_in_random_attention(num_agents, episodes, seed, "exact")
        assert hubs == [], seed
        p_values.append(p)
    p = np.concatenate(p_values)
    # under the null P(p <= t) <= t: at N=2,000 the 10,000 p-values put 104 below 0.01 and 10 below 0.001
    for t in (0.01, 0.001):
        assert (p <= t).sum() <= 1.3 * t * p.size + 3, t


def test_the_large_population_hub_test_finds_a_planted_hub():
    hubs, _ = _hubs_in_random_attention(2000, 4, 0, "exact", plant=0.15)
    assert hubs == [0]


def test_attention_structure_tests_hubs_above_the_permutation_limit_with_the_exact_tail():
    from benchmarks.hub_null import random_attention

    cfg = Config(num_agents=1000)
    structure = evaluation.attention_structure(random_attention(1000, 2, 0), cfg, with_centrality=False)
    assert structure["hub_null"] == "exact" and structure["hub_shuffles"] is None
    assert structure["graph"] is None and structure["hubs"] == []
