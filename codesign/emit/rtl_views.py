"""View-models of the network's RTL: the streams between the engines and their wiring.

Every value of a graph (the network input and each layer's output) is one valid/ready
stream; a layer's input ports read the streams of the values it consumes. Each engine's own
view-model is its engine's (codesign.engines: `rtl_view`); only structure goes into these
views (shapes, tiling sizes, widths, modes), never the weight pattern, so patterns of one
shape share a Verilator build (design.md §4).
"""

from __future__ import annotations

from dataclasses import dataclass

from codesign.engines import engine_for
from codesign.engines.rtl_common import EngineView
from codesign.errors import FormatError
from codesign.ir.graph import GRAPH_INPUT, Graph, Layer, ceil_div


@dataclass(frozen=True)
class StreamView:
    """One valid/ready stream: `values_per_beat` values of `width` bits per beat."""

    index: int
    description: str
    features: int
    values_per_beat: int
    width: int
    signed: bool

    @property
    def bits(self) -> int:
        return self.values_per_beat * self.width

    @property
    def beats(self) -> int:
        return ceil_div(self.features, self.values_per_beat)


@dataclass(frozen=True)
class PortView:
    """An input port of an engine in the network: the stream it reads, and its valid signal
    (the stream's valid, gated by the other readers' ready when the stream forks)."""

    prefix: str
    stream: int
    valid: str


def engine_view(layer: Layer) -> EngineView:
    """The engine of a layer (its buffers as the buffer pass sized them)."""
    return engine_for(layer).rtl_view(layer)


def engine_views(graph: Graph) -> tuple[EngineView, ...]:
    """The engines of a graph's layers."""
    return tuple(engine_view(layer) for layer in graph.layers)


def input_streams(layer: Layer, index: int = 0) -> tuple[StreamView, ...]:
    """Streams of the layer's input ports (numbered from `index`) when it runs alone."""
    return tuple(
        StreamView(index + k, f"{layer.name} input {k}", layer.in_features,
                   layer.widths.input, fmt.width, fmt.signed)
        for k, fmt in enumerate(layer.in_formats())
    )  # fmt: skip


def output_stream(layer: Layer, index: int, description: str) -> StreamView:
    fmt = layer.out_format()
    beat = layer.widths.output
    return StreamView(index, description, layer.out_features, beat, fmt.width, fmt.signed)


def streams(graph: Graph) -> tuple[StreamView, ...]:
    """Stream 0 is the network input, stream k + 1 layer k's output (the last: the network's).

    Raises ValueError where a layer reads a stream of another width or beat than its input.
    """
    first = graph.layers[0]
    views = [input_streams(first)[0]]
    views[0] = StreamView(0, "network input", *_stream_shape(views[0]))
    index = {GRAPH_INPUT: 0}
    for position, layer in enumerate(graph.layers):
        reads = zip(graph.inputs_of(layer), input_streams(layer), layer.in_formats(), strict=True)
        for name, wanted, wanted_format in reads:
            produced = views[index[name]]
            if (produced.width, produced.signed) != (wanted.width, wanted.signed):
                raise FormatError(
                    f"layer {layer.name}: input format {wanted_format.describe()} "
                    f"differs from {name}'s output format {graph.format_of(name).describe()}"
                )
            if (produced.values_per_beat, produced.features) != (
                wanted.values_per_beat,
                wanted.features,
            ):
                raise FormatError(
                    f"layers {name} and {layer.name}: {name} streams {produced.values_per_beat} "
                    f"values per beat, {layer.name} reads {wanted.values_per_beat}"
                )
        last = position == len(graph.layers) - 1
        description = "network output" if last else f"{layer.name} output"
        views.append(output_stream(layer, position + 1, description))
        index[layer.name] = position + 1
    return tuple(views)


def _stream_shape(view: StreamView) -> tuple[int, int, int, bool]:
    return view.features, view.values_per_beat, view.width, view.signed


def stream_index(graph: Graph, name: str) -> int:
    """The stream of a value: 0 for the network input, position + 1 for a layer's output."""
    if name == GRAPH_INPUT:
        return 0
    return graph.layers.index(graph.layer(name)) + 1


@dataclass(frozen=True)
class NetworkView:
    streams: tuple[StreamView, ...]
    engines: tuple[tuple[EngineView, tuple[PortView, ...]], ...]
    ready: tuple[tuple[int, str], ...]  # each stream but the output: its ready expression


def network_view(graph: Graph) -> NetworkView:
    """The engines, their ports and the fork logic of the streams read by several layers:
    a beat moves when every reader is ready, so each reader's valid waits for the others."""
    chain = streams(graph)
    readers: dict[int, list[str]] = {stream.index: [] for stream in chain}
    wiring = []
    for layer, view in zip(graph.layers, engine_views(graph), strict=True):
        sources = [stream_index(graph, name) for name in graph.inputs_of(layer)]
        for prefix, source in zip(view.ports, sources, strict=True):
            readers[source].append(f"{layer.name}_{prefix}_ready")
        wiring.append((layer, view, sources))
    engines = []
    for layer, view, sources in wiring:
        ports = []
        for prefix, source in zip(view.ports, sources, strict=True):
            mine = f"{layer.name}_{prefix}_ready"
            others = [ready for ready in readers[source] if ready != mine]
            valid = " && ".join([f"stream_{source}_valid", *others])
            ports.append(PortView(prefix, source, valid))
        engines.append((view, tuple(ports)))
    ready = tuple(
        (stream.index, " && ".join(readers[stream.index]) or "1'b1") for stream in chain[:-1]
    )
    return NetworkView(chain, tuple(engines), ready)
