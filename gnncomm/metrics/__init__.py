r"""Metrics for emergent discrete languages and for attention graphs, as pure functions.

Four modules, each importable on its own (they depend only on numpy, networkx and torch):

* :mod:`gnncomm.metrics.language`: entropy, mutual information, vocabulary use, topographic
  similarity, posdis/bosdis, and temporal dependence against permutation nulls;
* :mod:`gnncomm.metrics.graph`: attention graphs, centrality, the graph's own betweenness, and hubs and
  attention relays against a weight-shuffling null (the orientation and the names of the centralities are
  defined there, once, for the whole package);
* :mod:`gnncomm.metrics.flow`: the causal relay test, on knock-out effects at agents that do not hear the
  silenced one;
* :mod:`gnncomm.metrics.stats`: the single permutation test and its p-value, multiple-testing
  corrections, ranks and Spearman correlation, stratified permutations, quantile bins.

Conventions, kept by every function:

* pure functions: no global state, and randomness only through an explicit ``seed`` (an ``int``, a
  :class:`numpy.random.Generator` or a :class:`torch.Generator`), so the same seed gives the same
  numbers;
* never NaN: degenerate inputs (constant languages, constant vectors, uniform attention) give
  documented finite values, usually ``0.0`` (or ``p = 1``);
* errors name the parameter, the value given and the allowed range.

Every public name is re-exported here, so ``from gnncomm import metrics; metrics.vocab_usage(...)``
works; no public function shares its name with a submodule.
"""

from __future__ import annotations

from gnncomm.metrics.flow import (
    RELAY_PERMUTATIONS,
    ROUNDING_TOLERANCE,
    detect_relays,
    far_effects,
    heard_directly,
    relay_statistics,
)
from gnncomm.metrics.graph import (
    ATTENTION_RELAY_SHUFFLES,
    HUB_LATTICE,
    HUB_SHUFFLES,
    attention_graph,
    attention_relay_statistics,
    centrality,
    detect_attention_relays,
    detect_hubs,
    graph_betweenness,
    hub_statistics,
    pair_hub_statistics,
)
from gnncomm.metrics.language import (
    TemporalResult,
    across_time_dependence,
    bosdis,
    edit_distance,
    entropy_bits,
    mutual_information,
    mutual_information_statistic,
    mutual_information_test,
    posdis,
    symbol_entropy,
    symbol_transition_matrix,
    temporal_dependence,
    topographic_similarity,
    vocab_usage,
    within_message_dependence,
)
from gnncomm.metrics.live import (
    HUB_WEIGHT,
    attention_concentration,
    marginal_entropy,
    position_information,
    symbol_marginals,
    symbol_usage,
)
from gnncomm.metrics.stats import (
    TIE_TOLERANCE,
    PermutationResult,
    adjust_p_values,
    holm,
    min_permutations,
    p_value,
    permutation_test,
    quantile_bins,
    rankdata,
    sample_pairs,
    spearman,
    stratified_permutations,
)

__all__ = [
    "HUB_LATTICE",
    "HUB_SHUFFLES",
    "HUB_WEIGHT",
    "attention_concentration",
    "marginal_entropy",
    "position_information",
    "symbol_marginals",
    "symbol_usage",
    "ATTENTION_RELAY_SHUFFLES",
    "RELAY_PERMUTATIONS",
    "ROUNDING_TOLERANCE",
    "TIE_TOLERANCE",
    "PermutationResult",
    "TemporalResult",
    "across_time_dependence",
    "adjust_p_values",
    "attention_graph",
    "attention_relay_statistics",
    "bosdis",
    "centrality",
    "detect_attention_relays",
    "detect_hubs",
    "detect_relays",
    "edit_distance",
    "entropy_bits",
    "far_effects",
    "graph_betweenness",
    "heard_directly",
    "holm",
    "hub_statistics",
    "min_permutations",
    "mutual_information",
    "mutual_information_statistic",
    "mutual_information_test",
    "p_value",
    "pair_hub_statistics",
    "permutation_test",
    "posdis",
    "quantile_bins",
    "rankdata",
    "relay_statistics",
    "sample_pairs",
    "spearman",
    "stratified_permutations",
    "symbol_entropy",
    "symbol_transition_matrix",
    "temporal_dependence",
    "topographic_similarity",
    "vocab_usage",
    "within_message_dependence",
]
