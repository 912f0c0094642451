"""A network's energy per inference: the sum of its engines' estimates (codesign.engines.energy).

The static term is charged once for the network's latency, not per layer: layers overlap, so
the per-layer values (each with its own latency) do not add up to the network's.
"""

from __future__ import annotations

from typing import Any

from codesign.boards import Board
from codesign.cost.cycles import network_cycles
from codesign.engines import engine_for
from codesign.engines.energy import (
    ADD32_PJ,
    MUL32_PJ,
    SOURCE,
    SRAM_READ_PJ_PER_BIT,
    EnergyEstimate,
    static_pj,
    static_watts,
)
from codesign.ir.graph import Graph, Layer


def layer_energy(layer: Layer, board: Board) -> EnergyEstimate:
    return engine_for(layer).energy(layer, board)


def network_energy(graph: Graph, board: Board) -> EnergyEstimate:
    layers = [layer_energy(layer, board) for layer in graph.layers]
    return EnergyEstimate(
        macs=sum(e.macs for e in layers),
        dense_macs=sum(e.dense_macs for e in layers),
        rom_bits_read=sum(e.rom_bits_read for e in layers),
        multiply_pj=sum(e.multiply_pj for e in layers),
        add_pj=sum(e.add_pj for e in layers),
        memory_pj=sum(e.memory_pj for e in layers),
        dense_ops_pj=sum(e.dense_ops_pj for e in layers),
        static_pj=static_pj(board, network_cycles(graph).est_cycles),
    )


def model_description(board: Board) -> dict[str, Any]:
    """The constants behind the figures, stored in report.json beside them."""
    return {
        "kind": "estimate",
        "source": SOURCE,
        "multiply_32x32_pj": MUL32_PJ,
        "add_32_pj": ADD32_PJ,
        "sram_read_pj_per_bit": round(SRAM_READ_PJ_PER_BIT, 6),
        "static_watts": round(static_watts(board), 4),
        "static_source": "assumption: 1.5 W per 427,200 ALMs (Arria 10 GX 1150), scaled by ALMs",
        "clock_mhz": board.clock_mhz,
    }
