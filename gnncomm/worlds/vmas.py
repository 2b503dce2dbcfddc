"""VMAS scenarios as gnncomm worlds: :class:`VmasWorld` wraps any scenario of the vectorized multi-agent
simulator (``pip install -e ".[vmas]"``) behind the :class:`~gnncomm.world.World` protocol.

What the adapter guarantees:

* **Observations.** Each agent's VMAS observation, zero-padded to the widest agent's, followed by a one-hot
  agent type where agents differ (speaker and listener): ``[B * N, obs_dim]``.
* **Actions.** The action head's ``tanh`` output in ``[-1, 1]`` is scaled by each agent's ``u_range``, so it
  always lies within the scenario's bounds. VMAS's own communication channel ``c`` is always sent as zeros:
  gnncomm's messages are the only channel, and whatever a listener would have read from ``c`` reaches it only
  through :class:`~gnncomm.nn.MessageAttention`.
* **No latent.** A task has a reward, not a hidden state to estimate: ``latent_dim = 0``, and training,
  ablations and diagnostics leave every world-estimation term out.
* **Gradients.** The simulator runs with ``grad_enabled=True``, so a scenario whose reward is differentiable in
  the actions trains through it; :meth:`VmasWorld.detach` cuts every tensor the simulator keeps (entity states,
  actions and the scenario's own attributes) between backprop windows.
* **Seeds.** Each environment batch keeps its own VMAS random state, drawn from the caller's generator at
  :meth:`VmasWorld.reset`, so the same seed gives the same episodes whatever else ran in between.
* **Episodes.** ``done`` marks the environments the scenario has terminated; their later rewards count 0, as
  they would in BenchMARL, whose evaluation return is, per episode, the sum over steps of the agents' mean
  reward (:meth:`VmasWorld.reward` is that mean).
* **Speaker-listener.** VMAS 1.5.2 draws one goal landmark for the whole batch. Here every environment draws
  its own goal from the caller's generator, and the speaker's observation and the shared reward follow it.
"""

from __future__ import annotations

import random
import warnings
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from gnncomm.config import Config

SPEAKER_LISTENER = "simple_speaker_listener"
SUCCESS_RADIUS = 0.1
"""Speaker-listener counts as a success when the listener ends an episode within this distance of its goal."""


def import_vmas() -> Any:
    """The ``vmas`` module, or a one-line ``ImportError`` that names the extra to install."""
    try:
        import vmas
    except ImportError:
        raise ImportError(
            'world=vmas needs the VMAS simulator: pip install -e ".[vmas]" (or pip install vmas)'
        ) from None
    return vmas


class VmasState(NamedTuple):
    """The state of ``B`` VMAS environments, as the rollout sees it.

    Attributes:
        pos: agent positions ``[B, N, 2]`` (the kNN graph is rebuilt from them).
        obs: each agent's observation ``[B, N, obs_dim]``, padded, with the agent-type feature.
        reward: the agents' mean reward of the step that led here ``[B]`` (0 after a reset and once done).
        agent_reward: each agent's own reward of that step ``[B, N]`` (the same 0s).
        done: 1.0 where the scenario has terminated the episode ``[B]``.
        latent: ``[B, 0]``: a task has no hidden state to estimate.
        goal: the goal landmark of each environment, ``[B]`` (speaker-listener), ``[B, 2]`` (reference: the one
            each agent names); 0 elsewhere.
        slot: which simulator batch these environments live in ``[B]`` (the same value in every row).
    """

    pos: Tensor
    obs: Tensor
    reward: Tensor
    agent_reward: Tensor
    done: Tensor
    latent: Tensor
    goal: Tensor
    slot: Tensor


class _Slot:
    """One simulator batch: the VMAS environment, its own random state, and the state that last used it."""

    def __init__(self, env: Any, index: int) -> None:
        self.env = env
        self.index = index
        self.rng: list[Any] | None = None
        self.owner: weakref.ref | None = None

    def free(self) -> bool:
        return self.owner is None or self.owner() is None


