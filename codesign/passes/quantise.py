"""Choose per-layer fixed-point formats from the weights and calibration data; quantise.

Activations are `act_bits` wide with integer bits from the largest value seen on the
calibration data plus one bit of headroom (the network input gets none: its range is known
exactly). Each layer's engine then fixes what is its own (codesign.engines): a matrix layer
its weight, bias and accumulator formats, pooling keeps its input's format, an Add takes both
inputs as they are (the sum is aligned exactly). LeakyReLU needs no extra format: its slope
is a raw integer with ALPHA_FRAC fraction bits (codesign.reference).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from codesign.engines import engine_for
from codesign.ir.fixed import FixedPoint, integer_bits_for
from codesign.ir.graph import GRAPH_INPUT, Graph, Layer, to_stream
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
    network_input = to_stream(np.asarray(calibration, dtype=np.float64), graph.input_shape)
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
        engine = engine_for(layer)
        inputs = tuple(formats[name] for name in sources)
        calibrated = engine.output_format(layer, inputs, calibrated)
        override = spec_for(precision, (layer.name, layer.source_name), "output")
        if override is not None:
            calibrated = override.resolve(calibrated)
        quantised = engine.quantise(layer, inputs, calibrated, weight_bits, precision)
        layers.append(quantised)
        formats[layer.name] = quantised.out_format()
    return replace(graph, layers=tuple(layers))
