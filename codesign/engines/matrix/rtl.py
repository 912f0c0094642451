"""The matrix engine's RTL view-model (rtl_sim/matrix_engine.sv.j2) and its memory files."""

from __future__ import annotations

import numpy as np

from codesign.engines.matrix.timing import ring_values, window_lanes
from codesign.engines.rtl_common import (
    ACTIVATION_CODES,
    SHIFT_BITS,
    EngineView,
    bit,
    cast_parameters,
    check_alpha,
    check_shift,
    hex_word,
)
from codesign.engines.stream import index_bits
from codesign.errors import FormatError
from codesign.ir.fixed import Overflow
from codesign.ir.graph import Conv2d, Dense, activation_frac_bits

MODULE = "matrix_engine"
PARTS = ("input_frames", "output_cast")
CONV_MODULE = "conv_engine"
CONV_PARTS = ("output_cast",)


def accumulator_width(layer: Dense) -> int:
    """Bits that hold every bias + sum of products exactly (the reference works in int64)."""
    formats = layer.require_formats()
    largest_input = max(-formats.input.min_raw, formats.input.max_raw)
    largest_weight = max(-formats.weight.min_raw, formats.weight.max_raw)
    largest_bias = max(-formats.bias.min_raw, formats.bias.max_raw)
    bound = layer.fan_in * largest_input * largest_weight + largest_bias
    return bound.bit_length() + 1


def output_shift(layer: Dense) -> int:
    """Fraction bits of the activated accumulator - output.frac: right (> 0) or left (< 0)
    shift of the output cast (LeakyReLU adds ALPHA_FRAC fraction bits)."""
    formats = layer.require_formats()
    return formats.accum.frac + activation_frac_bits(layer.activation) - formats.output.frac


def check_layer(layer: Dense) -> None:
    """Raise FormatError when the engines cannot implement the layer's formats exactly."""
    formats = layer.check_exact_formats()
    layer.require_csr()
    layer.require_tiling()
    narrow = formats.accum.width < accumulator_width(layer)
    if narrow and (formats.accum.overflow is not Overflow.WRAP or not formats.accum.signed):
        raise FormatError(
            f"layer {layer.name}: a narrowed accumulator must be signed and wrap (AC_WRAP)"
        )
    check_shift(layer, output_shift(layer))
    check_alpha(layer.name, layer.activation, layer.alpha)


def row_blocks(layer: Dense) -> int:
    """The blocks every block-row keeps when all keep as many (a balanced pattern), else 0.

    Blocks are dealt to tiles in storage order (engines/matrix/ir.py: tile), so in a
    balanced pattern slot t*RF + c is on block-row (t*RF + c) // row_blocks: structure the
    engine can use instead of reading the row from the slot ROM."""
    csr = layer.require_csr()
    kept = np.diff(csr.row_ptr)
    dealt = layer.require_tiling().slots.reshape(-1)[: csr.nnz_blocks]
    in_order = bool(np.array_equal(dealt, np.arange(csr.nnz_blocks)))
    balanced = kept.size > 0 and kept[0] > 0 and bool(np.all(kept == kept[0]))
    return int(kept[0]) if in_order and balanced else 0


def flattened_map(layer: Dense) -> tuple[tuple[str, str], ...]:
    """The map a Dense after Flatten reads (MAP_CHANNELS, MAP_HEIGHT, MAP_COLS), or none."""
    if layer.input_map is None:
        return ()
    keys = ("MAP_CHANNELS", "MAP_HEIGHT", "MAP_COLS")
    return tuple((key, str(value)) for key, value in zip(keys, layer.input_map, strict=True))


def _tile_parameters(layer: Dense) -> tuple[tuple[str, str], ...]:
    """The parameters both matrix engines share: stream widths, tiles, formats."""
    formats = layer.require_formats()
    tiling = layer.require_tiling()
    block = layer.require_csr().block
    return (
        ("IN_VALUES_PER_BEAT", str(layer.widths.input)),
        ("VALUES_PER_BEAT", str(layer.widths.output)),
        ("BLOCK_ROWS", str(block[0])),
        ("BLOCK_COLS", str(block[1])),
        ("TILES", str(tiling.tiles)),
        ("REUSE", str(tiling.reuse_factor)),
        ("ROW_BLOCKS", str(row_blocks(layer))),
        ("IN_WIDTH", str(formats.input.width)),
        ("IN_SIGNED", bit(formats.input.signed)),
        ("WEIGHT_WIDTH", str(formats.weight.width)),
        ("WEIGHT_SIGNED", bit(formats.weight.signed)),
        ("BIAS_WIDTH", str(formats.bias.width)),
        ("ACC_WIDTH", str(accumulator_width(layer))),
        ("ACC_WRAP", str(min(formats.accum.width, accumulator_width(layer)))),
        ("ACTIVATION", str(ACTIVATION_CODES[layer.activation])),
        *cast_parameters(formats.output),
    )


