"""The per-agent weight files of a run, and one call that loads agent ``i``'s policy from either layout.

* ``agent_<i>.pth`` (the seed's format), written for populations of up to :data:`AGENT_FILES_MAX` agents:
  the weights that act for agent ``i`` (see :meth:`gnncomm.CommSystem.agent_state_dict`);
* ``agents.pth``, always written: every weight once, with the per-agent ones stacked along their first
  dimension and the shared ones stored a single time. With shared parameters that is the shared weights
  plus the ``[N, D]`` agent-id embeddings, so a 10,000-agent population costs one model, not 10,000.

:func:`load_agent` reads ``agent_<i>.pth`` when it exists and otherwise slices ``agents.pth``; both give
the same dictionary.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from gnncomm.agents import CommSystem
from gnncomm.checkpoint import CheckpointError, atomic_save, load_tensors

AGENT_FILES_MAX = 100
"""Largest population for which one ``agent_<i>.pth`` file per agent is written."""
POPULATION_FILE = "agents.pth"


def agent_file(run_dir: str | Path, agent: int) -> Path:
    return Path(run_dir) / f"agent_{agent}.pth"


def write_agent_files(system: CommSystem, run_dir: str | Path, *, max_files: int = AGENT_FILES_MAX) -> list[Path]:
    """Writes ``agents.pth`` and, for ``N <= max_files``, every ``agent_<i>.pth`` (atomically); returns the paths."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    own = system.per_agent_parameters()
    population = {
        "format": "gnncomm.agents/1",
        "num_agents": system.num_agents,
        "shared_params": system.shared,
        "per_agent": sorted(own),
        "state_dict": {name: param.detach().cpu() for name, param in system.named_parameters()},
    }
    paths = [run_dir / POPULATION_FILE]
    atomic_save(population, paths[0])
    if system.num_agents <= max_files:
        for agent in range(system.num_agents):
            state = {name: value.cpu() for name, value in system.agent_state_dict(agent).items()}
            paths.append(agent_file(run_dir, agent))
            atomic_save({"agent": agent, "shared_params": system.shared, "state_dict": state}, paths[-1])
    return paths


def load_agent(run_dir: str | Path, agent: int) -> dict[str, Tensor]:
    """Agent ``agent``'s policy weights from a run folder, whichever layout the run wrote.

    Returns:
        ``{parameter name: tensor}``: agent ``agent``'s slice of every per-agent parameter and every
        shared one, exactly what :meth:`gnncomm.CommSystem.agent_state_dict` gives.

    Raises:
        ValueError: ``agent`` is not an int in ``[0, N - 1]``.
        CheckpointError: the run has neither file, or it is unreadable.
    """
    if isinstance(agent, bool) or not isinstance(agent, int) or agent < 0:
        raise ValueError(f"agent must be an int >= 0, got {agent!r}")
    path = agent_file(run_dir, agent)
    if path.is_file():
        return load_tensors(path)["state_dict"]
    population_path = Path(run_dir) / POPULATION_FILE
    if not population_path.is_file():
        raise CheckpointError(f"no {path.name} and no {POPULATION_FILE} in {str(run_dir)!r}")
    population = load_tensors(population_path)
    N = population["num_agents"]
    if agent >= N:
        raise ValueError(f"agent must be in [0, num_agents - 1 = {N - 1}], got {agent}")
    own = set(population["per_agent"])
    return {name: (value[agent] if name in own else value).clone() for name, value in population["state_dict"].items()}
