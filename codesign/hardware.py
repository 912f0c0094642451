"""The hardware cost model of the block-sparse engine: multipliers, DSP blocks and cycles.

These closed forms describe the engine the emitters generate (design.md §4, §7) and are
checked against Verilator: `est_cycles` and `est_ii` must be within 2 cycles of `sim_cycles`
and `sim_ii` (the RTL meets them exactly). A vector passes three stages of a layer's engine:

  load     I = ceil(in_features / P) input beats, P values per beat, one beat per cycle, into
           one of two input buffers;
  compute  C cycles. Dense: C = RF; in cycle c every tile multiplies its c-th block (Br×Bc
           products) and the Br partial sums are added into the block-row's accumulators.
           Conv2d: C = positions·RF, the same schedule once per output position on that
           position's im2col patch. Pool2d and Add: C = 1, the cycle that registers the
           first output beat (they compute each beat from the input frames as the previous
           one leaves);
  drain    O = ceil(out_features / P) output beats from an output frame (Dense, Conv2d) or
           an output beat register (Pool2d, Add).

Per layer:  est_cycles = I + C + O           (one vector alone, both end cycles counted)
            est_ii     = max(I, C, O)        (vectors back to back)
            ideal_ii   = max(ceil(MACs / multipliers), I, O)   (MACs × positions for Conv2d)

The stages overlap on successive vectors: the double-buffered input takes vector k+1 while
vector k computes, and vector k-1 drains from the output bank meanwhile, so the busiest stage
sets the interval with no bubble between vectors. In the RTL the last input beat is accepted
in cycle I - 1, compute cycles follow immediately (the schedule ROMs are read one cycle
ahead), the result moves to the output bank with the last compute cycle and the first output
beat leaves in the next cycle. The tile pass sets RF = ceil(nnz_blocks / tiles), so no tile
idles a whole cycle and a Dense's `est_ii` equals its `ideal_ii`; a Conv2d repeats the
schedule per position, so where tiles do not divide the kept blocks it loses the partly idle
last cycle at every position (positions·RF against ceil(positions·nnz_blocks / tiles)).

In a network the output beats of one layer are the input beats of the next in the same cycle
(streams have no register; a value read by two layers goes to both in the same beat), so a
layer's last input beat is the latest last output beat of its producers, and for a chain

            est_cycles = sum over layers of (I + C) + O of the last layer
            est_ii     = max over layers of est_ii
            ideal_ii   = max over layers of ideal_ii

every engine buffering enough (two input vectors, one in the accumulators, one draining) for
the slowest layer to set the pace. Where paths join (an Add after a residual skip) the operand
of the shorter path arrives early and waits for the other in its input frames; the Add gets
`input_frames(graph)` of them, enough that the fork never stalls and est_ii holds.
`layer_cycles` and `network_cycles` need no board.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from codesign.boards import Board
from codesign.ir.graph import GRAPH_INPUT, Dense, Graph, Layer, ceil_div

# Pooling and adds convert one registered stage between load and drain.
POOL_COMPUTE_CYCLES = 1
ADD_COMPUTE_CYCLES = 1


@dataclass(frozen=True)
class LayerCycles:
    """Cycle figures of one layer's engine (board independent).

    `compute_cycles` is the compute stage per vector: RF for Dense, positions·RF for Conv2d,
    one for pooling and adds. `macs` counts the products per vector (0 without a matrix).
    """

    reuse_factor: int
    tiles: int
    multipliers: int
    macs: int
    in_beats: int
    out_beats: int
    compute_cycles: int
    est_cycles: int
    est_ii: int
    ideal_ii: int


@dataclass(frozen=True)
class NetworkCycles:
    layers: tuple[LayerCycles, ...]
    est_cycles: int
    est_ii: int
    ideal_ii: int


def values_per_beat(layer: Layer) -> int:
    """Values per stream beat of a layer's engine (its tiling's, or its own)."""
    if isinstance(layer, Dense):
        return layer.require_tiling().values_per_beat
    return layer.values_per_beat


def layer_cycles(layer: Layer) -> LayerCycles:
    beat = values_per_beat(layer)
    in_beats = ceil_div(layer.in_features, beat)
    out_beats = ceil_div(layer.out_features, beat)
    if isinstance(layer, Dense):
        tiling = layer.require_tiling()
        csr = layer.require_csr()
        block_size = csr.block[0] * csr.block[1]
        reuse, tiles = tiling.reuse_factor, tiling.tiles
        multipliers = tiles * block_size
        macs = csr.nnz_blocks * block_size * layer.positions
        compute = layer.positions * reuse
        ideal_compute = ceil_div(macs, multipliers)
    else:
        reuse, tiles, multipliers, macs = 1, 0, 0, 0
        compute = POOL_COMPUTE_CYCLES if layer.kind == "pool2d" else ADD_COMPUTE_CYCLES
        ideal_compute = 0
    return LayerCycles(
        reuse_factor=reuse,
        tiles=tiles,
        multipliers=multipliers,
        macs=macs,
        in_beats=in_beats,
        out_beats=out_beats,
        compute_cycles=compute,
        est_cycles=in_beats + compute + out_beats,
        est_ii=max(in_beats, compute, out_beats),
        ideal_ii=max(ideal_compute, in_beats, out_beats),
    )


def network_cycles(graph: Graph) -> NetworkCycles:
    """Latency along the slowest path: a layer's last input beat is its producers' last
    output beat (the same cycle), so it finishes compute + out_beats cycles after the later
    of them; the network input's last beat is in cycle in_beats - 1 of the first layer."""
    cycles = tuple(layer_cycles(layer) for layer in graph.layers)
    last_beat = _last_beats(graph, cycles)
    return NetworkCycles(
        layers=cycles,
        est_cycles=last_beat[graph.layers[-1].name] + 1,
        est_ii=max(c.est_ii for c in cycles),
        ideal_ii=max(c.ideal_ii for c in cycles),
    )


