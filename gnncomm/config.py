"""The one typed configuration of a run: defaults, validation, files and overrides.

A config is built from up to three sources, later ones winning field by field (see
:meth:`Config.from_sources`): a named preset (:data:`PRESETS`) < a config file (``.toml``, ``.yaml``/``.yml``,
``.json``) < ``key=value`` overrides. The merged values are validated once: every error is one line naming
the field, the value given and the allowed range, and is a ``ValueError`` or a ``TypeError``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import numbers
import re
import sys
import typing
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from gnncomm.checkpoint import atomic_write_text
from gnncomm.topology import DisconnectedGraphWarning, check_topology, from_networkx, has_degree, topology_names

AMP_CHOICES = ("none", "bf16", "fp16", "auto")
COMPILE_CHOICES = ("auto", "true", "false")
LR_DECAY_CHOICES = ("none", "cosine")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
CPU_MEMORY_CHOICES = ("reuse", "release", "system")
ALGORITHMS = ("gradient", "ppo")
PPO_MESSAGE_MODES = ("policy", "actions")
CRITIC_INPUTS = ("features", "observations")
SEED_MAX = 2**63 - 1
"""Largest seed: torch generators take seeds below 2**64, and evaluation adds small offsets to the seed."""
_DEVICE = re.compile(r"auto|cpu|cuda(?::([0-9]+))?")


class IgnoredNeighborsWarning(UserWarning):
    """``k_neighbors`` was set for a topology without a degree (full, ring, star, grid, erdos_renyi, custom),
    which ignores it."""


@dataclass
class Config:
    """Everything a run needs. Defaults are the seed's set-up: 10 agents on a k=4 kNN graph."""

    # --- population and topology
    num_agents: int = 10
    """Agents per episode (>= 2)."""
    topology: str = "knn"
    """Communication graph: knn (alias knearest, rebuilt from positions every step), ring, full, star, grid,
    small_world, erdos_renyi, random_regular, or custom (the edges in custom_edges)."""
    k_neighbors: int = 0
    """Neighbours per agent for knn (1 <= k < num_agents); degree for random_regular and small_world. 0 (the
    default) means min(4, num_agents - 1): the seed's k=4, and every other agent in populations of up to 4. The
    other topologies ignore it: any other value there gives an IgnoredNeighborsWarning."""
    custom_edges: list = field(default_factory=list)
    """Edges [[senders...], [receivers...]] of one episode's graph for topology=custom (see
    Config.with_graph to set them from networkx): at least one edge, no self-loops. A graph in several
    connected components is accepted with a DisconnectedGraphWarning."""
    topology_schedule: list = field(default_factory=list)
    """Curriculum: [[step, topology, k], ...]; from each step on, that graph is used. Empty: no curriculum."""
    # --- language
    vocab_size: int = 64
    """Symbols in the vocabulary (>= 2); symbol 0 is silence."""
    msg_dim: int = 5
    """Symbols per message (>= 1)."""
    heads: int = 4
    """Attention heads of MessageAttention (must divide hidden_dim)."""
    hidden_dim: int = 64
    """Width of the LSTM states, embeddings and heads."""
    shared_params: bool = True
    """One set of weights for all agents (True) or one per agent, batched (False)."""
    estimator_input: str = "encoder"
    """What the world estimator reads beside the heard context: context (the observation) or encoder (the
    speaker's LSTM state, which already integrates the observation and what was heard before)."""
    agent_embedding_dim: int = 8
    """Agent-id embedding size with shared parameters (0 for none)."""
    encoder_memory: bool = True
    """Whether the encoder carries its LSTM state from one step to the next. False starts it from zero at every
    step: a gated feed-forward layer on the observation and what the agent heard at the previous step, so its only
    memory is the channel. For worlds whose observation already holds what an agent needs (VMAS navigation), where
    PPO learns from fewer frames without memory (README)."""
    # --- world
    world: str = "swarm"
    """The world to learn in: a name registered with gnncomm.world.register_world (swarm: SwarmWorld; vmas: a VMAS
    scenario, pip install -e ".[vmas]"), or an import path package.module:Factory of a function cfg -> World."""
    scenario: str = "navigation"
    """With world=vmas, the VMAS scenario (navigation, simple_speaker_listener, flocking, discovery...); num_agents
    becomes its n_agents where it takes one."""
    world_kwargs: dict = field(default_factory=dict)
    """Keyword arguments of the world: with world=vmas, any other keyword of the scenario, e.g.
    world_kwargs={n_obstacles: 3, shared_rew: false} on the command line (a YAML mapping) or a table in TOML."""
    timesteps: int = 5
    """Steps per backprop window (>= 1): each optimizer step rolls the agents this many steps. With episode_steps
    0 it is also the episode's length."""
    episode_steps: int = 0
    """Steps per episode, a multiple of timesteps; 0 means timesteps (each optimizer step starts new episodes).
    Longer episodes keep running across optimizer steps: each step rolls the next timesteps steps from where
    the last stopped, with the world and the agents' recurrent states carried over and detached, and only
    finished episodes start again (VMAS: BenchMARL's tasks run 100 steps)."""
    latent_dim: int = 4
    """Hidden world factors L."""
    view_size: int = 1
    """World factors each agent observes (1 <= view_size <= latent_dim)."""
    obs_noise: float = 0.1
    """Std of the observation noise on the seen factors."""
    arena_size: float = 0.0
    """Side of the square arena; 0 means 2*sqrt(num_agents)."""
    # --- optimisation
    lr: float = 8e-3
    """AdamW learning rate (the peak, after the warm-up)."""
    lr_decay: str = "none"
    """Learning-rate decay after the warm-up until the end of the anneal span (anneal_steps; 0 means the run's steps
    as first started): none (constant) or cosine (from lr down to lr * lr_final, then constant). Fixed when a run
    starts, like the temperature schedule."""
    lr_final: float = 0.1
    """With lr_decay=cosine, the learning rate at the end of the anneal span as a fraction of lr, in [0, 1]."""
    warmup_steps: int = 30
    """Steps of linear learning-rate warm-up from lr / warmup_steps to lr (0: none)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm (> 0)."""
    batch_size: int = 256
    """Episodes per step, all ranks together."""
    steps: int = 600
    """Optimizer steps."""
    # --- losses
    recon_weight: float = 1.0
    """Weight of the observation reconstruction loss."""
    world_weight: float = 1.0
    """Weight of the world-latent prediction loss (weighted towards the last step)."""
    comm_weight: float = 0.01
    """Weight of the L1 communication cost (mass of non-silence symbols)."""
    vocab_weight: float = 0.05
    """Weight of the vocabulary pressure: the entropy of each step's symbol marginal over log V (the agents' symbol
    probabilities averaged over the batch and the message positions; gnncomm.metrics.marginal_entropy; logged as
    vocab_term). Narrows the language at some cost in what messages tell; 0 turns it off."""
    vocab_align_weight: float = 0.15
    """Weight of the symbol-sharing term: the mutual information between a symbol's position in the message and
    the symbol, over log V (gnncomm.metrics.position_information; logged as vocab_align_term). Makes positions
    share one vocabulary, which costs messages nothing; 0 turns it off."""
    actions_learn_from: str = "reward"
    """What trains the action head: reward (only the cooperative reward, through the differentiable world; the
    language losses see the world through a detached state) or all (every loss term, the behaviour before 0.2)."""
    cluster_weight: float = 0.1
    """Weight of the clustering loss, -reward (the swarm's dispersion), through the differentiable world."""
    # --- learning from reward (algorithm=ppo)
    algorithm: str = "gradient"
    """How the agents learn: gradient (the losses and a reward differentiated through the world) or ppo (clipped
    PPO from the world's reward alone, for rewards without a gradient: VMAS discovery, transport, any simulator).
    With ppo, a step is one iteration: batch_size environments rolled timesteps steps, then ppo_epochs passes of
    updates; gnncomm.ppo describes the rest."""
    ppo_messages: str = "policy"
    """With ppo, how the messages learn: policy (a listener's PPO loss is differentiated through its speakers'
    straight-through Gumbel messages within the step, as in DIAL and MADDPG) or actions (the symbols are sampled
    actions whose log-probabilities enter the PPO ratio, as EGG's REINFORCE sender)."""
    gamma: float = 0.99
    """With ppo, the discount in [0, 1]."""
    gae_lambda: float = 0.95
    """With ppo, the GAE lambda in [0, 1]."""
    clip_coef: float = 0.2
    """With ppo, the ratio clip epsilon (> 0)."""
    ppo_epochs: int = 4
    """With ppo, passes over each iteration's data (>= 1)."""
    minibatches: int = 4
    """With ppo, minibatches per pass, each a set of sequences of whole environments (every agent of every step),
    in [1, batch_size x timesteps / ppo_sequence] (the sequences of an iteration)."""
    ppo_sequence: int = 0
    """With ppo, the length L of the sequences an update replays, a divisor of timesteps; 0 means timesteps (each
    environment's whole iteration). Shorter sequences start from the recurrent states stored at collection
    every L steps, and a minibatch mixes sequences from different parts of the iteration: as many gradient steps
    for fewer sequential replay steps."""
    entropy_coef: float = 0.0
    """With ppo, the weight of the policy's entropy bonus (actions, and the symbols with ppo_messages=actions)."""
    value_coef: float = 0.5
    """With ppo, the weight of the value loss."""
    action_std: float = 0.5
    """With ppo, the initial std of the Gaussian policy around the action head's output (learnt from there)."""
    message_noise: float = 1.0
    """With ppo and ppo_messages=policy, the scale in [0, 1] of the Gumbel noise the messages are drawn with at
    collection (and replayed with): 1 samples them (straight-through Gumbel-Softmax), 0 says the greedy symbol,
    still differentiated straight through the softmax, so listeners hear during training what they hear at
    evaluation."""
    critic_input: str = "features"
    """With ppo, what the centralised critic reads, with its episode's mean: features (the policy's own state, one
    trunk for actor and critic) or observations (the raw observations through the critic's own MLP: a separate
    critic, whose value loss moves no weight of the policy)."""
    # --- Gumbel-Softmax
    temperature_start: float = 2.0
    """Gumbel temperature at step 0."""
    temperature_end: float = 0.5
    """Gumbel temperature after annealing (exponential decay); at most temperature_start."""
    anneal_steps: int = 600
    """Steps over which the temperature anneals (then it stays at temperature_end) and lr_decay decays the learning
    rate; 0 means the run's steps as first started. Fixed when a run starts, so extending steps on resume continues
    the same schedules."""
    # --- survival selection (per-agent parameters only)
    selection_every: int = 0
    """Every this many steps, copy the fittest agents onto the weakest; 0 turns selection off."""
    selection_k: int = 2
    """Agents replaced (and donors) per selection event."""
    mutation_std: float = 0.01
    """Std of the Gaussian noise added to copied weights, relative to each tensor's std."""
    # --- runtime
    device: str = "auto"
    """auto, cpu, cuda or cuda:N (N >= 0)."""
    amp: str = "auto"
    """Autocast dtype: none, bf16, fp16 (with GradScaler) or auto (bf16 on CUDA, none on CPU)."""
    compile: str = "auto"
    """torch.compile the training step (one rollout step, reused for the T steps): true, false or auto (on for CUDA,
    off on the CPU); a bool is read as true/false."""
    compile_mode: str = "default"
    """torch.compile mode: default, reduce-overhead (CUDA graphs, for launch-bound GPU steps) or max-autotune."""
    threads: int = 0
    """Torch CPU threads; 0 (auto) uses the cores other processes leave free (what they used since the last check,
    from /proc/stat), re-checked at every log step, unless OMP_NUM_THREADS is set. See gnncomm.runtime.CoreMonitor
    for the measurements."""
    recompute_steps: str = "auto"
    """Activation checkpointing: true recomputes each step's activations in the backward pass (less memory, about
    a third more compute, identical results); auto does so from 20,000 agents per rollout (B * N) on; false never."""
    cpu_memory: str = "reuse"
    """How glibc treats freed memory on the CPU (gnncomm.runtime.set_cpu_memory): reuse keeps it for the next step
    (fastest at large populations, the most RSS), release returns every block of 1 MiB or more to the OS at once
    (the smallest peak, page faults at every step), system leaves glibc's policy. Process-wide: the last run
    started in a process sets it. With release, an eager CPU run that recomputes its steps also draws each step's
    Gumbel noise where it uses it instead of holding the episode's (gnncomm.rollout.LazyGumbel: the same numbers,
    640 MB less at 100,000 agents, two more draws per step)."""
    seed: int = 0
    """Seed of every random draw, in [0, 2**63 - 1]."""
    log_every: int = 25
    """Steps between metric logs (the only host syncs)."""
    checkpoint_every: int = 200
    """Steps between checkpoints (also written at the end)."""
    eval_episodes: int = 512
    """Episodes for the final communication ablation."""
    eval_every: int = 50
    """Steps between live probes of the communication proof (world error with real and silenced messages
    on a fixed held-out batch), at the first log step of each window and at the end; 0 turns them off."""
    eval_batch: int = 64
    """Held-out episodes of each live probe."""

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Checks (and normalises) every field; raises a one-line ``ValueError``/``TypeError`` naming the
        first bad field, the value given and the allowed range."""
        hints = _hints()
        for f in fields(self):
            setattr(self, f.name, _check_type(f.name, getattr(self, f.name), hints[f.name]))
        self.world = self.world.strip()
        if ":" not in self.world:  # an import path keeps its case
            self.world = self.world.lower()
        if not self.world:
            raise ValueError("world must be a registered world name (e.g. 'swarm') or a package.module:Factory, got ''")
        self.scenario = self.scenario.strip()
        bad_keys = [k for k in self.world_kwargs if not isinstance(k, str) or not k.isidentifier()]
        if bad_keys:
            raise ValueError(f"world_kwargs keys must be keyword names, got {_show(bad_keys[0])}")
        self.amp, self.compile = self.amp.strip().lower(), self.compile.strip().lower()
        self.device = check_device(self.device)
        _at_least(self, "num_agents", 2)
        self.topology = _topology_name("topology", self.topology)
        _at_least(self, "k_neighbors", 0)
        given_k, auto_k = self.k_neighbors, min(4, self.num_agents - 1)
        if self.k_neighbors == 0:
            self.k_neighbors = auto_k
        if self.k_neighbors >= self.num_agents:
            raise ValueError(
                f"k_neighbors must be in [1, num_agents - 1 = {self.num_agents - 1}], got {self.k_neighbors}"
            )
        check_topology(self.topology, self.num_agents, self.k_neighbors)  # names topology, num_agents, k_neighbors
        if given_k not in (0, auto_k) and not has_degree(self.topology):
            # 0 (auto) is normalised to auto_k above, so a validated config never warns again; stacklevel=1 keeps
            # one location, which the default warnings filter shows once however often the config is re-validated
            warnings.warn(
                f"k_neighbors={given_k} is ignored by topology {self.topology!r}: only knn, small_world and "
                "random_regular take a degree (leave k_neighbors=0, auto)",
                IgnoredNeighborsWarning,
                stacklevel=1,
            )
        _at_least(self, "vocab_size", 2)
        _at_least(self, "msg_dim", 1)
        _at_least(self, "heads", 1)
        _at_least(self, "hidden_dim", 1)
        if self.hidden_dim % self.heads:
            raise ValueError(f"heads must divide hidden_dim={self.hidden_dim}, got heads={self.heads}")
        _at_least(self, "agent_embedding_dim", 0)
        _choice(self, "estimator_input", ("context", "encoder"))
        _choice(self, "actions_learn_from", ("reward", "all"))
        _at_least(self, "threads", 0)
        self.recompute_steps = self.recompute_steps.strip().lower()
        if self.recompute_steps in ("1", "yes", "on", "0", "no", "off"):
            self.recompute_steps = "true" if self.recompute_steps in ("1", "yes", "on") else "false"
        _choice(self, "recompute_steps", ("auto", "true", "false"))
        _at_least(self, "timesteps", 1)
        _at_least(self, "episode_steps", 0)
        if self.episode_steps % self.timesteps:
            raise ValueError(
                f"episode_steps must be 0 or a multiple of timesteps={self.timesteps}, got {self.episode_steps}"
            )
        _at_least(self, "latent_dim", 1)
        if not 1 <= self.view_size <= self.latent_dim:
            raise ValueError(f"view_size must be in [1, latent_dim = {self.latent_dim}], got {self.view_size}")
        for name in (
            "obs_noise",
            "arena_size",
            "weight_decay",
            "recon_weight",
            "world_weight",
            "comm_weight",
            "vocab_weight",
            "vocab_align_weight",
            "cluster_weight",
            "mutation_std",
        ):
            _at_least(self, name, 0.0)
        for name in ("lr", "max_grad_norm", "temperature_start", "temperature_end"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.temperature_end > self.temperature_start:
            raise ValueError(
                f"temperature_end must be in (0, temperature_start = {self.temperature_start}] (the temperature "
                f"anneals down), got temperature_end={self.temperature_end}"
            )
        _at_least(self, "batch_size", 1)
        _at_least(self, "steps", 1)
        _at_least(self, "anneal_steps", 0)
        _choice(self, "lr_decay", LR_DECAY_CHOICES)
        if not 0.0 <= self.lr_final <= 1.0:
            raise ValueError(f"lr_final must be in [0, 1], got {self.lr_final}")
        _at_least(self, "warmup_steps", 0)
        _at_least(self, "selection_every", 0)
        _at_least(self, "selection_k", 1)
        if self.selection_every and 2 * self.selection_k > self.num_agents:
            raise ValueError(
                f"selection_k must be in [1, num_agents // 2 = {self.num_agents // 2}] when "
                f"selection_every > 0, got {self.selection_k}"
            )
        if self.selection_every and self.shared_params:
            raise ValueError(
                f"selection_every={self.selection_every} needs per-agent weights: set "
                "shared_params=false (or selection_every=0)"
            )
        _choice(self, "algorithm", ALGORITHMS)
        _choice(self, "ppo_messages", PPO_MESSAGE_MODES)
        _choice(self, "critic_input", CRITIC_INPUTS)
        for name in ("gamma", "gae_lambda", "message_noise"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("clip_coef", "action_std"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        _at_least(self, "entropy_coef", 0.0)
        _at_least(self, "value_coef", 0.0)
        _at_least(self, "ppo_epochs", 1)
        _at_least(self, "ppo_sequence", 0)
        if self.ppo_sequence and self.timesteps % self.ppo_sequence:
            raise ValueError(
                f"ppo_sequence must be 0 or a divisor of timesteps={self.timesteps}, got {self.ppo_sequence}"
            )
        _at_least(self, "minibatches", 1)
        if self.algorithm == "ppo" and self.minibatches > self.ppo_sequences:  # the gradient path ignores it
            raise ValueError(
                f"minibatches must be in [1, {self.ppo_sequences}] (the sequences of an iteration: batch_size x "
                f"timesteps / ppo_sequence), got {self.minibatches}"
            )
        if self.message_noise != 1.0 and (self.algorithm, self.ppo_messages) != ("ppo", "policy"):
            raise ValueError(
                f"message_noise={self.message_noise} applies to algorithm=ppo with ppo_messages=policy only (the "
                "gradient path samples its messages, and symbols as actions are sampled from the logits); set "
                "message_noise=1"
            )
        if self.algorithm == "ppo" and self.selection_every:
            raise ValueError(
                f"selection_every={self.selection_every} runs with algorithm=gradient only; set selection_every=0"
            )
        _choice(self, "amp", AMP_CHOICES)
        self.compile = {"1": "true", "yes": "true", "on": "true", "0": "false", "no": "false", "off": "false"}.get(
            self.compile, self.compile
        )
        _choice(self, "compile", COMPILE_CHOICES)
        _choice(self, "compile_mode", COMPILE_MODES)
        _choice(self, "cpu_memory", CPU_MEMORY_CHOICES)
        if not 0 <= self.seed <= SEED_MAX:
            raise ValueError(f"seed must be in [0, 2**63 - 1], got {self.seed}")
        _at_least(self, "log_every", 1)
        _at_least(self, "checkpoint_every", 1)
        _at_least(self, "eval_episodes", 1)
        _at_least(self, "eval_every", 0)
        _at_least(self, "eval_batch", 1)
        self.topology_schedule = _validate_schedule(self.topology_schedule, self.num_agents)
        scheduled = [name for _, name, _ in self.topology_schedule]
        self.custom_edges = _validate_edges(
            self.custom_edges,
            self.num_agents,
            "topology" if self.topology == "custom" else "topology_schedule" if "custom" in scheduled else None,
        )

    # ------------------------------------------------------------------ derived
    @property
    def ppo_sequences(self) -> int:
        """With ppo, the sequences of an iteration that minibatches share: ``batch_size x timesteps /
        ppo_sequence`` (``batch_size`` with whole-iteration sequences)."""
        return self.batch_size * (self.timesteps // (self.ppo_sequence or self.timesteps))

    @property
    def episode_length(self) -> int:
        """Steps of a whole episode: ``episode_steps``, or ``timesteps`` when that is 0."""
        return self.episode_steps or self.timesteps

    def temperature(self, step: int, span: int | None = None) -> float:
        """The Gumbel temperature at ``step``: exponential decay from start to end over ``span`` steps (by
        default ``anneal_steps``, or ``steps`` when that is 0), then constant."""
        span = span or self.anneal_steps or self.steps
        frac = min(max(step, 0) / max(span, 1), 1.0)
        return self.temperature_start * (self.temperature_end / self.temperature_start) ** frac

    def learning_rate(self, step: int, span: int | None = None) -> float:
        """The learning rate at ``step``: a linear warm-up over ``warmup_steps``, then ``lr`` (``lr_decay=none``)
        or a cosine from ``lr`` (at the end of the warm-up) down to ``lr * lr_final`` at ``span`` steps (by default
        ``anneal_steps``, or ``steps`` when that is 0, as :meth:`temperature`), then constant."""
        step = max(step, 0)
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.lr_decay == "none":
            return self.lr
        span = span or self.anneal_steps or self.steps
        frac = min((step - self.warmup_steps) / max(span - self.warmup_steps, 1), 1.0)
        return self.lr * (self.lr_final + (1.0 - self.lr_final) * 0.5 * (1.0 + math.cos(math.pi * frac)))

    def topology_at(self, step: int) -> tuple[str, int]:
        """The (topology, k) in force at ``step`` under the curriculum, else the fixed one."""
        name, k = self.topology, self.k_neighbors
        for start, sched_name, sched_k in self.topology_schedule:
            if step >= start:
                name, k = sched_name, sched_k
        return name, k

    def with_graph(self, graph: Any) -> Config:
        """A copy that communicates over ``graph``: a networkx graph, or an ``edge_index`` LongTensor ``[2, E]``.

        With a networkx graph, ``num_agents`` becomes its node count (nodes relabelled ``0 .. N-1`` as
        :func:`gnncomm.topology.from_networkx` does) and an undirected edge gives both directions; an
        ``edge_index`` keeps ``num_agents``. The graph needs at least one edge; one in several connected
        components, or a directed one with a listener that hears nobody, gives a :class:`DisconnectedGraphWarning`,
        and dropped self-loops a :class:`~gnncomm.topology.SelfLoopWarning`.
        """
        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                return self._with_graph(graph)
        finally:
            for warning in caught:  # raised again at the caller's line, so the default filter shows each graph's
                warnings.warn(warning.message, warning.category, stacklevel=2)

    def _with_graph(self, graph: Any) -> Config:
        if isinstance(graph, torch.Tensor):
            if graph.dim() != 2 or graph.size(0) != 2:
                raise ValueError(
                    f"graph must be a networkx graph or an edge_index of shape [2, E], "
                    f"got a tensor of shape {tuple(graph.shape)}"
                )
            if graph.is_floating_point() or graph.is_complex() or graph.dtype == torch.bool:
                raise TypeError(f"graph edge_index must hold int agent ids, got dtype {graph.dtype}")
            edges, num_agents = graph.tolist(), self.num_agents
        elif hasattr(graph, "number_of_nodes") and hasattr(graph, "edges"):
            edges, num_agents = from_networkx(graph).tolist(), int(graph.number_of_nodes())
        else:
            raise TypeError(
                f"graph must be a networkx graph or an edge_index LongTensor [2, E], got {type(graph).__name__}"
            )
        return self.with_overrides(
            {
                "topology": "custom",
                "custom_edges": edges,
                "num_agents": num_agents,
                "k_neighbors": 0,  # auto: a custom graph has no degree, and the old topology's k means nothing to it
            }
        )

    # ------------------------------------------------------------------ I/O
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """The config as JSON text (validated first, so it never holds ``NaN`` or ``Infinity``)."""
        self.validate()
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def save(self, path: str | Path) -> None:
        """Writes :meth:`to_json` atomically (a reader sees the old file or the new one, never half of one)."""
        atomic_write_text(path, self.to_json())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Config:
        """A validated config from ``{field: value}``; missing fields keep their defaults."""
        if not isinstance(data, Mapping):
            raise TypeError(f"a config must be a mapping of field: value, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted((repr(k), k) for k in data if k not in known)
        if unknown:
            hint = _did_you_mean(unknown[0][1]) if len(unknown) == 1 else ""
            raise ValueError(
                f"unknown config field(s) {', '.join(r for r, _ in unknown)}{hint}; allowed fields: {sorted(known)}"
            )
        return cls(**data)

    @classmethod
    def from_saved(cls, data: Mapping[str, Any]) -> Config:
        """The config of a saved run: :meth:`from_dict`, with the fields a run saved before they existed set
        to the behaviour it trained with (:data:`LEGACY_FIELDS`), not to today's defaults."""
        if not isinstance(data, Mapping):
            raise TypeError(f"a config must be a mapping of field: value, got {type(data).__name__}")
        return cls.from_dict({**LEGACY_FIELDS, **data})

    @classmethod
    def load(cls, path: str | Path) -> Config:
        """Reads a ``.toml``, ``.yaml``/``.yml`` or ``.json`` file (see :func:`read_config_file`)."""
        return cls.from_dict(read_config_file(path))

    @classmethod
    def from_sources(
        cls,
        *,
        preset: str | None = None,
        path: str | Path | None = None,
        overrides: Iterable[str] | Mapping[str, Any] = (),
    ) -> Config:
        """The config of ``gnncomm train``: defaults < ``preset`` < the file at ``path`` < ``overrides``.

        Each source replaces the fields it names and keeps the others; the merged values are validated
        once, so an override may fix a combination that the file alone would not allow.

        Example:
            >>> Config.from_sources(preset="tiny", overrides=["batch_size=4"]).batch_size
            4
        """
        data: dict[str, Any] = {}
        if preset is not None:
            if preset not in PRESETS:
                raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
            data.update(PRESETS[preset])
        given = read_config_file(path) if path is not None else {}
        given.update(parse_overrides(overrides))
        data.update(given)
        if "k_neighbors" in data and "k_neighbors" not in given:
            # a preset's k was not the user's: on a topology without a degree it falls back to auto, not a warning
            with contextlib.suppress(TypeError, ValueError):  # a bad topology is named by from_dict below
                if not has_degree(data.get("topology", cls.topology)):
                    data["k_neighbors"] = 0
        return cls.from_dict(data)

    def with_overrides(self, overrides: Iterable[str] | Mapping[str, Any]) -> Config:
        """A copy with ``key=value`` strings (or a dict) applied; see :func:`parse_overrides`."""
        data = self.to_dict()
        data.update(parse_overrides(overrides))
        return Config.from_dict(data)


