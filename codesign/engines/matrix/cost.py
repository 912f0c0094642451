"""The matrix engine's closed forms: cycles, DSP blocks, memories and logic, energy.

Cycles (checked against Verilator, which meets them exactly): a vector is loaded in I =
ceil(in_features / P_in) beats into one of two input buffers; compute takes C = RF cycles for a
Dense (in cycle c every tile multiplies its c-th block, Br×Bc products, and the Br partial sums
are added into the block-row's accumulators) and positions·RF for a Conv2d (the same
schedule per output position on that position's window, read from the line buffer into one
of two window frames while the other computes, `timing`); the O =
ceil(out_features / P_out) output beats drain from an output frame (P_in, P_out: the layer's
stream widths). A Dense's last
input beat is accepted in cycle I - 1, compute follows at once (the schedule ROMs are read one
cycle ahead), the result moves to the output bank with the last compute cycle and the first
output beat leaves in the next: est_cycles = I + C + O. A Conv2d starts each position on its
window and sends each pixel as it is done, so its latency comes from the beat-by-beat model
of `timing` (est_ii stays max(I, C, O)). Where tiles do not divide the kept blocks a Conv2d
loses the partly idle last cycle at every position (positions·RF against
ceil(positions·nnz_blocks / tiles)).

Resources (rtl_sim/matrix_engine.sv.j2 and conv_engine.sv.j2; the HLS kernel layer.h.j2
mirrors the first), per layer:
  multipliers  T·Br·Bc in T tiles; DSP blocks = ceil(d / m), m multipliers per DSP block in
               the board's mode for the operand width (design.md §4), d the products that take
               a DSP multiplier. At RF > 1 every product does (d = T·Br·Bc: the weights are
               registers loaded from the ROM). At RF 1 the weights are constants wired into
               the datapath (a ROM of one word), and a synthesiser merges identical products
               (one input times one weight value) and builds a product by a weight that is
               zero or, after its trailing zero bits, fits in 3 signed bits (±1 or ±3 times a
               power of two) from a shift and at most one adder: d counts the other distinct
               (input, weight) pairs (`dsp_multipliers`; the rule of Yosys's mul2dsp, whose
               DSP mapping needs a constant of at least 4 bits, which every DSP-inferring
               synthesiser applies to powers of two at least). The Bc products of a block
               row are summed by the DSP blocks' sum-of-two and chainout adders, so that sum
               costs no ALM on Arria 10 (`dsp_adder_alms` says what it would cost as logic:
               T·Br·(Bc-1) adders of a bits, which a synthesiser that does not use those
               adders, Yosys for Cyclone V, builds from ALMs).
  weight ROM   all tiles read word c in compute cycle c, so the weights form ONE ROM of depth RF
               and width T·Br·Bc·w (w = weight bits); the slot ROM (valid, block-row,
               block-column of each tile's block) likewise has depth RF and width
               T·(1 + ceil(log2 grid_rows) + ceil(log2 grid_cols)).
  bias         read for every row at once in compute cycle 0: a constant folded into the
               accumulator's first add, so no memory.
  input buffer two input frames of in_features·x registers (double-buffered); a tile input reads
               one of them at its block column: at RF 1 a 2:1 multiplexer per bit of each
               input read (shared by the tiles that read it), at RF > 1 a (2·2^v):1 one per
               tile input bit, v the column bits that vary over the tile's slots (the others
               are constants folded away); ceil((N-1)/3) ALMs per bit (`_input_mux_alms`).
  accumulators the real rows' a-bit accumulators and output frame (registers). Which tiles add
               into a block-row: in a balanced pattern dealt in storage order the engine
               derives the row from the slot's position (matrix/rtl.py: row_blocks), so a row
               visited by s tiles gets s adders of a bits; otherwise the row is a run-time
               index and every tile has an adder and a grid_rows:1 multiplexer per row bit.
  tiles        at RF > 1 each tile's weight and slot register bits that differ between the
               words it loads (the others, and all of them at RF 1, hold constants).
  output       P_out lanes (at most out_features), each a multiplexer of out_beats
               accumulators, a rounding adder and a saturation comparison (a bits each).
  control      the phase register and the beat and cycle counters.
Conv2d (the same tiles applied once per output position, on that position's window):
  line buffer  a ring of LINE_VALUES input values (timing.ring_values: Kh + Sh lines and a
               beat at least, more where a faster producer must not be stalled), x bits each.
               A position's window (K = Cin·Kh·Kw values) is read from it once, WINDOW_LANES
               >= ceil(K / RF) values a cycle (`timing.window_lanes`); the ring is banked
               so that the lanes of a read cycle and the values of an input beat meet
               distinct banks (`ring_banks`), each bank placed by the ROM rules (M20K in
               simple dual-port mode: one write port, one read); per lane an address adder
               and its wrap, the padding's zero, and a rotation from the banks.
  window       two window frames (one is written while the other computes): a RAM of 2·L
               words of WINDOW_LANES values (L = ceil(K / lanes), one word written a cycle),
               copied once per tile, each tile reading one word a cycle; the tile takes its
               Bc values from one of the word's lanes / Bc places, a (2^v):1 multiplexer
               per bit (v: the place bits that vary over its slots) (`_window`).
  output banks two banks of one pixel's Cout sums (2·Cout·a register bits); a lane reads
               one of the 2·Cout / P_out values it may send.
  im2col       per window lane, the ring address adder and its wrap, the padding's zero and
               the rotation from the ring's banks (`_line_buffer`).
  accumulators Cout rows only (one position at a time); the rest as for Dense.

Energy: multiplies = adds = MACs; every ROM word is read once per vector and position (depth
RF x width), constants (RF = 1) are not read; a Conv2d's window is read from its line
buffer once per position (positions·K·x bits) and its output banks written once (out_features·a
bits).
"""

