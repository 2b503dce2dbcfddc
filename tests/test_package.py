"""The package's shape: one-way imports between layers, no cycles, and public names that never clash
with submodules."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import gnncomm

ROOT = Path(gnncomm.__file__).parent

# Bottom to top. A module may import only from a strictly lower layer, or from its own package.
LAYERS: dict[str, int] = {
    "gnncomm.topology": 0,
    "gnncomm.nn": 0,
    "gnncomm.metrics": 0,
    "gnncomm.interventions": 0,
    "gnncomm.runfolder": 1,
    "gnncomm.checkpoint": 0,
    "gnncomm.plots": 1,
    "gnncomm.config": 1,
    "gnncomm.world": 2,
    "gnncomm.worlds": 3,
    "gnncomm.runtime": 2,
    "gnncomm.agents": 3,
    "gnncomm.rollout": 4,
    "gnncomm.agent_files": 4,
    "gnncomm.evaluation": 5,
    "gnncomm.selection": 5,
    "gnncomm.ppo": 5,
    "gnncomm.report": 6,
    "gnncomm.animation": 6,
    "gnncomm.memory": 6,
    "gnncomm.trainer": 7,
    "gnncomm.run": 8,
    "gnncomm.bench": 9,
    "gnncomm.cli": 10,
    "gnncomm.__main__": 11,
    "gnncomm": 12,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every gnncomm module that ``name`` imports anywhere: at the top, in functions, under TYPE_CHECKING."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(module: str) -> tuple[str, int]:
    while module not in LAYERS:
        module = module.rpartition(".")[0]
    return module, LAYERS[module]


def test_the_package_has_no_import_cycle_even_through_function_level_imports():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt) :] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])


def test_every_module_imports_only_from_lower_layers_or_its_own_package():
    wrong = []
    for module, targets in _graph().items():
        home, rank = _layer(module)
        for target in targets:
            target_home, target_rank = _layer(target)
            if target_home != home and target_rank >= rank:
                wrong.append(f"{module} (layer {rank}) imports {target} (layer {target_rank})")
    assert not wrong, "\n".join(wrong)


def test_every_module_has_a_layer():
    assert all(_layer(m)[0] in LAYERS for m in _modules())


def test_public_names_never_shadow_a_submodule():
    for info in pkgutil.walk_packages(gnncomm.__path__, "gnncomm."):
        importlib.import_module(info.name)
    for package_name in [m for m in _modules() if (_modules()[m].name == "__init__.py")]:
        package = importlib.import_module(package_name)
        for name in getattr(package, "__all__", []):
            sub = f"{package_name}.{name}"
            if sub in _modules():
                assert getattr(package, name) is importlib.import_module(sub), f"{sub} is shadowed"
    assert callable(gnncomm.train) and callable(gnncomm.evaluate)
    assert not (ROOT / "train.py").exists() and not (ROOT / "evaluate.py").exists()


def test_importing_the_library_does_not_import_matplotlib():
    import subprocess
    import sys

    code = "import sys, gnncomm, gnncomm.cli, gnncomm.bench; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"  # figures import it when drawn: training alone never pays for it