LEGACY_FIELDS: dict[str, Any] = {
    "estimator_input": "context",
    "actions_learn_from": "all",
    "warmup_steps": 0,
    "vocab_weight": 0.0,
    "vocab_align_weight": 0.0,
}
"""Fields added after runs were already being saved, with the value that reproduces those runs."""

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "gpu": {
        "batch_size": 256,
        "steps": 5000,
        "compile": "true",
        "amp": "bf16",
        "device": "cuda",
        "hidden_dim": 128,
        "eval_episodes": 4096,
    },
    "tiny": {
        "num_agents": 4,
        "k_neighbors": 2,
        "batch_size": 8,
        "steps": 20,
        "hidden_dim": 16,
        "vocab_size": 8,
        "msg_dim": 3,
        "timesteps": 3,
        "log_every": 5,
        "checkpoint_every": 10,
        "eval_episodes": 16,
    },
}


def check_device(device: str, *, name: str = "device") -> str:
    """``device`` normalised (``auto``, ``cpu``, ``cuda`` or ``cuda:N``, N >= 0), else a one-line ``ValueError``.

    Only the spelling is checked here; whether CUDA is present is known when the run starts.

    Example:
        >>> check_device(" CUDA:01 ")
        'cuda:1'
    """
    if not isinstance(device, str):
        raise TypeError(f"{name} must be a string (auto, cpu, cuda or cuda:N), got {_show(device)}")
    match = _DEVICE.fullmatch(device.strip().lower())
    if match is None:
        raise ValueError(f"{name} must be one of auto, cpu, cuda, cuda:N with N >= 0; got {device!r}")
    return f"cuda:{int(match.group(1))}" if match.group(1) is not None else match.group(0)