def _summary(layer: Dense, where: str) -> str:
    tiling = layer.require_tiling()
    block = layer.require_csr().block
    return (
        f"{layer.name} ({layer.kind}): {layer.shape[1]} -> {layer.shape[0]}{where}, "
        f"block {block[0]}x{block[1]}, {tiling.tiles} tiles x RF "
        f"{tiling.reuse_factor}, {layer.activation.value}"
    )


def engine_view(layer: Dense) -> EngineView:
    """A Dense layer's matrix_engine."""
    check_layer(layer)
    parameters = (
        ("ROWS", str(layer.shape[0])),
        ("COLUMNS", str(layer.shape[1])),
        ("IN_CHANNELS", str(layer.in_features)),
        *flattened_map(layer),
        *_tile_parameters(layer),
    )
    return EngineView(layer.name, MODULE, _summary(layer, ""), True, parameters, ("in",))


def conv_view(layer: Conv2d) -> EngineView:
    """A Conv2d layer's conv_engine: its map geometry and line buffer."""
    check_layer(layer)
    if layer.shape[0] % layer.widths.output:
        raise FormatError(
            f"layer {layer.name}: its output stream of {layer.widths.output} values a beat "
            f"does not divide its {layer.shape[0]} channels (the tile pass picks a divisor)"
        )
    g = layer.conv
    geometry = (
        ("IN_CHANNELS", g.in_channels),
        ("IN_HEIGHT", g.in_height),
        ("IN_COLS", g.in_width),
        ("KERNEL_H", g.kernel[0]),
        ("KERNEL_W", g.kernel[1]),
        ("STRIDE_H", g.stride[0]),
        ("STRIDE_W", g.stride[1]),
        ("PAD_H", g.padding[0]),
        ("PAD_W", g.padding[1]),
        ("OUT_HEIGHT", g.out_height),
        ("OUT_COLS", g.out_width),
        ("LINE_VALUES", ring_values(layer)),
        ("WINDOW_LANES", window_lanes(layer)),
    )
    parameters = (
        ("ROWS", str(layer.shape[0])),
        ("COLUMNS", str(layer.shape[1])),
        *((key, str(value)) for key, value in geometry),
        *_tile_parameters(layer),
    )
    where = (
        f" at {layer.positions} positions, a ring of {ring_values(layer)} values read"
        f" {window_lanes(layer)} a cycle"
    )
    return EngineView(layer.name, CONV_MODULE, _summary(layer, where), True, parameters, ("in",))


def schedule_words(layer: Dense) -> tuple[list[str], list[str]]:
    """Weight and slot words, index t*RF + c: tile t's block in compute cycle c."""
    csr = layer.require_csr()
    block_rows, block_cols = csr.block
    grid_rows, grid_cols = csr.grid
    row_bits, col_bits = index_bits(grid_rows), index_bits(grid_cols)
    weight_bits = layer.require_formats().weight.width
    block_row_of = csr.block_row_of()
    weight_words, slot_words = [], []
    for slot in layer.require_tiling().slots.reshape(-1):
        if slot < 0:
            weight_words.append(hex_word(0, block_rows * block_cols * weight_bits))
            slot_words.append(hex_word(0, 1 + row_bits + col_bits))
            continue
        packed = 0
        for position, raw in enumerate(np.asarray(csr.blocks[slot]).reshape(-1)):
            packed |= (int(raw) & ((1 << weight_bits) - 1)) << (position * weight_bits)
        weight_words.append(hex_word(packed, block_rows * block_cols * weight_bits))
        word = (1 << (row_bits + col_bits)) | (int(block_row_of[slot]) << col_bits)
        slot_words.append(hex_word(word | int(csr.col_idx[slot]), 1 + row_bits + col_bits))
    return weight_words, slot_words


def memory_words(layer: Dense) -> dict[str, list[str]]:
    """weights, word t*RF + c the block tile t computes in cycle c, element (i, j) at bits
    (i*Bc + j)*W; slots, the same words as {valid, block-row, block-column}; bias, one word
    per row of the padded block grid; shift, the output cast's shift, two's complement."""
    check_layer(layer)
    formats = layer.require_formats()
    csr = layer.require_csr()
    assert layer.bias_raw is not None
    weights, slots = schedule_words(layer)
    bias = np.zeros(csr.grid[0] * csr.block[0], dtype=np.int64)
    bias[: layer.shape[0]] = layer.bias_raw
    return {
        "weights": weights,
        "slots": slots,
        "bias": [hex_word(int(value), formats.bias.width) for value in bias],
        "shift": [hex_word(output_shift(layer), SHIFT_BITS)],
    }
