"""agent_<i>.pth, agents.pth and gnncomm.load_agent: one call loads agent i's policy from either layout."""

import pytest
import torch

import gnncomm
from gnncomm.agent_files import POPULATION_FILE, load_agent, write_agent_files
from gnncomm.checkpoint import CheckpointError


@pytest.mark.parametrize("shared", [True, False])
def test_load_agent_gives_the_same_weights_from_both_layouts(tmp_path, shared):
    system = gnncomm.CommSystem(6, 12, 4, vocab_size=8, msg_dim=2, hidden_dim=16, shared=shared)
    write_agent_files(system, tmp_path / "files")  # 6 <= the limit: agent_<i>.pth and agents.pth
    write_agent_files(system, tmp_path / "index", max_files=3)  # above the limit: agents.pth only
    assert (tmp_path / "files" / "agent_5.pth").is_file() and not (tmp_path / "index" / "agent_0.pth").exists()
    for agent in (0, 5):
        expected = system.agent_state_dict(agent)
        for layout in ("files", "index"):
            got = load_agent(tmp_path / layout, agent)
            assert got.keys() == expected.keys()
            assert all(torch.equal(got[k], expected[k]) for k in expected), (layout, agent)


def test_shared_weights_are_stored_once_in_the_population_file(tmp_path):
    small = gnncomm.CommSystem(4, 12, 4, hidden_dim=16)
    large = gnncomm.CommSystem(400, 12, 4, hidden_dim=16)
    write_agent_files(small, tmp_path / "small")
    write_agent_files(large, tmp_path / "large")
    ratio = (tmp_path / "large" / POPULATION_FILE).stat().st_size / (
        tmp_path / "small" / POPULATION_FILE
    ).stat().st_size
    assert ratio < 1.2  # 100x the agents, only their id embeddings more
    assert not list((tmp_path / "large").glob("agent_*.pth"))


def test_load_agent_bad_input(tmp_path):
    system = gnncomm.CommSystem(3, 12, 4, hidden_dim=16)
    write_agent_files(system, tmp_path, max_files=0)
    with pytest.raises(ValueError, match=r"agent must be in \[0, num_agents - 1 = 2\]"):
        load_agent(tmp_path, 3)
    with pytest.raises(ValueError, match="agent must be an int >= 0"):
        load_agent(tmp_path, -1)
    with pytest.raises(CheckpointError, match="no agent_0.pth and no agents.pth"):
        load_agent(tmp_path / "empty", 0)
