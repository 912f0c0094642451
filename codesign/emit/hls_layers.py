"""View-models of the HLS kernels, one per layer kind: what `hls_templates/` prints for a layer.

  Dense, Conv2d  `layer.h.j2`: the block-sparse tile schedule over the kept blocks; a Conv2d
                 runs it once per output position on that position's zero-padded im2col patch;
  Pool2d         `pool2d.h.j2`: max or average over each window, fully unrolled;
  Add            `add.h.j2`: the exact sum of two vectors, the activation, the cast.

Every kernel computes the exact value `codesign.reference` defines before the cast to its
output type, so the ac_fixed conversion (rounding, overflow) gives the reference's bits: the
accumulators keep every product bit, LeakyReLU multiplies by alpha as an ac_fixed of
ALPHA_FRAC fraction bits (`alpha_raw`), average pooling by 1/area of POOL_FRAC fraction bits
(`pool_reciprocal_raw`), and an Add sums in a type one bit wider than both inputs aligned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from codesign.ir.fixed import FixedPoint, Overflow, Rounding
from codesign.ir.graph import (
    ALPHA_FRAC,
    POOL_FRAC,
    Activation,
    Add,
    Conv2d,
    ConvGeometry,
    Dense,
    Layer,
    Pool2d,
    PoolMode,
    alpha_raw,
    pool_reciprocal_raw,
)

BIAS_PER_LINE = 8
INDICES_PER_LINE = 16
PATTERN_MAX_COLUMNS = 64  # wider block patterns are not drawn in the layer header
OUTPUT = "y"  # every kernel's output parameter
_T = TypeVar("_T")


@dataclass(frozen=True)
class CppType:
    name: str  # the typedef: <layer>_<role>_t
    role: str  # input, weight, accum, output, ...
    spelling: str  # ac_fixed<...>
    describe: str  # s16.10
    rounding: str
    overflow: str


@dataclass(frozen=True)
class Port:
    """One array parameter of a kernel: `type name[size]`."""

    type: str
    name: str
    size: int


@dataclass(frozen=True)
class ActivationView:
    kind: str  # "none", "relu" or "leaky_relu"
    label: str  # for comments and the README: "none", "ReLU", "LeakyReLU(0.125)"
    alpha_raw: int = 0  # LeakyReLU: round(alpha * 2^ALPHA_FRAC)
    alpha_type: CppType | None = None


@dataclass(frozen=True)
class BlockView:
    index: int
    block_row: int
    block_col: int
    rows: list[list[str]]  # Br rows of Bc raw weights


@dataclass(frozen=True)
class MatrixIds:
    weights: str
    bias: str
    block_col: str
    slot_block: str
    slot_row: str
    accumulate: str  # acc = bias + W x_padded, the tile schedule
    alpha: str  # LeakyReLU's slope (a local constant)


@dataclass(frozen=True)
class KernelView:
    """What every layer's kernel template needs: names, ports, types and vector sizes."""

    kind: str
    template: str
    name: str
    source_name: str
    header: str
    inputs: list[Port]
    output: Port
    buffer: str  # the layer's output buffer in the component and the testbench
    tb_stream: str  # the testbench's output file of the layer
    types: list[CppType]
    in_features: int
    out_features: int
    identifiers: list[str]  # every C++ name the layer defines (checked for clashes)


@dataclass(frozen=True)
class MatrixView(KernelView):
    """A Dense or Conv2d layer: the block-sparse matrix and its tiling."""

    rows: int  # of the matrix: output channels of a Conv2d
    cols: int  # of the matrix: the patch Cin·Kh·Kw of a Conv2d
    conv: ConvGeometry | None  # a Conv2d's input, kernel, stride, padding and output map
    positions: int
    block_rows: int
    block_cols: int
    grid_blocks: int
    padded_inputs: int
    padded_outputs: int
    nnz_blocks: int
    tiles: int
    reuse_factor: int
    has_idle_slots: bool
    activation: ActivationView
    input_type: CppType
    weight_type: CppType
    accum_type: CppType
    output_type: CppType
    weight_table: str  # the integer type of the raw weight table
    bias_table: str  # and of the raw bias table
    blocks: list[BlockView]
    block_col_lines: list[list[int]]
    slot_block: list[list[int]]
    slot_row: list[list[int]]
    bias_lines: list[list[str]]
    pattern: list[str]
    ids: MatrixIds


@dataclass(frozen=True)
class PoolView(KernelView):
    average: bool
    channels: int
    in_height: int
    in_width: int
    kernel_height: int
    kernel_width: int
    stride_height: int
    stride_width: int
    out_height: int
    out_width: int
    area: int
    reciprocal_raw: int  # average: round(2^POOL_FRAC / area)
    input_type: CppType
    output_type: CppType
    sum_type: CppType | None  # average: the exact window sum
    reciprocal_type: CppType | None


