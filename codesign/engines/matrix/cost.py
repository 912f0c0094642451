"""The matrix engine's closed forms: cycles, DSP blocks, memories and logic, energy.

Cycles (checked against Verilator, which meets them exactly): a vector is loaded in
I = ceil(in_features / P) beats into one of two input buffers; compute takes C = RF cycles
for a Dense (in cycle c every tile multiplies its c-th block, Br×Bc products, and the Br
partial sums are added into the block-row's accumulators) and positions·RF for a Conv2d (the
same schedule per output position on that position's im2col patch); the O = ceil(out_features
/ P) output beats drain from an output frame. The last input beat is accepted in cycle I - 1,
compute follows at once (the schedule ROMs are read one cycle ahead), the result moves to the
output bank with the last compute cycle and the first output beat leaves in the next. Where
tiles do not divide the kept blocks a Conv2d loses the partly idle last cycle at every position
(positions·RF against ceil(positions·nnz_blocks / tiles)).

Resources (rtl_sim/matrix_engine.sv.j2; the HLS kernel layer.h.j2 mirrors it), per layer:
  multipliers  T·Br·Bc in T tiles; DSP blocks = ceil(multipliers / m), m multipliers per DSP
               block in the board's mode for the operand width (design.md §4). The Bc products
               of a block row are summed by the DSP blocks' sum-of-two and chainout adders,
               so that sum costs no ALM.
  weight ROM   all tiles read word c in compute cycle c, so the weights form ONE ROM of depth RF
               and width T·Br·Bc·w (w = weight bits); the slot ROM (valid, block-row,
               block-column of each tile's block) likewise has depth RF and width
               T·(1 + ceil(log2 grid_rows) + ceil(log2 grid_cols)).
  bias         read for every row at once in compute cycle 0: a constant folded into the
               accumulator's first add, so no memory.
  input buffer in_features·x registers (x = input bits); tile t reads its Bc inputs from any of
               the d_t block columns it visits, through Bc·x multiplexers of d_t inputs.
  accumulators acc_rows·a registers (a = accumulator bits); a row written by s tiles over the
               vector gets s adders of a bits.
  output       P lanes, each a multiplexer of out_beats accumulators, a rounding adder and a
               saturation comparison (a bits each).
  control      the phase register and the beat and cycle counters.
Conv2d (the same tiles applied once per output position, on that position's im2col patch):
  frames       the double-buffered input frame (2·in_features·x bits) and the working and
               output frames (2·out_features·a bits: sums are cast as they drain) are RAMs.
               Every tile reads Bc inputs per cycle from any address, so the input frame is
               replicated once per read port: T·Bc copies of each buffer, each copy placed by
               the ROM rules (M20K in simple dual-port mode: one write port for loading, one
               read port). The working frame is written one position (Cout values) at a time
               and the output frame read P values per beat: Cout banks.
  im2col       per tile input, an address adder and a padding comparison (index bits each).
  accumulators Cout rows only (one position at a time); the rest as for Dense.

Energy: multiplies = adds = MACs; every ROM word is read once per vector and position (depth
RF x width), constants (RF = 1) are not read; a Conv2d's input frame RAMs are read Bc values
per tile and cycle (macs·x bits) and its output frame written once (out_features·a bits).
"""

from __future__ import annotations

import numpy as np

from codesign.boards import Board
from codesign.engines.base import LayerCycles, stage_cycles
from codesign.engines.energy import (
    SRAM_READ_PJ_PER_BIT,
    EnergyEstimate,
    add_energy_pj,
    multiply_energy_pj,
    static_pj,
)
from codesign.engines.stream import (
    PHASE_BITS,
    Memory,
    ResourceEstimate,
    adder_alms,
    beats,
    estimate,
    index_bits,
    mux_alms,
    place_ram,
    place_rom,
)
from codesign.ir.graph import Conv2d, Dense, ceil_div


def cycles(layer: Dense) -> LayerCycles:
    tiling = layer.require_tiling()
    csr = layer.require_csr()
    block_size = csr.block[0] * csr.block[1]
    multipliers = tiling.tiles * block_size
    macs = csr.nnz_blocks * block_size * layer.positions
    return stage_cycles(
        beats(layer.in_features, tiling.values_per_beat),
        layer.positions * tiling.reuse_factor,
        beats(layer.out_features, tiling.values_per_beat),
        reuse_factor=tiling.reuse_factor,
        tiles=tiling.tiles,
        multipliers=multipliers,
        macs=macs,
        ideal_compute=ceil_div(macs, multipliers),
    )


def dsp_blocks(layer: Dense, board: Board) -> int:
    return board.dsps_for(cycles(layer).multipliers, layer.require_formats().operand_bits())


def _tile_columns(layer: Dense) -> list[int]:
    """Distinct block columns each tile reads over one vector."""
    slots = layer.require_tiling().slots
    col_idx = layer.require_csr().col_idx
    return [int(np.unique(col_idx[row[row >= 0]]).size) for row in slots]


