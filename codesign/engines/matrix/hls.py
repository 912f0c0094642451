"""The matrix engine's HLS view-model: what `hls_templates/layer.h.j2` prints for a layer.

The block-sparse tile schedule over the kept blocks; a Conv2d runs it once per output
position on that position's zero-padded im2col patch. The accumulators keep every product
bit, LeakyReLU multiplies by alpha as an ac_fixed of ALPHA_FRAC fraction bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from codesign.engines.hls_common import (
    OUTPUT,
    ActivationView,
    CppType,
    KernelView,
    Port,
    activation_view,
    common_fields,
    cpp_type,
    identifiers,
    lines,
    raw_literal,
    raw_table_type,
)
from codesign.ir.graph import Conv2d, ConvGeometry, Dense

BIAS_PER_LINE = 8
INDICES_PER_LINE = 16
PATTERN_MAX_COLUMNS = 64  # wider block patterns are not drawn in the layer header


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
class MatrixView(KernelView):
    """A Dense or Conv2d layer: the block-sparse matrix and its tiling."""

    rows: int  # of the matrix: output channels of a Conv2d
    cols: int  # of the matrix: the patch Cin·Kh·Kw of a Conv2d
    conv: ConvGeometry | None  # a Conv2d's input, kernel, stride, padding and output map
    input_map: tuple[int, int, int] | None  # a Dense after Flatten: the (C, H, W) map it reads
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
    bias_table = raw_table_type(formats.bias)
    weight_table = raw_table_type(formats.weight)
    bias_literals = [raw_literal(int(raw), bias_table) for raw in bias]
    name = layer.name
    common = common_fields(layer)
    input_type = cpp_type(name, "input", formats.input)
    output_type = cpp_type(name, "output", formats.output)
    activation = activation_view(name, layer.activation, layer.alpha)
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
        input_map=layer.input_map,
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
                rows=[[raw_literal(int(raw), weight_table) for raw in row] for row in block],
            )
            for index, block in enumerate(csr.blocks)
        ],
        block_col_lines=lines([int(col) for col in csr.col_idx], INDICES_PER_LINE),
        slot_block=slots.tolist(),
        slot_row=[[int(block_row_of[k]) if k >= 0 else -1 for k in row] for row in slots],
        bias_lines=lines(bias_literals, BIAS_PER_LINE),
        pattern=_pattern(csr.row_ptr, csr.col_idx, grid_cols),
        ids=ids,
        identifiers=identifiers(common, types, *ids.__dict__.values()),
    )


def _pattern(
    row_ptr: npt.NDArray[np.int64], col_idx: npt.NDArray[np.int64], grid_cols: int
) -> list[str]:
    """One line per block-row, `#` for a kept block; none when too wide to read."""
    if grid_cols > PATTERN_MAX_COLUMNS:
        return []
    pattern = []
    for start, end in zip(row_ptr[:-1], row_ptr[1:], strict=True):
        kept = set(int(col) for col in col_idx[start:end])
        pattern.append("".join("#" if col in kept else "." for col in range(grid_cols)))
    return pattern
