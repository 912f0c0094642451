"""Choose per-layer fixed-point formats from the weights and calibration data; quantise.

Formats (design.md §4): weights `weight_bits` wide with integer bits from the largest weight;
activations `act_bits` wide with integer bits from the largest value seen on the calibration
data plus one bit of headroom (the network input gets none: its range is known exactly);
accumulators `input + weight + ceil(log2(fan_in + 1))` bits wide, and biases quantised with
the accumulator's fraction bits and one bit less range, so no sum of products plus bias can
overflow.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from codesign.ir.fixed import FixedPoint, Overflow, Rounding, integer_bits_for
from codesign.ir.graph import Activation, Dense, Graph, LayerFormats

OUTPUT_HEADROOM_BITS = 1


def quantise(
    graph: Graph, calibration: npt.ArrayLike, weight_bits: int = 8, act_bits: int = 16
) -> Graph:
    """Return `graph` with formats, raw weights and raw biases on every layer."""
    activations = np.asarray(calibration, dtype=np.float64)
    activations = activations.reshape(len(activations), -1)
    input_format = FixedPoint(act_bits, integer_bits_for(float(np.abs(activations).max())))
    layers: list[Dense] = []
    for layer in graph.layers:
        activations = _float_forward(layer, activations)
        output_format = FixedPoint(
            act_bits,
            integer_bits_for(float(np.abs(activations).max()), headroom=OUTPUT_HEADROOM_BITS),
        )
        layers.append(_quantise_layer(layer, input_format, output_format, weight_bits))
        input_format = output_format
    return replace(graph, layers=tuple(layers))


def _float_forward(layer: Dense, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    y = x @ layer.weight.T + layer.bias
    return np.maximum(y, 0.0) if layer.activation is Activation.RELU else y


def _quantise_layer(
    layer: Dense, input_format: FixedPoint, output_format: FixedPoint, weight_bits: int
) -> Dense:
    weight_format = FixedPoint(weight_bits, integer_bits_for(float(np.abs(layer.weight).max())))
    accum_width = (
        input_format.width + weight_format.width + math.ceil(math.log2(layer.in_features + 1))
    )
    accum_frac = input_format.frac + weight_format.frac
    accum_format = FixedPoint(
        accum_width, accum_width - accum_frac, rounding=Rounding.TRN, overflow=Overflow.WRAP
    )
    # One bit narrower than the accumulator: |bias| < 2**(W-2) and |sum of products| <= 2**(W-2),
    # so the accumulator cannot overflow whatever the data.
    bias_format = FixedPoint(accum_width - 1, accum_width - 1 - accum_frac)
    weight_raw, _ = weight_format.quantize(layer.weight)
    # A weight pruned to zero stays exactly zero; rounding cannot revive it.
    bias_raw, _ = bias_format.quantize(layer.bias)
    formats = LayerFormats(
        input=input_format,
        weight=weight_format,
        bias=bias_format,
        accum=accum_format,
        output=output_format,
    )
    return replace(layer, formats=formats, weight_raw=weight_raw, bias_raw=bias_raw)
