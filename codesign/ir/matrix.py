"""The parts of a matrix layer: fixed-point formats, the block-CSR weight matrix, its tiling,
and where a Conv2d applies it (design.md §4)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from codesign.errors import FormatError
from codesign.ir.fixed import FixedPoint, Overflow


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

    def check_exact(self, layer: str) -> LayerFormats:  # raises FormatError (a ValueError)
        """The formats, if the kernels can implement them exactly; else a FormatError.

        The accumulator keeps every product bit (frac = input + weight), and the bias is a
        signed raw value in the accumulator's fraction, no wider than the accumulator unless
        that wraps (AC_WRAP: the sum is taken modulo its width, bias included).
        """
        if self.accum.frac != self.input.frac + self.weight.frac:
            raise FormatError(
                f"layer {layer}: accumulator fraction bits {self.accum.frac} must be "
                f"input + weight fraction bits ({self.input.frac} + {self.weight.frac})"
            )
        bias = self.bias
        wider = bias.width > self.accum.width and self.accum.overflow is not Overflow.WRAP
        if bias.frac != self.accum.frac or not bias.signed or wider:
            raise FormatError(
                f"layer {layer}: the bias must be signed, in the accumulator's fraction and "
                "no wider than the accumulator (unless it wraps)"
            )
        return self


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
    slots: npt.NDArray[np.int64]

    @property
    def tiles(self) -> int:
        return int(self.slots.shape[0])


@dataclass(frozen=True)
class ConvGeometry:
    """Where a Conv2d's matrix is applied: input (C, H, W), kernel, stride and zero padding."""

    in_channels: int
    in_height: int
    in_width: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)

    @property
    def out_height(self) -> int:
        return (self.in_height + 2 * self.padding[0] - self.kernel[0]) // self.stride[0] + 1

    @property
    def out_width(self) -> int:
        return (self.in_width + 2 * self.padding[1] - self.kernel[1]) // self.stride[1] + 1

    @property
    def positions(self) -> int:
        return self.out_height * self.out_width

    @property
    def patch(self) -> int:
        """Columns of the matrix: Cin·Kh·Kw."""
        return self.in_channels * self.kernel[0] * self.kernel[1]

    @property
    def in_size(self) -> int:
        return self.in_channels * self.in_height * self.in_width