from __future__ import annotations

from dataclasses import replace

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
from codesign.engines.matrix import timing
from codesign.engines.matrix.rtl import row_blocks
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
    stages = stage_cycles(
        beats(layer.in_features, layer.widths.input),
        layer.positions * tiling.reuse_factor,
        beats(layer.out_features, layer.widths.output),
        reuse_factor=tiling.reuse_factor,
        tiles=tiling.tiles,
        multipliers=multipliers,
        macs=macs,
    )
    if not isinstance(layer, Conv2d):
        return stages
    # alone, a conv starts on its first window: its latency follows the input beat by beat
    offered = np.arange(stages.in_beats, dtype=np.int64)
    alone = timing.conv_timing(layer, offered, timing.ring_values(layer))
    return replace(stages, est_cycles=int(alone.outputs[-1]) + 1)


CONSTANT_DSP_MIN_BITS = 4  # a constant factor narrower than this is shifts and adders


def _constant_bits(value: int) -> int:
    """Signed bits of a nonzero constant after its trailing zero bits (3 for ±3, 4 for 5)."""
    while value % 2 == 0:
        value //= 2
    return (value if value >= 0 else ~value).bit_length() + 1


def constant_products(layer: Dense) -> tuple[int, int]:
    """At RF 1: the distinct (input, weight) products that take a DSP multiplier, and those
    by ±3 times a power of two (one adder each); products by ±1·2^k and zero cost nothing."""
    csr = layer.require_csr()
    bc = csr.block[1]
    dsp: set[tuple[int, int]] = set()
    adder: set[tuple[int, int]] = set()
    for block_column, block in zip(csr.col_idx, csr.blocks, strict=True):
        for (_, j), value in np.ndenumerate(block):
            if value == 0:
                continue
            bits = _constant_bits(int(value))
            pair = (int(block_column) * bc + j, int(value))
            if bits >= CONSTANT_DSP_MIN_BITS:
                dsp.add(pair)
            elif bits == CONSTANT_DSP_MIN_BITS - 1:
                adder.add(pair)
    return len(dsp), len(adder)


def dsp_multipliers(layer: Dense) -> int:
    """The products that take a DSP multiplier (see the module docstring)."""
    if layer.require_tiling().reuse_factor > 1:
        return cycles(layer).multipliers
    return constant_products(layer)[0]


def dsp_blocks(layer: Dense, board: Board) -> int:
    return board.dsps_for(dsp_multipliers(layer), layer.require_formats().operand_bits())


def _row_writers(layer: Dense) -> list[int]:
    """For each block-row, the tiles whose adder feeds it: the distinct tiles that visit it
    when the engine knows the rows from the pattern's structure (a balanced pattern dealt in
    order, matrix/rtl.py: row_blocks), else every tile (the row is read from the slot ROM)."""
    csr = layer.require_csr()
    tiles = layer.require_tiling().tiles
    if row_blocks(layer) == 0:
        return [tiles] * csr.grid[0]
    block_rows = csr.block_row_of()
    writers: list[set[int]] = [set() for _ in range(csr.grid[0])]
    for tile_index, row in enumerate(layer.require_tiling().slots):
        for slot in row[row >= 0]:
            writers[int(block_rows[slot])].add(tile_index)
    return [len(tiles) for tiles in writers]


