"""First-order energy per inference (one input vector) of each engine: an ESTIMATE.

    energy = multiplies x E_mul(x, w) + adds x E_add(a) + ROM bits read x E_bit    (dynamic)
           + P_static x latency                                                   (static)

Per-operation energies: M. Horowitz, "Computing's energy problem (and what we can do about
it)", ISSCC 2014, 45 nm at 0.9 V: 32-bit integer multiply 3.1 pJ (8-bit: 0.2 pJ), 32-bit
integer add 0.1 pJ (8-bit: 0.03 pJ), 64-bit read of an 8 KB SRAM 10 pJ. Scaled here by operand
width only: a multiply by x·w/32² (array-multiplier partial products; gives 0.19 pJ at 8x8
against the paper's 0.2), an add by a/32, a memory read per bit (10 pJ / 64). An M20K holds
2.5 KB, so the 8 KB figure is an upper bound for its reads; MLAB reads are charged the same.
Register reads (input buffer, accumulators) are not charged. NO process-node (Arria 10 is
20 nm) and NO FPGA-fabric scaling is applied: programmable routing makes an FPGA spend several
times more energy per operation than an ASIC of the same node (Kuon and Rose, "Measuring the
gap between FPGAs and ASICs", IEEE TCAD 2007), so read the dynamic part as a 45 nm ASIC-
equivalent lower bound.

Work per vector: multiplies = adds = MACs = nnz_blocks·Br·Bc (zeros inside kept blocks are
multiplied, pruned blocks are absent), times the output positions for a
Conv2d; every ROM word is read once per vector and position (depth RF x width), constants
(RF = 1) are not read. A Conv2d's input frame RAMs are read Bc values per tile and cycle
(macs·x bits) and its output frame written once (out_features·a bits, a = accumulator
width: sums are cast as they drain). Pooling charges one
add (comparison) per window element, average pooling one multiply per output; an Add one add
per value; their frames are read and written once per value. `dense_macs` is the same layer
with every block kept, for the dense-vs-sparse comparison within one report.

Static power: ASSUMPTION, not a datasheet figure. Intel gives device static power only through
the Early Power Estimator and the Quartus Power Analyzer (Early Power Estimator for Intel
Arria 10 FPGAs User Guide, ID 683688). We assume STATIC_WATTS_PER_ALM (1.5 W for the 427,200
ALMs of an Arria 10 GX 1150, typical silicon at room temperature) scaled by the board's ALMs,
charged for the latency of one vector at the board clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codesign.boards import Board

SOURCE = "Horowitz, ISSCC 2014, 45 nm 0.9 V; scaled by operand width; no node/FPGA scaling"
MUL32_PJ = 3.1
ADD32_PJ = 0.1
SRAM_READ_PJ_PER_BIT = 10.0 / 64
STATIC_WATTS_PER_ALM = 1.5 / 427_200  # ASSUMPTION, see module docstring


def multiply_energy_pj(x_bits: int, w_bits: int) -> float:
    return MUL32_PJ * x_bits * w_bits / (32 * 32)


def add_energy_pj(bits: int) -> float:
    return ADD32_PJ * bits / 32


def static_watts(board: Board) -> float:
    return STATIC_WATTS_PER_ALM * board.alms


def static_pj(board: Board, cycles: int) -> float:
    """Static energy over `cycles` at the board clock."""
    return static_watts(board) * cycles / (board.clock_mhz * 1e6) * 1e12


@dataclass(frozen=True)
class EnergyEstimate:
    macs: int
    dense_macs: int
    rom_bits_read: int
    multiply_pj: float
    add_pj: float
    memory_pj: float
    dense_ops_pj: float
    static_pj: float

    @property
    def dynamic_pj(self) -> float:
        return self.multiply_pj + self.add_pj + self.memory_pj

    @property
    def total_pj(self) -> float:
        return self.dynamic_pj + self.static_pj

    def to_json(self) -> dict[str, Any]:
        return {
            "macs": self.macs,
            "dense_macs": self.dense_macs,
            "rom_bits_read": self.rom_bits_read,
            "multiply_pj": round(self.multiply_pj, 3),
            "add_pj": round(self.add_pj, 3),
            "memory_pj": round(self.memory_pj, 3),
            "dynamic_pj": round(self.dynamic_pj, 3),
            "dense_ops_pj": round(self.dense_ops_pj, 3),
            "static_pj": round(self.static_pj, 3),
            "total_nj": round(self.total_pj / 1000, 4),
        }