def _row_writers(layer: Dense) -> list[int]:
    """For each block-row, the number of distinct tiles that add into it."""
    csr = layer.require_csr()
    block_rows = csr.block_row_of()
    writers: list[set[int]] = [set() for _ in range(csr.grid[0])]
    for tile_index, row in enumerate(layer.require_tiling().slots):
        for slot in row[row >= 0]:
            writers[int(block_rows[slot])].add(tile_index)
    return [len(tiles) for tiles in writers]


def _conv_frames(layer: Conv2d) -> tuple[tuple[Memory, ...], int]:
    """The conv engine's frame RAMs and its im2col address ALMs."""
    tiling = layer.require_tiling()
    formats = layer.require_formats()
    ports = tiling.tiles * layer.require_csr().block[1]
    channels = layer.out_shape[0]
    memories = tuple(
        place_ram(f"input_frame{i}", layer.in_features, formats.input.width, ports)
        for i in range(2)
    ) + tuple(
        # sums are cast as they drain: both frames hold accumulator-width values
        place_ram(name, ceil_div(layer.out_features, channels), formats.accum.width * channels, 1)
        for name in ("working_frame", "output_frame")
    )
    address = 2 * adder_alms(index_bits(layer.in_features)) * ports
    return memories, address


def resources(layer: Dense, board: Board) -> ResourceEstimate:
    csr = layer.require_csr()
    tiling = layer.require_tiling()
    formats = layer.require_formats()
    br, bc = csr.block
    grid_rows, grid_cols = csr.grid
    tiles, reuse = tiling.tiles, tiling.reuse_factor
    beat = tiling.values_per_beat
    x_bits, w_bits, a_bits = formats.input.width, formats.weight.width, formats.accum.width
    in_beats = beats(layer.in_features, beat)
    out_beats = beats(layer.out_features, beat)
    conv = isinstance(layer, Conv2d)
    # a conv accumulates one position (Cout rows) at a time and buffers frames in RAMs
    acc_rows = grid_rows * br if conv else max(grid_rows * br, out_beats * beat)
    slot_bits = 1 + index_bits(grid_rows) + index_bits(grid_cols)
    multipliers = tiles * br * bc

    memories: tuple[Memory, ...] = (
        place_rom("weights", reuse, tiles * br * bc * w_bits),
        place_rom("schedule", reuse, tiles * slot_bits),
    )
    address_alms = 0
    if isinstance(layer, Conv2d):
        frames, address_alms = _conv_frames(layer)
        memories += frames
    counter_bits = index_bits(in_beats) + index_bits(reuse) + index_bits(out_beats)
    # a conv's tiles read RAM copies (no input multiplexer) and its output lanes a RAM bank
    tile_columns = [] if conv else _tile_columns(layer)
    breakdown = {
        "input_mux": sum(bc * x_bits * mux_alms(columns) for columns in tile_columns),
        "accumulate": sum(s * br * adder_alms(a_bits) for s in _row_writers(layer)),
        "output": beat * (a_bits * mux_alms(1 if conv else out_beats) + 2 * adder_alms(a_bits)),
        "control": counter_bits + PHASE_BITS,
    }
    if conv:
        breakdown["im2col"] = address_alms
    registers = (
        (0 if conv else layer.in_features * x_bits)
        + acc_rows * a_bits
        + tiles * (br * bc * w_bits + slot_bits)
        + counter_bits
        + PHASE_BITS
    )
    dsp = board.dsps_for(multipliers, formats.operand_bits())
    return estimate(memories, breakdown, registers, multipliers, dsp)


def energy(layer: Dense, board: Board) -> EnergyEstimate:
    formats = layer.require_formats()
    csr = layer.require_csr()
    c = cycles(layer)
    grid_rows, grid_cols = csr.grid
    dense_macs = grid_rows * grid_cols * csr.block[0] * csr.block[1] * layer.positions
    per_mac = multiply_energy_pj(formats.input.width, formats.weight.width) + add_energy_pj(
        formats.accum.width
    )
    memories = resources(layer, board).memories
    roms = [m for m in memories if m.name in ("weights", "schedule")]
    rom_bits = sum(m.bits for m in roms if m.placement != "constant") * layer.positions
    if isinstance(layer, Conv2d):
        rom_bits += c.macs * formats.input.width
        rom_bits += layer.out_features * formats.accum.width
    return EnergyEstimate(
        macs=c.macs,
        dense_macs=dense_macs,
        rom_bits_read=rom_bits,
        multiply_pj=c.macs * multiply_energy_pj(formats.input.width, formats.weight.width),
        add_pj=c.macs * add_energy_pj(formats.accum.width),
        memory_pj=rom_bits * SRAM_READ_PJ_PER_BIT,
        dense_ops_pj=dense_macs * per_mac,
        static_pj=static_pj(board, c.est_cycles),
    )
