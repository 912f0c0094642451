"""Every design codesign emits is strict SystemVerilog: slang and Verilator report nothing.

slang (PyPI `pyslang`, an IEEE 1800 compiler) catches what Verilator lets through, such as a
signal used before its declaration under `default_nettype none`, an error for slang, Yosys
and Quartus. Each design is elaborated with the network as top, with every engine module and
part alone (default parameters, as a per-engine synthesis reads it) and with the simulation
harness as top (as rtlsim compiles it). Nothing is waived: the test takes every diagnostic the
compilation holds (all of slang's warnings, not only those its command line enables by
default) and those of its analysis pass with the unused-signal checks. The designs cover
every engine kind, each engine part, and the networks the RTL tests build; each is also
linted by `verilator --lint-only -Wall`. A few seconds in all.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from _graphs import mixed_graph, mnist_cnn_graph, residual_graph, small_cnn_graph
from _rtl_cases import ENGINES, Engine, engine_graph, kept_blocks

from codesign.emit import rtl
from codesign.engines import ENGINES as ENGINE_TABLE
from codesign.engines import modules
from codesign.errors import ToolError
from codesign.ir import FixedPoint, Graph
from codesign.sim import tools
from tests.conftest import make_graph


def _engine_design(engine: Engine) -> Callable[[], Graph]:
    def build() -> Graph:
        rng = np.random.default_rng(0)
        return engine_graph(engine, kept_blocks(engine, "dense", 1.0, rng), rng, False)

    return build


# A 1x1 layer: one value, one beat, one tile at RF 1 (every index width at its minimum).
ONE_BY_ONE = Engine(
    "e1x1", 1, 1, (1, 1), 4, 1, 1, FixedPoint(8, 2), FixedPoint(4, 1), 8, True, 3, relu=False
)

DESIGNS: dict[str, Callable[[], Graph]] = {
    # the demo's digits-mlp shape (64-64-32-10), 1x4 blocks, three quarters pruned
    "dense_chain": lambda: make_graph([(64, 64), (32, 64), (10, 32)], keep=0.25, reuse=4)[0],
    # conv (stride 2, padding), max pool, linear
    "small_cnn": lambda: small_cnn_graph(reuse=2)[0],
    # conv-pool-conv-pool-linear
    "mnist_cnn": lambda: mnist_cnn_graph(reuse=4)[0],
    # convs with BatchNorm and ReLU, a residual add with LeakyReLU, average pooling
    "residual": lambda: residual_graph(reuse=2)[0],
    # an add reading the network input, LeakyReLU conv and linear, non-square max pooling
    "mixed": lambda: mixed_graph(reuse=3)[0],
    # single layers alone: signed and unsigned formats, left and right shifts, 1x4, 1x2, 2x2
    # and 3x1 blocks, a conv build, and the 1x1 layer
    **{engine.name: _engine_design(engine) for engine in (*ENGINES, ONE_BY_ONE)},
}


@cache
def design_sources(name: str) -> tuple[Graph, dict[str, str]]:
    """The design's graph and all its sources (network.sv even for a single layer)."""
    graph = DESIGNS[name]()
    return graph, rtl.sources(graph)


def elaborations(graph: Graph) -> list[tuple[str, tuple[str, ...]]]:
    """(top, files in compilation order): the network, each module alone, the harness."""
    tops = [("network", rtl.design_files(graph))]
    parts_of = {engine.module: engine.rtl_parts for engine in ENGINE_TABLE.values()}
    for module in modules(graph):
        parts = parts_of.get(module, ())
        tops.append((module, tuple(f"{name}.sv" for name in (*parts, module))))
    # rtlsim compiles a single layer's harness without network.sv (it drives the engine)
    harness = rtl.sources(graph, network=len(graph.layers) > 1)
    tops.append((rtl.HARNESS_TOP, tuple(harness)))
    return tops


def write_sources(name: str, folder: Path) -> Graph:
    graph, files = design_sources(name)
    for file_name, text in files.items():
        (folder / file_name).write_text(text)
    return graph


def require_pyslang() -> ModuleType:
    """pyslang, or a skip that says why (CI installs the dev extra: there it fails)."""
    try:
        import pyslang
    except ImportError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"strict SystemVerilog checks need pyslang (`pip install 'pyslang>=12.1'`, "
                    f"in the dev extra): {error}")  # fmt: skip
    return pyslang


def require_verilator() -> Path:
    """The verilator script, or a skip that says why (CI installs it: there it fails)."""
    try:
        return tools.verilator_bin_dir() / "verilator"
    except ToolError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"the lint needs Verilator: {error}")


def slang_report(pyslang: ModuleType, files: list[Path], top: str) -> tuple[int, str]:
    """The number of diagnostics slang has for the design under `top`, and their text."""
    from pyslang import analysis, ast, syntax

    sources = pyslang.SourceManager()
    options = ast.CompilationOptions()
    options.topModules = {top}
    compilation = ast.Compilation(pyslang.Bag([options]))
    for path in files:
        compilation.addSyntaxTree(syntax.SyntaxTree.fromFile(str(path), sources))
    # every diagnostic the compilation issued: errors and all warnings, default-off ones too
    diagnostics = list(compilation.getAllDiagnostics())
    compilation.freeze()
    analysis_options = analysis.AnalysisOptions()
    analysis_options.flags = analysis.AnalysisFlags.CheckUnused
    analyzer = analysis.AnalysisManager(analysis_options)
    analyzer.analyze(compilation)
    diagnostics += list(analyzer.getDiagnostics())
    return len(diagnostics), pyslang.DiagnosticEngine.reportAll(sources, diagnostics)


@pytest.mark.parametrize("name", list(DESIGNS))
def test_slang_elaborates_every_top_without_a_diagnostic(name: str, tmp_path: Path) -> None:
    pyslang = require_pyslang()
    graph = write_sources(name, tmp_path)
    failures = []
    for top, files in elaborations(graph):
        count, text = slang_report(pyslang, [tmp_path / f for f in files], top)
        if count:
            failures.append(f"top {top}: {count} diagnostics\n{text}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", list(DESIGNS))
def test_verilator_lint_is_silent(name: str, tmp_path: Path) -> None:
    verilator = require_verilator()
    graph = write_sources(name, tmp_path)
    tops = [(top, files) for top, files in elaborations(graph) if top in ("network", "harness")]
    for top, files in tops:
        lint = subprocess.run(
            [str(verilator), "--lint-only", "-Wall", "--timescale", "1ns/1ps",
             "--top-module", top, *(str(tmp_path / f) for f in files)],
            capture_output=True,
            text=True,
        )  # fmt: skip
        assert lint.returncode == 0 and "%Warning" not in lint.stderr, (top, lint.stderr)
