"""aekit's layers point one way: a module imports only from layers to its left (or its own),
``TYPE_CHECKING`` imports and imports inside functions included, and there is no import cycle.

The order is the one of docs/architecture.md:

    errors, config, serialization, optional -> data -> models -> training -> baselines ->
    plots -> pipeline -> api, estimator, detector, explain -> report -> runner -> apps, export ->
    commands, cli
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT_PACKAGE = "aekit"  # ``import aekit`` (the public face) is allowed from anywhere below it

# Left to right. A name matches the module itself and every module below it (a package).
LAYERS: list[tuple[str, ...]] = [
    ("aekit.errors", "aekit.config", "aekit.serialization", "aekit.optional"),
    ("aekit.data",),
    ("aekit.models",),
    ("aekit.training",),
    ("aekit.baselines",),
    # drawings of arrays (matplotlib only, no aekit types): any layer above may plot
    ("aekit.report_plots", "aekit.explain_plots"),
    ("aekit.pipeline",),
    ("aekit.api", "aekit.estimator", "aekit.detector", "aekit.detector_files",
     "aekit.detector_scores", "aekit.explain",
     "aekit.explanation",
     "aekit.explain_views"),
    ("aekit.report_html", "aekit.report", "aekit.detect_report"),
    ("aekit.runner",),
    ("aekit.apps", "aekit.export"),
    ("aekit.commands", "aekit.cli", "aekit.__main__"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int | None:
    """The index of ``module``'s layer in :data:`LAYERS` (None: the root package)."""
    if module == ROOT_PACKAGE:
        return None
    for index, names in enumerate(LAYERS):
        if any(module == name or module.startswith(name + ".") for name in names):
            return index
    raise AssertionError(f"{module} is in no layer of tests/test_layers.py: add it to LAYERS")


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """aekit modules imported anywhere in ``path``: module level, inside functions and under
    ``if TYPE_CHECKING:`` alike (an annotation that names a class depends on its module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name in modules and name != ROOT_PACKAGE:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in (SRC / "aekit").rglob("*.py")}
    return {m: imports_of(p, set(paths)) - {m} for m, p in paths.items()}


def test_every_module_has_a_layer():
    for module in import_graph():
        layer_of(module)


def test_imports_point_left():
    wrong = [f"{m} (layer {layer_of(m)}) imports {dep} (layer {layer_of(dep)})"
             for m, deps in sorted(import_graph().items()) for dep in sorted(deps)
             if layer_of(m) is not None and layer_of(dep) is not None
             and layer_of(dep) > layer_of(m)]
    assert not wrong, "imports that point right (up a layer):\n" + "\n".join(wrong)


def test_no_import_cycles():
    graph = import_graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for dep in sorted(graph[m]):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_check_sees_function_and_type_checking_imports(tmp_path):
    """The walk finds an import hidden in a function and one under TYPE_CHECKING."""
    pkg = tmp_path / "aekit"
    pkg.mkdir()
    (pkg / "low.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from aekit.high import X\n"
        "def f():\n    import aekit.other\n")
    found = imports_of(pkg / "low.py", {"aekit.high", "aekit.other"})
    assert found == {"aekit.high", "aekit.other"}


@pytest.mark.parametrize("module, layer", [("aekit.errors", 0), ("aekit.training.trainer", 3),
                                           ("aekit.pipeline.fit", 6), ("aekit.cli", 11)])
def test_layer_of(module, layer):
    assert layer_of(module) == layer