def _input_mux_alms(layer: Dense) -> int:
    """A Dense tile input reads one of the two input frames at its block column. At RF 1 the
    column is a constant: one 2:1 multiplexer per bit of every input some tile reads (tiles
    reading one input share it). At RF > 1 it is the tile's slot register, whose bits that
    are equal in every word the tile visits hold constants a synthesiser folds away: a
    (2·2^v):1 multiplexer per bit, v the column bits that vary over the tile's slots."""
    csr = layer.require_csr()
    bc = csr.block[1]
    x_bits = layer.require_formats().input.width
    slots = layer.require_tiling().slots
    if slots.shape[1] == 1:
        return int(np.unique(csr.col_idx).size) * bc * x_bits * mux_alms(2)
    total = 0
    for row in slots:
        columns = np.where(row >= 0, csr.col_idx[np.maximum(row, 0)], 0)  # idle: word 0
        varying = int(np.bitwise_or.reduce(columns ^ columns[0])).bit_count()
        total += bc * x_bits * mux_alms(2 << varying)
    return total


def _varying_bits(words: np.ndarray) -> int:
    """Bits of non-negative integer words (tiles × RF × fields) that differ across RF."""
    changed = np.bitwise_or.reduce(words ^ words[:, :1], axis=1)
    return int(np.bitwise_count(changed).sum())


def _tile_register_bits(layer: Dense) -> int:
    """At RF > 1: each tile's weight and slot register bits that differ between the words it
    loads (a bit equal in every word holds a constant, which synthesis removes). The words
    are matrix/rtl.py's schedule words, field by field: weights, then {valid, row, col}."""
    csr = layer.require_csr()
    slots = layer.require_tiling().slots
    kept = slots >= 0
    index = np.maximum(slots, 0)
    mask = (1 << layer.require_formats().weight.width) - 1
    weights = np.where(kept[..., None, None], csr.blocks[index], 0).astype(np.int64) & mask
    tiles, reuse = slots.shape
    fields = (
        np.stack([kept.astype(np.int64), csr.block_row_of()[index], csr.col_idx[index]], axis=-1)
        * kept[..., None]
    )
    return _varying_bits(weights.reshape(tiles, reuse, -1)) + _varying_bits(fields)


def ring_banks(layer: Conv2d) -> int:
    """Banks of the line buffer: a value (y, x, c) lives in bank (c mod m, y mod Kh, x mod Kw),
    m the smallest count that gives every window read lane and every input beat value a bank
    of its own. The L consecutive patch columns (c, ky, kx) a read cycle takes are distinct
    modulo m·Kh·Kw, so they fall in distinct banks; the P_in consecutive values of a beat
    likewise where the beat holds one pixel's channels (a conv's output beats do; a beat of
    the network input that spans pixels may meet a bank twice, which this does not count)."""
    kernel = layer.conv.kernel[0] * layer.conv.kernel[1]
    m = max(ceil_div(timing.window_lanes(layer), kernel), layer.widths.input)
    return m * kernel


def _line_buffer(layer: Conv2d, board: Board) -> tuple[Memory, int]:
    """The conv engine's line buffer, banked so that each window read lane and each input
    value of a beat meets a bank of its own (`ring_banks`), and the ALMs of its reads: per
    lane the ring address adder and its wrap, the padding's zero, and the rotation that
    takes each lane's value from its bank (log2(banks) stages of 2:1 multiplexers, two to
    an ALM). The RTL's ring is one array read at WINDOW_LANES addresses; the banks are how
    the estimate builds it (a synthesiser that does not bank it copies it per lane)."""
    lanes = timing.window_lanes(layer)
    ring = timing.ring_values(layer)
    x_bits = layer.require_formats().input.width
    banks = ring_banks(layer)
    memory = place_ram("line_buffer", ring, x_bits, banks, board, banked=True)
    rotate = ceil_div(lanes * x_bits * index_bits(banks), 2)
    address = lanes * (2 * adder_alms(index_bits(ring)) + x_bits * mux_alms(2)) + rotate
    return memory, address


