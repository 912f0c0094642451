"""Test graphs with chosen block patterns, and projects written from them (HLS emit and csim)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt

from codesign import reference
from codesign.boards import Board
from codesign.emit.hls import emit_hls
from codesign.emit.plan import BuildPlan, write_plan
from codesign.ir import Activation, Dense, Graph
from codesign.passes import BuildOptions, build
from codesign.records.design import graph_to_files
from codesign.vectors import vector_files

FloatArray = npt.NDArray[np.float64]


def block_sparse(
    rng: np.random.Generator,
    shape: tuple[int, int],
    block: tuple[int, int],
    keep_per_row: int | None = None,
    density: float = 1.0,
    empty_rows: Iterable[int] = (),
) -> FloatArray:
    """Random weights whose zero blocks follow a pattern.

    `keep_per_row` keeps that many blocks in every block-row (balanced); otherwise each block
    is kept with probability `density`. Block-rows in `empty_rows` keep nothing.
    """
    rows, cols = shape
    br, bc = block
    grid_rows, grid_cols = -(-rows // br), -(-cols // bc)
    if keep_per_row is not None:
        kept = np.zeros((grid_rows, grid_cols), dtype=bool)
        for row in range(grid_rows):
            kept[row, rng.choice(grid_cols, size=keep_per_row, replace=False)] = True
    else:
        kept = rng.random((grid_rows, grid_cols)) < density
    kept[list(empty_rows), :] = False
    mask = np.kron(kept, np.ones(block, dtype=bool))[:rows, :cols]
    # Fan-in scaling keeps pre-activations of similar size layer after layer.
    weight = rng.normal(size=shape) / np.sqrt(max(1.0, mask.sum(axis=1).mean()))
    return np.where(mask, weight, 0.0)


def dense(
    name: str,
    weight: FloatArray,
    rng: np.random.Generator,
    block: tuple[int, int] = (1, 4),
    relu: bool = True,
) -> Dense:
    bias = rng.normal(size=weight.shape[0]) * 0.1
    activation = Activation.RELU if relu else Activation.NONE
    return Dense(name, name, weight, bias, activation, block)


def build_graph(
    name: str,
    layers: list[Dense],
    reuse: int | Mapping[str, int],
    calibration: FloatArray,
    weight_bits: int = 8,
    act_bits: int = 16,
) -> Graph:
    graph = Graph(name, (layers[0].in_features,), tuple(layers))
    options = BuildOptions(calibration, reuse=reuse, weight_bits=weight_bits, act_bits=act_bits)
    return build(graph, options)


def mlp(
    seed: int,
    sizes: list[int],
    reuse: int | Mapping[str, int],
    keep_per_row: list[int | None] | None = None,
    name: str = "mlp",
) -> tuple[Graph, FloatArray]:
    """A ReLU MLP with 1x4 blocks (no activation on the last layer) and its test inputs."""
    rng = np.random.default_rng(seed)
    keeps = keep_per_row or [None] * (len(sizes) - 1)
    layers = [
        dense(
            f"fc{index + 1}",
            block_sparse(rng, (fan_out, fan_in), (1, 4), keep_per_row=keep),
            rng,
            relu=index < len(sizes) - 2,
        )
        for index, (fan_in, fan_out, keep) in enumerate(
            zip(sizes[:-1], sizes[1:], keeps, strict=True)
        )
    ]
    calibration = rng.normal(size=(256, sizes[0]))
    x = rng.normal(size=(32, sizes[0]))
    return build_graph(name, layers, reuse, calibration), x


def project_plan(graph: Graph, x: FloatArray, board: Board) -> BuildPlan:
    """Everything `generate` would write that csim needs: design, vectors and the HLS project."""
    raw_x = reference.quantize_inputs(graph, x)
    files = dict(graph_to_files(graph))
    files.update(vector_files(graph, raw_x))
    return emit_hls(graph, board).merged(BuildPlan(files))


def write_project(graph: Graph, x: FloatArray, board: Board, folder: Path) -> Path:
    write_plan(project_plan(graph, x, board), folder)
    return folder
