"""gnncomm: agents on a graph invent a discrete language to model a world none of them sees whole."""
from gnncomm import metrics, topology
from gnncomm.agents import AgentState, CommSystem, StepOutput
from gnncomm.config import PRESETS, Config
from gnncomm.nn import MessageAttention, gumbel_softmax_sample
from gnncomm.rollout import Episode, make_graph_fn, rollout, sample_episode
from gnncomm.world import SwarmWorld, WorldState

__version__ = "0.1.0"


def train(cfg: Config, run_dir, **kwargs):
    """Trains a run; see :func:`gnncomm.train.train`."""
    from gnncomm.train import train as _train
    return _train(cfg, run_dir, **kwargs)


def evaluate(run_dir, **kwargs):
    """The emergence report of a trained run; see :func:`gnncomm.analysis.evaluate`."""
    from gnncomm.analysis import evaluate as _evaluate
    return _evaluate(run_dir, **kwargs)


__all__ = [
    "AgentState",
    "CommSystem",
    "Config",
    "Episode",
    "MessageAttention",
    "PRESETS",
    "StepOutput",
    "SwarmWorld",
    "WorldState",
    "evaluate",
    "gumbel_softmax_sample",
    "make_graph_fn",
    "metrics",
    "rollout",
    "sample_episode",
    "topology",
    "train",
]
