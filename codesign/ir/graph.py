"""The backend-neutral IR: frozen dataclasses for layers, block-sparse weights and tilings.

A `Graph` lists its layers in topological order; each layer reads the outputs of the layers
named in `inputs` (empty: the previous layer, or the network input for the first one) and the
last layer's output is the network's. Every value between layers is a flat vector in stream
order, feature maps channel-last (codesign.ir.layout); a Flatten is a permutation of the next
Linear's columns (`Dense.input_map`), so the model is unchanged and hardware reorders nothing.

Layer kinds:
  Dense    y = act(W x + b), W a block-sparse matrix (the unit of hardware, design.md §4);
  Conv2d   the same block-sparse matrix, W = weight.reshape(Cout, Cin·Kh·Kw) in PyTorch's
           order, applied at every output position to the input patch (im2col), its
           outputs the position's Cout values;
  Pool2d   max or average over windows, per channel;
  Add      the element-wise sum of two vectors (residual connections), with an activation.

Passes (`codesign.passes`) take a Graph and return a new one, filling in the optional fields
in order: formats (quantise), `block` and `csr` (compress), `tiling` (fold/tile). The IR is
hardware-neutral data; what a layer costs and how it is emitted is its engine's
(codesign.engines).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from codesign.errors import CodesignError
from codesign.ir.fixed import (
    ALPHA_BITS,
    ALPHA_FRAC,
    POOL_FRAC,
    FixedPoint,
    alpha_fits,
    alpha_raw,
    pool_reciprocal_raw,
)
from codesign.ir.layout import STREAM_ORDER, StreamWidths, flatten_sources, from_stream, to_stream
from codesign.ir.matrix import BlockCSR, ConvGeometry, LayerFormats, Tiling, ceil_div

__all__ = [  # the layer parts from codesign.ir.matrix and .layout are part of this interface
    "ALPHA_BITS", "ALPHA_FRAC", "GRAPH_INPUT", "POOL_FRAC", "STREAM_ORDER", "StreamWidths",
    "Activation", "Add", "BlockCSR", "Conv2d", "ConvGeometry", "Dense", "Graph", "Layer",
    "LayerFormats", "Pool2d", "PoolMode", "Tiling", "activation_frac_bits", "alpha_fits",
    "alpha_raw", "ceil_div", "flatten_sources", "from_stream", "pool_reciprocal_raw",
    "to_stream",
]  # fmt: skip


class Activation(StrEnum):
    NONE = "none"
    RELU = "relu"
    LEAKY_RELU = "leaky_relu"


GRAPH_INPUT = "<input>"  # the name `inputs` uses for the network input (no identifier)


@dataclass(frozen=True, eq=False)
class Dense:
    """y = activation(W x + b); W is out_features × in_features (PyTorch's layout).

    The base of every layer with a block-sparse weight matrix: `weight` is always the 2-D
    matrix, `shape` its (rows, columns), `fan_in` its columns, and `in_features` /
    `out_features` the lengths of the vectors the layer reads and writes.
    """

    name: str
    source_name: str
    weight: npt.NDArray[np.float64]
    bias: npt.NDArray[np.float64]
    activation: Activation = Activation.NONE
    block: tuple[int, int] | None = None  # set by the compress pass (lowering is hardware-neutral)
    formats: LayerFormats | None = None
    weight_raw: npt.NDArray[np.int64] | None = None
    bias_raw: npt.NDArray[np.int64] | None = None
    csr: BlockCSR | None = None
    tiling: Tiling | None = None
    inputs: tuple[str, ...] = ()
    alpha: float = 0.0  # LeakyReLU's negative slope
    weight_overflows: int = 0  # weights the quantise pass saturated (a --precision weight format)
    # (C, H, W) when the layer reads a PyTorch-flattened feature map: column c·H·W + y·W + x
    # of W reads stream value (y·W + x)·C + c (flatten_sources); None: column j reads value j
    input_map: tuple[int, int, int] | None = None
    widths: StreamWidths = StreamWidths()  # values per beat in and out (set by the tile pass)
    kind: str = field(default="dense", init=False)

    @property
    def column_sources(self) -> npt.NDArray[np.int64] | None:
        """The stream index each column reads, or None when column j reads value j."""
        return None if self.input_map is None else flatten_sources(self.input_map)

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """The weight matrix: (rows, columns)."""
        return int(self.weight.shape[0]), int(self.weight.shape[1])

    @property
    def fan_in(self) -> int:
        """Products summed per output value: the matrix's columns."""
        return int(self.weight.shape[1])

    @property
    def positions(self) -> int:
        """Times the matrix is applied per input vector (1; a Conv2d's output positions)."""
        return 1

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.out_features,)

    def in_format(self) -> FixedPoint:
        return self.require_formats().input

    def in_formats(self) -> tuple[FixedPoint, ...]:
        """The format of each value the layer reads."""
        return (self.in_format(),)

    def out_format(self) -> FixedPoint:
        return self.require_formats().output

    @property
    def sparsity(self) -> float:
        return float(np.mean(self.weight == 0.0))

    @property
    def held_weights(self) -> int:
        """Weights the layer holds: the matrix's (a grouped conv's: those in its groups)."""
        return int(self.weight.size)

    def require_formats(self) -> LayerFormats:
        if self.formats is None or self.weight_raw is None or self.bias_raw is None:
            raise ValueError(f"layer {self.name}: not quantised yet (run the quantise pass)")
        return self.formats

    def check_exact_formats(self) -> LayerFormats:  # raises FormatError (a ValueError)
        """The formats, if the kernels can implement them exactly (LayerFormats.check_exact)."""
        return self.require_formats().check_exact(self.name)

    def require_csr(self) -> BlockCSR:
        if self.csr is None:
            raise ValueError(f"layer {self.name}: not compressed yet (run the compress pass)")
        return self.csr

    def require_tiling(self) -> Tiling:
        if self.tiling is None:
            raise ValueError(f"layer {self.name}: not tiled yet (run the tile pass)")
        return self.tiling