class VmasWorld:
    r"""Any VMAS scenario as a :class:`~gnncomm.world.World` with no latent (``latent_dim = 0``).

    The rollout's graph is rebuilt from the agents' VMAS positions at each step (kNN) or is any static
    topology. :meth:`step` advances the simulator by one step and returns the agents' mean reward of that step
    as the state's ``reward``; with ``grad_enabled`` it is differentiable in the actions where the scenario
    allows (see the shared VMAS notes: 11 of 14 scenarios tried).

    The simulator is stateful, so a :class:`VmasState` names the environment batch it lives in (``slot``). Each
    :meth:`reset` takes a batch that no live state uses (a training run's carried state keeps its batch while
    evaluations reset others), creating one when none is free.

    Args:
        scenario (str): a VMAS scenario name (``navigation``, ``simple_speaker_listener``, ``flocking``...).
        num_agents (int, optional): passed to the scenario as ``n_agents`` when given; scenarios with a fixed
            population (speaker-listener: 2) take ``None`` and report their own. (default: ``None``)
        scenario_kwargs (dict, optional): any other keyword argument of the scenario.
        device: where the simulator runs. (default: ``"cpu"``)
    """

    def __init__(
        self,
        scenario: str,
        num_agents: int | None = None,
        *,
        scenario_kwargs: Mapping[str, Any] | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        vmas = import_vmas()
        if not isinstance(scenario, str) or not scenario.strip():
            raise ValueError(f"scenario must be a VMAS scenario name such as 'navigation', got {scenario!r}")
        kwargs = dict(scenario_kwargs or {})
        if num_agents is not None:
            if "n_agents" in kwargs and kwargs["n_agents"] != num_agents:
                raise ValueError(
                    f"world_kwargs n_agents={kwargs['n_agents']} disagrees with num_agents={num_agents}; give one"
                )
            kwargs["n_agents"] = num_agents
        self.scenario = scenario.strip()
        scenario_module(self.scenario)  # a one-line error for a name VMAS does not have
        self.scenario_kwargs = kwargs
        self.device = torch.device(device)
        self._vmas = vmas
        self._slots: list[_Slot] = []
        probe = self._make_env(1)  # the shapes, from one environment
        obs = probe.reset()
        agents = probe.agents
        self.num_agents = len(agents)
        self.agent_names = [a.name for a in agents]
        kinds = [a.name.rstrip("0123456789").rstrip("_ ") for a in agents]
        self.agent_types = sorted(set(kinds), key=kinds.index)
        self.type_index = torch.tensor([self.agent_types.index(k) for k in kinds])
        self.obs_sizes = [int(o.shape[-1]) for o in obs]
        self.action_sizes = [int(a.action_size) for a in agents]
        self.comm_sizes = [probe.get_agent_action_size(a) - a.action_size for a in agents]
        self.u_range = torch.stack([a.action.u_range_tensor.float().cpu() for a in agents])  # [N, action]
        self.action_dim = max(self.action_sizes)
        self.action_mask = torch.zeros(self.num_agents, self.action_dim)
        """``[N, action_dim]``: 1 where an action value moves its agent (0 for an immovable agent such as the
        speaker, and for the padding of agents with fewer action values), so PPO does not credit noise."""
        for i, agent in enumerate(agents):
            if agent.movable:
                self.action_mask[i, : self.action_sizes[i]] = 1.0
        self.latent_dim = 0
        self.task = GOAL_TASKS[self.scenario]() if self.scenario in GOAL_TASKS else None

    # ------------------------------------------------------------------ protocol
    @property
    def obs_dim(self) -> int:
        types = len(self.agent_types)
        return max(self.obs_sizes) + (types if types > 1 else 0)

    def reset(
        self, batch_size: int, *, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> VmasState:
        """Resets a free simulator batch of ``batch_size`` environments, seeded from ``generator``."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        slot = self._free_slot(batch_size)
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=_gen_device(generator)))
        slot.rng = _seeded_rng(seed)
        self._detach_env(slot.env)  # a reused batch may hold the graph of its last, already backpropagated, window
        with self._rng(slot):
            obs = slot.env.reset()
        goal = torch.zeros(batch_size, dtype=torch.long, device=self.device)  # no goal of ours
        if self.task is not None:
            goal = self.task.draw_goals(batch_size, generator, self.device)
        zeros = torch.zeros(batch_size, device=self.device)
        state = self._state(slot, obs, zeros, zeros.unsqueeze(-1).expand(-1, self.num_agents), zeros, goal)
        slot.owner = weakref.ref(state.slot)
        return state

    def sample_noise(
        self,
        steps: int,
        batch_size: int,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """No observation noise of gnncomm's own (a scenario adds its own): ``[steps, B, N, 0]``."""
        return torch.zeros(steps, batch_size, self.num_agents, 0, device=device)

    def observe(self, state: VmasState, noise: Tensor | None = None) -> Tensor:
        """Each agent's observation, ``[B * N, obs_dim]``."""
        return state.obs.reshape(-1, self.obs_dim)

    def step(self, state: VmasState, action: Tensor, edge_index: Tensor | None = None) -> VmasState:
        """Advances the environments by one step; ``action [B * N, action_dim]`` in ``[-1, 1]``."""
        slot = self._slot_of(state)
        B, N = state.pos.shape[:2]
        action = action.reshape(B, N, -1)
        if action.size(-1) != self.action_dim:
            raise ValueError(f"action must have {self.action_dim} values per agent, got {action.size(-1)}")
        scale = self.u_range.to(action.device)
        actions = []
        for i in range(N):
            u = action[:, i, : self.action_sizes[i]] * scale[i, : self.action_sizes[i]]
            if self.comm_sizes[i]:  # VMAS's own channel stays silent: gnncomm's messages are the channel
                u = torch.cat([u, u.new_zeros(B, self.comm_sizes[i])], dim=-1)
            actions.append(u.to(self.device))
        with self._rng(slot):
            obs, rewards, dones, _ = slot.env.step(actions)
        agent_reward = torch.stack([r.float() for r in rewards], dim=-1)  # [B, N]
        if self.task is not None:  # the scenario's reward with this environment's goal, shared by its agents
            agent_reward = self.task.reward(slot.env, state.goal).unsqueeze(-1).expand(-1, N)
        alive = 1.0 - state.done
        agent_reward = agent_reward * alive.unsqueeze(-1)  # a finished episode earns nothing more, as in BenchMARL
        done = torch.maximum(state.done, dones.float().to(agent_reward.device))
        out = self._state(slot, obs, agent_reward.mean(-1), agent_reward, done, state.goal, slot_tensor=state.slot)
        return out

    def reward(self, state: VmasState) -> Tensor:
        """The agents' mean reward of the step that led to ``state``, ``[B]``."""
        return state.reward

    def agent_rewards(self, state: VmasState) -> Tensor:
        """Each agent's reward of the step that led to ``state``, ``[B, N]`` (PPO credits each agent its own)."""
        return state.agent_reward

    # ------------------------------------------------------------------ windows and episodes
    def detach(self, state: VmasState) -> VmasState:
        """Cuts the autograd graph between backprop windows: ``state`` and every tensor the simulator keeps
        (entity states and actions, agents' and the scenario's own attributes) are detached in place."""
        self._detach_env(self._slot_of(state).env)
        # the slot tensor itself is kept: it is what marks the batch as in use (a detached copy would not)
        return VmasState(*(x.detach() if x.is_floating_point() else x for x in state))

    def reset_done(self, state: VmasState, mask: Tensor, generator: torch.Generator | None = None) -> VmasState:
        """Resets the environments where ``mask [B]`` is true, keeping the others; the state's rows follow."""
        slot = self._slot_of(state)
        index = mask.nonzero().flatten().tolist()
        if not index:
            return state
        with self._rng(slot):
            for i in index:
                slot.env.reset_at(i, return_observations=False)
            obs = slot.env.get_from_scenario(
                get_observations=True, get_rewards=False, get_infos=False, get_dones=False
            )[0]
        goal = state.goal.clone()
        if self.task is not None:
            goal[index] = self.task.draw_goals(len(index), generator, self.device)
        rows = mask.to(state.reward.device)
        zeros = torch.zeros_like(state.reward)
        fresh = self._state(slot, obs, zeros, torch.zeros_like(state.agent_reward), zeros, goal)
        keep = lambda new, old: torch.where(rows.view(-1, *[1] * (old.dim() - 1)), new, old)  # noqa: E731
        return VmasState(
            keep(fresh.pos, state.pos),
            keep(fresh.obs, state.obs),
            keep(fresh.reward, state.reward),
            keep(fresh.agent_reward, state.agent_reward),
            keep(fresh.done, state.done),
            state.latent,
            goal,
            state.slot,
        )

    def episode_metrics(self, state: VmasState) -> dict[str, Tensor]:
        """Per-environment measures of how an episode ended, ``{name: [B]}`` (speaker-listener: ``success``,
        within :data:`SUCCESS_RADIUS` of the goal, and ``goal_distance``); empty for other scenarios."""
        if self.task is None:
            return {}
        return self.task.metrics(self._slot_of(state).env, state.goal)

    def success_definition(self) -> str | None:
        """What ``success`` means for this scenario, or ``None`` when the scenario defines none."""
        return None if self.task is None else self.task.definition

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _detach_env(env: Any) -> None:
        seen: set[int] = set()
        _detach_tree(env.scenario, seen, root=True)  # the scenario may be a user's class: always walked
        _detach_tree(env.world, seen)

    def _make_env(self, batch_size: int) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                env = self._vmas.make_env(
                    self.scenario,
                    num_envs=batch_size,
                    device=self.device,
                    continuous_actions=True,
                    grad_enabled=True,
                    **self.scenario_kwargs,
                )
            except (TypeError, AssertionError, ValueError) as exc:
                raise ValueError(
                    f"VMAS scenario {self.scenario!r} rejected world_kwargs {self.scenario_kwargs}: "
                    f"{' '.join(str(exc).split())}"
                ) from None
        for warning in caught:
            if "not used by the scenario" in str(warning.message):  # VMAS only warns: a typo would be lost
                raise ValueError(
                    f"world_kwargs holds keywords that scenario {self.scenario!r} does not take: "
                    f"{' '.join(str(warning.message).split())}"
                )
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        return env

    def _free_slot(self, batch_size: int) -> _Slot:
        for slot in self._slots:
            if slot.env.num_envs == batch_size and slot.free():
                return slot
        slot = _Slot(self._make_env(batch_size), len(self._slots))
        self._slots.append(slot)
        return slot

    def _slot_of(self, state: VmasState) -> _Slot:
        index = int(state.slot[0]) if state.slot.numel() else -1
        if not 0 <= index < len(self._slots):
            raise ValueError(f"state does not belong to this VmasWorld (slot {index})")
        slot = self._slots[index]
        slot.owner = weakref.ref(state.slot)
        return slot

    def _rng(self, slot: _Slot) -> _VmasRandom:
        return _VmasRandom(type(slot.env), slot)

    def _state(
        self,
        slot: _Slot,
        obs: list[Tensor],
        reward: Tensor,
        agent_reward: Tensor,
        done: Tensor,
        goal: Tensor,
        slot_tensor: Tensor | None = None,
    ) -> VmasState:
        B = obs[0].size(0)
        width = max(self.obs_sizes)
        if self.task is not None:
            obs = self.task.observation(slot.env, list(obs), goal)
        padded = torch.stack(
            [torch.nn.functional.pad(o.float(), (0, width - o.size(-1))) for o in obs], dim=1
        )  # [B, N, width]
        if len(self.agent_types) > 1:
            types = torch.nn.functional.one_hot(self.type_index, len(self.agent_types)).float().to(padded.device)
            padded = torch.cat([padded, types.expand(B, -1, -1)], dim=-1)
        pos = torch.stack([a.state.pos[:, :2].float() for a in slot.env.agents], dim=1)  # [B, N, 2]
        if slot_tensor is None:
            slot_tensor = torch.full((B,), slot.index, dtype=torch.long, device=padded.device)
        latent = padded.new_zeros(B, 0)
        return VmasState(pos, padded, reward, agent_reward, done, latent, goal, slot_tensor)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.scenario!r}, num_agents={self.num_agents}, obs_dim={self.obs_dim})"


