"""C simulation with g++: the emitted HLS C++ is bit-exact to the NumPy reference.

Each case is one g++ build; together they cover RF 1 and RF > 1, 1x4 and 2x2 blocks, dimensions
not divisible by the block, an empty block-row, an all-zero layer, idle tile slots, a 41-bit
accumulator and no activation on the last layer; and, on real images, the pruned mnist-cnn
(conv-pool-conv-pool-linear), a residual block (conv + BN + ReLU, an add with LeakyReLU,
average pooling) and a graph with an add reading the network input, LeakyReLU in a Conv2d and
a Dense layer, unequal kernel, stride and padding, and max pooling over negative values, at
RF 1 and at time-multiplexed RFs. The instrumented build also counts the products: exactly
nnz_blocks·Br·Bc (× output positions for a Conv2d) per layer and vector, none for pooling and
adds, so pruned blocks cost none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from _graphs import mixed_graph, mnist_cnn_graph, residual_graph, separable_graph
from _hls_cases import block_sparse, build_graph, dense, mlp, write_project

from codesign import reference
from codesign.boards import Board, load_board
from codesign.errors import ToolError
from codesign.ir import FixedPoint, Graph, Overflow
from codesign.ir.graph import Dense
from codesign.records.csim import SCHEMA
from codesign.sim.csim import csim_output_dir, run_csim
from codesign.vectors import parse_rows

pytestmark = pytest.mark.csim

CSIM_KEYS = {
    "schema",
    "outputs_match",
    "n_vectors",
    "layers",
    "nonzero_output_fraction",
    "saturated_fraction",
    "build_seconds",
    "run_seconds",
}
LAYER_KEYS = {"name", "outputs_match", "mismatches", "overflows", "accum_overflows"}


@pytest.fixture(scope="module")
def board() -> Board:
    return load_board("arria10-gx1150")


def mixed_case() -> tuple[Graph, np.ndarray]:
    """1x4 at RF 1 with an empty block-row; 2x2 at RF 3 on 9 rows; last layer linear, RF 2."""
    rng = np.random.default_rng(11)
    layers = [
        dense("fc1", block_sparse(rng, (12, 13), (1, 4), density=0.7, empty_rows=[3]), rng),
        dense("fc2", block_sparse(rng, (9, 12), (2, 2), density=0.6), rng, block=(2, 2)),
        dense("fc3", block_sparse(rng, (5, 9), (1, 4), density=0.8), rng, relu=False),
    ]
    x = rng.normal(size=(32, 13))
    graph = build_graph("mixed", layers, {"fc1": 1, "fc2": 3, "fc3": 2}, rng.normal(size=(256, 13)))
    return graph, x


def edge_case() -> tuple[Graph, np.ndarray]:
    """Fan-in 300 with 12-bit weights and 20-bit activations (41-bit accumulator) at RF 4
    with idle slots, then an all-zero layer, then a dense 2x2 layer without activation."""
    rng = np.random.default_rng(12)
    layers = [
        dense("wide", block_sparse(rng, (16, 300), (1, 4), density=0.5), rng),
        dense("zeros", np.zeros((8, 16)), rng, block=(2, 2)),
        dense("head", block_sparse(rng, (5, 8), (2, 2)), rng, block=(2, 2), relu=False),
    ]
    x = rng.normal(size=(32, 300))
    graph = build_graph(
        "edge_cases",
        layers,
        {"wide": 4, "zeros": 2, "head": 2},
        rng.normal(size=(256, 300)),
        weight_bits=12,
        act_bits=20,
    )
    wide = graph.layers[0]
    assert wide.formats is not None and wide.formats.accum.width > 32
    assert wide.csr is not None and wide.csr.nnz_blocks % 4 != 0  # the last tile idles
    return graph, x


def sparse_mlp_case() -> tuple[Graph, np.ndarray]:
    """64-64-32-10, 75% balanced block sparsity (4 of 16 blocks per row; 2 of 8), RF 1."""
    return mlp(3, [64, 64, 32, 10], 1, keep_per_row=[4, 4, 2], name="sparse_mlp")


CASES: dict[str, Callable[[], tuple[Graph, np.ndarray]]] = {
    "mixed": mixed_case,
    "edge": edge_case,
    "sparse_mlp": sparse_mlp_case,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_csim_is_bit_exact_and_computes_kept_blocks_only(
    case: str, toolchain: None, board: Board, tmp_path: Path
) -> None:
    graph, x = CASES[case]()
    project = write_project(graph, x, board, tmp_path / case)

    result = run_csim(project, count_macs=True)

    assert set(result) == CSIM_KEYS, result.get("first_mismatch")
    assert result["schema"] == SCHEMA
    assert result["outputs_match"] is True
    assert result["n_vectors"] == len(x)
    assert [entry["name"] for entry in result["layers"]] == [layer.name for layer in graph.layers]
    assert all(e["outputs_match"] and e["mismatches"] == 0 for e in result["layers"])
    # The check only counts on non-trivial outputs (design.md §7).
    assert result["nonzero_output_fraction"] >= 0.5
    assert result["saturated_fraction"] < 0.01
    assert result["build_seconds"] > 0 and result["run_seconds"] > 0

    check_macs(graph, project, len(x))


def expected_macs(graph: Graph) -> list[int]:
    """Products per vector: every kept block whole, at every output position; none else."""
    return [
        layer.require_csr().nnz_blocks * layer.block[0] * layer.block[1] * layer.positions
        if isinstance(layer, Dense)
        else 0
        for layer in graph.layers
    ]


def check_macs(graph: Graph, project: Path, n_vectors: int) -> None:
    macs = parse_rows((csim_output_dir(project) / "macs.txt").read_text())
    expected = expected_macs(graph)
    assert macs.shape == (n_vectors, len(graph.layers) + 1)
    assert (macs[:, :-1] == expected).all()
    assert (macs[:, -1] == sum(expected)).all()  # the component computes the same products


CONV_CASES: dict[str, Callable[[], tuple[Graph, np.ndarray]]] = {
    "mnist_cnn-rf1": lambda: mnist_cnn_graph(reuse=1),
    "mnist_cnn-rf4": lambda: mnist_cnn_graph(reuse=4),
    "resblock-rf1": lambda: residual_graph(reuse=1),
    "resblock-rf4": lambda: residual_graph(reuse=4),
    "mixed-rf3": lambda: mixed_graph(reuse=3),
    "separable-rf2": lambda: separable_graph(reuse=2),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv_and_residual_graphs_are_bit_exact(
    case: str, toolchain: None, board: Board, tmp_path: Path
) -> None:
    graph, x = CONV_CASES[case]()
    kinds = {layer.kind for layer in graph.layers}
    assert "conv2d" in kinds and "pool2d" in kinds
    project = write_project(graph, x, board, tmp_path / case)

    result = run_csim(project, count_macs=True)

    assert result["outputs_match"] is True, result.get("first_mismatch")
    assert set(result) == CSIM_KEYS and result["n_vectors"] == len(x)
    assert [entry["name"] for entry in result["layers"]] == [layer.name for layer in graph.layers]
    for entry in result["layers"]:
        assert set(entry) == LAYER_KEYS
        assert entry["outputs_match"] and entry["mismatches"] == 0
        assert entry["overflows"] == 0 and entry["accum_overflows"] == 0
    assert result["nonzero_output_fraction"] >= 0.5
    assert result["saturated_fraction"] < 0.01
    check_macs(graph, project, len(x))
    if case.startswith("mnist_cnn"):  # 784 positions x 24 kept 1x4 blocks in conv1
        assert expected_macs(graph)[0] == 784 * 24 * 4


@pytest.mark.parametrize("overflow", [Overflow.SAT, Overflow.WRAP])
def test_saturated_and_wrapped_outputs_are_counted_and_bit_exact(
    overflow: Overflow, toolchain: None, board: Board, tmp_path: Path
) -> None:
    """The last layer's output narrowed to s6.7 (values in [-0.25, 0.25)): many overflow."""
    graph, x = mixed_graph(reuse=2)
    last = graph.layers[-1]
    assert isinstance(last, Dense) and last.formats is not None
    narrow = FixedPoint(6, -1, overflow=overflow)
    layers = (*graph.layers[:-1], replace(last, formats=replace(last.formats, output=narrow)))
    graph = replace(graph, layers=layers)
    project = write_project(graph, x, board, tmp_path / "project")

    result = run_csim(project)

    assert result["outputs_match"] is True, result.get("first_mismatch")
    traces = reference.run(graph, reference.quantize_inputs(graph, x))
    assert [entry["overflows"] for entry in result["layers"]] == [t.saturated for t in traces]
    assert result["layers"][-1]["overflows"] > 0
    assert all(entry["overflows"] == 0 for entry in result["layers"][:-1])


