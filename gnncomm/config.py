"""The one typed configuration of a run: defaults, validation, files and overrides."""
from __future__ import annotations

import dataclasses
import json
import sys
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

TOPOLOGY_NAMES = ("knn", "knearest", "ring", "full", "star", "grid", "small_world", "smallworld",
                  "erdos_renyi", "er", "random_regular", "custom")
AMP_CHOICES = ("none", "bf16", "fp16", "auto")
COMPILE_CHOICES = ("auto", "true", "false")


@dataclass
class Config:
    """Everything a run needs. Defaults are the seed's set-up: 10 agents on a k=4 kNN graph."""

    # --- population and topology
    num_agents: int = 10
    """Agents per episode (>= 2)."""
    topology: str = "knn"
    """Communication graph: knn (alias knearest, rebuilt from positions every step), ring, full, star, grid,
    small_world, erdos_renyi, random_regular, or custom (the edges in custom_edges)."""
    k_neighbors: int = 4
    """Neighbours per agent for knn (1 <= k < num_agents); degree for random_regular and small_world."""
    custom_edges: list = field(default_factory=list)
    """Edges [[senders...], [receivers...]] of one episode's graph for topology=custom (see
    Config.with_graph to set them from networkx)."""
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
    agent_embedding_dim: int = 8
    """Agent-id embedding size with shared parameters (0 for none)."""
    # --- world
    timesteps: int = 5
    """Steps per episode (>= 1)."""
    latent_dim: int = 4
    """Hidden world factors L."""
    view_size: int = 1
    """World factors each agent observes (1 <= view_size <= latent_dim)."""
    obs_noise: float = 0.1
    """Std of the observation noise on the seen factors."""
    arena_size: float = 0.0
    """Side of the square arena; 0 means 2*sqrt(num_agents)."""
    # --- optimisation
    lr: float = 1e-3
    """AdamW learning rate."""
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
    cluster_weight: float = 0.1
    """Weight of the clustering loss, -reward (the swarm's dispersion), through the differentiable world."""
    # --- Gumbel-Softmax
    temperature_start: float = 2.0
    """Gumbel temperature at step 0."""
    temperature_end: float = 0.5
    """Gumbel temperature after annealing (exponential decay)."""
    anneal_steps: int = 0
    """Steps over which the temperature anneals; 0 means all steps."""
    # --- survival selection (per-agent parameters only)
    selection_every: int = 0
    """Every this many steps, copy the fittest agents onto the weakest; 0 turns selection off."""
    selection_k: int = 2
    """Agents replaced (and donors) per selection event."""
    mutation_std: float = 0.01
    """Std of the Gaussian noise added to copied weights, relative to each tensor's std."""
    # --- runtime
    device: str = "auto"
    """auto, cpu, cuda or cuda:N."""
    amp: str = "auto"
    """Autocast dtype: none, bf16, fp16 (with GradScaler) or auto (bf16 on CUDA, none on CPU)."""
    compile: str = "auto"
    """torch.compile the training step: true, false or auto (on for CUDA, off on the CPU)."""
    seed: int = 0
    """Seed of every random draw."""
    log_every: int = 25
    """Steps between metric logs (the only host syncs)."""
    checkpoint_every: int = 200
    """Steps between checkpoints (also written at the end)."""
    eval_episodes: int = 512
    """Episodes for the final communication ablation."""

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raises ``ValueError``/``TypeError`` naming the first bad field and its allowed range."""
        hints = typing.get_type_hints(Config)
        for f in fields(self):
            value, hint = getattr(self, f.name), hints[f.name]
            if hint is bool and not isinstance(value, bool):
                raise TypeError(f"{f.name} must be a bool, got {value!r}")
            if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"{f.name} must be an int, got {value!r}")
            if hint is float:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise TypeError(f"{f.name} must be a number, got {value!r}")
                setattr(self, f.name, float(value))
            if hint is str and not isinstance(value, str):
                raise TypeError(f"{f.name} must be a string, got {value!r}")
        self.topology = self.topology.lower()
        self.amp, self.compile, self.device = self.amp.lower(), str(self.compile).lower(), self.device.lower()
        _at_least(self, "num_agents", 2)
        _choice(self, "topology", TOPOLOGY_NAMES)
        _at_least(self, "k_neighbors", 1)
        if self.k_neighbors >= self.num_agents:
            raise ValueError(f"k_neighbors must be in [1, num_agents - 1 = {self.num_agents - 1}], "
                             f"got {self.k_neighbors}")
        _at_least(self, "vocab_size", 2)
        _at_least(self, "msg_dim", 1)
        _at_least(self, "heads", 1)
        _at_least(self, "hidden_dim", 1)
        if self.hidden_dim % self.heads:
            raise ValueError(f"heads must divide hidden_dim={self.hidden_dim}, got heads={self.heads}")
        _at_least(self, "agent_embedding_dim", 0)
        _at_least(self, "timesteps", 1)
        _at_least(self, "latent_dim", 1)
        if not 1 <= self.view_size <= self.latent_dim:
            raise ValueError(f"view_size must be in [1, latent_dim = {self.latent_dim}], got {self.view_size}")
        for name in ("obs_noise", "arena_size", "weight_decay", "recon_weight", "world_weight", "comm_weight",
                     "cluster_weight", "mutation_std"):
            _at_least(self, name, 0.0)
        for name in ("lr", "max_grad_norm", "temperature_start", "temperature_end"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        _at_least(self, "batch_size", 1)
        _at_least(self, "steps", 1)
        _at_least(self, "anneal_steps", 0)
        _at_least(self, "selection_every", 0)
        _at_least(self, "selection_k", 1)
        if self.selection_every and 2 * self.selection_k > self.num_agents:
            raise ValueError(f"selection_k must be in [1, num_agents // 2 = {self.num_agents // 2}], "
                             f"got {self.selection_k}")
        if self.selection_every and self.shared_params:
            raise ValueError("selection_every > 0 needs per-agent weights: set shared_params=false")
        _choice(self, "amp", AMP_CHOICES)
        if self.compile in ("1", "yes", "on"):
            self.compile = "true"
        if self.compile in ("0", "no", "off"):
            self.compile = "false"
        _choice(self, "compile", COMPILE_CHOICES)
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(f"device must be one of auto, cpu, cuda, cuda:N; got {self.device!r}")
        _at_least(self, "seed", 0)
        _at_least(self, "log_every", 1)
        _at_least(self, "checkpoint_every", 1)
        _at_least(self, "eval_episodes", 1)
        self.topology_schedule = _validate_schedule(self.topology_schedule, self.num_agents)
        self.custom_edges = _validate_edges(self.custom_edges, self.num_agents,
                                            "custom" in [self.topology] + [s[1] for s in self.topology_schedule])

    # ------------------------------------------------------------------ derived
    def temperature(self, step: int) -> float:
        """The Gumbel temperature at ``step``: exponential decay from start to end, then constant."""
        span = self.anneal_steps or self.steps
        frac = min(max(step, 0) / max(span, 1), 1.0)
        return self.temperature_start * (self.temperature_end / self.temperature_start) ** frac

    def topology_at(self, step: int) -> tuple[str, int]:
        """The (topology, k) in force at ``step`` under the curriculum, else the fixed one."""
        name, k = self.topology, self.k_neighbors
        for start, sched_name, sched_k in self.topology_schedule:
            if step >= start:
                name, k = sched_name, sched_k
        return name, k

    def with_graph(self, graph: Any) -> Config:
        """A copy that communicates over ``graph`` (a networkx graph, or an ``edge_index [2, E]``).

        ``num_agents`` becomes the graph's node count; an undirected graph gives both directions.
        """
        import torch

        from gnncomm.topology import from_networkx
        edge_index = graph if isinstance(graph, torch.Tensor) else from_networkx(graph)
        num_agents = int(graph.number_of_nodes()) if hasattr(graph, "number_of_nodes") else self.num_agents
        return self.with_overrides({"topology": "custom", "custom_edges": edge_index.tolist(),
                                    "num_agents": num_agents,
                                    "k_neighbors": min(self.k_neighbors, num_agents - 1)})

    # ------------------------------------------------------------------ I/O
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        """Writes the config as JSON (a YAML/TOML reader also accepts it via :meth:`load`)."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}; allowed fields: {sorted(known)}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> Config:
        """Reads a ``.toml``, ``.yaml``/``.yml`` or ``.json`` file."""
        return cls.from_dict(read_config_file(path))

    def with_overrides(self, overrides: list[str] | dict[str, Any]) -> Config:
        """A copy with ``key=value`` strings (or a dict) applied; values are parsed by field type."""
        data = self.to_dict()
        items = overrides.items() if isinstance(overrides, dict) else map(_split_override, overrides)
        hints = typing.get_type_hints(Config)
        for key, value in items:
            key = key.replace("-", "_")
            if key not in hints:
                raise ValueError(f"unknown config field {key!r}; allowed fields: {sorted(hints)}")
            data[key] = _parse(key, value, hints[key]) if isinstance(value, str) else value
        return Config.from_dict(data)


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "gpu": {"batch_size": 256, "steps": 5000, "compile": "true", "amp": "bf16", "device": "cuda",
            "hidden_dim": 128, "eval_episodes": 4096},
    "tiny": {"num_agents": 4, "k_neighbors": 2, "batch_size": 8, "steps": 20, "hidden_dim": 16,
             "vocab_size": 8, "msg_dim": 3, "timesteps": 3, "log_every": 5, "checkpoint_every": 10,
             "eval_episodes": 16},
}


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    text = path.read_text()
    suffix = path.suffix.lower()
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        data = tomllib.loads(text)
    elif suffix in (".yaml", ".yml"):
        import yaml
        data = yaml.safe_load(text) or {}
    elif suffix == ".json":
        data = json.loads(text)
    else:
        raise ValueError(f"config file must end in .toml, .yaml, .yml or .json, got {str(path)!r}")
    if not isinstance(data, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of field = value")
    return data


def _split_override(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ValueError(f"override must look like key=value, got {item!r}")
    key, value = item.split("=", 1)
    return key.strip(), value.strip()


def _parse(key: str, value: str, hint: Any) -> Any:
    try:
        if hint is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if hint is int:
            return int(value)
        if hint is float:
            return float(value)
        if hint is list:
            import yaml
            parsed = yaml.safe_load(value)
            if not isinstance(parsed, list):
                raise ValueError
            return parsed
    except ValueError:
        raise ValueError(f"{key} expects a {getattr(hint, '__name__', hint)}, got {value!r}") from None
    return value


def _at_least(cfg: Config, name: str, low: float) -> None:
    value = getattr(cfg, name)
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")


def _choice(cfg: Config, name: str, allowed: tuple[str, ...]) -> None:
    if getattr(cfg, name) not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {getattr(cfg, name)!r}")


def _validate_edges(edges: list, num_agents: int, required: bool) -> list:
    if not isinstance(edges, (list, tuple)):
        raise TypeError(f"custom_edges must be [[senders...], [receivers...]], got {type(edges).__name__}")
    if not edges:
        if required:
            raise ValueError("topology=custom needs custom_edges (use Config.with_graph(networkx_graph))")
        return []
    if len(edges) != 2 or len(edges[0]) != len(edges[1]):
        raise ValueError("custom_edges must be two equally long lists [[senders...], [receivers...]]")
    flat = [*edges[0], *edges[1]]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in flat):
        raise TypeError("custom_edges must hold int agent ids")
    if flat and not 0 <= min(flat) <= max(flat) < num_agents:
        raise ValueError(f"custom_edges agent ids must be in [0, num_agents - 1 = {num_agents - 1}], "
                         f"got range [{min(flat)}, {max(flat)}]")
    if any(s == r for s, r in zip(*edges)):
        raise ValueError("custom_edges must not contain self-loops")
    return [list(edges[0]), list(edges[1])]


def _validate_schedule(schedule: list, num_agents: int) -> list:
    if not isinstance(schedule, (list, tuple)):
        raise TypeError(f"topology_schedule must be a list of [step, topology, k], got {schedule!r}")
    out, last = [], -1
    for entry in schedule:
        if not (isinstance(entry, (list, tuple)) and len(entry) == 3):
            raise ValueError(f"topology_schedule entries must be [step, topology, k], got {entry!r}")
        step, name, k = entry
        if not isinstance(step, int) or step <= last:
            raise ValueError(f"topology_schedule steps must be increasing ints >= 0, got {step!r}")
        if str(name).lower() not in TOPOLOGY_NAMES:
            raise ValueError(f"topology_schedule topology must be one of {list(TOPOLOGY_NAMES)}, got {name!r}")
        if not isinstance(k, int) or not 1 <= k < num_agents:
            raise ValueError(f"topology_schedule k must be in [1, {num_agents - 1}], got {k!r}")
        out.append([step, str(name).lower(), k])
        last = step
    return out
