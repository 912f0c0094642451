"""What the engines share: stream beats, and the frames and ROMs they place in memory.

Every engine moves its streams' widths of values a beat (`layer.widths`: input and output
values per beat, chosen by the fold pass) on valid/ready streams and keeps what it
must hold in memories placed by the rules below, costed in the board's resources with the
logic primitives that follow them (design.md §4).

Placement and packing rules (Intel Arria 10 Core Fabric and General Purpose I/Os Handbook,
ID 683461, "Embedded Memory Blocks"; Cyclone 10 GX and Stratix 10 have the same M20K and MLAB):
  * a ROM of depth 1 (RF = 1) is a constant: wired into the datapath, no memory;
  * a ROM or RAM of at most MLAB_MAX_DEPTH (64) words may go to MLABs, 32 words x 20 bits
    (640 bits) each (64 x 10 is emulated: two MLABs' depth and a 2:1 select per bit, two
    selects to an ALM); an MLAB is a LAB of 10 ALMs used as memory, so it counts 10 ALMs
    (0.5 ALM per stored bit, the same as a ROM built from ALM LUTs, where one ALM holds two
    5-input functions of the same address);
  * any memory may go to M20K blocks (20,480 bits) in the mode that needs the fewest blocks:
    512x40, 1Kx20, 2Kx10, 4Kx5, 8Kx2 or 16Kx1 (the x32, x16, x8, x4 modes never need fewer);
  * where both can hold it, it goes where it takes the smaller share of the board: MLAB ALMs
    over the board's ALMs against M20K blocks over its M20K blocks. Quartus' fitter "assigns
    RAM slices to M20K RAM blocks or MLABs to balance out the resource usage", and "MLAB
    blocks are ideal for wide and shallow memories" (Intel's M20K and MLAB descriptions):
    on the Arria 10 GX 1150 an M20K is 1/2,713 of the board and 157 ALMs are, so every
    memory of up to 64 words lands in MLABs there (a 64 x 40 memory: 4 MLABs and 20 select
    ALMs, 60 ALMs, against one M20K); a board poorer in ALMs would keep more in M20K.
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
from typing import TYPE_CHECKING, Any

from codesign.ir.graph import ceil_div

if TYPE_CHECKING:
    from codesign.boards import Board

MLAB_DEPTH = 32  # words of one MLAB at its widest (32 x 20)
MLAB_MAX_DEPTH = 64  # the deepest MLAB mode (64 x 10, emulated)
MLAB_WIDTH = 20
ALMS_PER_MLAB = 10
M20K_MODES = ((512, 40), (1024, 20), (2048, 10), (4096, 5), (8192, 2), (16384, 1))
REGISTERS_PER_ALM = 4
MUX_INPUTS_PER_ALM = 3  # each 6-LUT level turns 4 inputs into 1: (N-1)/3 LUTs per bit
ADDER_BITS_PER_ALM = 2
PHASE_BITS = 2


def beats(values: int, values_per_beat: int) -> int:
    """Stream beats that carry `values` values."""
    return ceil_div(values, values_per_beat)


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
    """One ROM or RAM of an engine and where it is placed."""

    name: str
    depth: int
    width: int
    placement: str  # "constant", "mlab" or "m20k"
    m20k_blocks: int
    mlabs: int
    select_alms: int = 0  # the output select of MLABs stacked two deep (64-word modes)

    @property
    def bits(self) -> int:
        return self.depth * self.width

    @property
    def mlab_alms(self) -> int:
        """The ALMs the memory takes as MLABs: the LABs and their output select."""
        return self.mlabs * ALMS_PER_MLAB + self.select_alms

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "depth": self.depth,
            "width": self.width,
            "bits": self.bits,
            "placement": self.placement,
            "m20k_blocks": self.m20k_blocks,
            "mlabs": self.mlabs,
            "select_alms": self.select_alms,
        }


def m20k_blocks_for(depth: int, width: int) -> int:
    """M20K blocks of a `depth` x `width` memory in its best mode."""
    return min(ceil_div(depth, d) * ceil_div(width, w) for d, w in M20K_MODES)


def place_rom(name: str, depth: int, width: int, board: Board) -> Memory:
    """Place a ROM (or one bank or copy of a RAM) of `depth` words of `width` bits by the
    rules in the module docstring."""
    if depth <= 1 or width == 0:
        return Memory(name, depth, width, "constant", 0, 0)
    blocks = m20k_blocks_for(depth, width)
    in_m20k = Memory(name, depth, width, "m20k", blocks, 0)
    if depth > MLAB_MAX_DEPTH:
        return in_m20k
    stacked = ceil_div(depth, MLAB_DEPTH)
    in_mlabs = Memory(
        name,
        depth,
        width,
        "mlab",
        0,
        stacked * ceil_div(width, MLAB_WIDTH),
        ceil_div(width * (stacked - 1), 2),  # 2:1 selects, two to an ALM
    )
    if in_mlabs.mlab_alms * board.m20k_blocks <= blocks * board.alms:
        return in_mlabs
    return in_m20k


def place_ram(
    name: str, words: int, width: int, read_ports: int, board: Board, banked: bool = False
) -> Memory:
    """A RAM of `words` x `width` read through `read_ports` ports per cycle.

    Arbitrary addresses (a conv's tile inputs) need one copy per read port; a regular pattern
    (consecutive values of a beat, the windows of a pooling beat) is served by `read_ports`
    banks of words / read_ports each. Each copy or bank is placed as `place_rom` places a
    memory (MLABs or M20K blocks, whichever takes the smaller share of the board); the
    copies' or banks' blocks add up.
    """
    parts = max(1, read_ports)
    part_words = ceil_div(words, parts) if banked else words
    single = place_rom(name, max(part_words, 2), width, board)
    return Memory(
        name,
        part_words * parts,
        width,
        single.placement,
        single.m20k_blocks * parts,
        single.mlabs * parts,
        single.select_alms * parts,
    )


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
    # the ALMs the sums inside the DSP blocks would take as logic: not part of `alms` (on
    # Arria 10 the DSP blocks' sum-of-two and chainout adders hold them), but a synthesiser
    # that does not use those adders (Yosys for Cyclone V) builds them from ALMs
    dsp_adder_alms: int = 0

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
            "dsp_adder_alms": self.dsp_adder_alms,
        }


def estimate(
    memories: tuple[Memory, ...],
    breakdown: dict[str, int],
    registers: int,
    multipliers: int = 0,
    dsp_blocks: int = 0,
    dsp_adder_alms: int = 0,
) -> ResourceEstimate:
    """An engine's estimate from its memories, its logic ALMs by term and its registers."""
    mlabs = sum(m.mlabs for m in memories)
    breakdown["rom_mlab"] = sum(m.mlab_alms for m in memories)
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
        dsp_adder_alms=dsp_adder_alms,
    )