def _detach_tree(obj: Any, seen: set[int], *, root: bool = False) -> None:
    """Replaces, in place, every tensor that requires grad held by ``obj``: in its attributes, lists and dicts,
    and in the VMAS objects it reaches (entities, their states, actions and sensors, the world's force tables)."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, list):
        items: Any = enumerate(obj)
    elif isinstance(obj, dict):
        items = list(obj.items())
    elif root or type(obj).__module__.startswith("vmas"):
        items = list(vars(obj).items()) if hasattr(obj, "__dict__") else []
    else:
        return
    for key, value in items:
        if isinstance(value, Tensor):
            if value.requires_grad:
                if isinstance(obj, (list, dict)):
                    obj[key] = value.detach()
                else:
                    setattr(obj, key, value.detach())
        elif isinstance(value, (list, dict)) or type(value).__module__.startswith("vmas"):
            _detach_tree(value, seen)


class _VmasRandom:
    """Runs a VMAS call inside one environment batch's own random state (VMAS keeps one class-wide state)."""

    def __init__(self, env_class: type, slot: _Slot) -> None:
        self.shared = env_class.vmas_random_state
        self.slot = slot

    def __enter__(self) -> None:
        self.saved = list(self.shared)
        self.shared[:] = self.slot.rng

    def __exit__(self, *exc: Any) -> None:
        self.slot.rng = list(self.shared)
        self.shared[:] = self.saved


