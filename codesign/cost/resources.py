"""Resource model of the block-sparse engine per board: DSP blocks, M20K, MLABs, ALMs, registers.

It counts the hardware of the RTL engines (rtl_sim/matrix_engine.sv.j2, pool_engine.sv.j2,
add_engine.sv.j2), which the HLS kernels
(hls_templates/layer.h.j2) mirrors: per layer

  multipliers  T·Br·Bc in T tiles; DSP blocks = ceil(multipliers / m), m multipliers per DSP
               block in the board's mode for the operand width (codesign.hardware, design.md §4).
               The Bc products of a block row are summed by the DSP blocks' sum-of-two and
               chainout adders, so that sum costs no ALM.
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
Pool2d: its frame is double-buffered (2·in_features·x bits, each a RAM in P·Kh·Kw banks: a
  beat's windows are a regular pattern, so banks serve it where the conv needs copies); per
  output lane Kh·Kw - 1 comparators (max) or adders plus one constant multiplier built from
  adders (avg).
Add: operand frames (features·x bits each, RAMs in P banks for the P values of a beat): two per
  operand, and for the operand that arrives early (a residual skip) as many as
  codesign.hardware.input_frames gives, so the network keeps its interval; P aligning adders
  plus the output conversion per lane.

Placement and packing rules (Intel Arria 10 Core Fabric and General Purpose I/Os Handbook,
ID 683461, "Embedded Memory Blocks"; Cyclone 10 GX and Stratix 10 have the same M20K and MLAB):
  * a ROM of depth 1 (RF = 1) is a constant: wired into the datapath, no memory;
  * depth <= 32 goes to MLABs, 32 words x 20 bits (640 bits) each; an MLAB is a LAB of 10 ALMs
    used as memory, so it counts 10 ALMs (0.5 ALM per stored bit, the same as a ROM built from
    ALM LUTs, where one ALM holds two 5-input functions of the same address);
  * deeper ROMs go to M20K blocks (20,480 bits) in the mode that needs the fewest blocks:
    512x40, 1Kx20, 2Kx10, 4Kx5, 8Kx2 or 16Kx1 (the x32, x16, x8, x4 modes never need fewer).
  Quartus' own choice between MLAB, M20K and logic is a heuristic; this rule is an assumption.

Logic rules (same handbook, "Adaptive Logic Module"):
  * an ALM has two full adders on the carry chain: an n-bit adder or comparator is ceil(n/2) ALMs;
  * a 6-input LUT is a 4:1 multiplexer: an N:1 multiplexer is ceil((N-1)/3) ALMs per bit;
  * an ALM has 4 registers: logic ALMs = max(LUT/adder ALMs, ceil(registers / 4)), plus MLABs.
These are first-order estimates for comparing designs, not a fitter result; vendor figures, when
a user has run the Intel flow, are read by codesign.vendor and shown beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codesign.boards import Board
from codesign.hardware import input_frames
from codesign.ir.graph import Add, Conv2d, Dense, Graph, Layer, Pool2d, PoolMode, ceil_div

MLAB_DEPTH = 32
MLAB_WIDTH = 20
ALMS_PER_MLAB = 10
M20K_MODES = ((512, 40), (1024, 20), (2048, 10), (4096, 5), (8192, 2), (16384, 1))
REGISTERS_PER_ALM = 4
MUX_INPUTS_PER_ALM = 3  # each 6-LUT level turns 4 inputs into 1: (N-1)/3 LUTs per bit
ADDER_BITS_PER_ALM = 2
PHASE_BITS = 2


def index_bits(count: int) -> int:
    """Bits of an index over `count` values, at least 1 (as $clog2 with the RTL's floor of 1)."""
    return max(1, int(count - 1).bit_length())


def mux_alms(inputs: int) -> int:
    """ALMs per bit of an `inputs`:1 multiplexer."""
    return ceil_div(max(0, inputs - 1), MUX_INPUTS_PER_ALM)


def adder_alms(bits: int) -> int:
    return ceil_div(bits, ADDER_BITS_PER_ALM)


@dataclass(frozen=True)
class Memory:
    """One ROM of the engine and where it is placed."""

    name: str
    depth: int
    width: int
    placement: str  # "constant", "mlab" or "m20k"
    m20k_blocks: int
    mlabs: int

    @property
    def bits(self) -> int:
        return self.depth * self.width

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "depth": self.depth,
            "width": self.width,
            "bits": self.bits,
            "placement": self.placement,
            "m20k_blocks": self.m20k_blocks,
            "mlabs": self.mlabs,
        }


