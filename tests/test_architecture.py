"""The layout rules of the package (design.md §2-3, issue 10), checked on its source.

Imports form no cycle; only the engines (and lowering and the reference) ask a layer what
kind it is; the emitters do not reach into the simulators; modules stay focused.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "codesign"
MAX_LINES = 410
# asking a layer its IR type is for the engines, the lowering (which makes layers) and the
# reference (the one oracle, deliberately independent of the engines); the hls4ml baseline
# backs hls4ml's Dense only, so it names the one kind it can take
KIND_CHECKS_ALLOWED = (
    "engines/",
    "frontend/lower.py",
    "frontend/lower_layers.py",
    "reference.py",
    "baseline/hls4ml_dense.py",
)
IR_TYPE_CHECK = re.compile(r"isinstance\(.*(?<!nn\.)\b(Dense|Conv2d|Pool2d|Add)\b")
IR_KIND_CHECK = re.compile(r"\.kind (==|!=|in|not in) .*\b(dense|conv2d|pool2d|add)\b")


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The codesign modules `path` imports at run time (inside functions too)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    skipped = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _is_type_checking(node)
        for child in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name in modules:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules around it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        stack.append(name)
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                return stack[stack.index(other) :] + [other]
            if other not in state and (found := visit(other)):
                return found
        stack.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (found := visit(name)):
            return found
    return None


def _ancestors(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_no_import_cycle() -> None:
    graph = _graph()
    # a package imports its submodules, never the other way round: leave out the edges from a
    # module to the packages that hold it, which Python resolves before the module runs
    graph = {
        name: {o for o in others if o not in _ancestors(name)} for name, others in graph.items()
    }
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph) or [])}"


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize(
    ("importer", "forbidden"),
    [
        ("codesign.ir", ("codesign.engines", "codesign.emit", "codesign.cost", "codesign.sim")),
        ("codesign.emit", ("codesign.sim", "codesign.flows", "codesign.cli")),
        ("codesign.engines", ("codesign.emit", "codesign.sim", "codesign.flows", "codesign.cost")),
        ("codesign.frontend.lower", ("codesign.boards", "codesign.engines")),
    ],
)
def test_stage_boundaries(importer: str, forbidden: tuple[str, ...]) -> None:
    for name, imports in _graph().items():
        if name == importer or name.startswith(importer + "."):
            bad = sorted(i for i in imports if i.startswith(forbidden))
            assert not bad, f"{name} imports {bad}"


def test_only_the_engines_ask_a_layer_its_kind() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(KIND_CHECKS_ALLOWED):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if IR_TYPE_CHECK.search(line) or IR_KIND_CHECK.search(line):
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_modules_stay_focused() -> None:
    long = {
        path.relative_to(PACKAGE).as_posix(): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_package_is_typed() -> None:
    assert (PACKAGE / "py.typed").is_file()
