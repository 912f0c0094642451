"""The hardware cost model of the block-sparse engine: multipliers, DSP blocks and cycles.

These closed forms describe the engine the emitters generate (design.md §4, §7) and are
checked against Verilator: `est_cycles` and `est_ii` must be within 2 cycles of `sim_cycles`
and `sim_ii`. The per-layer engine works in three phases per vector:

  load     ceil(in_features / P) input beats, P values per beat, one beat per cycle;
  compute  RF cycles: in cycle c every tile multiplies its c-th block (Br×Bc products) and
           the Br partial sums are added into the block-row's accumulators;
  drain    ceil(out_features / P) output beats.

So one vector takes `in_beats + RF + out_beats` cycles from its first accepted input beat to
its last output beat, and (no double buffering yet) the next vector starts after that.
In a network the output beats of one layer are the input beats of the next, so the latency
is `sum(in_beats + RF) + out_beats(last)`, and the steady-state interval is the largest
per-layer interval (every layer is busy for its own load + compute + drain per vector).

The RTL (rtl_sim/dense_engine.sv.j2, network.sv.j2) implements exactly this, counting both
end cycles: the last input beat is accepted in cycle in_beats - 1, compute cycles follow
immediately (the schedule ROMs are read one cycle ahead, during load), the first output beat
is offered in the cycle after the last compute cycle (outputs are converted combinationally
from the accumulators), and in_ready rises again in the cycle after the last output beat.
Streams between layers have no register, so a layer's output beat is the next layer's input
beat in the same cycle. `layer_cycles` and `network_cycles` need no board.
"""

from __future__ import annotations

from dataclasses import dataclass

from codesign.boards import Board
from codesign.ir.graph import Dense, Graph, ceil_div


@dataclass(frozen=True)
class LayerCycles:
    """Cycle figures of one layer's engine (board independent)."""

    reuse_factor: int
    tiles: int
    multipliers: int
    macs: int
    in_beats: int
    out_beats: int
    est_cycles: int
    est_ii: int
    ideal_ii: int


@dataclass(frozen=True)
class NetworkCycles:
    layers: tuple[LayerCycles, ...]
    est_cycles: int
    est_ii: int
    ideal_ii: int


def layer_cycles(layer: Dense) -> LayerCycles:
    tiling = layer.require_tiling()
    csr = layer.require_csr()
    block_size = csr.block[0] * csr.block[1]
    multipliers = tiling.tiles * block_size
    macs = csr.nnz_blocks * block_size
    in_beats = ceil_div(layer.in_features, tiling.values_per_beat)
    out_beats = ceil_div(layer.out_features, tiling.values_per_beat)
    cycles = in_beats + tiling.reuse_factor + out_beats
    return LayerCycles(
        reuse_factor=tiling.reuse_factor,
        tiles=tiling.tiles,
        multipliers=multipliers,
        macs=macs,
        in_beats=in_beats,
        out_beats=out_beats,
        est_cycles=cycles,
        est_ii=cycles,
        ideal_ii=max(ceil_div(macs, multipliers), in_beats, out_beats),
    )


def network_cycles(graph: Graph) -> NetworkCycles:
    cycles = tuple(layer_cycles(layer) for layer in graph.layers)
    return NetworkCycles(
        layers=cycles,
        est_cycles=sum(c.in_beats + c.reuse_factor for c in cycles) + cycles[-1].out_beats,
        est_ii=max(c.est_ii for c in cycles),
        ideal_ii=max(c.ideal_ii for c in cycles),
    )


@dataclass(frozen=True)
class LayerCost:
    reuse_factor: int
    tiles: int
    multipliers: int
    est_dsp: int
    macs: int
    in_beats: int
    out_beats: int
    est_cycles: int
    est_ii: int
    ideal_ii: int


@dataclass(frozen=True)
class NetworkCost:
    layers: tuple[LayerCost, ...]
    multipliers: int
    est_dsp: int
    est_cycles: int
    est_ii: int
    ideal_ii: int


def layer_cost(layer: Dense, board: Board) -> LayerCost:
    cycles = layer_cycles(layer)
    return LayerCost(
        reuse_factor=cycles.reuse_factor,
        tiles=cycles.tiles,
        multipliers=cycles.multipliers,
        est_dsp=board.dsps_for(cycles.multipliers, layer.require_formats().operand_bits()),
        macs=cycles.macs,
        in_beats=cycles.in_beats,
        out_beats=cycles.out_beats,
        est_cycles=cycles.est_cycles,
        est_ii=cycles.est_ii,
        ideal_ii=cycles.ideal_ii,
    )


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
    )


def fits(cost: NetworkCost, board: Board) -> bool:
    return cost.est_dsp <= board.dsp_blocks


def default_reuse_factor(graph: Graph, board: Board) -> int:
    """The smallest RF, uniform over the network, whose design fits the board's DSP blocks.

    Returns the RF at which every layer is a single tile if even that does not fit; the
    caller reports the overflow with the figures.
    """
    from codesign.passes.tile import tile

    largest = max(layer.require_csr().nnz_blocks for layer in graph.layers)
    for reuse in range(1, max(1, largest) + 1):
        if fits(network_cost(tile(graph, reuse), board), board):
            return reuse
    return max(1, largest)
