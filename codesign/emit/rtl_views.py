"""View-models of the RTL templates: engines, the streams between them, and harness units.

Every value of a graph (the network input and each layer's output) is one valid/ready
stream; a layer's input ports read the streams of the values it consumes. Only structure goes
into these views (shapes, tiling sizes, widths, modes), never the weight pattern, so patterns
of one shape share a Verilator build (design.md §4).
"""

from __future__ import annotations

from dataclasses import dataclass

from codesign.errors import FormatError
from codesign.hardware import input_frames, values_per_beat
from codesign.ir.fixed import FixedPoint, Overflow, Rounding
from codesign.ir.graph import (
    ALPHA_BITS,
    GRAPH_INPUT,
    POOL_FRAC,
    Activation,
    Add,
    Conv2d,
    Dense,
    Graph,
    Layer,
    Pool2d,
    PoolMode,
    activation_frac_bits,
    alpha_fits,
    ceil_div,
    input_formats,
    pool_reciprocal_raw,
)

SHIFT_BITS = 8  # the engines' SHIFT_WIDTH
ACTIVATION_CODES = {Activation.NONE: 0, Activation.RELU: 1, Activation.LEAKY_RELU: 2}
MATRIX_MODULE, POOL_MODULE, ADD_MODULE = "matrix_engine", "pool_engine", "add_engine"


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


@dataclass(frozen=True)
class EngineView:
    """What the templates need to instantiate one layer's engine."""

    name: str
    module: str
    summary: str
    memories: bool  # reads memory files: takes NAME and MEM_DIR
    parameters: tuple[tuple[str, str], ...]
    ports: tuple[str, ...]  # input port prefixes: ("in",) or ("in_a", "in_b")


def _bit(flag: bool) -> str:
    return "1'b1" if flag else "1'b0"


def _cast_parameters(output: FixedPoint) -> tuple[tuple[str, str], ...]:
    return (
        ("OUT_WIDTH", str(output.width)),
        ("OUT_SIGNED", _bit(output.signed)),
        ("ROUND", _bit(output.rounding is Rounding.RND)),
        ("SATURATE", _bit(output.overflow is Overflow.SAT)),
    )


def _check_shift(layer: Layer, shift: int) -> None:
    limit = (1 << (SHIFT_BITS - 1)) - 1
    if abs(shift) > limit:
        raise FormatError(
            f"layer {layer.name}: its output format is {shift} fraction bits from its sum's; "
            f"the RTL engines shift by at most {limit} (check --precision)"
        )


def _check_alpha(layer: Dense | Add) -> None:
    if layer.activation is Activation.LEAKY_RELU and not alpha_fits(layer.alpha):
        raise FormatError(
            f"layer {layer.name}: LeakyReLU slope {layer.alpha} is outside [-2, 2), the range "
            f"the kernels store ({ALPHA_BITS} bits)"
        )


def accumulator_width(layer: Dense) -> int:
    """Bits that hold every bias + sum of products exactly (the reference works in int64)."""
    formats = layer.require_formats()
    largest_input = max(-formats.input.min_raw, formats.input.max_raw)
    largest_weight = max(-formats.weight.min_raw, formats.weight.max_raw)
    largest_bias = max(-formats.bias.min_raw, formats.bias.max_raw)
    bound = layer.fan_in * largest_input * largest_weight + largest_bias
    return bound.bit_length() + 1


def output_shift(layer: Dense) -> int:
    """Fraction bits of the activated accumulator - output.frac: right (> 0) or left (< 0)
    shift of the output cast (LeakyReLU adds ALPHA_FRAC fraction bits)."""
    formats = layer.require_formats()
    return formats.accum.frac + activation_frac_bits(layer.activation) - formats.output.frac


def check_layer(layer: Dense) -> None:
    """Raise FormatError when the engine cannot implement the layer's formats exactly."""
    formats = layer.check_exact_formats()
    layer.require_csr()
    layer.require_tiling()
    narrow = formats.accum.width < accumulator_width(layer)
    if narrow and (formats.accum.overflow is not Overflow.WRAP or not formats.accum.signed):
        raise FormatError(
            f"layer {layer.name}: a narrowed accumulator must be signed and wrap (AC_WRAP)"
        )
    _check_shift(layer, output_shift(layer))
    _check_alpha(layer)


def _matrix_view(layer: Dense) -> EngineView:
    check_layer(layer)
    formats = layer.require_formats()
    tiling = layer.require_tiling()
    if isinstance(layer, Conv2d):
        g = layer.conv
        geometry = (g.in_channels, g.in_height, g.in_width, *g.kernel, *g.stride, *g.padding)
        out_map = (g.out_height, g.out_width)
    else:
        geometry = (layer.in_features, 1, 1, 1, 1, 1, 1, 0, 0)
        out_map = (1, 1)
    keys = ("IN_CHANNELS", "IN_HEIGHT", "IN_COLS", "KERNEL_H", "KERNEL_W", "STRIDE_H",
            "STRIDE_W", "PAD_H", "PAD_W")  # fmt: skip
    parameters = (
        ("ROWS", str(layer.shape[0])),
        ("COLUMNS", str(layer.shape[1])),
        *((key, str(value)) for key, value in zip(keys, geometry, strict=True)),
        ("OUT_HEIGHT", str(out_map[0])),
        ("OUT_COLS", str(out_map[1])),
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
        ("ACC_WRAP", str(min(formats.accum.width, accumulator_width(layer)))),
        ("ACTIVATION", str(ACTIVATION_CODES[layer.activation])),
        *_cast_parameters(formats.output),
    )
    where = f" at {layer.positions} positions" if isinstance(layer, Conv2d) else ""
    summary = (
        f"{layer.name} ({layer.kind}): {layer.shape[1]} -> {layer.shape[0]}{where}, "
        f"block {layer.block[0]}x{layer.block[1]}, {tiling.tiles} tiles x RF "
        f"{tiling.reuse_factor}, {layer.activation.value}"
    )
    return EngineView(layer.name, module_of(layer), summary, True, parameters, ("in",))


