"""The package surface of ``gnncomm.topology``: re-exports, names, and the one-way imports between its modules."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import types
from graphlib import TopologicalSorter
from pathlib import Path

import gnncomm.topology as topology

SUBMODULES = sorted(info.name for info in pkgutil.iter_modules(topology.__path__))


def test_the_package_has_one_module_per_job() -> None:
    assert SUBMODULES == ["_checks", "convert", "generators", "nearest", "registry"]


def test_knn_stays_the_function_after_importing_every_submodule() -> None:
    for name in SUBMODULES:
        importlib.import_module(f"gnncomm.topology.{name}")
    assert callable(topology.knn) and not isinstance(topology.knn, types.ModuleType)
    assert topology.knn is topology.nearest.knn


def test_every_public_name_is_re_exported_and_none_is_a_submodule() -> None:
    old_api = {
        "ring",
        "full",
        "star",
        "grid",
        "small_world",
        "erdos_renyi",
        "random_regular",
        "knn",
        "from_networkx",
        "to_networkx",
        "batch_edge_index",
        "unbatch_edge_index",
        "TOPOLOGIES",
        "TOPOLOGY_ALIASES",
        "DYNAMIC_TOPOLOGIES",
        "get_topology",
        "build_topology",
        "is_dynamic",
    }
    warnings = {"DisconnectedGraphWarning", "SelfLoopWarning"}
    assert old_api | {"topology_names", "check_topology", "has_degree"} | warnings == set(topology.__all__)
    assert not set(topology.__all__) & set(SUBMODULES)
    for name in topology.__all__:
        assert not isinstance(getattr(topology, name), types.ModuleType), name


def test_modules_import_each_other_one_way_and_nothing_else_of_gnncomm() -> None:
    graph: dict[str, set[str]] = {}
    for path in Path(topology.__file__).parent.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):  # function-level imports count too
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith("gnncomm") or name.startswith("gnncomm.topology"), (path.name, name)
                if name.removeprefix("gnncomm.topology.") in SUBMODULES:
                    imported.add(name.removeprefix("gnncomm.topology."))
        graph[path.stem] = imported
    order = list(TopologicalSorter(graph).static_order())  # raises CycleError on a cycle
    assert order.index("_checks") < order.index("convert") < order.index("generators") < order.index("registry")
    assert graph["_checks"] == set() and graph["nearest"] == {"_checks"}