def parse_overrides(overrides: Iterable[str] | Mapping[str, Any]) -> dict[str, Any]:
    """``["key=value", ...]`` (or a dict) as ``{field: value}``, each value parsed by its field's type.

    Keys may use ``-`` for ``_``. Ints, floats and bools are parsed from text (``true/false``, ``yes/no``,
    ``on/off``, ``1/0``), lists as YAML flow lists (``[[0, 1], [1, 2]]``); a non-text value in a dict is
    kept as given. A field given twice is an error, not a silent last-one-wins.
    """
    if isinstance(overrides, (str, bytes)):
        raise TypeError(f"overrides must be a list of 'key=value' strings or a dict, got {_show(overrides)}")
    if isinstance(overrides, Mapping):
        items = list(overrides.items())
    else:
        items = [_split_override(item) for item in overrides]
    hints = _hints()
    out: dict[str, Any] = {}
    for raw, value in items:
        if not isinstance(raw, str):
            raise TypeError(f"config field names must be strings, got {_show(raw)}")
        key = raw.strip().replace("-", "_")
        if key not in hints:
            raise ValueError(f"unknown config field {key!r}{_did_you_mean(key)}; allowed fields: {sorted(hints)}")
        parsed = _parse(key, value, hints[key]) if isinstance(value, str) else value
        if key in out:
            raise ValueError(
                f"{key} is given twice ({key}={_show(out[key])} and {key}={_show(parsed)}); give each field once"
            )
        out[key] = parsed
    return out


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The ``{field: value}`` mapping of a ``.toml``, ``.yaml``/``.yml`` or ``.json`` file (not yet validated).

    Malformed files, duplicate keys and anything but a mapping at the top raise a one-line ``ValueError``
    naming the file; a missing file raises ``FileNotFoundError``.
    """
    path = Path(path)
    shown = repr(str(path))
    if not path.is_file():
        raise FileNotFoundError(
            f"config file {shown} does not exist" if not path.exists() else f"config file {shown} is not a file"
        )
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml", ".json"):
        raise ValueError(f"config file must end in .toml, .yaml, .yml or .json, got {shown}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"config file {shown} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ValueError(f"cannot read config file {shown}: {exc.strerror or exc}") from None
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:  # also duplicate keys
            raise ValueError(f"config file {shown} is not valid TOML: {_one_line(exc)}") from None
    elif suffix in (".yaml", ".yml"):
        data = _load_yaml(text, f"config file {shown}")
        data = {} if data is None else data
    else:
        try:
            # NaN and Infinity are read, so that validation names the field that holds them.
            data = json.loads(text, object_pairs_hook=_unique_json_object)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"config file {shown} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        except _DuplicateKeyError as exc:
            raise ValueError(f"config file {shown}: {exc}") from None
        except RecursionError:
            raise ValueError(f"config file {shown} is nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {shown} must hold a mapping of field: value, got {type(data).__name__}")
    return data


# ---------------------------------------------------------------------- helpers
def field_docs() -> list[tuple[str, Any, str]]:
    """Every :class:`Config` field as ``(name, default, docstring)``, in declaration order, from the docstring
    that follows each field in this file's source (the one place fields are documented).

    >>> name, default, doc = field_docs()[0]
    >>> name, default, doc.split(".")[0]
    ('num_agents', 10, 'Agents per episode (>= 2)')
    """
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(sys.modules[__name__]))
    body = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Config").body
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if (
                isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = " ".join(after.value.value.split())
    defaults = Config().to_dict()
    return [(f.name, defaults[f.name], docs.get(f.name, "")) for f in dataclasses.fields(Config)]


def _hints() -> dict[str, Any]:
    return typing.get_type_hints(Config)


def _show(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters so that an error stays one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _did_you_mean(key: Any) -> str:
    import difflib

    close = difflib.get_close_matches(str(key), _hints(), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _check_type(name: str, value: Any, hint: Any) -> Any:
    """``value`` converted to the field's type (int, float, bool, str, list), else a ``TypeError``."""
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, got {_show(value)}")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an int, got {_show(value)} ({type(value).__name__})")
        value = int(value)
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a number, got {_show(value)} ({type(value).__name__})")
        try:
            value = float(value)
        except OverflowError:
            raise ValueError(f"{name} must be a finite number, got {_show(value)}") from None
        if not math.isfinite(value):  # NaN and infinities: no field of a run means anything with them
            raise ValueError(f"{name} must be a finite number, got {value}")
    elif hint is str:
        if name == "compile" and isinstance(value, bool):  # `compile: true` in a YAML or TOML file
            value = "true" if value else "false"
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {_show(value)} ({type(value).__name__})")
    elif hint is list:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list, got {_show(value)} ({type(value).__name__})")
        value = list(value)
    elif hint is dict:
        if not isinstance(value, Mapping):
            raise TypeError(f"{name} must be a mapping, got {_show(value)} ({type(value).__name__})")
        value = dict(value)
    return value


