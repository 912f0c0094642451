"""Block views of a weight matrix: the unit of pruning and of hardware (design.md §4)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from codesign.ir.graph import ceil_div


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
