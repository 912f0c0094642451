"""Cycles of a network from its engines' closed forms (each engine's `cycles`, design.md §7).

Checked against Verilator: `est_cycles` and `est_ii` must be within 2 cycles of `sim_cycles`
and `sim_ii` (the RTL meets them exactly). Per layer (codesign.engines.base.LayerCycles):

            est_cycles = I + C + O           (one vector alone, both end cycles counted)
            est_ii     = max(I, C, O)        (vectors back to back)
            ideal_ii   = ceil(MACs / multipliers)  (the compute bound; without multipliers
                                                  the streams' max(I, O))

with I input beats, C compute cycles and O output beats. The stages overlap on successive
vectors: the double-buffered input takes vector k+1 while vector k computes, and vector k-1
drains from the output bank meanwhile, so the busiest stage sets the interval.

In a network the output beats of one layer are the input beats of the next in the same cycle
(streams have no register; a value read by two layers goes to both in the same beat), so a
layer's last input beat is the latest last output beat of its producers, and for a chain

            est_cycles = sum over layers of (I + C) + O of the last layer
            est_ii     = max over layers of est_ii
            ideal_ii   = ceil(total MACs / total multipliers)

every engine buffering enough (two input vectors, one in the accumulators, one draining) for
the slowest layer to set the pace. The network's ideal_ii is the bound of all its
multipliers together, so layers folded to different intervals show as lost efficiency and
utilisation = MACs / (multipliers · II) says how busy the multipliers are.

Where paths join (an Add after a residual skip) the operand
of the shorter path arrives early and waits for the other in its input frames; the Add gets
`input_frames(graph)` of them, enough that the fork never stalls and est_ii holds.
No board is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from codesign.engines import TWO_FRAMES, LayerCycles, engine_for
from codesign.ir.graph import GRAPH_INPUT, Graph, Layer, ceil_div


@dataclass(frozen=True)
class NetworkCycles:
    layers: tuple[LayerCycles, ...]
    est_cycles: int
    est_ii: int
    ideal_ii: int
    macs: int
    multipliers: int


def utilisation(macs: int, multipliers: int, interval: int | None) -> float | None:
    """MACs / (multipliers · interval): the fraction of multiplier-cycles doing a product
    (None without multipliers or interval)."""
    if not multipliers or not interval:
        return None
    return macs / (multipliers * interval)


def layer_cycles(layer: Layer) -> LayerCycles:
    return engine_for(layer).cycles(layer)


def network_cycles(graph: Graph) -> NetworkCycles:
    """Latency along the slowest path: a layer's last input beat is its producers' last
    output beat (the same cycle), so it finishes compute + out_beats cycles after the later
    of them; the network input's last beat is in cycle in_beats - 1 of the first layer."""
    cycles = tuple(layer_cycles(layer) for layer in graph.layers)
    last_beat = _last_beats(graph, cycles)
    macs = sum(c.macs for c in cycles)
    multipliers = sum(c.multipliers for c in cycles)
    return NetworkCycles(
        layers=cycles,
        est_cycles=last_beat[graph.layers[-1].name] + 1,
        est_ii=max(c.est_ii for c in cycles),
        ideal_ii=max(1, ceil_div(macs, multipliers)) if multipliers else 1,
        macs=macs,
        multipliers=multipliers,
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
    """Input frames per operand of every layer that reads two values (an Add), so that the
    network keeps est_ii; layers that read one value are absent (two frames).

    An operand's frame is busy from its first input beat to the layer's last output beat; the
    operand of the shorter path (a residual skip) arrives early and waits for the other, so
    it needs ceil(busy / est_ii) frames to take a vector every est_ii cycles (at least two).
    """
    cycles = tuple(layer_cycles(layer) for layer in graph.layers)
    last_beat = _last_beats(graph, cycles)
    interval = max(c.est_ii for c in cycles)
    frames = {}
    for layer, c in zip(graph.layers, cycles, strict=True):
        sources = graph.inputs_of(layer)
        if len(sources) < 2:
            continue
        arrivals = [last_beat.get(name, c.in_beats - 1) for name in sources]
        done = max(arrivals) + c.compute_cycles + c.out_beats
        frames[layer.name] = tuple(
            max(2, ceil_div(done - (arrival - c.in_beats + 1), interval)) for arrival in arrivals
        )
    return frames


def frames_of(frames: dict[str, tuple[int, ...]], layer: Layer) -> tuple[int, ...]:
    return frames.get(layer.name, TWO_FRAMES)