def _window(layer: Conv2d, board: Board) -> tuple[Memory, int]:
    """The conv engine's two window frames, a RAM of 2·L words of WINDOW_LANES values copied
    once per tile (each tile reads one word a cycle), and each tile's word multiplexer: its
    Bc values from one of the word's lanes / Bc block columns, (2^v):1 per bit, v the bits of
    that place that vary over the tile's slots, at most lanes / Bc (none at RF 1: the place
    is a constant), and where lanes / Bc is not a power of two the division that splits the
    column into word and place."""
    csr = layer.require_csr()
    bc = csr.block[1]
    x_bits = layer.require_formats().input.width
    lanes = timing.window_lanes(layer)
    slots = layer.require_tiling().slots
    memory = place_ram(
        "window", 2 * timing.load_cycles(layer), lanes * x_bits, slots.shape[0], board
    )
    places = lanes // bc
    mux = 0
    for row in slots:
        columns = np.where(row >= 0, csr.col_idx[np.maximum(row, 0)], 0) % places
        varying = int(np.bitwise_or.reduce(columns ^ columns[0])).bit_count()
        mux += bc * x_bits * mux_alms(min(1 << varying, places))
    if slots.shape[1] > 1 and places & (places - 1):
        # the column's word and place: a constant division of the slot register, two ALMs
        # per result bit (each a function of the column's few bits)
        words = timing.load_cycles(layer)
        mux += slots.shape[0] * 2 * (index_bits(words) + index_bits(places))
    return memory, mux


def resources(layer: Dense, board: Board) -> ResourceEstimate:
    csr = layer.require_csr()
    tiling = layer.require_tiling()
    formats = layer.require_formats()
    br, bc = csr.block
    grid_rows, grid_cols = csr.grid
    tiles, reuse = tiling.tiles, tiling.reuse_factor
    beat = min(layer.widths.output, layer.out_features)  # output lanes (the rest are zero)
    x_bits, w_bits, a_bits = formats.input.width, formats.weight.width, formats.accum.width
    in_beats = beats(layer.in_features, layer.widths.input)
    out_beats = beats(layer.out_features, layer.widths.output)
    conv = isinstance(layer, Conv2d)
    # a conv accumulates one position (Cout rows) at a time and buffers frames in RAMs
    acc_rows = grid_rows * br if conv else max(grid_rows * br, out_beats * layer.widths.output)
    slot_bits = 1 + index_bits(grid_rows) + index_bits(grid_cols)
    multipliers = tiles * br * bc

    memories: tuple[Memory, ...] = (
        place_rom("weights", reuse, tiles * br * bc * w_bits, board),
        place_rom("schedule", reuse, tiles * slot_bits, board),
    )
    address_alms = window_mux = 0
    if isinstance(layer, Conv2d):
        line_buffer, address_alms = _line_buffer(layer, board)
        window, window_mux = _window(layer, board)
        memories += (line_buffer, window)
    counter_bits = index_bits(in_beats) + index_bits(reuse) + index_bits(out_beats)
    writers = _row_writers(layer)
    crossbar = 0 if row_blocks(layer) else tiles * br * a_bits * mux_alms(grid_rows)
    dsp_products, adder_products = constant_products(layer) if reuse == 1 else (multipliers, 0)
    breakdown = {
        "input_mux": 0 if conv else _input_mux_alms(layer),
        "accumulate": sum(s * br * adder_alms(a_bits) for s in writers) + crossbar,
        "output": beat
        * (
            a_bits * mux_alms(2 * out_beats // layer.positions if conv else out_beats)
            + 2 * adder_alms(a_bits)
        ),
        "control": counter_bits + PHASE_BITS,
    }
    if conv:
        breakdown["im2col"] = address_alms
        breakdown["window_mux"] = window_mux
    if reuse == 1:  # products by ±3·2^k: one adder of the input's width plus two bits
        breakdown["constant_products"] = adder_products * adder_alms(x_bits + 2)
    # two input frames and the output frame (a Dense; a conv: its two output banks of a
    # pixel), the accumulators of the real rows, and at RF > 1 each tile's weight and slot
    # registers (at RF 1 they hold constants, which synthesis folds away)
    tile_registers = 0 if reuse == 1 else _tile_register_bits(layer)
    frames = (
        2 * layer.shape[0] * a_bits
        if conv
        else (2 * layer.in_features * x_bits + layer.out_features * a_bits)
    )
    registers = (
        frames + min(acc_rows, layer.shape[0]) * a_bits + tile_registers + counter_bits + PHASE_BITS
    )
    dsp = board.dsps_for(dsp_products, formats.operand_bits())
    # the Bc - 1 adders that sum each block row's products, inside the DSP blocks
    in_dsp = tiles * br * (bc - 1) * adder_alms(a_bits)
    return estimate(memories, breakdown, registers, multipliers, dsp, in_dsp)


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
    if isinstance(layer, Conv2d):  # every window read once from the ring, the sums banked
        rom_bits += layer.positions * layer.shape[1] * formats.input.width
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
