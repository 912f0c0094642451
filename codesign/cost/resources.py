"""A network's DSP blocks, memories and logic: the sum of its engines' estimates, and the fit.

Each engine counts the hardware of its RTL (codesign.engines: matrix/cost.py, pool.py, add.py,
with the placement and logic rules of engines/stream.py); the network adds them up (an Add's
FIFOs and a conv's line buffer as the buffer pass, codesign.cost.cycles.size_line_buffers,
sized them) and compares the sum with the board.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codesign.boards import Board
from codesign.cost.cycles import layer_cycles, network_cycles
from codesign.engines import LayerCycles, engine_for
from codesign.engines.stream import ResourceEstimate
from codesign.ir.graph import Graph, Layer


def layer_resources(layer: Layer, board: Board) -> ResourceEstimate:
    """One layer's engine."""
    return engine_for(layer).resources(layer, board)


def graph_layer_resources(graph: Graph, board: Board) -> list[ResourceEstimate]:
    """Every layer's engine as the network instantiates it (its buffers as sized)."""
    return [layer_resources(layer, board) for layer in graph.layers]


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
        dsp_adder_alms=sum(e.dsp_adder_alms for e in layers),
    )


@dataclass(frozen=True)
class LayerCost(LayerCycles):
    """A layer's cycle figures plus the DSP blocks its multipliers take on a board."""

    est_dsp: int


@dataclass(frozen=True)
class NetworkCost:
    layers: tuple[LayerCost, ...]
    multipliers: int
    est_dsp: int
    est_cycles: int
    est_ii: int
    ideal_ii: int
    macs: int


def layer_cost(layer: Layer, board: Board) -> LayerCost:
    cycles = layer_cycles(layer)
    return LayerCost(**vars(cycles), est_dsp=engine_for(layer).dsp_blocks(layer, board))


def network_cost(graph: Graph, board: Board) -> NetworkCost:
    costs = tuple(layer_cost(layer, board) for layer in graph.layers)
    cycles = network_cycles(graph)
    return NetworkCost(
        layers=costs,
        multipliers=sum(c.multipliers for c in costs),
        est_dsp=sum(c.est_dsp for c in costs),
        est_cycles=cycles.est_cycles,
        est_ii=cycles.est_ii,
        ideal_ii=cycles.ideal_ii,
        macs=cycles.macs,
    )


def fits_board(graph: Graph, board: Board) -> bool:
    """A tiled graph fits `board` under its utilisation ceiling: its DSP blocks, then the
    whole resource estimate."""
    if network_cost(graph, board).est_dsp > board.usable(board.dsp_blocks):
        return False
    return check_fit(network_resources(graph, board), board).fits


@dataclass(frozen=True)
class FitItem:
    """One resource: what the design needs, what the device has, and what the utilisation
    ceiling lets a design use of it (`usable`)."""

    resource: str
    needed: int
    available: int
    usable: int

    @property
    def fits(self) -> bool:
        return self.needed <= self.usable

    @property
    def utilisation(self) -> float:
        return self.needed / self.available


@dataclass(frozen=True)
class FitCheck:
    board: str
    max_utilisation: float
    items: tuple[FitItem, ...]

    @property
    def fits(self) -> bool:
        return all(item.fits for item in self.items)

    def overflows(self) -> list[FitItem]:
        return [item for item in self.items if not item.fits]

    def message(self) -> str:
        parts = [
            f"{item.resource}: needs {item.needed:,} ({item.utilisation:.0%}), {self.board} "
            f"has {item.available:,}, of which {item.usable:,} are usable"
            for item in self.overflows()
        ]
        return (
            f"the design does not fit {self.board} at a utilisation ceiling of "
            f"{self.max_utilisation:.0%} ({'; '.join(parts)})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "fits": self.fits,
            "max_utilisation": self.max_utilisation,
            "items": [
                {
                    "resource": item.resource,
                    "needed": item.needed,
                    "available": item.available,
                    "usable": item.usable,
                    "utilisation": round(item.utilisation, 4),
                    "fits": item.fits,
                }
                for item in self.items
            ],
        }


def check_fit(estimate: ResourceEstimate, board: Board) -> FitCheck:
    """Needed vs usable (the board's utilisation ceiling of what it has) for every counted
    resource of the board."""
    counted = (
        ("DSP blocks", estimate.dsp_blocks, board.dsp_blocks),
        ("M20K blocks", estimate.m20k_blocks, board.m20k_blocks),
        ("ALMs", estimate.alms, board.alms),
        ("registers", estimate.registers, board.registers),
    )
    items = tuple(
        FitItem(name, needed, available, board.usable(available))
        for name, needed, available in counted
    )
    return FitCheck(board.key, board.max_utilisation, items)
