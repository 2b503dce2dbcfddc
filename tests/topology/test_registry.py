from __future__ import annotations

import inspect

import pytest
import torch

from gnncomm.topology import (
    DYNAMIC_TOPOLOGIES,
    TOPOLOGIES,
    TOPOLOGY_ALIASES,
    build_topology,
    check_topology,
    erdos_renyi,
    get_topology,
    is_dynamic,
    knn,
    random_regular,
    ring,
    small_world,
    topology_names,
)
from gnncomm.topology.registry import CUSTOM_TOPOLOGY, TOPOLOGY_DEGREES

STATIC = sorted(set(TOPOLOGIES) - DYNAMIC_TOPOLOGIES)


# --------------------------------------------------------------------------
# Names.
# --------------------------------------------------------------------------
def test_registry_knows_every_generator_alias_and_custom() -> None:
    assert set(TOPOLOGIES) == {
        "ring",
        "full",
        "star",
        "grid",
        "small_world",
        "erdos_renyi",
        "random_regular",
        "knn",
    }
    assert TOPOLOGY_ALIASES == {"knearest": "knn", "er": "erdos_renyi", "smallworld": "small_world"}
    assert topology_names() == (*TOPOLOGIES, "custom", *TOPOLOGY_ALIASES)
    assert CUSTOM_TOPOLOGY == "custom" and CUSTOM_TOPOLOGY not in TOPOLOGIES
    assert DYNAMIC_TOPOLOGIES == {"knn"}


def test_get_topology_resolves_aliases_case_and_dashes() -> None:
    assert get_topology("smallworld") is small_world
    assert get_topology("er") is erdos_renyi
    assert get_topology("knearest") is knn
    assert get_topology("Erdos-Renyi") is erdos_renyi
    for alias, target in TOPOLOGY_ALIASES.items():
        assert get_topology(alias) is TOPOLOGIES[target]


def test_only_knn_is_dynamic() -> None:
    assert is_dynamic("knn") and is_dynamic("knearest")
    assert not any(is_dynamic(name) for name in STATIC)
    assert not is_dynamic("custom")


def test_every_degree_is_a_parameter_of_its_generator() -> None:
    assert TOPOLOGY_DEGREES.keys() == {"knn", "small_world", "random_regular"}
    assert {name: degree.parameter for name, degree in TOPOLOGY_DEGREES.items()} == {
        "knn": "k",
        "small_world": "k",
        "random_regular": "d",
    }
    for name, degree in TOPOLOGY_DEGREES.items():
        assert degree.parameter in inspect.signature(TOPOLOGIES[name]).parameters


def test_unknown_and_non_string_names_are_rejected_with_the_allowed_names() -> None:
    with pytest.raises(ValueError, match=r"topology must be one of \['ring', .*'custom', .*\], got 'hypercube'"):
        build_topology("hypercube", 4)
    with pytest.raises(ValueError, match="topology must be one of"):
        get_topology("")
    with pytest.raises(TypeError, match="topology name must be a str"):
        get_topology(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"topology 'custom' has no generator; build it with build_topology"):
        get_topology("custom")


# --------------------------------------------------------------------------
# build_topology.
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
@pytest.mark.parametrize("n", [2, 3, 9, 16])
def test_every_registered_topology_builds_a_graph_that_keeps_the_guarantees(
    assert_well_formed, name: str, n: int
) -> None:
    g = torch.Generator().manual_seed(n)
    kwargs: dict = {}
    if name == "knn":
        kwargs = {"pos": torch.rand(n, 2, generator=g), "k": min(3, n - 1)}
    elif name == "small_world":
        if n < 3:
            pytest.skip("small_world needs k >= 2, i.e. N >= 3")
        kwargs = {"k": 2}
    elif name == "random_regular":
        kwargs = {"k": 1 if n % 2 == 0 else 2}
    ei = build_topology(name, n, generator=g, **kwargs)
    assert_well_formed(ei, n, by_sender=name != "knn")
    assert ei.size(1) > 0 or name == "erdos_renyi"


def test_build_topology_forwards_every_argument_by_name() -> None:
    assert torch.equal(build_topology("ring", 5), ring(5))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(build_topology("er", 10, p=0.5, generator=g1), erdos_renyi(10, p=0.5, generator=g2))
    assert torch.equal(build_topology("smallworld", 10, k=2, p=0.0), small_world(10, k=2, p=0.0))
    assert torch.equal(build_topology("random_regular", 8, k=4), random_regular(8, d=4))
    pos = torch.rand(7, 2)
    assert torch.equal(build_topology("knearest", 7, pos=pos, k=3), knn(pos, 3))
    assert torch.equal(build_topology("knn", 5, pos=torch.zeros(5, 2), k=2, method="grid"), knn(torch.zeros(5, 2), 2))
    for name in STATIC:
        assert build_topology(name, 6, k=2, device=torch.device("cpu")).device == torch.device("cpu")


@pytest.mark.parametrize("k", [2, 5])
def test_build_topology_gives_random_regular_the_degree_k(k: int) -> None:
    ei = build_topology("random_regular", 10, k=k)
    assert torch.equal(torch.bincount(ei[1], minlength=10), torch.full((10,), k))
    assert torch.equal(torch.bincount(ei[0], minlength=10), torch.full((10,), k))


def test_build_topology_takes_every_degree_from_k_only() -> None:
    with pytest.raises(TypeError, match=r"topology 'random_regular' takes its degree from k, not d; got d=4"):
        build_topology("random_regular", 8, d=4)