def test_csim_reports_the_first_mismatch(toolchain: None, board: Board, tmp_path: Path) -> None:
    graph, x = mlp(5, [8, 8, 4], 2)
    project = write_project(graph, x, board, tmp_path / "project")
    assert run_csim(project)["outputs_match"] is True

    expected_file = project / "vectors" / "fc2.txt"
    rows = parse_rows(expected_file.read_text())
    rows[3, 2] += 1
    expected_file.write_text("".join(" ".join(map(str, row)) + "\n" for row in rows))
    result = run_csim(project, rebuild=False)

    assert result["outputs_match"] is False
    fc1, fc2 = result["layers"]
    no_overflow = {"overflows": 0, "accum_overflows": 0}
    assert fc1 == {"name": "fc1", "outputs_match": True, "mismatches": 0, **no_overflow}
    assert fc2 == {"name": "fc2", "outputs_match": False, "mismatches": 1, **no_overflow}
    assert result["first_mismatch"] == {
        "layer": "fc2",
        "vector": 3,
        "index": 2,
        "expected": int(rows[3, 2]),
        "got": int(rows[3, 2] - 1),
    }


def test_compile_error_names_the_compiler_output_and_log(
    toolchain: None, board: Board, tmp_path: Path
) -> None:
    graph, x = mlp(6, [8, 4], 1)
    project = write_project(graph, x, board, tmp_path / "project")
    header = project / "hls" / "layers" / "fc1.h"
    header.write_text(header.read_text() + "\nthis is not C++;\n")

    with pytest.raises(ToolError) as caught:
        run_csim(project)
    message = str(caught.value)
    assert "C simulation build failed" in message
    assert "fc1.h" in message and "error" in message
    assert str(project / "hls" / "build" / "csim-build.log") in message