def place_rom(name: str, depth: int, width: int) -> Memory:
    """Place a ROM of `depth` words of `width` bits by the rules in the module docstring."""
    if depth <= 1 or width == 0:
        return Memory(name, depth, width, "constant", 0, 0)
    if depth <= MLAB_DEPTH:
        mlabs = ceil_div(depth, MLAB_DEPTH) * ceil_div(width, MLAB_WIDTH)
        return Memory(name, depth, width, "mlab", 0, mlabs)
    blocks = min(ceil_div(depth, d) * ceil_div(width, w) for d, w in M20K_MODES)
    return Memory(name, depth, width, "m20k", blocks, 0)


@dataclass(frozen=True)
class ResourceEstimate:
    multipliers: int
    dsp_blocks: int
    m20k_blocks: int
    m20k_bits: int
    mlabs: int
    alms: int
    registers: int
    alm_breakdown: dict[str, int] = field(default_factory=dict)
    memories: tuple[Memory, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "multipliers": self.multipliers,
            "dsp_blocks": self.dsp_blocks,
            "m20k_blocks": self.m20k_blocks,
            "m20k_bits": self.m20k_bits,
            "mlabs": self.mlabs,
            "alms": self.alms,
            "registers": self.registers,
            "alm_breakdown": dict(self.alm_breakdown),
            "memories": [memory.to_json() for memory in self.memories],
        }


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


def place_ram(name: str, words: int, width: int, read_ports: int, banked: bool = False) -> Memory:
    """A RAM of `words` x `width` read through `read_ports` ports per cycle.

    Arbitrary addresses (a conv's tile inputs) need one copy per read port; a regular pattern
    (consecutive values of a beat, the windows of a pooling beat) is served by `read_ports`
    banks of words / read_ports each. Small RAMs (at most MLAB_DEPTH words) stay in MLABs;
    the copies' or banks' blocks add up.
    """
    parts = max(1, read_ports)
    part_words = ceil_div(words, parts) if banked else words
    single = place_rom(name, max(part_words, 2), width)
    return Memory(
        name,
        part_words * parts,
        width,
        single.placement,
        single.m20k_blocks * parts,
        single.mlabs * parts,
    )


def _estimate(
    memories: tuple[Memory, ...],
    breakdown: dict[str, int],
    registers: int,
    multipliers: int,
    dsp_blocks: int,
) -> ResourceEstimate:
    mlabs = sum(m.mlabs for m in memories)
    breakdown["rom_mlab"] = mlabs * ALMS_PER_MLAB
    logic = sum(v for k, v in breakdown.items() if k != "rom_mlab")
    alms = max(logic, ceil_div(registers, REGISTERS_PER_ALM)) + breakdown["rom_mlab"]
    return ResourceEstimate(
        multipliers=multipliers,
        dsp_blocks=dsp_blocks,
        m20k_blocks=sum(m.m20k_blocks for m in memories),
        m20k_bits=sum(m.bits for m in memories if m.placement == "m20k"),
        mlabs=mlabs,
        alms=alms,
        registers=registers,
        alm_breakdown=breakdown,
        memories=memories,
    )


def _pool_resources(layer: Pool2d) -> ResourceEstimate:
    x_bits = layer.in_format().width
    beat = layer.values_per_beat
    lanes_ops = layer.area - 1 if layer.mode is PoolMode.MAX else layer.area
    memories = tuple(
        place_ram(f"frame{i}", layer.in_features, x_bits, beat * layer.area, banked=True)
        for i in range(2)
    )
    counters = index_bits(ceil_div(layer.in_features, beat)) + index_bits(
        ceil_div(layer.out_features, beat)
    )
    breakdown = {
        "pool": beat * lanes_ops * adder_alms(x_bits + 16),
        "control": counters + PHASE_BITS,
    }
    registers = beat * layer.out_format().width + counters + PHASE_BITS
    return _estimate(memories, breakdown, registers, 0, 0)


