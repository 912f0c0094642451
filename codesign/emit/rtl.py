"""Emit the SystemVerilog of a tiled Graph: engine, network, simulation harness, memory files.

`emit_rtl(graph)` returns the plan of `rtl/dense_engine.sv` (one parameterised block-sparse
engine), `rtl/network.sv` (the layers chained by valid/ready streams), `rtl/harness.sv` (the
simulation-only top the cocotb bench drives) and `rtl/mem/<layer>_{weights,slots,bias,shift}.mem`
($readmemh files). The sources depend only on the shapes, block, tiling size and formats'
widths; everything that varies with the weight pattern is in the memory files, so one Verilator
build serves every pattern of the same shape (design.md §4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign import __version__
from codesign.emit.plan import BuildPlan, template_environment
from codesign.ir.fixed import FixedPoint, Overflow, Rounding
from codesign.ir.graph import Activation, Dense, Graph, ceil_div

RTL_FOLDER = "rtl"
MEM_FOLDER = "mem"
ENGINE_FILE = "dense_engine.sv"
NETWORK_FILE = "network.sv"
HARNESS_FILE = "harness.sv"
HARNESS_TOP = "harness"
MEMORY_KINDS = ("weights", "slots", "bias", "shift")
SHIFT_BITS = 8  # the engine's SHIFT_WIDTH


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
class EngineView:
    """What the templates need to instantiate `dense_engine` for one layer."""

    name: str
    summary: str
    parameters: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class MonitorView:
    """A logged stream of the harness: `prefix` names its `_valid/_ready/_data` signals."""

    id: int
    prefix: str
    unit: int
    producer: str | None  # the layer whose output the stream carries (None: network input)
    consumer: str | None  # the layer whose input it is (None: network output)
    values_per_beat: int
    width: int
    signed: bool
    features: int

    @property
    def beats(self) -> int:
        return ceil_div(self.features, self.values_per_beat)

    @property
    def checked(self) -> bool:
        """Outputs of a layer are checked; inputs (no producer) are only timed."""
        return self.producer is not None


@dataclass(frozen=True)
class UnitView:
    """A device under test in the harness with its own source and sink."""

    index: int
    description: str
    layer: EngineView | None  # None: the whole network
    layers: tuple[str, ...]
    input: StreamView
    output: StreamView
    monitors: tuple[MonitorView, ...]
    source_seed: str
    sink_seed: str


def _bit(flag: bool) -> str:
    return "1'b1" if flag else "1'b0"


def _grid(layer: Dense) -> tuple[int, int]:
    return layer.require_csr().grid


def accumulator_width(layer: Dense) -> int:
    """Bits that hold every bias + sum of products exactly (the reference works in int64)."""
    formats = layer.require_formats()
    largest_input = max(-formats.input.min_raw, formats.input.max_raw)
    largest_weight = max(-formats.weight.min_raw, formats.weight.max_raw)
    largest_bias = max(-formats.bias.min_raw, formats.bias.max_raw)
    bound = layer.in_features * largest_input * largest_weight + largest_bias
    return bound.bit_length() + 1


def output_shift(layer: Dense) -> int:
    """accum.frac - output.frac: right shift (> 0) or left shift (< 0) of the output cast."""
    formats = layer.require_formats()
    return formats.accum.frac - formats.output.frac


def check_layer(layer: Dense) -> None:
    """Raise ValueError when the engine cannot implement the layer's formats exactly."""
    formats = layer.require_formats()
    layer.require_csr()
    layer.require_tiling()
    if formats.accum.frac != formats.input.frac + formats.weight.frac:
        raise ValueError(
            f"layer {layer.name}: accumulator fraction bits {formats.accum.frac} must be "
            f"input + weight fraction bits ({formats.input.frac} + {formats.weight.frac})"
        )
    if formats.bias.frac != formats.accum.frac or not formats.bias.signed:
        raise ValueError(f"layer {layer.name}: the bias must be signed, in the accumulator format")
    if abs(output_shift(layer)) >= 1 << (SHIFT_BITS - 1):
        raise ValueError(f"layer {layer.name}: output shift {output_shift(layer)} out of range")


