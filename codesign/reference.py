"""The oracle: integer-exact NumPy evaluation of a quantised Graph with ac_fixed semantics.

C simulation and RTL simulation are compared bit for bit against what this module computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from codesign.ir.fixed import RawArray
from codesign.ir.graph import Activation, Dense, Graph


@dataclass(frozen=True, eq=False)
class LayerTrace:
    """Raw values of one layer over a batch: accumulator (pre-activation) and output."""

    name: str
    accum: RawArray
    output: RawArray
    saturated: int


def dense_forward(layer: Dense, x_raw: RawArray) -> LayerTrace:
    """One Dense layer on a batch of raw input vectors (batch × in_features)."""
    formats = layer.require_formats()
    assert layer.weight_raw is not None and layer.bias_raw is not None
    # acc has frac = input.frac + weight.frac; products and sums are exact in int64.
    accum = x_raw.astype(np.int64) @ layer.weight_raw.T.astype(np.int64) + layer.bias_raw
    activated = np.maximum(accum, 0) if layer.activation is Activation.RELU else accum
    output, saturated = formats.output.cast(activated, formats.accum)
    return LayerTrace(layer.name, accum, output, saturated)


def run(graph: Graph, x_raw: RawArray) -> list[LayerTrace]:
    """Every layer's trace for a batch of raw inputs (batch × input features)."""
    traces: list[LayerTrace] = []
    activations = np.asarray(x_raw, dtype=np.int64).reshape(len(x_raw), -1)
    for layer in graph.layers:
        trace = dense_forward(layer, activations)
        traces.append(trace)
        activations = trace.output
    return traces


def quantize_inputs(graph: Graph, x: npt.ArrayLike) -> RawArray:
    """Float inputs (batch first, any shape) to raw values of the graph's input format."""
    flat = np.asarray(x, dtype=np.float64).reshape(len(np.asarray(x)), -1)
    raw, _ = graph.input_format.quantize(flat)
    return raw


def predict(graph: Graph, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Fixed-point outputs of the network for float inputs, as floats."""
    traces = run(graph, quantize_inputs(graph, x))
    return graph.output_format.to_float(traces[-1].output)


def nontrivial(traces: list[LayerTrace], graph: Graph) -> dict[str, float]:
    """The §7 triviality measures over a run: nonzero pre-activations and saturated outputs."""
    values = sum(t.accum.size for t in traces)
    nonzero = sum(int(np.count_nonzero(t.accum)) for t in traces)
    saturated = sum(t.saturated for t in traces)
    return {
        "nonzero_output_fraction": nonzero / values if values else 0.0,
        "saturated_fraction": saturated / values if values else 0.0,
    }
