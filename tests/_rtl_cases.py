"""Test graphs for the RTL: chosen block patterns, beats and reuse factors; projects from them.

`Engine` describes a fixed build (everything the SystemVerilog depends on); `engine_graph`
makes a layer for it from any block pattern and random raw values, dealing the blocks to its
tiles x RF slots, so that property tests vary only memory files and vectors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from codesign import reference
from codesign.emit.plan import BuildPlan, write_plan
from codesign.emit.rtl import emit_rtl
from codesign.engines import engine_for
from codesign.errors import ToolError
from codesign.ir import Activation, Dense, FixedPoint, Graph, Overflow, Rounding
from codesign.ir.fixed import RawArray
from codesign.ir.graph import Conv2d, ConvGeometry, LayerFormats, StreamWidths, Tiling, ceil_div
from codesign.passes import BuildOptions, build, compress
from codesign.records.design import graph_to_files
from codesign.sim import tools
from codesign.vectors import vector_files

FloatArray = npt.NDArray[np.float64]


def require_verilator() -> None:
    """Verilator, make and g++, or a skip that says why (CI installs them: there it fails)."""
    try:
        tools.verilator_bin_dir()
        tools.make()
        tools.gxx()
    except ToolError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"RTL simulation needs Verilator, make and g++: {error}")


def tiled(
    name: str,
    layers: list[Dense],
    reuse: int | Mapping[str, int],
    values_per_beat: int,
    calibration: FloatArray,
) -> Graph:
    graph = Graph(name, (layers[0].in_features,), tuple(layers))
    options = BuildOptions(calibration, reuse=reuse, values_per_beat=values_per_beat)
    return build(graph, options)


def write_project(graph: Graph, x: FloatArray, folder: Path) -> Path:
    """design.json/npz, vectors and rtl/ of `graph` with test inputs `x`: what simulate needs."""
    return write_raw_project(graph, reference.quantize_inputs(graph, x), folder)


def write_raw_project(graph: Graph, raw_x: RawArray, folder: Path) -> Path:
    """As `write_project`, with raw test inputs of the graph's input format."""
    files = dict(graph_to_files(graph))
    files.update(vector_files(graph, raw_x))
    write_plan(emit_rtl(graph).merged(BuildPlan(files)), folder)
    return folder


def with_formats(layer: Dense, **formats: Any) -> Dense:
    """`layer` with some of its formats replaced (the raw weights and biases stay)."""
    return replace(layer, formats=replace(layer.require_formats(), **formats))


def assert_rtlsim_ok(result: dict[str, Any], saturation_limit: float = 0.01) -> None:
    """Bit-exact, cycles and II within 2 of the model, and the outputs not trivial (§7)."""
    assert result["schema"] == "codesign.rtlsim/1"
    assert result["first_mismatch"] is None, result["first_mismatch"]
    for entry in [*result["layers"], result["network"]]:
        name = entry["name"]
        assert entry["outputs_match"], (name, entry["first_mismatch"])
        assert entry["mismatches"] == 0
        assert abs(entry["sim_cycles"] - entry["est_cycles"]) <= 2, entry
        assert abs(entry["sim_ii"] - entry["est_ii"]) <= 2, entry
        if entry["utilisation"] is None:  # no multipliers: no efficiency to claim
            assert entry["efficiency"] is None, entry
        else:
            assert entry["efficiency"] == pytest.approx(entry["ideal_ii"] / entry["sim_ii"])
        assert entry["nonzero_output_fraction"] >= 0.5, (name, "trivial pre-activations")
        assert entry["saturated_fraction"] < saturation_limit, (name, "saturated outputs")


# ---------------------------------------------------------------- fixed engine builds


@dataclass(frozen=True)
class Engine:
    """One fixed build: everything the SystemVerilog sources depend on."""

    name: str
    in_features: int
    out_features: int
    block: tuple[int, int]
    values_per_beat: int
    tiles: int
    reuse: int
    input: FixedPoint
    weight: FixedPoint
    output_width: int
    output_signed: bool
    output_shift: int  # accum.frac - output.frac; negative shifts left
    relu: bool
    rounding: Rounding = Rounding.RND
    overflow: Overflow = Overflow.SAT
    geometry: ConvGeometry | None = None  # a Conv2d build: in_features is the patch then

    @property
    def vector_in(self) -> int:
        """Values per input vector: the matrix's columns, or a conv's whole input map."""
        return self.geometry.in_size if self.geometry else self.in_features

    @property
    def grid(self) -> tuple[int, int]:
        return ceil_div(self.out_features, self.block[0]), ceil_div(self.in_features, self.block[1])

    def formats(self) -> LayerFormats:
        accum_frac = self.input.frac + self.weight.frac
        accum_width = self.input.width + self.weight.width + self.in_features.bit_length() + 1
        accum = FixedPoint(
            accum_width, accum_width - accum_frac, rounding=Rounding.TRN, overflow=Overflow.WRAP
        )
        bias = FixedPoint(accum_width - 1, accum_width - 1 - accum_frac)
        output_frac = accum_frac - self.output_shift
        output = FixedPoint(
            self.output_width,
            self.output_width - output_frac,
            signed=self.output_signed,
            rounding=self.rounding,
            overflow=self.overflow,
        )
        return LayerFormats(self.input, self.weight, bias, accum, output)


