"""The backend-neutral IR: frozen dataclasses for layers, block-sparse weights and tilings.

A `Graph` is a chain of layers, each consuming the previous layer's output vector. Passes
(`codesign.passes`) take a Graph and return a new one, filling in the optional fields in
order: `formats` (quantise), `csr` (compress), `tiling` (tile).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from codesign.errors import CodesignError
from codesign.ir.fixed import FixedPoint


class Activation(StrEnum):
    NONE = "none"
    RELU = "relu"


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class LayerFormats:
    """Fixed-point formats of one layer: input, weights, bias, accumulator, output."""

    input: FixedPoint
    weight: FixedPoint
    bias: FixedPoint
    accum: FixedPoint
    output: FixedPoint

    def operand_bits(self) -> int:
        """Widest multiplier operand, which selects the DSP mode."""
        return max(self.input.width, self.weight.width)


@dataclass(frozen=True, eq=False)
class BlockCSR:
    """A weight matrix (rows × cols) in block-compressed sparse rows.

    The matrix is zero-padded to whole blocks. Block-row `r` keeps the blocks
    `row_ptr[r]:row_ptr[r+1]`, whose block-column indices are `col_idx[...]` (ascending) and whose
    values are `blocks[k]` (block_rows × block_cols, raw integers of the weight format).
    """

    shape: tuple[int, int]
    block: tuple[int, int]
    row_ptr: npt.NDArray[np.int64]
    col_idx: npt.NDArray[np.int64]
    blocks: npt.NDArray[np.int64]

    @property
    def grid(self) -> tuple[int, int]:
        """Number of block-rows and block-columns (after padding)."""
        return ceil_div(self.shape[0], self.block[0]), ceil_div(self.shape[1], self.block[1])

    @property
    def padded_shape(self) -> tuple[int, int]:
        rows, cols = self.grid
        return rows * self.block[0], cols * self.block[1]

    @property
    def nnz_blocks(self) -> int:
        return int(self.col_idx.size)

    @property
    def block_sparsity(self) -> float:
        rows, cols = self.grid
        return 1.0 - self.nnz_blocks / (rows * cols)

    def block_row_of(self) -> npt.NDArray[np.int64]:
        """Block-row index of every kept block, in storage order."""
        counts = np.diff(self.row_ptr)
        return np.repeat(np.arange(counts.size, dtype=np.int64), counts)

    def to_dense(self) -> npt.NDArray[np.int64]:
        br, bc = self.block
        dense = np.zeros(self.padded_shape, dtype=np.int64)
        for k, (r, c) in enumerate(zip(self.block_row_of(), self.col_idx, strict=True)):
            dense[r * br : (r + 1) * br, c * bc : (c + 1) * bc] = self.blocks[k]
        return dense[: self.shape[0], : self.shape[1]]


@dataclass(frozen=True, eq=False)
class Tiling:
    """How a layer's kept blocks are mapped onto Br×Bc multiplier tiles over time.

    `slots[t, c]` is the storage index (into BlockCSR) of the block tile `t` computes in cycle
    `c` of a vector, or -1 when the tile idles. Blocks are dealt in storage order, `reuse_factor`
    per tile, so a balanced pattern puts whole block-rows on a tile when `reuse_factor` is a
    multiple of the blocks kept per row (design.md §4).
    """

    reuse_factor: int
    values_per_beat: int
    slots: npt.NDArray[np.int64]

    @property
    def tiles(self) -> int:
        return int(self.slots.shape[0])


@dataclass(frozen=True, eq=False)
class Dense:
    """y = activation(W x + b); W is out_features × in_features (PyTorch's layout)."""

    name: str
    source_name: str
    weight: npt.NDArray[np.float64]
    bias: npt.NDArray[np.float64]
    activation: Activation = Activation.NONE
    block: tuple[int, int] = (1, 4)
    formats: LayerFormats | None = None
    weight_raw: npt.NDArray[np.int64] | None = None
    bias_raw: npt.NDArray[np.int64] | None = None
    csr: BlockCSR | None = None
    tiling: Tiling | None = None
    kind: str = field(default="dense", init=False)

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return self.out_features, self.in_features

    @property
    def sparsity(self) -> float:
        return float(np.mean(self.weight == 0.0))

    def require_formats(self) -> LayerFormats:
        if self.formats is None or self.weight_raw is None or self.bias_raw is None:
            raise ValueError(f"layer {self.name}: not quantised yet (run the quantise pass)")
        return self.formats

    def require_csr(self) -> BlockCSR:
        if self.csr is None:
            raise ValueError(f"layer {self.name}: not compressed yet (run the compress pass)")
        return self.csr

    def require_tiling(self) -> Tiling:
        if self.tiling is None:
            raise ValueError(f"layer {self.name}: not tiled yet (run the tile pass)")
        return self.tiling


Layer = Dense


@dataclass(frozen=True, eq=False)
class Graph:
    """A chain of layers from one input vector to one output vector."""

    name: str
    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]

    @property
    def input_format(self) -> FixedPoint:
        return self.layers[0].require_formats().input

    @property
    def output_format(self) -> FixedPoint:
        return self.layers[-1].require_formats().output

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if name in (layer.name, layer.source_name):
                return layer
        known = ", ".join(layer.name for layer in self.layers)
        raise CodesignError(f"no layer named {name!r}; layers: {known}")