def _seeded_rng(seed: int) -> list[Any]:
    """The (torch, numpy, random) states that VMAS's own seeding with ``seed`` would set."""
    torch_state = torch.random.get_rng_state()
    np_state, py_state = np.random.get_state(), random.getstate()
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    out = [torch.random.get_rng_state(), np.random.get_state(), random.getstate()]
    torch.random.set_rng_state(torch_state)
    np.random.set_state(np_state)
    random.setstate(py_state)
    return out


def _gen_device(generator: torch.Generator | None) -> torch.device | None:
    return generator.device if generator is not None else None


class _SpeakerListener:
    """Per-environment goals for ``simple_speaker_listener`` (VMAS draws one for the whole batch)."""

    definition = f"the listener ends the episode within {SUCCESS_RADIUS} of its goal landmark"

    def draw_goals(self, n: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
        return torch.randint(0, 3, (n,), generator=generator, device=_gen_device(generator)).to(device)

    @staticmethod
    def _colours(env: Any, device: torch.device) -> Tensor:
        return torch.stack([lm.color.float() for lm in env.world.landmarks]).to(device)  # [3, 3]

    @staticmethod
    def _distance(env: Any, agent: int, goal: Tensor) -> Tensor:
        """``[B]``: how far ``agent`` is from landmark ``goal [B]`` of its environment."""
        landmarks = torch.stack([lm.state.pos for lm in env.world.landmarks], dim=1)  # [B, 3, 2]
        target = landmarks[torch.arange(goal.numel(), device=goal.device), goal]  # [B, 2]
        return (env.agents[agent].state.pos - target).pow(2).sum(-1).add(1e-12).sqrt()

    def observation(self, env: Any, obs: list[Tensor], goal: Tensor) -> list[Tensor]:
        obs[0] = self._colours(env, goal.device)[goal]  # the speaker sees its own environment's goal colour
        return obs

    def reward(self, env: Any, goal: Tensor) -> Tensor:
        """VMAS's reward with this environment's goal: minus the listener's distance to it, summed over the two
        agents as the scenario does (so the agents' mean is ``-2 d``)."""
        return -len(env.agents) * self._distance(env, 1, goal)

    def metrics(self, env: Any, goal: Tensor) -> dict[str, Tensor]:
        distance = self._distance(env, 1, goal)
        return {"success": (distance < SUCCESS_RADIUS).float(), "goal_distance": distance}


class _Reference(_SpeakerListener):
    """Per-environment goals for ``simple_reference``: agent ``i`` sees the colour of the landmark that the other
    agent must reach (``goal [B, 2]``, column ``i``), and both are rewarded by both distances."""

    definition = f"both agents end the episode within {SUCCESS_RADIUS} of the landmark the other one names"
    COLOUR = slice(8, 11)
    """Where the goal colour sits in the scenario's observation: after the velocity and 3 landmark offsets."""

    def draw_goals(self, n: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
        return torch.randint(0, 3, (n, 2), generator=generator, device=_gen_device(generator)).to(device)

    def _distances(self, env: Any, goal: Tensor) -> Tensor:
        """``[B, 2]``: agent 1 from agent 0's goal, agent 0 from agent 1's goal."""
        return torch.stack([self._distance(env, 1, goal[:, 0]), self._distance(env, 0, goal[:, 1])], dim=-1)

    def observation(self, env: Any, obs: list[Tensor], goal: Tensor) -> list[Tensor]:
        colours = self._colours(env, goal.device)
        for i in range(2):
            obs[i] = obs[i].clone()
            obs[i][:, self.COLOUR] = colours[goal[:, i]]
        return obs

    def reward(self, env: Any, goal: Tensor) -> Tensor:
        return -self._distances(env, goal).sum(-1)  # the scenario's shared reward, the same for both agents

    def metrics(self, env: Any, goal: Tensor) -> dict[str, Tensor]:
        distances = self._distances(env, goal)
        return {"success": (distances < SUCCESS_RADIUS).all(-1).float(), "goal_distance": distances.mean(-1)}


GOAL_TASKS = {SPEAKER_LISTENER: _SpeakerListener, "simple_reference": _Reference}
"""The MPE communication scenarios whose goals VMAS 1.5.2 draws once per batch; here each environment draws its
own from the run's generator."""


def make_vmas_world(cfg: Config) -> VmasWorld:
    """The world of ``world=vmas``: ``cfg.scenario`` with ``cfg.world_kwargs``, and ``cfg.num_agents`` as
    ``n_agents`` for scenarios that take one."""
    import_vmas()
    kwargs = dict(cfg.world_kwargs)
    takes_n = _takes_n_agents(cfg.scenario)
    return VmasWorld(cfg.scenario, cfg.num_agents if takes_n else None, scenario_kwargs=kwargs, device=_device(cfg))


def _device(cfg: Config) -> str:
    return "cuda" if cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available()) else "cpu"


def scenario_module(scenario: str) -> Any:
    """The module of a VMAS scenario name (VMAS keeps them in three packages), or a one-line ``ValueError``."""
    import importlib

    for package in ("vmas.scenarios", "vmas.scenarios.mpe", "vmas.scenarios.debug"):
        try:
            return importlib.import_module(f"{package}.{scenario}")
        except ImportError:
            continue
    raise ValueError(
        f"scenario must be a VMAS scenario name (navigation, simple_speaker_listener, flocking, discovery...), "
        f"got {scenario!r}"
    )


def _takes_n_agents(scenario: str) -> bool:
    """Whether a scenario's ``make_world`` reads ``n_agents`` (from its source: VMAS has no registry of it)."""
    import inspect

    source = inspect.getsource(scenario_module(scenario))
    return '"n_agents"' in source or "'n_agents'" in source


__all__ = ["SUCCESS_RADIUS", "VmasState", "VmasWorld", "import_vmas", "make_vmas_world"]