def _split_override(item: Any) -> tuple[str, str]:
    if not isinstance(item, str):
        raise TypeError(f"an override must be a 'key=value' string, got {_show(item)}")
    if "=" not in item:
        raise ValueError(f"override must look like key=value, got {_show(item)}")
    key, value = item.split("=", 1)
    return key.strip(), value.strip()


_BOOLS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _parse(key: str, value: str, hint: Any) -> Any:
    """``value`` (text) read as the type of field ``key``."""
    expected = {bool: "a bool (true/false)", int: "an int", float: "a number", list: "a list", dict: "a mapping"}.get(
        hint
    )
    try:
        if hint is bool:
            return _BOOLS[value.strip().lower()]
        if hint is int:
            return int(value)
        if hint is float:
            return float(value)
    except (KeyError, ValueError):
        raise ValueError(f"{key} expects {expected}, got {_show(value)}") from None
    if hint is list:
        parsed = _load_yaml(value, key)
        if not isinstance(parsed, list):
            raise ValueError(f"{key} expects a list such as [[0, 1], [1, 0]], got {_show(value)}")
        return parsed
    if hint is dict:
        parsed = _load_yaml(value, key) if value.strip() else {}
        if not isinstance(parsed, dict):
            raise ValueError(f"{key} expects a mapping such as {{n_obstacles: 3}}, got {_show(value)}")
        return parsed
    return value