@dataclass(frozen=True)
class AddView(KernelView):
    activation: ActivationView
    a_type: CppType
    b_type: CppType
    sum_type: CppType  # both inputs aligned to the finer fraction, one more integer bit
    output_type: CppType


LayerView = MatrixView | PoolView | AddView


def layer_view(layer: Layer) -> LayerView:
    if isinstance(layer, Dense):
        return matrix_view(layer)
    if isinstance(layer, Pool2d):
        return pool_view(layer)
    return add_view(layer)


def _common(layer: Layer) -> dict[str, str]:
    return {
        "kind": layer.kind,
        "name": layer.name,
        "source_name": layer.source_name,
        "header": f"layers/{layer.name}.h",
        "buffer": f"{layer.name}_out",
        "tb_stream": f"{layer.name}_txt",
    }


def _identifiers(common: dict[str, str], types: Sequence[CppType], *more: str) -> list[str]:
    """Every name a layer's C++ defines at file scope or in the component and testbench."""
    return [common["name"], common["buffer"], common["tb_stream"], *(t.name for t in types), *more]


def matrix_view(layer: Dense) -> MatrixView:
    formats = layer.require_formats()
    csr = layer.require_csr()
    tiling = layer.require_tiling()
    assert layer.bias_raw is not None
    block_rows, block_cols = csr.block
    grid_rows, grid_cols = csr.grid
    block_row_of = csr.block_row_of()
    slots = np.asarray(tiling.slots, dtype=np.int64)
    bias = np.zeros(grid_rows * block_rows, dtype=np.int64)
    bias[: layer.shape[0]] = layer.bias_raw
    bias_table = _raw_table_type(formats.bias)
    weight_table = _raw_table_type(formats.weight)
    bias_literals = [_raw_literal(int(raw), bias_table) for raw in bias]
    name = layer.name
    common = _common(layer)
    input_type = cpp_type(name, "input", formats.input)
    output_type = cpp_type(name, "output", formats.output)
    activation = _activation_view(name, layer.activation, layer.alpha)
    types = [input_type, cpp_type(name, "weight", formats.weight)]
    types += [cpp_type(name, "accum", formats.accum), output_type]
    types += [activation.alpha_type] if activation.alpha_type else []
    ids = MatrixIds(
        weights=f"{name}_weights",
        bias=f"{name}_bias",
        block_col=f"{name}_block_col",
        slot_block=f"{name}_slot_block",
        slot_row=f"{name}_slot_row",
        accumulate=f"{name}_accumulate",
        alpha=f"{name}_alpha",
    )
    return MatrixView(
        **common,
        template="layer.h.j2",
        inputs=[Port(input_type.name, "x", layer.in_features)],
        output=Port(output_type.name, OUTPUT, layer.out_features),
        types=types,
        in_features=layer.in_features,
        out_features=layer.out_features,
        rows=layer.shape[0],
        cols=layer.shape[1],
        conv=layer.conv if isinstance(layer, Conv2d) else None,
        positions=layer.positions,
        block_rows=block_rows,
        block_cols=block_cols,
        grid_blocks=grid_rows * grid_cols,
        padded_inputs=grid_cols * block_cols,
        padded_outputs=grid_rows * block_rows,
        nnz_blocks=csr.nnz_blocks,
        tiles=tiling.tiles,
        reuse_factor=tiling.reuse_factor,
        has_idle_slots=bool(np.any(slots < 0)),
        activation=activation,
        input_type=input_type,
        weight_type=types[1],
        accum_type=types[2],
        output_type=output_type,
        weight_table=weight_table,
        bias_table=bias_table,
        blocks=[
            BlockView(
                index=index,
                block_row=int(block_row_of[index]),
                block_col=int(csr.col_idx[index]),
                rows=[[_raw_literal(int(raw), weight_table) for raw in row] for row in block],
            )
            for index, block in enumerate(csr.blocks)
        ],
        block_col_lines=_lines([int(col) for col in csr.col_idx], INDICES_PER_LINE),
        slot_block=slots.tolist(),
        slot_row=[[int(block_row_of[k]) if k >= 0 else -1 for k in row] for row in slots],
        bias_lines=_lines(bias_literals, BIAS_PER_LINE),
        pattern=_pattern(csr.row_ptr, csr.col_idx, grid_cols),
        ids=ids,
        identifiers=_identifiers(common, types, *ids.__dict__.values()),
    )


