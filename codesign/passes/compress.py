"""Compress each layer's quantised weights to block-CSR at the layer's block shape.

The block pattern comes from the zeros of the float weights (a block is kept when any of its
weights is nonzero), so a model pruned elsewhere gets sparse kernels too. A kept block is
stored whole, zeros inside it included; pruned blocks are absent.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from codesign.ir.graph import BlockCSR, Dense, Graph, Layer, ceil_div


def compress(graph: Graph) -> Graph:
    return replace(graph, layers=tuple(_compress_layer(layer) for layer in graph.layers))


def block_view(matrix: npt.NDArray[np.generic], block: tuple[int, int]) -> npt.NDArray[np.generic]:
    """Zero-pad `matrix` to whole blocks; return it as (block_rows, block_cols, Br, Bc)."""
    br, bc = block
    rows, cols = matrix.shape
    padded = np.zeros((ceil_div(rows, br) * br, ceil_div(cols, bc) * bc), dtype=matrix.dtype)
    padded[:rows, :cols] = matrix
    grid_rows, grid_cols = padded.shape[0] // br, padded.shape[1] // bc
    return padded.reshape(grid_rows, br, grid_cols, bc).transpose(0, 2, 1, 3)


def block_mask(weight: npt.NDArray[np.generic], block: tuple[int, int]) -> npt.NDArray[np.bool_]:
    """Which blocks of `weight` hold a nonzero value: (block_rows, block_cols)."""
    return np.asarray(np.any(block_view(weight, block) != 0, axis=(2, 3)))


def _compress_layer(layer: Layer) -> Layer:
    if not isinstance(layer, Dense):
        return layer  # pooling and adds have no weights
    layer.require_formats()
    assert layer.weight_raw is not None
    kept = block_mask(layer.weight, layer.block)
    blocks = block_view(layer.weight_raw, layer.block)
    block_rows, block_cols = np.nonzero(kept)  # row-major: block-rows in order, columns ascending
    row_ptr = np.concatenate([[0], np.cumsum(kept.sum(axis=1))]).astype(np.int64)
    csr = BlockCSR(
        shape=layer.shape,
        block=layer.block,
        row_ptr=row_ptr,
        col_idx=block_cols.astype(np.int64),
        blocks=np.ascontiguousarray(blocks[block_rows, block_cols]).astype(np.int64),
    )
    return replace(layer, csr=csr)
