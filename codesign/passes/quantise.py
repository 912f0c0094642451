"""Choose per-layer fixed-point formats from the weights and calibration data; quantise.

Formats (design.md §4): weights `weight_bits` wide with integer bits from the largest weight;
activations `act_bits` wide with integer bits from the largest value seen on the calibration
data plus one bit of headroom (the network input gets none: its range is known exactly);
accumulators `input + weight + ceil(log2(fan_in + 1))` bits wide, and biases quantised with
the accumulator's fraction bits and one bit less range, so no sum of products plus bias can
overflow.
Pooling keeps its input's format; an Add takes both inputs as they are (the sum is aligned
exactly) and gets its own calibrated output format. LeakyReLU needs no extra format: its
slope is a raw integer with ALPHA_FRAC fraction bits (codesign.reference).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from codesign.errors import CodesignError
from codesign.ir.fixed import MAX_WIDTH, FixedPoint, Overflow, Rounding, integer_bits_for
from codesign.ir.graph import GRAPH_INPUT, Dense, Graph, Layer, LayerFormats, Pool2d
from codesign.precision import Precision, check_layer_names, spec_for
from codesign.reference import float_forward

OUTPUT_HEADROOM_BITS = 1


def quantise(
    graph: Graph,
    calibration: npt.ArrayLike,
    weight_bits: int = 8,
    act_bits: int = 16,
    precision: Precision | None = None,
) -> Graph:
    """Return `graph` with formats on every layer and raw weights and biases where it has them.

    `precision` (codesign.precision) overrides calibrated formats per layer.
    """
    precision = precision or {}
    check_layer_names(
        precision, {n for layer in graph.layers for n in (layer.name, layer.source_name)}
    )
    network_input = np.asarray(calibration, dtype=np.float64)
    network_input = network_input.reshape(len(network_input), -1)
    values = {GRAPH_INPUT: network_input}
    formats = {
        GRAPH_INPUT: FixedPoint(act_bits, integer_bits_for(float(np.abs(network_input).max())))
    }
    layers: list[Layer] = []
    for layer in graph.layers:
        sources = graph.inputs_of(layer)
        output = float_forward(layer, [values[name] for name in sources])
        values[layer.name] = output
        calibrated = FixedPoint(
            act_bits,
            integer_bits_for(float(np.abs(output).max()), headroom=OUTPUT_HEADROOM_BITS),
        )
        names = (layer.name, layer.source_name)
        if isinstance(layer, Pool2d):
            calibrated = formats[sources[0]]  # pooling keeps its input's range
        override = spec_for(precision, names, "output")
        if override is not None:
            calibrated = override.resolve(calibrated)
        quantised: Layer
        if isinstance(layer, Dense):
            quantised = _quantise_layer(
                layer, formats[sources[0]], calibrated, weight_bits, precision
            )
        elif isinstance(layer, Pool2d):
            quantised = replace(layer, input_format=formats[sources[0]], output_format=calibrated)
        else:
            quantised = replace(
                layer,
                input_formats=tuple(formats[name] for name in sources),
                output_format=calibrated,
            )
        layers.append(quantised)
        formats[layer.name] = quantised.out_format()
    return replace(graph, layers=tuple(layers))


def _quantise_layer(
    layer: Dense,
    input_format: FixedPoint,
    output_format: FixedPoint,
    weight_bits: int,
    precision: Precision,
) -> Dense:
    names = (layer.name, layer.source_name)
    weight_format = FixedPoint(weight_bits, integer_bits_for(float(np.abs(layer.weight).max())))
    weight_spec = spec_for(precision, names, "weight")
    if weight_spec is not None:
        weight_format = weight_spec.resolve(weight_format)
    accum_width = input_format.width + weight_format.width + math.ceil(math.log2(layer.fan_in + 1))
    accum_frac = input_format.frac + weight_format.frac
    accum_spec = spec_for(precision, names, "accum")
    if accum_spec is not None:
        if accum_spec.frac is not None and accum_spec.frac != accum_frac:
            raise CodesignError(
                f"--precision: layer {layer.source_name} accumulates with {accum_frac} fraction "
                f"bits (input {input_format.frac} + weight {weight_format.frac}), not "
                f"{accum_spec.frac}; give the accumulator's width alone"
            )
        if accum_spec.width < 2:
            raise CodesignError(f"--precision: layer {layer.source_name}: accumulator too narrow")
        accum_width = accum_spec.width
    if accum_width > MAX_WIDTH:
        raise CodesignError(
            f"layer {layer.source_name}: an exact accumulator needs {accum_width} bits (input "
            f"{input_format.width} + weight {weight_format.width} + log2 of {layer.fan_in} "
            f"products), more than the {MAX_WIDTH} the reference and kernels hold; use fewer "
            "--weight-bits/--act-bits, or narrow it with --precision accum=N (it wraps)"
        )
    accum_format = FixedPoint(
        accum_width, accum_width - accum_frac, rounding=Rounding.TRN, overflow=Overflow.WRAP
    )
    # One bit narrower than the accumulator: |bias| < 2**(W-2) and |sum of products| <= 2**(W-2),
    # so the accumulator cannot overflow whatever the data (unless --precision narrows it).
    bias_format = FixedPoint(accum_width - 1, accum_width - 1 - accum_frac)
    weight_raw, weight_overflows = weight_format.quantize(layer.weight)
    # A weight pruned to zero stays exactly zero; rounding cannot revive it.
    bias_raw, _ = bias_format.quantize(layer.bias)
    formats = LayerFormats(
        input=input_format,
        weight=weight_format,
        bias=bias_format,
        accum=accum_format,
        output=output_format,
    )
    return replace(
        layer,
        formats=formats,
        weight_raw=weight_raw,
        bias_raw=bias_raw,
        weight_overflows=weight_overflows,
    )
