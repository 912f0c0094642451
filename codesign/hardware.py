"""The hardware cost model of the block-sparse engine: multipliers, DSP blocks and cycles.

These closed forms describe the engine the emitters generate (design.md §4, §7) and are
checked against Verilator: `est_cycles` and `est_ii` must be within 2 cycles of `sim_cycles`
and `sim_ii` (the RTL meets them exactly). A vector passes three stages of a layer's engine:

  load     I = ceil(in_features / P) input beats, P values per beat, one beat per cycle, into
           one of two input buffers;
  compute  RF cycles: in cycle c every tile multiplies its c-th block (Br×Bc products) and
           the Br partial sums are added into the block-row's accumulators;
  drain    O = ceil(out_features / P) output beats from an output register bank.

Per layer:  est_cycles = I + RF + O          (one vector alone, both end cycles counted)
            est_ii     = max(I, RF, O)       (vectors back to back)
            ideal_ii   = max(ceil(MACs / multipliers), I, O)

The stages overlap on successive vectors: the double-buffered input takes vector k+1 while
vector k computes, and vector k-1 drains from the output bank meanwhile, so the busiest stage
sets the interval with no bubble between vectors. In the RTL the last input beat is accepted
in cycle I - 1, compute cycles follow immediately (the schedule ROMs are read one cycle
ahead), the result moves to the output bank with the last compute cycle and the first output
beat leaves in the next cycle. `est_ii` exceeds `ideal_ii` only when the tiling leaves slots
idle (ceil(nnz_blocks / tiles) < RF).

In a network the output beats of one layer are the input beats of the next in the same cycle
(streams have no register), so

            est_cycles = sum over layers of (I + RF) + O of the last layer
            est_ii     = max over layers of est_ii
            ideal_ii   = max over layers of ideal_ii

every engine buffering enough (two input vectors, one in the accumulators, one draining) for
the slowest layer to set the pace. `layer_cycles` and `network_cycles` need no board.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

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
    return LayerCycles(
        reuse_factor=tiling.reuse_factor,
        tiles=tiling.tiles,
        multipliers=multipliers,
        macs=macs,
        in_beats=in_beats,
        out_beats=out_beats,
        est_cycles=in_beats + tiling.reuse_factor + out_beats,
        est_ii=max(in_beats, tiling.reuse_factor, out_beats),
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


def layer_cost(layer: Dense, board: Board) -> LayerCost:
    cycles = layer_cycles(layer)
    dsp = board.dsps_for(cycles.multipliers, layer.require_formats().operand_bits())
    return LayerCost(**asdict(cycles), est_dsp=dsp)


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
