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
of the shorter path arrives early and waits for the other in its FIFO, which the buffer pass
(`size_line_buffers`) sizes so that the fork never stalls and est_ii holds.
No board is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from codesign.engines import LayerCycles, engine_for
from codesign.engines.base import Cycles
from codesign.engines.stream import beats as beat_count
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
    """Latency along the slowest path: the cycle of the network's last output beat for one
    vector alone (`network_timing`; its first input beat in cycle 0), plus one."""
    cycles = tuple(layer_cycles(layer) for layer in graph.layers)
    beats = network_timing(graph)
    macs = sum(c.macs for c in cycles)
    multipliers = sum(c.multipliers for c in cycles)
    return NetworkCycles(
        layers=cycles,
        est_cycles=int(beats[graph.layers[-1].name][-1]) + 1,
        est_ii=max(c.est_ii for c in cycles),
        ideal_ii=max(1, ceil_div(macs, multipliers)) if multipliers else 1,
        macs=macs,
        multipliers=multipliers,
    )


def network_timing(graph: Graph) -> dict[str, Cycles]:
    """The cycle of every beat of every value for one vector alone, the network input's beats
    offered one a cycle from cycle 0 (a value from outside the graph, as when one layer is
    taken out of a network, likewise)."""
    return _walk(graph, size=False)[1]


def size_line_buffers(graph: Graph) -> Graph:
    """The graph with every engine's input buffer sized (a conv's line buffer) for the beats
    its producers send one vector alone. A buffer may stall a producer only where nothing
    waits on it (the network input or a frame engine, read by that layer alone); behind a
    conv or a fork it holds what arrives before the window moves on, so the timing of
    `network_timing` is what the RTL does."""
    return _walk(graph, size=True)[0]


def _walk(graph: Graph, size: bool) -> tuple[Graph, dict[str, Cycles]]:
    beats: dict[str, Cycles] = {}
    stallable = {GRAPH_INPUT}  # values whose producer a stall delays in nothing else
    layers = []
    interval = max(layer_cycles(layer).est_ii for layer in graph.layers) if size else 0
    for layer in graph.layers:
        engine = engine_for(layer)
        sources = graph.inputs_of(layer)
        first = np.arange(beat_count(layer.in_features, layer.widths.input), dtype=np.int64)
        offered = tuple(_offered(beats, name, first) for name in sources)
        if size:
            alone = len(sources) == 1 and len(graph.consumers_of(sources[0])) == 1
            may_stall = alone and (sources[0] in stallable or sources[0] not in beats)
            layer = engine.size_input(layer, offered, may_stall, interval)
        beats[layer.name] = engine.output_beats(layer, offered)
        if not engine.streams_output:
            stallable.add(layer.name)
        layers.append(layer)
    return replace(graph, layers=tuple(layers)), beats


def _offered(beats: dict[str, Cycles], name: str, first: Cycles) -> Cycles:
    """The cycles a layer's input beats of value `name` are offered at: its producer's output
    beats; a value from outside the graph (one layer taken out of a network) one a cycle
    from cycle 0; a value of another length (the pruning cost's chains of prunable layers,
    measured one by one, not connected) one a cycle after its producer's last beat."""
    if name not in beats:
        return first
    produced = beats[name]
    if len(produced) == len(first):
        return produced
    return first + int(produced[-1]) + 1
