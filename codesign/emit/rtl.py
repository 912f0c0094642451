"""Emit the SystemVerilog of a tiled Graph: engines, network, simulation harness, memory files.

`emit_rtl(graph)` returns the plan of `rtl/<module>.sv` for the engines the graph uses
(`matrix_engine` for Dense, `conv_engine` for Conv2d, `pool_engine`, `add_engine`, their parts
`input_frames`, `frame_drain`, `output_cast`), `rtl/network.sv` (the layers joined by
valid/ready streams, forked where a value has several readers), `rtl/harness.sv` (the
simulation-only top the cocotb bench drives) and `rtl/mem/<layer>_<kind>.mem` ($readmemh
files). The sources depend only on the shapes, block, tiling size and formats; everything
that varies with the weight pattern is in the memory files, so one Verilator build serves
every pattern of the same shape (design.md §4). Each engine's view-model and memory words
are its engine's (codesign.engines); the network's streams and wiring are in `rtl_views`.
"""

from __future__ import annotations

from dataclasses import dataclass

from codesign import __version__
from codesign.emit.plan import BuildPlan, template_environment
from codesign.emit.rtl_views import (
    StreamView,
    engine_view,
    engine_views,
    input_streams,
    network_view,
    output_stream,
    streams,
)
from codesign.engines import engine_for, modules
from codesign.engines.rtl_common import EngineView
from codesign.ir.graph import GRAPH_INPUT, Graph, Layer

__all__ = [
    "emit_rtl",
    "engine_view",
    "harness_units",
    "memory_files",
    "sources",
    "streams",
]

RTL_FOLDER = "rtl"
MEM_FOLDER = "mem"
NETWORK_FILE = "network.sv"
HARNESS_FILE = "harness.sv"
HARNESS_TOP = "harness"


@dataclass(frozen=True)
class MonitorView:
    """A logged stream of the harness: `prefix` names its `_valid/_ready/_data` signals."""

    id: int
    prefix: str
    unit: int
    producer: str | None  # the layer whose output the stream carries (None: an input)
    consumer: str | None  # the layer whose input it is (None: network output)
    stream: StreamView

    @property
    def checked(self) -> bool:
        """Outputs of a layer are checked; inputs (no producer) are only timed."""
        return self.producer is not None


@dataclass(frozen=True)
class SourceView:
    """A stimulus source of a unit, feeding the input port `port` from +<prefix>=<file>."""

    prefix: str
    port: str
    stream: StreamView
    seed: str


@dataclass(frozen=True)
class UnitView:
    """A device under test in the harness with its own sources and sink."""

    index: int
    description: str
    engine: EngineView | None  # None: the whole network
    layers: tuple[str, ...]
    sources: tuple[SourceView, ...]
    output: StreamView
    monitors: tuple[MonitorView, ...]
    sink_seed: str


def _seed(unit: int, which: int) -> str:
    """A fixed, nonzero 16-bit LFSR seed per source/sink (hex digits)."""
    return f"{(0xACE1 + 0x3C5 * (3 * unit + which)) & 0xFFFF or 1:04X}"


def _network_unit(graph: Graph) -> UnitView:
    chain = streams(graph)
    names = [layer.name for layer in graph.layers]
    monitors = []
    for stream in chain:
        producer = names[stream.index - 1] if stream.index > 0 else None
        if producer is None:
            prefix = "unit0_in0"
        elif stream.index == len(chain) - 1:
            prefix = "unit0_out"
        else:  # the streams between layers are inside `dut`
            prefix = f"dut.stream_{stream.index}"
        consumers = [layer.name for layer in graph.consumers_of(producer or GRAPH_INPUT)]
        consumer = consumers[0] if consumers else None
        monitors.append(MonitorView(stream.index, prefix, 0, producer, consumer, stream))
    return UnitView(
        index=0,
        description=f"network {graph.name}",
        engine=None,
        layers=tuple(names),
        sources=(SourceView("unit0_in0", "in", chain[0], _seed(0, 0)),),
        output=chain[-1],
        monitors=tuple(monitors),
        sink_seed=_seed(0, 2),
    )