class _DuplicateKeyError(ValueError):
    """A key given twice in one mapping of a YAML or JSON text."""


def _load_yaml(text: str, what: str) -> Any:
    """``yaml.safe_load`` that refuses duplicate keys; any failure is a one-line ``ValueError`` naming ``what``."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict:
            seen: list = []
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if any(key == other for other in seen):
                    raise _DuplicateKeyError(
                        f"{what}: duplicate key {_show(key)} at line {key_node.start_mark.line + 1}"
                    )
                seen.append(key)
            return super().construct_mapping(node, deep=deep)

    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects
    except _DuplicateKeyError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise ValueError(f"{what} is not valid YAML: {exc.problem or exc.context}{where}") from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:  # e.g. !!timestamp 2020-13-01
        raise ValueError(f"{what} is not valid YAML: {_one_line(exc) or type(exc).__name__}") from None


def _unique_json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _at_least(cfg: Config, name: str, low: float) -> None:
    value = getattr(cfg, name)
    if not value >= low:
        raise ValueError(f"{name} must be >= {low}, got {value}")


def _choice(cfg: Config, name: str, allowed: tuple[str, ...]) -> None:
    """Normalises a string field (case, surrounding spaces) and checks it against ``allowed``."""
    value = getattr(cfg, name)
    if isinstance(value, str):
        value = value.strip().lower()
        setattr(cfg, name, value)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


def _topology_name(name: str, value: Any) -> str:
    """A topology name as the registry matches it (case-insensitive, ``-`` read as ``_``); aliases are kept."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {list(topology_names())}, got {_show(value)}")
    key = value.strip().lower().replace("-", "_")
    if key not in topology_names():
        raise ValueError(f"{name} must be one of {list(topology_names())}, got {_show(value)}")
    return key


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _validate_edges(edges: list, num_agents: int, used_by: str | None) -> list:
    """``custom_edges`` checked against ``num_agents``; ``used_by`` names the field that needs them, if any."""
    shape = "custom_edges must be two equally long lists [[senders...], [receivers...]]"
    if not edges:
        if used_by == "topology":
            raise ValueError("topology=custom needs custom_edges (use Config.with_graph(networkx_graph))")
        if used_by:
            raise ValueError(
                "topology_schedule uses custom, which needs custom_edges (use Config.with_graph(networkx_graph))"
            )
        return []
    if len(edges) != 2 or not all(isinstance(row, (list, tuple)) for row in edges) or len(edges[0]) != len(edges[1]):
        raise ValueError(f"{shape}, got {_show(edges)}")
    flat = [*edges[0], *edges[1]]
    bad = [v for v in flat if not _is_int(v)]
    if bad:
        raise TypeError(f"custom_edges must hold int agent ids, got {_show(bad[0])} ({type(bad[0]).__name__})")
    if not flat:
        raise ValueError("custom_edges must hold at least one edge, got [[], []]")
    if not 0 <= min(flat) <= max(flat) < num_agents:
        raise ValueError(
            f"custom_edges agent ids must be in [0, num_agents - 1 = {num_agents - 1}], "
            f"got range [{min(flat)}, {max(flat)}]"
        )
    senders, receivers = [int(v) for v in edges[0]], [int(v) for v in edges[1]]
    loops = [s for s, r in zip(senders, receivers) if s == r]
    if loops:
        raise ValueError(f"custom_edges must not contain self-loops, got {loops[0]} -> {loops[0]}")
    seen: set[tuple[int, int]] = set()
    for pair in zip(senders, receivers):
        if pair in seen:  # a repeated edge would count twice in its listener's softmax
            raise ValueError(f"custom_edges must not repeat an edge, got {pair[0]} -> {pair[1]} twice")
        seen.add(pair)
    if used_by:
        components = _count_components(senders, receivers, num_agents)
        if components > 1:
            warnings.warn(
                f"custom_edges: the graph on num_agents={num_agents} agents has {components} connected "
                "components; agents in different components never hear each other",
                DisconnectedGraphWarning,
                stacklevel=5,
            )
    return [senders, receivers]