# Every grid fits the tiles x RF slots, so a fully dense pattern runs on the same build.
ENGINES = (
    # 2x2 blocks, nothing divides: 5x7 grid on 3 tiles x RF 12, 3 values per beat
    Engine("e13x10", 13, 10, (2, 2), 3, 3, 12, FixedPoint(16, 6), FixedPoint(8, 1), 16, True, 8,
           relu=True),
    # 1x4 blocks, unsigned input and output, truncating and wrapping, no ReLU
    Engine("e18x9", 18, 9, (1, 4), 4, 5, 9, FixedPoint(12, 4, signed=False), FixedPoint(6, 1),
           12, False, 6, relu=False, rounding=Rounding.TRN, overflow=Overflow.WRAP),
    # 1x2 blocks, unsigned weights, output wider than the accumulator's fraction (left shift)
    Engine("e11x6", 11, 6, (1, 2), 2, 12, 3, FixedPoint(5, 2), FixedPoint(4, 1, signed=False),
           20, True, -3, relu=False),
    # 3x1 blocks (a partial last block-row), one value per beat
    Engine("e7x5", 7, 5, (3, 1), 1, 2, 7, FixedPoint(10, 3), FixedPoint(8, 2), 8, True, 9,
           relu=True),
    # Conv2d: 2x5x6 input, 3x2 kernel, stride 2x1, padding 1x0 -> 5x3x5 output; the 12-column
    # patch in 2x4 blocks (a partial last block-row), 3 values per input beat, a 5-channel
    # pixel per output beat
    Engine("c5x12", 12, 5, (2, 4), 3, 2, 5, FixedPoint(12, 4), FixedPoint(8, 1), 14, True, 7,
           relu=True, geometry=ConvGeometry(2, 5, 6, (3, 2), (2, 1), (1, 0))),
    # Conv2d 1x1, stride 2 (a ResNet shortcut): 3x7x6 -> 4x4x3, its windows never read the last
    # input column, so the last position must still wait for the whole vector
    Engine("c4x3s2", 3, 4, (1, 4), 2, 2, 2, FixedPoint(10, 4), FixedPoint(8, 1), 12, True, 6,
           relu=False, geometry=ConvGeometry(3, 7, 6, (1, 1), (2, 2), (0, 0))),
)  # fmt: skip

PATTERNS = ("random", "balanced", "dense", "zero", "empty_rows")


def kept_blocks(
    engine: Engine, pattern: str, density: float, rng: np.random.Generator
) -> np.ndarray:
    grid_rows, grid_cols = engine.grid
    if pattern == "dense":
        return np.ones((grid_rows, grid_cols), dtype=bool)
    if pattern == "zero":
        return np.zeros((grid_rows, grid_cols), dtype=bool)
    if pattern == "balanced":
        keep = max(1, round(density * grid_cols))
        kept = np.zeros((grid_rows, grid_cols), dtype=bool)
        for row in range(grid_rows):
            kept[row, rng.choice(grid_cols, keep, replace=False)] = True
        return kept
    kept = rng.random((grid_rows, grid_cols)) < density
    if pattern == "empty_rows":
        kept[rng.choice(grid_rows, max(1, grid_rows // 2), replace=False)] = False
    return kept


def random_raw(fmt: FixedPoint, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Uniform raw values of `fmt`, with its extremes planted."""
    raw = rng.integers(fmt.min_raw, fmt.max_raw, size=shape, endpoint=True)
    flat = raw.reshape(-1)
    if flat.size >= 2:
        flat[rng.choice(flat.size, 2, replace=False)] = (fmt.min_raw, fmt.max_raw)
    return raw


def engine_graph(
    engine: Engine, kept: np.ndarray, rng: np.random.Generator, shuffle: bool
) -> Graph:
    """A layer of `engine`'s build with the `kept` block pattern, random raw values, and its
    blocks dealt to the engine's tiles x RF slots (in storage order, or shuffled)."""
    formats = engine.formats()
    shape = (engine.out_features, engine.in_features)
    mask = np.kron(kept, np.ones(engine.block, dtype=bool))[: shape[0], : shape[1]]
    weight_raw = np.where(mask, random_raw(formats.weight, shape, rng), 0)
    weight_raw[mask & (weight_raw == 0)] = 1  # keep every kept block visibly kept
    bias_bound = 1 << (formats.input.width + formats.weight.width - 2)
    bias_raw = rng.integers(-bias_bound, bias_bound, size=shape[0])
    fields: dict[str, Any] = dict(
        name="fc",
        source_name="fc",
        weight=formats.weight.to_float(weight_raw),
        bias=formats.bias.to_float(bias_raw),
        activation=Activation.RELU if engine.relu else Activation.NONE,
        block=engine.block,
        formats=formats,
        weight_raw=weight_raw.astype(np.int64),
        bias_raw=bias_raw.astype(np.int64),
    )
    layer = Conv2d(**fields, geometry=engine.geometry) if engine.geometry else Dense(**fields)
    graph = compress(Graph(engine.name, (engine.vector_in,), (layer,)))
    layer = graph.layers[0]
    nnz = layer.require_csr().nnz_blocks
    positions = engine.tiles * engine.reuse
    order = rng.permutation(positions)[:nnz] if shuffle else np.arange(nnz)
    slots = np.full(positions, -1, dtype=np.int64)
    slots[order] = np.arange(nnz)
    tiling = Tiling(engine.reuse, slots.reshape(engine.tiles, engine.reuse))
    beat = engine.values_per_beat
    out = engine_for(layer).output_width(layer, beat)  # a conv's beats carry whole pixels
    layer = replace(layer, tiling=tiling, widths=StreamWidths(beat, out))
    return replace(graph, layers=(layer,))