def test_missing_ac_types_is_a_tool_error(
    toolchain: None, board: Board, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph, x = mlp(6, [8, 4], 1)
    project = write_project(graph, x, board, tmp_path / "project")
    monkeypatch.setenv("AC_TYPES", str(tmp_path / "nowhere"))
    with pytest.raises(ToolError, match="ac_fixed.h not found"):
        run_csim(project)


def test_missing_compiler_is_a_tool_error(
    board: Board, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph, x = mlp(6, [8, 4], 1)
    project = write_project(graph, x, board, tmp_path / "project")
    monkeypatch.setenv("CXX", "no-such-compiler-codesign")
    with pytest.raises(ToolError, match="no-such-compiler-codesign"):
        run_csim(project)


def test_hostile_layer_names_compile_and_stay_bit_exact(
    toolchain: None, board: Board, tmp_path: Path
) -> None:
    """PyTorch names that are C++ keywords or library names, start with a digit, hold
    punctuation or non-ASCII letters, or collide once made safe (`inner.int` / `inner_int`,
    `9 lives!` / `layer_9_lives`, `Main` / `main`) become unique identifiers through lowering;
    the project compiles and is bit-exact. (Python keywords such as `class` cannot name a
    module that torch.fx traces, so they cannot reach the lowering.)"""
    from collections import OrderedDict

    import torch
    from torch import nn

    from codesign.frontend.lower import lower
    from codesign.passes import BuildOptions, build

    torch.manual_seed(0)
    modules = OrderedDict(
        [
            ("int", nn.Linear(16, 12)),
            ("static", nn.ReLU()),
            ("inner", nn.Sequential(OrderedDict([("int", nn.Linear(12, 12))]))),
            ("inner_int", nn.Linear(12, 12)),
            ("std", nn.ReLU()),
            ("9 lives!", nn.Linear(12, 12)),
            ("layer_9_lives", nn.Linear(12, 12)),
            ("register", nn.ReLU()),
            ("Main", nn.Linear(12, 12)),
            ("main", nn.Linear(12, 8)),
            ("x-y", nn.ReLU()),
            ("__x", nn.Linear(8, 8)),
            ("\u00dc", nn.Linear(8, 5)),
        ]
    )
    graph = lower(nn.Sequential(modules), "class", (16,))
    names = [layer.name for layer in graph.layers]
    assert len({name.lower() for name in names}) == len(names) == 9
    assert [layer.source_name for layer in graph.layers][:3] == ["int", "inner.int", "inner_int"]
    rng = np.random.default_rng(0)
    graph = build(graph, BuildOptions(rng.normal(size=(256, 16)), block=(1, 4), reuse=2))
    project = write_project(graph, rng.normal(size=(16, 16)), board, tmp_path / "project")

    result = run_csim(project)

    assert result["outputs_match"] is True, result.get("first_mismatch")
    assert [entry["name"] for entry in result["layers"]] == names
    assert result["nonzero_output_fraction"] >= 0.5 and result["saturated_fraction"] < 0.01