def _pool_view(layer: Pool2d) -> EngineView:
    source, output = layer.in_format(), layer.out_format()
    average = layer.mode is PoolMode.AVG
    shift = source.frac + (POOL_FRAC if average else 0) - output.frac
    _check_shift(layer, shift)
    parameters = (
        ("CHANNELS", str(layer.channels)),
        ("IN_HEIGHT", str(layer.in_height)),
        ("IN_COLS", str(layer.in_width)),
        ("KERNEL_H", str(layer.kernel[0])),
        ("KERNEL_W", str(layer.kernel[1])),
        ("STRIDE_H", str(layer.stride[0])),
        ("STRIDE_W", str(layer.stride[1])),
        ("OUT_HEIGHT", str(layer.out_height)),
        ("OUT_COLS", str(layer.out_width)),
        ("VALUES_PER_BEAT", str(layer.values_per_beat)),
        ("IN_WIDTH", str(source.width)),
        ("IN_SIGNED", _bit(source.signed)),
        ("AVERAGE", _bit(average)),
        ("RECIPROCAL", str(pool_reciprocal_raw(layer.area))),
        ("SHIFT", str(shift)),
        *_cast_parameters(output),
    )
    summary = (
        f"{layer.name} ({layer.mode.value} pool): {layer.channels}x{layer.in_height}x"
        f"{layer.in_width}, kernel {layer.kernel[0]}x{layer.kernel[1]}, "
        f"stride {layer.stride[0]}x{layer.stride[1]}"
    )
    return EngineView(layer.name, module_of(layer), summary, False, parameters, ("in",))


def add_shifts(layer: Add) -> tuple[int, int, int]:
    """Left shifts aligning a and b to the finer fraction, and the output cast's shift."""
    a_format, b_format = layer.require_input_formats()
    frac = layer.sum_frac
    out_shift = frac + activation_frac_bits(layer.activation) - layer.out_format().frac
    return frac - a_format.frac, frac - b_format.frac, out_shift


def _add_view(layer: Add, frames: tuple[int, ...]) -> EngineView:
    a_format, b_format = layer.require_input_formats()
    a_shift, b_shift, shift = add_shifts(layer)
    _check_shift(layer, shift)
    _check_alpha(layer)
    parameters = (
        ("FEATURES", str(layer.features)),
        ("VALUES_PER_BEAT", str(layer.values_per_beat)),
        ("A_WIDTH", str(a_format.width)),
        ("A_SIGNED", _bit(a_format.signed)),
        ("A_SHIFT", str(a_shift)),
        ("B_WIDTH", str(b_format.width)),
        ("B_SIGNED", _bit(b_format.signed)),
        ("B_SHIFT", str(b_shift)),
        ("A_DEPTH", str(frames[0])),
        ("B_DEPTH", str(frames[1])),
        ("ACTIVATION", str(ACTIVATION_CODES[layer.activation])),
        ("OUT_SHIFT", str(shift)),
        *_cast_parameters(layer.out_format()),
    )
    summary = (
        f"{layer.name} (add): {layer.features} values, {layer.activation.value}, "
        f"{frames[0]} and {frames[1]} input frames"
    )
    return EngineView(layer.name, module_of(layer), summary, True, parameters, ("in_a", "in_b"))


def module_of(layer: Layer) -> str:
    """The engine module that implements a layer."""
    if isinstance(layer, Dense):
        return MATRIX_MODULE
    return POOL_MODULE if isinstance(layer, Pool2d) else ADD_MODULE


def engine_view(layer: Layer, frames: tuple[int, ...] = (2, 2)) -> EngineView:
    """The engine of a layer; `frames`: an Add's input frames per operand (in a network,
    hardware.input_frames; alone, two each)."""
    if isinstance(layer, Dense):
        return _matrix_view(layer)
    if isinstance(layer, Pool2d):
        return _pool_view(layer)
    return _add_view(layer, frames)


def engine_views(graph: Graph) -> tuple[EngineView, ...]:
    """The engines of a graph's layers, Adds with the input frames the network needs."""
    frames = input_frames(graph)
    return tuple(engine_view(layer, frames.get(layer.name, (2, 2))) for layer in graph.layers)


def input_streams(layer: Layer, index: int = 0) -> tuple[StreamView, ...]:
    """Streams of the layer's input ports (numbered from `index`) when it runs alone."""
    return tuple(
        StreamView(index + k, f"{layer.name} input {k}", layer.in_features,
                   values_per_beat(layer), fmt.width, fmt.signed)
        for k, fmt in enumerate(input_formats(layer))
    )  # fmt: skip


def output_stream(layer: Layer, index: int, description: str) -> StreamView:
    fmt = layer.out_format()
    return StreamView(
        index, description, layer.out_features, values_per_beat(layer), fmt.width, fmt.signed
    )


def streams(graph: Graph) -> tuple[StreamView, ...]:
    """Stream 0 is the network input, stream k + 1 layer k's output (the last: the network's).

    Raises ValueError where a layer reads a stream of another width or beat than its input.
    """
    first = graph.layers[0]
    views = [input_streams(first)[0]]
    views[0] = StreamView(0, "network input", *_stream_shape(views[0]))
    index = {GRAPH_INPUT: 0}
    for position, layer in enumerate(graph.layers):
        reads = zip(graph.inputs_of(layer), input_streams(layer), input_formats(layer), strict=True)
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
                raise FormatError(f"layers {name} and {layer.name}: values per beat differ")
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