def engine_view(layer: Dense) -> EngineView:
    check_layer(layer)
    formats = layer.require_formats()
    tiling = layer.require_tiling()
    output: FixedPoint = formats.output
    parameters = (
        ("IN_FEATURES", str(layer.in_features)),
        ("OUT_FEATURES", str(layer.out_features)),
        ("VALUES_PER_BEAT", str(tiling.values_per_beat)),
        ("BLOCK_ROWS", str(layer.block[0])),
        ("BLOCK_COLS", str(layer.block[1])),
        ("TILES", str(tiling.tiles)),
        ("REUSE", str(tiling.reuse_factor)),
        ("IN_WIDTH", str(formats.input.width)),
        ("IN_SIGNED", _bit(formats.input.signed)),
        ("WEIGHT_WIDTH", str(formats.weight.width)),
        ("WEIGHT_SIGNED", _bit(formats.weight.signed)),
        ("BIAS_WIDTH", str(formats.bias.width)),
        ("ACC_WIDTH", str(accumulator_width(layer))),
        ("OUT_WIDTH", str(output.width)),
        ("OUT_SIGNED", _bit(output.signed)),
        ("RELU", _bit(layer.activation is Activation.RELU)),
        ("ROUND", _bit(output.rounding is Rounding.RND)),
        ("SATURATE", _bit(output.overflow is Overflow.SAT)),
    )
    # Only structure goes into the source (never the pattern), so patterns share builds.
    summary = (
        f"{layer.name}: {layer.in_features} -> {layer.out_features}, "
        f"block {layer.block[0]}x{layer.block[1]}, {tiling.tiles} tiles x RF "
        f"{tiling.reuse_factor}, {layer.activation.value}"
    )
    return EngineView(name=layer.name, summary=summary, parameters=parameters)


def streams(graph: Graph) -> tuple[StreamView, ...]:
    """Stream k is the input of layer k; the last one is the network output."""
    views = []
    previous: Dense | None = None
    for index, layer in enumerate(graph.layers):
        formats = layer.require_formats()
        beat = layer.require_tiling().values_per_beat
        if previous is not None:
            produced = previous.require_formats().output
            if (produced.width, produced.signed) != (formats.input.width, formats.input.signed):
                raise ValueError(
                    f"layer {layer.name}: input format {formats.input.describe()} differs from "
                    f"{previous.name}'s output format {produced.describe()}"
                )
            if previous.require_tiling().values_per_beat != beat:
                raise ValueError(f"layers {previous.name} and {layer.name}: values per beat differ")
        description = "network input" if previous is None else f"{previous.name} -> {layer.name}"
        views.append(
            StreamView(
                index,
                description,
                layer.in_features,
                beat,
                formats.input.width,
                formats.input.signed,
            )
        )
        previous = layer
    last = graph.layers[-1]
    output = last.require_formats().output
    views.append(
        StreamView(
            len(graph.layers),
            "network output",
            last.out_features,
            last.require_tiling().values_per_beat,
            output.width,
            output.signed,
        )
    )
    return tuple(views)


def _monitor(
    stream: StreamView,
    id: int,
    prefix: str,
    unit: int,
    producer: str | None,
    consumer: str | None,
) -> MonitorView:
    return MonitorView(
        id=id,
        prefix=prefix,
        unit=unit,
        producer=producer,
        consumer=consumer,
        values_per_beat=stream.values_per_beat,
        width=stream.width,
        signed=stream.signed,
        features=stream.features,
    )


def harness_units(graph: Graph) -> tuple[UnitView, ...]:
    """Unit 0 is the network; with several layers each layer also runs alone (its own II)."""
    chain = streams(graph)
    names = [layer.name for layer in graph.layers]
    monitors = []
    for stream in chain:
        producer = names[stream.index - 1] if stream.index > 0 else None
        consumer = names[stream.index] if stream.index < len(names) else None
        # the ends are the harness's own wires; the streams between layers are inside `dut`
        if producer is None:
            prefix = "unit0_in"
        elif consumer is None:
            prefix = "unit0_out"
        else:
            prefix = f"dut.stream_{stream.index}"
        monitors.append(_monitor(stream, stream.index, prefix, 0, producer, consumer))
    units = [
        UnitView(
            index=0,
            description=f"network {graph.name}",
            layer=None,
            layers=tuple(names),
            input=chain[0],
            output=chain[-1],
            monitors=tuple(monitors),
            source_seed=_seed(0, 0),
            sink_seed=_seed(0, 1),
        )
    ]
    if len(graph.layers) > 1:
        next_id = len(chain)
        for position, layer in enumerate(graph.layers):
            index = position + 1
            unit_monitors = (
                _monitor(chain[position], next_id, f"unit{index}_in", index, None, layer.name),
                _monitor(
                    chain[position + 1], next_id + 1, f"unit{index}_out", index, layer.name, None
                ),
            )
            next_id += 2
            units.append(
                UnitView(
                    index=index,
                    description=f"layer {layer.name} alone",
                    layer=engine_view(layer),
                    layers=(layer.name,),
                    input=chain[position],
                    output=chain[position + 1],
                    monitors=unit_monitors,
                    source_seed=_seed(index, 0),
                    sink_seed=_seed(index, 1),
                )
            )
    return tuple(units)