def pool_view(layer: Pool2d) -> PoolView:
    name = layer.name
    common = _common(layer)
    input_format = layer.in_format()
    input_type = cpp_type(name, "input", input_format)
    output_type = cpp_type(name, "output", layer.out_format())
    average = layer.mode is PoolMode.AVG
    reciprocal = pool_reciprocal_raw(layer.area) if average else 0
    sum_type = reciprocal_type = None
    types = [input_type, output_type]
    if average:
        growth = (layer.area - 1).bit_length()  # the sum of `area` values needs this many more
        sum_type = cpp_type(
            name,
            "sum",
            _exact(input_format.width + growth, input_format.integer + growth, input_format.signed),
        )
        bits = max(1, reciprocal.bit_length())
        reciprocal_type = cpp_type(name, "reciprocal", _exact(bits, bits - POOL_FRAC, False))
        types += [sum_type, reciprocal_type]
    return PoolView(
        **common,
        template="pool2d.h.j2",
        inputs=[Port(input_type.name, "x", layer.in_features)],
        output=Port(output_type.name, OUTPUT, layer.out_features),
        types=types,
        in_features=layer.in_features,
        out_features=layer.out_features,
        average=average,
        channels=layer.channels,
        in_height=layer.in_height,
        in_width=layer.in_width,
        kernel_height=layer.kernel[0],
        kernel_width=layer.kernel[1],
        stride_height=layer.stride[0],
        stride_width=layer.stride[1],
        out_height=layer.out_height,
        out_width=layer.out_width,
        area=layer.area,
        reciprocal_raw=reciprocal,
        input_type=input_type,
        output_type=output_type,
        sum_type=sum_type,
        reciprocal_type=reciprocal_type,
        identifiers=_identifiers(common, types),
    )


def add_view(layer: Add) -> AddView:
    name = layer.name
    common = _common(layer)
    a_format, b_format = layer.require_input_formats()
    a_type = cpp_type(name, "a", a_format)
    b_type = cpp_type(name, "b", b_format)
    output_type = cpp_type(name, "output", layer.out_format())
    signed = a_format.signed or b_format.signed
    # An unsigned input needs one more integer bit in a signed sum; the sum one more still.
    integer = 1 + max(f.integer + (signed and not f.signed) for f in (a_format, b_format))
    frac = layer.sum_frac
    sum_type = cpp_type(name, "sum", _exact(integer + frac, integer, signed))
    activation = _activation_view(name, layer.activation, layer.alpha)
    types = [a_type, b_type, sum_type, output_type]
    types += [activation.alpha_type] if activation.alpha_type else []
    features = layer.features
    return AddView(
        **common,
        template="add.h.j2",
        inputs=[Port(a_type.name, "a", features), Port(b_type.name, "b", features)],
        output=Port(output_type.name, OUTPUT, features),
        types=types,
        in_features=features,
        out_features=features,
        activation=activation,
        a_type=a_type,
        b_type=b_type,
        sum_type=sum_type,
        output_type=output_type,
        identifiers=_identifiers(common, types, f"{name}_alpha"),
    )


def _activation_view(name: str, activation: Activation, alpha: float) -> ActivationView:
    if activation is Activation.RELU:
        return ActivationView("relu", "ReLU")
    if activation is Activation.LEAKY_RELU:
        raw = alpha_raw(alpha)
        bits = abs(raw).bit_length() + 1
        alpha_type = cpp_type(name, "alpha", _exact(bits, bits - ALPHA_FRAC, True))
        return ActivationView("leaky_relu", f"LeakyReLU({alpha:g})", raw, alpha_type)
    return ActivationView("none", "none")


def _exact(width: int, integer: int, signed: bool) -> FixedPoint:
    """An intermediate format that holds its values exactly (its modes are never exercised)."""
    return FixedPoint(width, integer, signed, Rounding.TRN, Overflow.WRAP)


def cpp_type(layer: str, role: str, fixed: FixedPoint) -> CppType:
    return CppType(
        name=f"{layer}_{role}_t",
        role=role,
        spelling=fixed.cpp_type(),
        describe=fixed.describe(),
        rounding=fixed.rounding.value,
        overflow=fixed.overflow.value,
    )


def _raw_table_type(fixed: FixedPoint) -> str:
    """The narrowest <cstdint> type that holds every raw value of `fixed`."""
    for bits in (8, 16, 32, 64):
        if fixed.width <= bits:
            return f"{'' if fixed.signed else 'u'}int{bits}_t"
    raise ValueError(f"{fixed.describe()} is wider than 64 bits")


def _raw_literal(raw: int, table: str) -> str:
    """A C++ integer literal of `raw`; 64-bit values beyond int's range get a suffix."""
    wide = table.endswith("64_t") and not -(1 << 31) <= raw < 1 << 31
    return f"{raw}LL" if wide else str(raw)


def _lines(values: Sequence[_T], per_line: int) -> list[list[_T]]:
    return [list(values[start : start + per_line]) for start in range(0, len(values), per_line)]


def _pattern(row_ptr: np.ndarray, col_idx: np.ndarray, grid_cols: int) -> list[str]:
    """One line per block-row, `#` for a kept block; none when too wide to read."""
    if grid_cols > PATTERN_MAX_COLUMNS:
        return []
    lines = []
    for start, end in zip(row_ptr[:-1], row_ptr[1:], strict=True):
        kept = set(int(col) for col in col_idx[start:end])
        lines.append("".join("#" if col in kept else "." for col in range(grid_cols)))
    return lines