def _layer_unit(layer: Layer, view: EngineView, index: int, first_id: int) -> UnitView:
    inputs = input_streams(layer)
    sources = tuple(
        SourceView(f"unit{index}_in{k}", port, stream, _seed(index, k))
        for k, (port, stream) in enumerate(zip(view.ports, inputs, strict=True))
    )
    output = output_stream(layer, len(inputs), f"{layer.name} output")
    monitors = [
        MonitorView(first_id + k, source.prefix, index, None, layer.name, source.stream)
        for k, source in enumerate(sources)
    ]
    monitors.append(
        MonitorView(first_id + len(sources), f"unit{index}_out", index, layer.name, None, output)
    )
    return UnitView(
        index=index,
        description=f"layer {layer.name} alone",
        engine=view,
        layers=(layer.name,),
        sources=sources,
        output=output,
        monitors=tuple(monitors),
        sink_seed=_seed(index, 2),
    )


def harness_units(graph: Graph) -> tuple[UnitView, ...]:
    """One layer: unit 0 is its engine alone. Several: unit 0 is the network and layer k
    also runs alone as unit k + 1 (its own sources and sink), for its own cycle figures."""
    if len(graph.layers) == 1:
        return (_layer_unit(graph.layers[0], engine_view(graph.layers[0]), 0, 0),)
    units = [_network_unit(graph)]
    next_id = len(units[0].monitors)
    views = engine_views(graph)  # alone as in the network: the same builds of the engines
    for position, (layer, view) in enumerate(zip(graph.layers, views, strict=True)):
        units.append(_layer_unit(layer, view, position + 1, next_id))
        next_id += len(units[-1].monitors)
    return tuple(units)


def _render(template: str, **values: object) -> str:
    environment = template_environment("rtl_sim")
    return environment.get_template(template).render(version=__version__, **values)


def sources(graph: Graph, network: bool = True) -> dict[str, str]:
    """The SystemVerilog files of the design and its harness, in compilation order; without
    `network` (a single layer simulated alone), no network.sv."""
    files = {f"{module}.sv": _render(f"{module}.sv.j2") for module in modules(graph)}
    if network:
        view = network_view(graph)
        files[NETWORK_FILE] = _render("network.sv.j2", graph_name=graph.name, network=view)
    files[HARNESS_FILE] = _render(
        "harness.sv.j2", graph_name=graph.name, units=harness_units(graph)
    )
    return files


def design_files(graph: Graph) -> tuple[str, ...]:
    """The synthesisable files among `sources` (all but the harness)."""
    return (*(f"{module}.sv" for module in modules(graph)), NETWORK_FILE)


# ------------------------------------------------------------------------ memory files


def memory_files(layer: Layer) -> dict[str, bytes]:
    """`<layer>_<kind>.mem` for the engine's $readmemh (hex, one word a line), from its
    engine's words (codesign.engines: `memory_words`); pooling reads none."""
    engine = engine_for(layer)
    header = f"// {layer.name} {{}} for {engine.module} (codesign {__version__})\n"
    return {
        f"{layer.name}_{kind}.mem": (header.format(kind) + "\n".join(words) + "\n").encode()
        for kind, words in engine.memory_words(layer).items()
    }


def emit_rtl(graph: Graph) -> BuildPlan:
    """rtl/*.sv and rtl/mem/*.mem for the tiled graph."""
    files = {f"{RTL_FOLDER}/{name}": text.encode() for name, text in sources(graph).items()}
    for layer in graph.layers:
        for name, content in memory_files(layer).items():
            files[f"{RTL_FOLDER}/{MEM_FOLDER}/{name}"] = content
    return BuildPlan(files)
