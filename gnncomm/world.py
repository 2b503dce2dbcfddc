"""Worlds: the :class:`World` protocol that training, ablations and diagnostics rely on, and
:class:`SwarmWorld`, its default implementation.

A world holds ``B`` episodes of ``N`` agents. Everything is a tensor op over ``B × N``: no Python
loop over agents or episodes, differentiable with respect to the actions, on any device, and random
only through an explicit :class:`torch.Generator`. Bring your own task by writing a class with the
members of :class:`World` and passing an instance to :func:`gnncomm.train` (or registering a factory
with :func:`register_world` so that configs can name it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from gnncomm.config import Config


@runtime_checkable
class World(Protocol):
    r"""What the rollout, the ablations and the diagnostics need from a world.

    A state is any object with two tensor fields: ``pos [B, N, 2]``, the agents' positions (the
    k-nearest-neighbour graph is rebuilt from them; a world without space may keep them constant),
    and ``latent [B, L]``, the hidden world state that every agent learns to estimate.
    :class:`WorldState` is the default. All randomness of an episode is drawn up front from an
    explicit generator (:meth:`reset` and :meth:`sample_noise`), so a rollout is a pure function.

    A world without a hidden state (a task judged by its reward, such as a VMAS scenario) has ``latent_dim = 0``
    and ``latent [B, 0]``: training, probes, ablations and reports then leave every world-estimation term out.

    Optional members, used where present:

    * ``action_dim`` (int): the size of one agent's action (2 if absent);
    * ``action_mask`` (``[N, action_dim]``): 1 where an action value moves its agent; PPO leaves the others out of
      its log-probabilities (an immovable speaker's actions are noise);
    * ``agent_rewards(state) -> [B, N]``: each agent's own reward of the step that led to ``state``; PPO credits
      each agent its own, and without a latent the relay test measures harm by the fall of an agent's own return;
    * ``independent_episodes`` (bool, False if absent): True when the world keeps nothing of a batch outside its
      states, so a state narrowed to some of its episodes steps on its own (:class:`SwarmWorld`; not a simulator
      that holds its batch, such as VMAS). The evaluations then run their episodes in chunks, in bounded memory;
      otherwise they run all at once;
    * ``episode_metrics(state) -> {name: [B]}``: how each episode ended, logged on the last state (``success``
      becomes the ablation's ``success_rate``), with ``success_definition()`` saying what success means;
    * for episodes longer than the backprop window (``episode_steps > timesteps``): a ``done [B]`` field in the
      state for episodes that ended early, ``reset_done(state, mask, generator)`` to start those again, and
      ``detach(state)`` for a simulator that keeps autograd history outside the state.

    Attributes:
        num_agents (int): agents per episode :math:`N`.
        latent_dim (int): size :math:`L` of the latent to estimate (0: none).
        obs_dim (int): size of one agent's observation.
    """

    num_agents: int
    latent_dim: int

    @property
    def obs_dim(self) -> int: ...

    def reset(
        self, batch_size: int, *, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> Any:
        """Draws the initial state of ``batch_size`` episodes."""

    def sample_noise(
        self,
        steps: int,
        batch_size: int,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Observation noise of a whole episode, ``[steps, ...]``; ``noise[t]`` goes to :meth:`observe`."""

    def observe(self, state: Any, noise: Tensor | None = None) -> Tensor:
        """Each agent's observation, ``[B * N, obs_dim]``."""

    def step(self, state: Any, action: Tensor, edge_index: Tensor) -> Any:
        """The next state, given actions ``[B * N, 2]`` and the step's graph ``[2, E]``."""

    def reward(self, state: Any) -> Tensor:
        """The cooperative reward of each episode, ``[B]`` (differentiable in the actions)."""


class WorldState(NamedTuple):
    """The state of ``B`` episodes.

    Attributes:
        pos: agent positions ``[B, N, 2]`` inside the arena ``[0, arena_size]^2``.
        vel: agent velocities ``[B, N, 2]``.
        latent: the hidden world factors ``[B, L]``, standard normal and constant over an episode.
    """

    pos: Tensor
    vel: Tensor
    latent: Tensor


def _scatter_mean(src: Tensor, index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """Sum of ``src`` rows per ``index`` and the number of rows per index, with a fixed size."""
    total = src.new_zeros(num_nodes, src.size(-1)).index_add_(0, index, src)
    count = src.new_zeros(num_nodes).index_add_(0, index, src.new_ones(index.numel()))
    return total, count


class SwarmWorld:
    r"""Boids-style swarm dynamics plus a hidden latent that must be pooled by communication.

    **Dynamics.** Each agent :math:`i` feels forces from its in-neighbours :math:`\mathcal{N}(i)` in
    the interaction graph (the communication graph of the step):

    .. math::
        \mathbf{a}_i = w_c (\bar{\mathbf{p}}_{\mathcal{N}(i)} - \mathbf{p}_i)
        + w_s \sum_{j \in \mathcal{N}(i)} \frac{\mathbf{p}_i - \mathbf{p}_j}{d_{ij} + \epsilon}
        \big[1 - d_{ij}/r_s\big]_+
        + w_a (\bar{\mathbf{v}}_{\mathcal{N}(i)} - \mathbf{v}_i) + f_{\max} \mathbf{u}_i

    then :math:`\mathbf{v} \leftarrow \mathrm{clip}_{v_{\max}}(\gamma(\mathbf{v} + \Delta t\,
    \mathbf{a}))` (speed rescaled to at most :math:`v_{\max}`) and
    :math:`\mathbf{p} \leftarrow \mathbf{p} + \Delta t\, \mathbf{v}`. The arena is the square
    :math:`[0, S]^2` with **reflecting walls**: an agent that crosses a wall is mirrored back
    inside and the normal component of its velocity flips sign. Agents without in-neighbours feel
    only their own action.

    **Hidden world.** Each episode draws latent factors :math:`\mathbf{z} \sim \mathcal{N}(0, I_L)`.
    Agent :math:`i` observes only ``view_size`` of the :math:`L` factors (agent :math:`i` sees
    factors :math:`(i \cdot \text{view\_size} + r) \bmod L`), each with Gaussian noise of std
    ``obs_noise``. No agent can estimate :math:`\mathbf{z}` alone; on a sparse graph the missing
    factors are held by agents several hops away, so information must be relayed.

    **Observation** of agent :math:`i` (``obs_dim = 4 + 2L``): its position divided by :math:`S`,
    its velocity divided by :math:`v_{\max}`, its masked noisy view of :math:`\mathbf{z}` (zeros
    where unseen) and the 0/1 mask of what it sees.

    **Reward.** Cooperative: the negative dispersion, the mean squared distance of agents to their
    episode's centroid divided by :math:`S^2`.

    Args:
        num_agents (int): agents per episode :math:`N \geq 2`.
        latent_dim (int): world factors :math:`L \geq 1`. (default: ``4``)
        view_size (int): factors seen by each agent, ``1 <= view_size <= L``. (default: ``1``)
        obs_noise (float): std of the observation noise. (default: ``0.1``)
        arena_size (float, optional): side :math:`S`; ``2 sqrt(N)`` if ``None`` (constant density).
        dt, max_speed, max_force, damping: integration step, :math:`v_{\max}`, :math:`f_{\max}`,
            :math:`\gamma`. (defaults ``0.2``, ``2.0``, ``2.0``, ``0.95``)
        cohesion, separation, alignment: force weights :math:`w_c, w_s, w_a`.
            (defaults ``1.0``, ``1.5``, ``0.5``)
        separation_radius (float): :math:`r_s`. (default: ``0.5``)
    """

    independent_episodes = True
    """A state holds its whole batch: evaluations may run its episodes in chunks."""

    def __init__(
        self,
        num_agents: int,
        latent_dim: int = 4,
        view_size: int = 1,
        obs_noise: float = 0.1,
        arena_size: float | None = None,
        dt: float = 0.2,
        max_speed: float = 2.0,
        max_force: float = 2.0,
        damping: float = 0.95,
        cohesion: float = 1.0,
        separation: float = 1.5,
        alignment: float = 0.5,
        separation_radius: float = 0.5,
    ) -> None:
        for name, value, low in (
            ("num_agents", num_agents, 2),
            ("latent_dim", latent_dim, 1),
            ("view_size", view_size, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int >= {low}, got {type(value).__name__}")
            if value < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")
        if view_size > latent_dim:
            raise ValueError(f"view_size must be in [1, latent_dim={latent_dim}], got {view_size}")
        for name, value, low, strict in (
            ("obs_noise", obs_noise, 0, False),
            ("damping", damping, 0, False),
            ("cohesion", cohesion, 0, False),
            ("separation", separation, 0, False),
            ("alignment", alignment, 0, False),
            ("dt", dt, 0, True),
            ("max_speed", max_speed, 0, True),
            ("max_force", max_force, 0, True),
            ("separation_radius", separation_radius, 0, True),
            ("arena_size", 1.0 if arena_size is None else arena_size, 0, True),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a finite number, got {type(value).__name__} {value!r}")
            if not math.isfinite(value) or (value <= low if strict else value < low):
                raise ValueError(f"{name} must be finite and {'>' if strict else '>='} {low}, got {value}")
        self.num_agents = num_agents
        self.latent_dim = latent_dim
        self.view_size = view_size
        self.obs_noise = obs_noise
        self.arena_size = float(arena_size) if arena_size is not None else 2.0 * math.sqrt(num_agents)
        self.dt = dt
        self.max_speed = max_speed
        self.max_force = max_force
        self.damping = damping
        self.cohesion = cohesion
        self.separation = separation
        self.alignment = alignment
        self.separation_radius = separation_radius
        agent = torch.arange(num_agents).unsqueeze(1)
        seen = (agent * view_size + torch.arange(view_size)) % latent_dim  # [N, view_size]
        self.view_mask = torch.zeros(num_agents, latent_dim).scatter_(1, seen, 1.0)  # [N, L]
        self._masks: dict[torch.device, tuple[Tensor, Tensor]] = {}
        """``(view_mask, its copy)`` on each accelerator an episode was drawn on (by :meth:`reset`): no host copy per
        step; a copy of a mask that was since replaced is not used."""

    @property
    def obs_dim(self) -> int:
        return 4 + 2 * self.latent_dim

    def reset(
        self, batch_size: int, *, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> WorldState:
        """Draws ``batch_size`` episodes: uniform positions, small random velocities, a latent."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        B, N = batch_size, self.num_agents
        pos = torch.rand(B, N, 2, generator=generator, device=device) * self.arena_size
        vel = 0.1 * self.max_speed * torch.randn(B, N, 2, generator=generator, device=device)
        latent = torch.randn(B, self.latent_dim, generator=generator, device=device)
        cached = self._masks.get(pos.device)
        if pos.device.type != "cpu" and (cached is None or cached[0] is not self.view_mask):
            self._masks[pos.device] = (self.view_mask, self.view_mask.to(pos.device))
        return WorldState(pos, vel, latent)

    def sample_noise(
        self,
        steps: int,
        batch_size: int,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Standard normal noise ``[T, B, N, L]`` for every observation of an episode (scaled by
        ``obs_noise`` in :meth:`observe`)."""
        return torch.randn(steps, batch_size, self.num_agents, self.latent_dim, generator=generator, device=device)

    def observe(self, state: WorldState, noise: Tensor | None = None) -> Tensor:
        """Each agent's partial observation, flattened to ``[B * N, obs_dim]``."""
        B, N, L = state.pos.size(0), self.num_agents, self.latent_dim
        original, mask = self._masks.get(state.pos.device, (self.view_mask, self.view_mask))  # copied by reset()
        mask = mask if original is self.view_mask else self.view_mask
        mask = mask.to(device=state.pos.device, dtype=state.pos.dtype).expand(B, N, L)
        view = state.latent.unsqueeze(1).expand(B, N, L)
        if noise is not None:
            view = view + self.obs_noise * noise
        obs = torch.cat([state.pos / self.arena_size, state.vel / self.max_speed, view * mask, mask], dim=-1)
        return obs.reshape(B * N, self.obs_dim)

    def step(self, state: WorldState, action: Tensor, edge_index: Tensor) -> WorldState:
        """Advances every episode by ``dt``.

        Args:
            state: the current :class:`WorldState`.
            action: forces in ``[-1, 1]``, ``[B * N, 2]`` or ``[B, N, 2]``.
            edge_index: the interaction graph over the ``B * N`` nodes, ``[2, E]`` (sender, receiver).
        """
        B, N = state.pos.shape[:2]
        BN = B * N
        if action.numel() != BN * 2 or action.size(-1) != 2:
            raise ValueError(f"action must have shape [B * N, 2] = [{BN}, 2] or [B, N, 2], got {list(action.shape)}")
        if edge_index.dim() != 2 or edge_index.size(0) != 2 or edge_index.dtype != torch.long:
            raise ValueError(
                f"edge_index must be a long tensor of shape [2, E], got {edge_index.dtype} {list(edge_index.shape)}"
            )
        if edge_index.device.type == "cpu" and edge_index.numel() and not torch.compiler.is_compiling():
            # free on the CPU (no device sync); on an accelerator, graphs are checked where they are built
            low, high = int(edge_index.min()), int(edge_index.max())
            if low < 0 or high >= BN:
                raise ValueError(
                    f"edge_index must hold node indices in [0, B * N - 1 = {BN - 1}], got range [{low}, {high}]"
                )
        pos, vel = state.pos.reshape(BN, 2), state.vel.reshape(BN, 2)
        action = action.reshape(BN, 2).to(pos.dtype)
        src, dst = edge_index[0], edge_index[1]
        sums, count = _scatter_mean(torch.cat([pos[src], vel[src]], dim=-1), dst, BN)
        has = (count > 0).unsqueeze(-1).to(pos.dtype)
        inv = 1.0 / count.clamp_min(1.0).unsqueeze(-1)
        cohesion = has * (sums[:, :2] * inv - pos)
        alignment = has * (sums[:, 2:] * inv - vel)
        diff = pos[dst] - pos[src]  # [E, 2] points from sender to receiver
        dist = diff.pow(2).sum(-1, keepdim=True).add(1e-8).sqrt()
        push = diff / (dist + 1e-3) * torch.relu(1.0 - dist / self.separation_radius)
        separation = pos.new_zeros(BN, 2).index_add_(0, dst, push)
        acc = (
            self.cohesion * cohesion
            + self.separation * separation
            + self.alignment * alignment
            + self.max_force * action
        )
        vel = self.damping * (vel + self.dt * acc)
        speed = vel.pow(2).sum(-1, keepdim=True).add(1e-12).sqrt()
        vel = vel * (self.max_speed / torch.maximum(speed, torch.full_like(speed, self.max_speed)))
        pos = pos + self.dt * vel
        pos, vel = self._reflect(pos, vel)
        return WorldState(pos.view(B, N, 2), vel.view(B, N, 2), state.latent)

    def _reflect(self, pos: Tensor, vel: Tensor) -> tuple[Tensor, Tensor]:
        """Mirrors positions back into ``[0, S]`` and flips the velocity across crossed walls."""
        S = self.arena_size
        low, high = pos < 0, pos > S
        pos = torch.where(low, -pos, torch.where(high, 2 * S - pos, pos)).clamp(0.0, S)
        vel = torch.where(low | high, -vel, vel)
        return pos, vel

    def reference_errors(self, steps: int) -> dict[str, float]:
        r"""The world-latent MSE of two Bayes-optimal estimators after ``steps`` observations.

        Each observation of a seen factor is :math:`y = z_f + \sigma \epsilon` with fresh noise at
        every step and for every agent, and :math:`z_f \sim \mathcal{N}(0, 1)`. After :math:`n`
        readings of a factor the Gaussian posterior variance is :math:`\sigma^2 / (\sigma^2 + n)`
        (and 1 for a factor never read), and the posterior mean's MSE equals it. Averaged over the
        :math:`L` factors (and over agents):

        * ``own_view``: each agent with its own ``steps`` readings of the ``view_size`` factors it
          sees: what an agent can know without messages;
        * ``floor``: every agent's readings pooled, :math:`n_f \cdot` ``steps`` readings of factor
          :math:`f` where :math:`n_f` agents see it: what perfect communication could reach.

        >>> errors = SwarmWorld(10, latent_dim=4, obs_noise=0.1).reference_errors(1)
        >>> round(errors["own_view"], 4), round(errors["floor"], 4)
        (0.7525, 0.0041)
        """
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an int >= 1, got {steps!r}")
        noise = self.obs_noise**2

        def posterior_var(readings: Tensor) -> Tensor:
            var = noise / (noise + readings) if noise > 0 else torch.zeros_like(readings)
            return torch.where(readings > 0, var, torch.ones_like(readings))

        mask = self.view_mask.double()  # [N, L]
        own = posterior_var(mask * steps).mean()
        floor = posterior_var(mask.sum(0) * steps).mean()
        return {"own_view": float(own), "floor": float(floor)}

    def dispersion(self, state: WorldState) -> Tensor:
        """Mean squared distance to the episode centroid over ``S^2``, ``[B]``."""
        centred = state.pos - state.pos.mean(dim=1, keepdim=True)
        return centred.pow(2).sum(-1).mean(-1) / self.arena_size**2

    def reward(self, state: WorldState) -> Tensor:
        """The cooperative clustering reward ``-dispersion``, ``[B]``."""
        return -self.dispersion(state)

    def agent_rewards(self, state: WorldState) -> Tensor:
        """Each agent's share of :meth:`reward`, ``[B, N]``: minus its squared distance to the episode centroid over
        ``S^2`` (their mean is the reward). PPO credits each agent its own."""
        centred = state.pos - state.pos.mean(dim=1, keepdim=True)
        return -centred.pow(2).sum(-1) / self.arena_size**2

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(num_agents={self.num_agents}, latent_dim={self.latent_dim}, "
            f"view_size={self.view_size}, arena_size={self.arena_size:.3g})"
        )


def message_share(world: Any, steps: int, world_mse: float) -> float | None:
    """The share of what messages could add, ``(own_view - world_mse) / (own_view - floor)``.

    0 means the agents know no more than their own views tell them; 1 means they reach the floor
    of every view pooled (see :meth:`SwarmWorld.reference_errors`). ``None`` for a world without
    ``reference_errors`` or one where messages cannot add anything (``own_view == floor``).

    >>> message_share(SwarmWorld(10), 5, 0.75)  # no better than one's own view
    0.0006...
    """
    if not hasattr(world, "reference_errors"):
        return None
    ref = world.reference_errors(steps)
    gap = ref["own_view"] - ref["floor"]
    return (ref["own_view"] - world_mse) / gap if gap > 0 else None


WorldFactory = Callable[["Config"], World]
_WORLDS: dict[str, WorldFactory | str] = {}


def register_world(name: str, factory: WorldFactory | str) -> None:
    """Lets configs name a world: ``Config(world=name)`` builds it with ``factory(cfg)``.

    ``factory`` is a callable, or an import path ``"package.module:attribute"`` resolved when a config first
    needs it (so that an adapter's simulator is imported only by the runs that use it).

    >>> register_world("swarm_copy", lambda cfg: SwarmWorld(cfg.num_agents))
    >>> "swarm_copy" in world_names()
    True
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"world name must be a non-empty string, got {name!r}")
    if not (callable(factory) or (isinstance(factory, str) and ":" in factory)):
        raise TypeError(
            f"world factory for {name!r} must be callable or a 'package.module:attribute' path, got {factory!r}"
        )
    _WORLDS[name.lower()] = factory


def world_names() -> tuple[str, ...]:
    """The registered world names, ``"swarm"`` first."""
    return tuple(_WORLDS)


ENTRY_POINT_GROUP = "gnncomm.worlds"
"""The entry-point group through which an installed package names its worlds: ``[project.entry-points."gnncomm.worlds"]
mything = "mypackage.worlds:make_world"`` lets configs say ``world=mything``."""


def resolve_factory(path: str) -> WorldFactory:
    """The callable an import path ``"package.module:attribute"`` names, or a one-line ``ValueError``.

    The module is imported as Python would; one that is not found is looked for once more from the current
    folder, so that ``world=examples.sensor_world:make_world`` works from a repository root on the command line.
    """
    import importlib
    import os
    import sys

    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"a world import path must look like 'package.module:Factory', got {path!r}")
    try:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            if os.getcwd() in sys.path:
                raise
            sys.path.append(os.getcwd())  # after everything installed: a local file never shadows a package
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"world {path!r}: cannot import {module_name!r} ({exc})") from None
    factory: Any = module
    for part in attribute.split("."):
        if not hasattr(factory, part):
            raise ValueError(f"world {path!r}: module {module_name!r} has no attribute {attribute!r}")
        factory = getattr(factory, part)
    if not callable(factory):
        raise ValueError(f"world {path!r} names a {type(factory).__name__}, not a callable factory")
    return factory


def _entry_point_worlds() -> dict[str, str]:
    """``{name: "module:attribute"}`` of the worlds installed packages declare (:data:`ENTRY_POINT_GROUP`)."""
    from importlib.metadata import entry_points

    return {ep.name.lower(): ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def build_world(cfg: Config) -> World:
    """The world a config names (``cfg.world``): a registered name, a name an installed package declares in the
    ``gnncomm.worlds`` entry-point group, or a ``package.module:Factory`` path; built from the config's fields."""
    factory = _WORLDS.get(cfg.world)
    if factory is None and ":" in cfg.world:
        factory = cfg.world
    if factory is None:
        factory = _entry_point_worlds().get(cfg.world)
    if factory is None:
        raise ValueError(
            f"world must be one of the registered worlds {list(_WORLDS) + list(_entry_point_worlds())} or a "
            f"'package.module:Factory' path (see gnncomm.world.register_world), got {cfg.world!r}"
        )
    if isinstance(factory, str):
        factory = resolve_factory(factory)
    return factory(cfg)


def check_world(world: Any, cfg: Config) -> World:
    """Checks that ``world`` implements :class:`World` and agrees with ``cfg``; returns it.

    The model's latent size is the world's own ``latent_dim`` (0 for a task without a hidden state); the
    config's ``latent_dim`` is :class:`SwarmWorld`'s parameter, so a world that has a latent must agree with it.
    """
    missing = [
        name
        for name in ("num_agents", "latent_dim", "obs_dim", "reset", "sample_noise", "observe", "step", "reward")
        if not hasattr(world, name)
    ]
    if missing:
        raise TypeError(f"world must implement gnncomm.world.World; {type(world).__name__} lacks {missing}")
    names = ("num_agents", "latent_dim") if world.latent_dim else ("num_agents",)
    for name in names:
        if getattr(world, name) != getattr(cfg, name):
            raise ValueError(
                f"the world has {name}={getattr(world, name)} but the config says "
                f"{name}={getattr(cfg, name)}; set them equal"
            )
    return world


def action_dim(world: Any) -> int:
    """The size of one agent's action in ``world`` (2, a force in the plane, unless it says otherwise)."""
    return int(getattr(world, "action_dim", 2))


def is_windowed(cfg: Config) -> bool:
    """Whether episodes run longer than one backprop window (``episode_steps > timesteps``)."""
    return cfg.episode_steps > cfg.timesteps


register_world(
    "swarm",
    lambda cfg: SwarmWorld(cfg.num_agents, cfg.latent_dim, cfg.view_size, cfg.obs_noise, cfg.arena_size or None),
)
register_world("vmas", "gnncomm.worlds.vmas:make_vmas_world")