def _count_components(senders: list[int], receivers: list[int], num_agents: int) -> int:
    """Connected components of the graph with edge directions ignored (union-find over the agents on an edge;
    every other agent is a component of its own)."""
    parent: dict[int, int] = {}

    def root(i: int) -> int:
        parent.setdefault(i, i)
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for s, r in zip(senders, receivers):
        parent[root(s)] = root(r)
    return sum(root(i) == i for i in list(parent)) + num_agents - len(parent)


def _validate_schedule(schedule: list, num_agents: int) -> list:
    out, last = [], -1
    for i, entry in enumerate(schedule):
        if not (isinstance(entry, (list, tuple)) and len(entry) == 3):
            raise ValueError(f"topology_schedule entries must be [step, topology, k], got {_show(entry)}")
        step, name, k = entry
        if not _is_int(step) or step <= last:
            raise ValueError(f"topology_schedule steps must be increasing ints >= 0, got {_show(step)} in entry {i}")
        name = _topology_name(f"topology_schedule entry {i} topology", name)
        if not _is_int(k) or not 1 <= k < num_agents:
            raise ValueError(
                f"topology_schedule k must be in [1, num_agents - 1 = {num_agents - 1}], got {_show(k)} in entry {i}"
            )
        try:
            check_topology(name, num_agents, int(k))
        except ValueError as exc:
            raise ValueError(f"topology_schedule entry {i} {[step, name, k]}: {exc}") from None
        out.append([int(step), name, int(k)])
        last = step
    return out
