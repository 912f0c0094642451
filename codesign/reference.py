"""The oracle: integer-exact NumPy evaluation of a quantised Graph with ac_fixed semantics.

C simulation and RTL simulation are compared bit for bit against what this module computes.
Every layer is defined here on raw integers; the kernels implement exactly these steps:

Values are flat vectors in stream order (codesign.ir.graph): maps channel-last (H, W, C).

  Dense / Conv2d  accum = W·x + bias (exact; for Conv2d on every im2col patch, zero padding;
                  a Dense after a Flatten reads x in its columns' order, column_sources),
                  wrapped to the accumulator's width (AC_WRAP: a no-op unless --precision
                  narrows it), then the activation, then the cast to the output format;
  activation      ReLU: max(accum, 0). LeakyReLU: accum < 0 ? accum·alpha_raw :
                  accum << ALPHA_FRAC (ALPHA_FRAC more fraction bits either way);
  Pool2d          max: the window's largest raw value (same format); avg: the window sum
                  times pool_reciprocal_raw(area), POOL_FRAC more fraction bits, then the cast;
  Add             both inputs shifted left to the finer fraction, summed exactly, activation,
                  then the cast;
  cast            FixedPoint.cast: rounding and overflow of the output format (ac_fixed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from codesign.ir.fixed import MAX_WIDTH, RawArray
from codesign.ir.graph import (
    ALPHA_BITS,
    ALPHA_FRAC,
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
    alpha_raw,
    from_stream,
    pool_reciprocal_raw,
    to_stream,
)

_Number = TypeVar("_Number", np.int64, np.float64)


@dataclass(frozen=True, eq=False)
class LayerTrace:
    """Raw values of one layer over a batch: pre-activation (or pre-cast) values and output.

    `saturated` counts the output values that overflowed the output format (saturated or
    wrapped, as the format says).
    """

    name: str
    accum: RawArray
    output: RawArray
    saturated: int
    accum_overflows: int = 0  # accumulator values that wrapped (a --precision accum width)


def activate(
    values: RawArray, activation: Activation, alpha: float, frac: int
) -> tuple[RawArray, int]:
    """The activation on raw values with `frac` fraction bits; returns values and their frac."""
    if activation is Activation.RELU:
        return np.maximum(values, 0), frac
    if activation is Activation.LEAKY_RELU:
        slope = alpha_raw(alpha)
        values = _exact(values, ALPHA_BITS)
        values = np.where(values < 0, values * slope, values << ALPHA_FRAC)
    return values, frac + activation_frac_bits(activation)


def _exact(values: RawArray, extra_bits: int) -> RawArray:
    """`values`, as Python integers (object array) if growing by `extra_bits` could overflow
    int64: wide accumulators (27-bit operands) times a LeakyReLU slope need up to 80 bits."""
    largest = int(np.abs(values).max()) if values.size else 0
    if largest.bit_length() + extra_bits <= MAX_WIDTH:
        return values
    return values.astype(object)


def im2col(layer: Conv2d, x: npt.NDArray[_Number]) -> npt.NDArray[_Number]:
    """Patches of a batch of flat (H, W, C) inputs: batch × positions × Cin·Kh·Kw."""
    g = layer.conv
    maps = x.reshape(len(x), g.in_height, g.in_width, g.in_channels)
    (ph, pw), (kh, kw), (sh, sw) = g.padding, g.kernel, g.stride
    padded = np.pad(maps, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(1, 2))
    windows = windows[:, : g.out_height * sh : sh, : g.out_width * sw : sw]
    # batch, Ho, Wo, C, Kh, Kw: columns in PyTorch's (Cin, Kh, Kw) order
    return windows.reshape(len(x), g.positions, g.patch)


def apply_matrix(
    layer: Dense, x: npt.NDArray[_Number], weight: npt.NDArray[_Number], bias: npt.NDArray[_Number]
) -> npt.NDArray[_Number]:
    """W·x + b for a batch: once per vector (Dense) or per im2col patch (Conv2d), the outputs
    of a Conv2d position by position, a position's Cout values together (H, W, C)."""
    if not isinstance(layer, Conv2d):
        sources = layer.column_sources
        columns = x if sources is None else x[:, sources]
        return np.asarray(columns @ weight.T + bias)
    per_position = im2col(layer, x) @ weight.T + bias  # batch × positions × Cout
    return np.asarray(per_position.reshape(len(x), -1))


def dense_forward(layer: Dense, x_raw: RawArray) -> LayerTrace:
    """A Dense or Conv2d layer on a batch of raw input vectors (batch × in_features)."""
    formats = layer.require_formats()
    assert layer.weight_raw is not None and layer.bias_raw is not None
    # acc has frac = input.frac + weight.frac; products and sums are exact in int64.
    accum = apply_matrix(
        layer, x_raw.astype(np.int64), layer.weight_raw.astype(np.int64), layer.bias_raw
    )
    # The accumulator wraps (AC_WRAP); the exact sum wraps the same as every partial sum.
    accum, wrapped = formats.accum.cast(accum, formats.accum)
    activated, frac = activate(accum, layer.activation, layer.alpha, formats.accum.frac)
    output, saturated = formats.output.cast_frac(activated, frac)
    return LayerTrace(layer.name, accum, output, saturated, wrapped)


