"""Neural building blocks: the discrete channel, the attention layer and the agent parts."""

from gnncomm.nn.agent_linear import AgentLinear, AgentLSTMCell, AgentMLP
from gnncomm.nn.decoder import AttentionDecoder
from gnncomm.nn.embedding import SymbolEmbedding
from gnncomm.nn.encoder import LSTMEncoder
from gnncomm.nn.gumbel import GumbelSoftmax, gumbel_softmax_sample, sample_gumbel
from gnncomm.nn.heads import ActionHead, ValueHead, WorldEstimator
from gnncomm.nn.message_attention import MessageAttention

__all__ = [
    "ActionHead",
    "AgentLSTMCell",
    "AgentLinear",
    "AgentMLP",
    "AttentionDecoder",
    "GumbelSoftmax",
    "LSTMEncoder",
    "MessageAttention",
    "SymbolEmbedding",
    "ValueHead",
    "WorldEstimator",
    "gumbel_softmax_sample",
    "sample_gumbel",
]
