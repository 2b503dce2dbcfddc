"""gnncomm: agents on a graph invent a discrete language to model a world none of them sees whole.

The public names below never share a name with a submodule, so ``gnncomm.train(...)`` and
``gnncomm.evaluate(...)`` work any number of times in one session. The layers, bottom to top (each
imports only from below; ``tests/test_package.py`` checks it): ``topology`` / ``nn`` / ``metrics`` →
``config`` → ``world`` → ``agents`` → ``rollout`` → ``evaluation`` → ``report`` → ``trainer`` → ``run`` →
``cli`` / ``bench``.
"""

from gnncomm import metrics, topology
from gnncomm.agent_files import load_agent
from gnncomm.agents import AgentState, CommSystem, StepOutput
from gnncomm.animation import animate
from gnncomm.config import PRESETS, Config
from gnncomm.evaluation import communication_ablation, load_run
from gnncomm.nn import MessageAttention, gumbel_softmax_sample
from gnncomm.report import evaluate
from gnncomm.rollout import Episode, evaluate_rollout, make_graph_fn, sample_episode
from gnncomm.run import train
from gnncomm.trainer import Trainer, TrainResult
from gnncomm.world import SwarmWorld, World, WorldState, build_world, register_world

__version__ = "0.1.0"

__all__ = [
    "AgentState",
    "CommSystem",
    "Config",
    "Episode",
    "MessageAttention",
    "PRESETS",
    "StepOutput",
    "SwarmWorld",
    "TrainResult",
    "Trainer",
    "World",
    "WorldState",
    "animate",
    "build_world",
    "communication_ablation",
    "evaluate",
    "evaluate_rollout",
    "gumbel_softmax_sample",
    "load_agent",
    "load_run",
    "make_graph_fn",
    "metrics",
    "register_world",
    "sample_episode",
    "topology",
    "train",
]