def _seed(unit: int, which: int) -> str:
    """A fixed, nonzero 16-bit LFSR seed per source/sink (hex digits)."""
    return f"{(0xACE1 + 0x3C5 * (2 * unit + which)) & 0xFFFF or 1:04X}"


def render_engine() -> str:
    return (
        template_environment("rtl_sim")
        .get_template("dense_engine.sv.j2")
        .render(version=__version__)
    )


def render_network(graph: Graph) -> str:
    return (
        template_environment("rtl_sim")
        .get_template("network.sv.j2")
        .render(
            version=__version__,
            graph_name=graph.name,
            streams=streams(graph),
            layers=[engine_view(layer) for layer in graph.layers],
        )
    )


def render_harness(graph: Graph) -> str:
    return (
        template_environment("rtl_sim")
        .get_template("harness.sv.j2")
        .render(version=__version__, graph_name=graph.name, units=harness_units(graph))
    )


def sources(graph: Graph) -> dict[str, str]:
    """The SystemVerilog files of the design and its harness, in compilation order."""
    return {
        ENGINE_FILE: render_engine(),
        NETWORK_FILE: render_network(graph),
        HARNESS_FILE: render_harness(graph),
    }


# ------------------------------------------------------------------------ memory files


def _hex_word(value: int, bits: int) -> str:
    return f"{value & ((1 << bits) - 1):0{ceil_div(bits, 4)}x}"


def _index_bits(count: int) -> int:
    """$clog2(count), at least 1: the engine's index widths."""
    return max(1, (count - 1).bit_length())


def memory_files(layer: Dense) -> dict[str, bytes]:
    """`<layer>_{weights,slots,bias,shift}.mem` for the engine's $readmemh (hex, one word a line).

    weights: word t*RF + c holds the block tile t computes in cycle c, element (i, j) at bits
    (i*Bc + j)*W; slots: the same words as {valid, block-row, block-column}; bias: one word per
    accumulator row (zero padded); shift: accum.frac - output.frac, two's complement.
    """
    check_layer(layer)
    formats = layer.require_formats()
    csr = layer.require_csr()
    tiling = layer.require_tiling()
    assert layer.bias_raw is not None
    block_rows, block_cols = csr.block
    grid_rows, grid_cols = csr.grid
    row_bits, col_bits = _index_bits(grid_rows), _index_bits(grid_cols)
    weight_bits = formats.weight.width
    block_row_of = csr.block_row_of()
    weight_words, slot_words = [], []
    for slot in tiling.slots.reshape(-1):  # row-major: index t*RF + c
        if slot < 0:
            weight_words.append(_hex_word(0, block_rows * block_cols * weight_bits))
            slot_words.append(_hex_word(0, 1 + row_bits + col_bits))
            continue
        packed = 0
        for position, raw in enumerate(np.asarray(csr.blocks[slot]).reshape(-1)):
            packed |= (int(raw) & ((1 << weight_bits) - 1)) << (position * weight_bits)
        weight_words.append(_hex_word(packed, block_rows * block_cols * weight_bits))
        word = (1 << (row_bits + col_bits)) | (int(block_row_of[slot]) << col_bits)
        slot_words.append(_hex_word(word | int(csr.col_idx[slot]), 1 + row_bits + col_bits))
    beat = tiling.values_per_beat
    acc_rows = max(grid_rows * block_rows, ceil_div(layer.out_features, beat) * beat)
    bias = np.zeros(acc_rows, dtype=np.int64)
    bias[: layer.out_features] = layer.bias_raw
    bias_words = [_hex_word(int(value), formats.bias.width) for value in bias]
    shift_words = [_hex_word(output_shift(layer), SHIFT_BITS)]
    header = f"// {layer.name} {{}} for dense_engine (codesign {__version__})\n"
    contents = {
        "weights": weight_words,
        "slots": slot_words,
        "bias": bias_words,
        "shift": shift_words,
    }
    return {
        f"{layer.name}_{kind}.mem": (header.format(kind) + "\n".join(words) + "\n").encode()
        for kind, words in contents.items()
    }


def emit_rtl(graph: Graph) -> BuildPlan:
    """rtl/*.sv and rtl/mem/*.mem for the tiled graph."""
    files = {f"{RTL_FOLDER}/{name}": text.encode() for name, text in sources(graph).items()}
    for layer in graph.layers:
        for name, content in memory_files(layer).items():
            files[f"{RTL_FOLDER}/{MEM_FOLDER}/{name}"] = content
    return BuildPlan(files)