@dataclass(frozen=True, eq=False)
class Conv2d(Dense):
    """A 2-D convolution as a block-sparse matrix applied at every output position.

    `weight` is the matrix weight.reshape(Cout, Cin·Kh·Kw) (PyTorch's order: Cin, then Kh,
    then Kw); input and output are maps in stream order (H, W, C).
    """

    geometry: ConvGeometry | None = None
    # > 1: a grouped conv (depthwise: groups = Cin) whose matrix is block-diagonal, row o
    # reading only the channels of its group; the zeros outside the groups are structural
    groups: int = 1
    # input values the engine's line buffer holds (0: not sized; set with the stream widths)
    line_values: int = 0
    kind: str = field(default="conv2d", init=False)

    def __post_init__(self) -> None:
        if self.geometry is None:
            raise ValueError(f"conv layer {self.name}: no geometry")
        if self.weight.shape[1] != self.geometry.patch:
            raise ValueError(
                f"conv layer {self.name}: matrix has {self.weight.shape[1]} columns, "
                f"the kernel patch {self.geometry.patch}"
            )

    @property
    def held_weights(self) -> int:
        return int(self.weight.size) // self.groups

    @property
    def sparsity(self) -> float:
        """Zero weights among those the groups hold (structural zeros left out)."""
        structural = self.weight.size - self.held_weights
        return (int(np.count_nonzero(self.weight == 0.0)) - structural) / self.held_weights

    @property
    def conv(self) -> ConvGeometry:
        assert self.geometry is not None
        return self.geometry

    @property
    def in_features(self) -> int:
        return self.conv.in_size

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0]) * self.conv.positions

    @property
    def positions(self) -> int:
        return self.conv.positions

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (int(self.weight.shape[0]), self.conv.out_height, self.conv.out_width)


class PoolMode(StrEnum):
    MAX = "max"
    AVG = "avg"


@dataclass(frozen=True, eq=False)
class Pool2d:
    """Max or average pooling per channel over kernel windows (no padding, floor mode), on
    maps in stream order (H, W, C).

    Max pooling keeps the input format; average pooling multiplies the window sum by
    `pool_reciprocal_raw(area)` and casts to `output_format`.
    """

    name: str
    source_name: str
    mode: PoolMode
    channels: int
    in_height: int
    in_width: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    inputs: tuple[str, ...] = ()
    input_format: FixedPoint | None = None
    output_format: FixedPoint | None = None
    widths: StreamWidths = StreamWidths()
    kind: str = field(default="pool2d", init=False)

    @property
    def out_height(self) -> int:
        return (self.in_height - self.kernel[0]) // self.stride[0] + 1

    @property
    def out_width(self) -> int:
        return (self.in_width - self.kernel[1]) // self.stride[1] + 1

    @property
    def in_features(self) -> int:
        return self.channels * self.in_height * self.in_width

    @property
    def out_features(self) -> int:
        return self.channels * self.out_height * self.out_width

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.channels, self.out_height, self.out_width)

    @property
    def area(self) -> int:
        return self.kernel[0] * self.kernel[1]

    def in_format(self) -> FixedPoint:
        if self.input_format is None:
            raise ValueError(f"layer {self.name}: not quantised yet (run the quantise pass)")
        return self.input_format

    def in_formats(self) -> tuple[FixedPoint, ...]:
        return (self.in_format(),)

    def out_format(self) -> FixedPoint:
        if self.output_format is None:
            raise ValueError(f"layer {self.name}: not quantised yet (run the quantise pass)")
        return self.output_format