def pool_windows(layer: Pool2d, x: npt.NDArray[_Number]) -> npt.NDArray[_Number]:
    """Windows of a batch of flat (H, W, C) inputs: batch × Ho × Wo × C × Kh·Kw."""
    maps = x.reshape(len(x), layer.in_height, layer.in_width, layer.channels)
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    windows = np.lib.stride_tricks.sliding_window_view(maps, (kh, kw), axis=(1, 2))
    windows = windows[:, : layer.out_height * sh : sh, : layer.out_width * sw : sw]
    return windows.reshape(*windows.shape[:4], kh * kw)


def pool_forward(layer: Pool2d, x_raw: RawArray) -> LayerTrace:
    windows = pool_windows(layer, x_raw.astype(np.int64))
    if layer.mode is PoolMode.MAX:
        pooled = windows.max(axis=-1).reshape(len(x_raw), -1)
        output, saturated = layer.out_format().cast(pooled, layer.in_format())
        return LayerTrace(layer.name, pooled, output, saturated)
    scaled = windows.sum(axis=-1).reshape(len(x_raw), -1) * pool_reciprocal_raw(layer.area)
    output, saturated = layer.out_format().cast_frac(scaled, layer.in_format().frac + POOL_FRAC)
    return LayerTrace(layer.name, scaled, output, saturated)


def add_forward(layer: Add, a_raw: RawArray, b_raw: RawArray) -> LayerTrace:
    a_format, b_format = layer.require_input_formats()
    frac = layer.sum_frac
    shifts = (frac - a_format.frac, frac - b_format.frac)
    total = (_exact(a_raw.astype(np.int64), shifts[0] + 1) << shifts[0]) + (
        _exact(b_raw.astype(np.int64), shifts[1] + 1) << shifts[1]
    )
    activated, activated_frac = activate(total, layer.activation, layer.alpha, frac)
    output, saturated = layer.out_format().cast_frac(activated, activated_frac)
    return LayerTrace(layer.name, total, output, saturated)


def layer_forward(layer: Layer, operands: list[RawArray]) -> LayerTrace:
    if isinstance(layer, Dense):
        return dense_forward(layer, operands[0])
    if isinstance(layer, Pool2d):
        return pool_forward(layer, operands[0])
    return add_forward(layer, operands[0], operands[1])


def run(graph: Graph, x_raw: RawArray) -> list[LayerTrace]:
    """Every layer's trace, in graph order, for a batch of raw inputs (batch × features)."""
    values: dict[str, RawArray] = {
        GRAPH_INPUT: np.asarray(x_raw, dtype=np.int64).reshape(len(x_raw), -1)
    }
    traces: list[LayerTrace] = []
    for layer in graph.layers:
        trace = layer_forward(layer, [values[name] for name in graph.inputs_of(layer)])
        traces.append(trace)
        values[layer.name] = trace.output
    return traces


def quantize_inputs(graph: Graph, x: npt.ArrayLike) -> RawArray:
    """Float inputs (batch first, in the model's layout: (C, H, W) images) to raw values of
    the graph's input format, in stream order ((H, W, C) for an image)."""
    flat = to_stream(np.asarray(x, dtype=np.float64), graph.input_shape)
    raw, _ = graph.input_format.quantize(flat)
    return raw


def predict(graph: Graph, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Fixed-point outputs of the network for float inputs, as floats, flattened in
    PyTorch's order (a map output back from channel-last to (C, H, W))."""
    traces = run(graph, quantize_inputs(graph, x))
    output = graph.output_format.to_float(traces[-1].output)
    return from_stream(output, graph.layers[-1].out_shape).reshape(len(output), -1)


def computing_layers(graph: Graph) -> set[str]:
    """The layers whose pre-activation values count as computed (matrix layers and adds);
    pooling only selects or averages its input's values."""
    return {layer.name for layer in graph.layers if not isinstance(layer, Pool2d)}


def nontrivial(traces: list[LayerTrace], graph: Graph) -> dict[str, float]:
    """The §7 triviality measures over a run: nonzero pre-activations and saturated outputs.

    Pre-activation values are those of the layers that compute (matrix layers and adds);
    pooling only selects or averages and is left out of the nonzero fraction.
    """
    computing = computing_layers(graph)
    counted = [t for t in traces if t.name in computing]
    values = sum(t.accum.size for t in counted)
    nonzero = sum(int(np.count_nonzero(t.accum)) for t in counted)
    outputs = sum(t.output.size for t in traces)
    saturated = sum(t.saturated for t in traces)
    return {
        "nonzero_output_fraction": nonzero / values if values else 0.0,
        "saturated_fraction": saturated / outputs if outputs else 0.0,
    }


def float_forward(layer: Layer, operands: list[npt.NDArray[np.float64]]) -> npt.NDArray[np.float64]:
    """The float model of one layer (calibration; the PyTorch model's arithmetic)."""
    if isinstance(layer, Pool2d):
        windows = pool_windows(layer, operands[0])
        reduced = windows.max(axis=-1) if layer.mode is PoolMode.MAX else windows.mean(axis=-1)
        return np.asarray(reduced.reshape(len(operands[0]), -1), dtype=np.float64)
    if isinstance(layer, Add):
        values = operands[0] + operands[1]
    else:
        values = apply_matrix(layer, operands[0], layer.weight, layer.bias)
    if layer.activation is Activation.RELU:
        return np.maximum(values, 0.0)
    if layer.activation is Activation.LEAKY_RELU:
        return np.where(values < 0, values * layer.alpha, values)
    return np.asarray(values, dtype=np.float64)