def test_build_topology_rejects_missing_positions_and_unknown_arguments() -> None:
    with pytest.raises(ValueError, match="needs pos"):
        build_topology("knn", 4)
    with pytest.raises(ValueError, match=r"pos must have shape \[num_agents=4, D\]"):
        build_topology("knn", 4, pos=torch.rand(5, 2))
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['q'\] for topology 'ring'; allowed: \[\]"):
        build_topology("ring", 4, q=1)
    with pytest.raises(
        TypeError, match=r"\['p'\] for topology 'knn'; allowed: \['check_finite', 'chunk_size', 'method'\]"
    ):
        build_topology("knn", 4, pos=torch.rand(4, 2), k=2, p=0.5)


# --------------------------------------------------------------------------
# custom.
# --------------------------------------------------------------------------
def test_custom_edges_come_back_sorted_by_receiver_then_sender(assert_well_formed) -> None:
    edges = [[3, 0, 2, 1, 0], [0, 3, 0, 2, 1]]
    ei = build_topology("custom", 4, edges=edges)
    assert ei.tolist() == [[2, 3, 0, 1, 0], [0, 0, 1, 2, 3]]
    assert_well_formed(ei, 4)
    # The ordering make_graph_fn used before the registry knew "custom".
    single = torch.as_tensor(edges, dtype=torch.long)
    assert torch.equal(ei, single[:, torch.argsort(single[1] * 4 + single[0])])
    # A tensor works as well, and custom ignores k, pos and generator.
    assert torch.equal(build_topology("Custom", 4, edges=single, k=99, pos=torch.rand(1)), ei)


def test_custom_keeps_duplicate_edges() -> None:
    assert build_topology("custom", 3, edges=[[1, 1, 2], [0, 0, 0]]).tolist() == [[1, 1, 2], [0, 0, 0]]


def test_custom_without_edges_is_a_clear_error() -> None:
    for missing in (None, [], [[], []], torch.zeros(2, 0, dtype=torch.long)):
        with pytest.raises(ValueError, match=r"topology 'custom' needs edges \[\[senders...\], \[receivers...\]\]"):
            build_topology("custom", 4, edges=missing)
    with pytest.raises(ValueError, match=r"needs edges .* got shape \(3, 1\)"):
        build_topology("custom", 4, edges=[[0], [1], [2]])
    with pytest.raises(ValueError, match="needs edges"):
        build_topology("custom", 4, edges=[[0, 1], [1]])


def test_custom_rejects_float_ids_out_of_range_ids_self_loops_and_extra_arguments() -> None:
    with pytest.raises(TypeError, match="edges must hold int agent ids, got dtype torch.float32"):
        build_topology("custom", 4, edges=[[0.0], [1.0]])
    with pytest.raises(ValueError, match=r"edges agent ids must be in \[0, num_agents - 1 = 3\]"):
        build_topology("custom", 4, edges=[[0], [4]])
    with pytest.raises(ValueError, match="edges agent ids"):
        build_topology("custom", 4, edges=[[-1], [2]])
    with pytest.raises(ValueError, match="edges must not contain self-loops"):
        build_topology("custom", 4, edges=[[0, 2], [1, 2]])
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['p'\] for topology 'custom'"):
        build_topology("custom", 4, edges=[[0], [1]], p=0.5)


# --------------------------------------------------------------------------
# check_topology.
# --------------------------------------------------------------------------
def test_check_topology_accepts_every_name_with_a_possible_degree() -> None:
    for name in topology_names():
        check_topology(name, 10, 4)
    check_topology("ring", 10, 100)  # topologies without a degree ignore k


def test_check_topology_lists_the_allowed_names_for_an_unknown_one() -> None:
    with pytest.raises(ValueError, match=r"^topology must be one of \[.*'knn', 'custom', .*\], got 'hypercube'$"):
        check_topology("hypercube", 10, 4)


@pytest.mark.parametrize(("name", "low"), [("knn", 1), ("knearest", 1), ("small_world", 2), ("random_regular", 1)])
def test_check_topology_names_k_neighbors_and_its_range_for_a_degree_out_of_range(name: str, low: int) -> None:
    canonical = TOPOLOGY_ALIASES.get(name, name)
    for bad in (low - 1, 10, 11):
        message = rf"^k_neighbors must be in \[{low}, num_agents - 1 = 9\] for topology '{canonical}', got {bad}$"
        with pytest.raises(ValueError, match=message):
            check_topology(name, 10, bad)
    with pytest.raises(TypeError, match="k_neighbors must be an int"):
        check_topology(name, 10, 2.0)  # type: ignore[arg-type]


def test_check_topology_requires_an_even_n_times_k_for_random_regular() -> None:
    message = r"^k_neighbors=3 with num_agents=5 is impossible for topology 'random_regular': N \* k must be even$"
    with pytest.raises(ValueError, match=message):
        check_topology("random_regular", 5, 3)
    check_topology("random_regular", 5, 2)
    check_topology("random_regular", 6, 3)


def test_check_topology_rejects_too_few_agents() -> None:
    with pytest.raises(ValueError, match="num_agents must be >= 2, got 1"):
        check_topology("ring", 1, 1)


@pytest.mark.parametrize("n", [3, 6, 7])
def test_check_topology_passes_exactly_the_combinations_build_topology_can_build(n: int) -> None:
    for name in TOPOLOGIES:
        for k in range(0, n + 1):
            try:
                check_topology(name, n, k)
            except ValueError:
                with pytest.raises(ValueError):
                    build_topology(name, n, k=k, pos=torch.rand(n, 2))
            else:
                build_topology(name, n, k=k, pos=torch.rand(n, 2))