def _last_beats(graph: Graph, cycles: tuple[LayerCycles, ...]) -> dict[str, int]:
    """The cycle of every value's last beat for one vector alone (network input: 0 first)."""
    last_beat: dict[str, int] = {GRAPH_INPUT: cycles[0].in_beats - 1}
    for layer, c in zip(graph.layers, cycles, strict=True):
        # a value from outside the graph (one layer taken out of a network) starts with it
        loaded = max(last_beat.get(name, c.in_beats - 1) for name in graph.inputs_of(layer))
        last_beat[layer.name] = loaded + c.compute_cycles + c.out_beats
    return last_beat


def input_frames(graph: Graph) -> dict[str, tuple[int, ...]]:
    """Input frames each Add needs per operand so that the network keeps est_ii.

    An operand's frame is busy from its first input beat to the Add's last output beat; the
    operand of the shorter path (a residual skip) arrives early and waits for the other, so
    it needs ceil(busy / est_ii) frames to take a vector every est_ii cycles (at least two).
    """
    cycles = tuple(layer_cycles(layer) for layer in graph.layers)
    last_beat = _last_beats(graph, cycles)
    interval = max(c.est_ii for c in cycles)
    frames = {}
    for layer, c in zip(graph.layers, cycles, strict=True):
        if layer.kind != "add":
            continue
        arrivals = [last_beat.get(name, c.in_beats - 1) for name in graph.inputs_of(layer)]
        done = max(arrivals) + c.compute_cycles + c.out_beats
        frames[layer.name] = tuple(
            max(2, ceil_div(done - (arrival - c.in_beats + 1), interval)) for arrival in arrivals
        )
    return frames


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


def layer_cost(layer: Layer, board: Board) -> LayerCost:
    cycles = layer_cycles(layer)
    if not isinstance(layer, Dense):
        return LayerCost(**asdict(cycles), est_dsp=0)
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


def fits_board(graph: Graph, board: Board) -> bool:
    """A tiled graph fits `board`: its DSP blocks, then the resource estimate (codesign.cost)."""
    from codesign.cost.resources import check_fit, network_resources

    if not fits(network_cost(graph, board), board):
        return False
    return check_fit(network_resources(graph, board), board).fits


def reuse_for_interval(graph: Graph, interval: int) -> dict[str, int]:
    """Per matrix layer, the largest RF whose compute (positions·RF) stays within `interval`."""
    return {
        layer.name: max(1, min(layer.require_csr().nnz_blocks, interval // layer.positions))
        for layer in graph.matrix_layers
    }


def balanced_reuse_factors(graph: Graph, board: Board) -> dict[str, int]:
    """Per-layer RFs for the smallest interval the board can hold (`--reuse balanced`).

    Every matrix layer gets the largest RF whose compute stage (positions·RF) fits the
    interval, so no layer spends DSP blocks on being faster than the slowest; the interval
    is the smallest, from the streams' own bound (the most input or output beats of any
    layer) up, whose design fits the board (binary search: a longer interval never needs
    more tiles). If none fits, every layer is one tile.
    """
    from codesign.passes.tile import tile

    beats = map(layer_cycles, tile(graph, 1).layers)  # beats do not depend on the RF
    stream_bound = max(max(c.in_beats, c.out_beats) for c in beats)
    candidates = sorted(
        {stream_bound}
        | {
            layer.positions * reuse
            for layer in graph.matrix_layers
            for reuse in range(1, max(1, layer.require_csr().nnz_blocks) + 1)
            if layer.positions * reuse > stream_bound
        }
    )
    low, high = 0, len(candidates) - 1
    if not fits_board(tile(graph, reuse_for_interval(graph, candidates[high])), board):
        return reuse_for_interval(graph, candidates[high])
    while low < high:
        middle = (low + high) // 2
        if fits_board(tile(graph, reuse_for_interval(graph, candidates[middle])), board):
            high = middle
        else:
            low = middle + 1
    return reuse_for_interval(graph, candidates[low])


def default_reuse_factor(graph: Graph, board: Board) -> int:
    """The smallest RF, uniform over the network, whose design fits the board: its DSP
    blocks first, then the resource estimate (M20K, ALMs, registers; codesign.cost), since
    a conv's input frame is copied for every tile input that reads it.

    Returns the RF at which every layer is a single tile if even that does not fit; the
    caller reports the overflow with the figures.
    """
    from codesign.passes.tile import tile

    largest = max(layer.require_csr().nnz_blocks for layer in graph.matrix_layers)
    for reuse in range(1, max(1, largest) + 1):
        if fits_board(tile(graph, reuse), board):
            return reuse
    return max(1, largest)