def _add_resources(layer: Add, frames: tuple[int, ...]) -> ResourceEstimate:
    beat = layer.values_per_beat
    widths = [f.width for f in layer.require_input_formats()]
    memories = tuple(
        place_ram(f"operand{k}_{i}", layer.features, width, beat, banked=True)
        for k, (width, count) in enumerate(zip(widths, frames, strict=True))
        for i in range(count)
    )
    sum_bits = max(widths) + abs(layer.require_input_formats()[0].frac - layer.sum_frac) + 1
    counters = 3 * index_bits(ceil_div(layer.features, beat))
    breakdown = {
        "add": beat * 3 * adder_alms(sum_bits),
        "control": counters + PHASE_BITS,
    }
    registers = beat * layer.out_format().width + counters + PHASE_BITS
    return _estimate(memories, breakdown, registers, 0, 0)


def _conv_frames(layer: Conv2d) -> tuple[tuple[Memory, ...], int]:
    """The conv engine's frame RAMs and its im2col address ALMs."""
    tiling = layer.require_tiling()
    formats = layer.require_formats()
    ports = tiling.tiles * layer.block[1]
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


def layer_resources(
    layer: Layer, board: Board, add_frames: tuple[int, ...] = (2, 2)
) -> ResourceEstimate:
    """One layer's engine; `add_frames`: an Add's frames per operand (see input_frames)."""
    if isinstance(layer, Pool2d):
        return _pool_resources(layer)
    if isinstance(layer, Add):
        return _add_resources(layer, add_frames)
    csr = layer.require_csr()
    tiling = layer.require_tiling()
    formats = layer.require_formats()
    br, bc = csr.block
    grid_rows, grid_cols = csr.grid
    tiles, reuse = tiling.tiles, tiling.reuse_factor
    beat = tiling.values_per_beat
    x_bits, w_bits, a_bits = formats.input.width, formats.weight.width, formats.accum.width
    in_beats = ceil_div(layer.in_features, beat)
    out_beats = ceil_div(layer.out_features, beat)
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
    dsp_blocks = board.dsps_for(multipliers, formats.operand_bits())
    return _estimate(memories, breakdown, registers, multipliers, dsp_blocks)


def graph_layer_resources(graph: Graph, board: Board) -> list[ResourceEstimate]:
    """Every layer's engine as the network instantiates it (skip buffers sized)."""
    frames = input_frames(graph)
    return [layer_resources(layer, board, frames.get(layer.name, (2, 2))) for layer in graph.layers]


def network_resources(graph: Graph, board: Board) -> ResourceEstimate:
    layers = graph_layer_resources(graph, board)
    breakdown: dict[str, int] = {}
    for estimate in layers:
        for key, value in estimate.alm_breakdown.items():
            breakdown[key] = breakdown.get(key, 0) + value
    return ResourceEstimate(
        multipliers=sum(e.multipliers for e in layers),
        dsp_blocks=sum(e.dsp_blocks for e in layers),
        m20k_blocks=sum(e.m20k_blocks for e in layers),
        m20k_bits=sum(e.m20k_bits for e in layers),
        mlabs=sum(e.mlabs for e in layers),
        alms=sum(e.alms for e in layers),
        registers=sum(e.registers for e in layers),
        alm_breakdown=breakdown,
    )


@dataclass(frozen=True)
class FitItem:
    resource: str
    needed: int
    available: int

    @property
    def fits(self) -> bool:
        return self.needed <= self.available


@dataclass(frozen=True)
class FitCheck:
    board: str
    items: tuple[FitItem, ...]

    @property
    def fits(self) -> bool:
        return all(item.fits for item in self.items)

    def overflows(self) -> list[FitItem]:
        return [item for item in self.items if not item.fits]

    def message(self) -> str:
        parts = [
            f"{item.resource}: needs {item.needed:,}, {self.board} has {item.available:,}"
            for item in self.overflows()
        ]
        return f"the design does not fit {self.board} ({'; '.join(parts)})"

    def to_json(self) -> dict[str, Any]:
        return {
            "fits": self.fits,
            "items": [
                {
                    "resource": item.resource,
                    "needed": item.needed,
                    "available": item.available,
                    "fits": item.fits,
                }
                for item in self.items
            ],
        }


def check_fit(estimate: ResourceEstimate, board: Board) -> FitCheck:
    """Needed vs available for every counted resource of the board."""
    return FitCheck(
        board.key,
        (
            FitItem("DSP blocks", estimate.dsp_blocks, board.dsp_blocks),
            FitItem("M20K blocks", estimate.m20k_blocks, board.m20k_blocks),
            FitItem("ALMs", estimate.alms, board.alms),
            FitItem("registers", estimate.registers, board.registers),
        ),
    )