@dataclass(frozen=True, eq=False)
class Add:
    """y = act(a + b) element-wise; a and b are aligned to the finer format exactly first."""

    name: str
    source_name: str
    features: int
    inputs: tuple[str, ...]
    shape_of_output: tuple[int, ...] = ()
    activation: Activation = Activation.NONE
    alpha: float = 0.0
    input_formats: tuple[FixedPoint, ...] | None = None
    output_format: FixedPoint | None = None
    widths: StreamWidths = StreamWidths()
    # values each operand's FIFO holds (the buffer pass sizes them; () until then)
    buffer_values: tuple[int, ...] = ()
    kind: str = field(default="add", init=False)

    def __post_init__(self) -> None:
        if len(self.inputs) != 2:
            raise ValueError(f"add layer {self.name}: needs two inputs, got {self.inputs}")

    @property
    def in_features(self) -> int:
        return self.features

    @property
    def out_features(self) -> int:
        return self.features

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.shape_of_output or (self.features,)

    @property
    def sum_frac(self) -> int:
        """Fraction bits of the exact sum: the finer of the two inputs."""
        return max(f.frac for f in self.require_input_formats())

    def require_input_formats(self) -> tuple[FixedPoint, ...]:
        if self.input_formats is None:
            raise ValueError(f"layer {self.name}: not quantised yet (run the quantise pass)")
        return self.input_formats

    def in_format(self) -> FixedPoint:
        return self.require_input_formats()[0]

    def in_formats(self) -> tuple[FixedPoint, ...]:
        return self.require_input_formats()

    def out_format(self) -> FixedPoint:
        if self.output_format is None:
            raise ValueError(f"layer {self.name}: not quantised yet (run the quantise pass)")
        return self.output_format


Layer = Dense | Pool2d | Add  # Conv2d is a Dense


def activation_frac_bits(activation: Activation) -> int:
    """Fraction bits an activation adds to its operand (LeakyReLU's slope: ALPHA_FRAC)."""
    return ALPHA_FRAC if activation is Activation.LEAKY_RELU else 0


@dataclass(frozen=True, eq=False)
class Graph:
    """Layers in topological order from one input vector to one output vector (the last's)."""

    name: str
    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]

    @property
    def input_format(self) -> FixedPoint:
        return self.layers[0].in_format()

    @property
    def output_format(self) -> FixedPoint:
        return self.layers[-1].out_format()

    @property
    def is_chain(self) -> bool:
        """Every layer reads only the layer before it (or the network input)."""
        return all(
            self.inputs_of(layer) == ((self.layers[i - 1].name,) if i else (GRAPH_INPUT,))
            for i, layer in enumerate(self.layers)
        )

    def inputs_of(self, layer: Layer) -> tuple[str, ...]:
        """Names of the layers `layer` reads (GRAPH_INPUT for the network input)."""
        if layer.inputs:
            return layer.inputs
        index = next(i for i, other in enumerate(self.layers) if other is layer)
        return (self.layers[index - 1].name,) if index else (GRAPH_INPUT,)

    def consumers_of(self, name: str) -> tuple[Layer, ...]:
        return tuple(layer for layer in self.layers if name in self.inputs_of(layer))

    def format_of(self, name: str) -> FixedPoint:
        """The format of a value: a layer's output, or the network input's."""
        if name == GRAPH_INPUT:
            return self.input_format
        return self.layer(name).out_format()

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if name in (layer.name, layer.source_name):
                return layer
        known = ", ".join(layer.name for layer in self.layers)
        raise CodesignError(f"no layer named {name!r}; layers: {known}")
