"""Block masks matched to the board's DSP tiling, and the pruning of a model to them.

A block of Br output rows × Bc inputs is the unit of pruning and of hardware (design.md §4).
Conv2d weights are pruned as `weight.reshape(Cout, Cin·Kh·Kw)`; dimensions not divisible by the
block are zero-padded. In balanced mode every block-row keeps `max(1, round((1 − s)·
blocks_per_row))` blocks, halves rounded up (equal work per processing element, as in ESE);
in unbalanced mode the layer keeps its `round((1 − s)·blocks)` most important blocks wherever
they are. Masks are applied with `torch.nn.utils.parametrize` during fine-tuning and then
baked in, so the exported weights hold exact zeros.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from codesign.errors import PruneError

log = logging.getLogger(__name__)

PRUNABLE = (nn.Linear, nn.Conv2d)
Prunable = nn.Linear | nn.Conv2d


class WeightMask(nn.Module):
    """Parametrisation `tensor -> tensor * mask` (mask fixed between updates, not trained)."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.to(torch.float32))

    mask: torch.Tensor

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask


@dataclass(frozen=True)
class LayerPruning:
    name: str
    shape: tuple[int, ...]
    sparsity: float
    block_sparsity: float
    nnz_blocks: int
    blocks: int


def check_sparsity(sparsity: float) -> None:
    if not 0.0 <= sparsity < 1.0:
        raise PruneError(f"sparsity must be in [0, 1), got {sparsity}")


def prunable_layers(model: nn.Module) -> list[tuple[str, Prunable]]:
    layers: list[tuple[str, Prunable]] = [
        (name, m) for name, m in model.named_modules() if isinstance(m, PRUNABLE)
    ]
    if not layers:
        raise PruneError("the model has no prunable layer (nn.Linear or nn.Conv2d)")
    return layers


def as_matrix(weight: torch.Tensor) -> torch.Tensor:
    """The weight as the pruning matrix: (Cout, Cin·Kh·Kw) for Conv2d, itself for Linear."""
    return weight.reshape(weight.shape[0], -1)


def block_grid(shape: tuple[int, int], block: tuple[int, int]) -> tuple[int, int]:
    """(block_rows, block_cols) of a matrix padded to whole blocks."""
    return -(-shape[0] // block[0]), -(-shape[1] // block[1])


def _blocked(matrix: torch.Tensor, block: tuple[int, int]) -> torch.Tensor:
    """Zero-pad to whole blocks; (block_rows, block_cols, Br, Bc)."""
    br, bc = block
    rows, cols = matrix.shape
    grid_rows, grid_cols = block_grid((rows, cols), block)
    padded = matrix.new_zeros(grid_rows * br, grid_cols * bc)
    padded[:rows, :cols] = matrix
    return padded.reshape(grid_rows, br, grid_cols, bc).permute(0, 2, 1, 3)


def block_sum(importance: torch.Tensor, block: tuple[int, int]) -> torch.Tensor:
    """Sum of an element-importance matrix over every block: (block_rows, block_cols)."""
    return _blocked(importance, block).sum(dim=(2, 3))


def block_scores(matrix: torch.Tensor, block: tuple[int, int]) -> torch.Tensor:
    """L1 norm of every block: (block_rows, block_cols)."""
    return block_sum(matrix.abs(), block)


def keep_count(fraction: float, count: int) -> int:
    """round(fraction · count), halves rounded up (keep the larger), at least 1."""
    return max(1, math.floor(fraction * count + 0.5))


def kept_blocks(scores: torch.Tensor, sparsity: float, balanced: bool = True) -> torch.Tensor:
    """Boolean (block_rows, block_cols): the blocks to keep at `sparsity`, best scores first."""
    check_sparsity(sparsity)
    block_rows, block_cols = scores.shape
    if balanced:
        top = scores.topk(keep_count(1.0 - sparsity, block_cols), dim=1).indices
        return torch.zeros_like(scores, dtype=torch.bool).scatter_(1, top, True)
    top = scores.flatten().topk(keep_count(1.0 - sparsity, scores.numel())).indices
    flat = torch.zeros(scores.numel(), dtype=torch.bool).scatter_(0, top, True)
    return flat.reshape(block_rows, block_cols)


def kept_block_count(
    shape: tuple[int, int], block: tuple[int, int], sparsity: float, balanced: bool
) -> int:
    """nnz_blocks that `kept_blocks` leaves for a matrix of `shape` (no scores needed)."""
    block_rows, block_cols = block_grid(shape, block)
    if balanced:
        return block_rows * keep_count(1.0 - sparsity, block_cols)
    return keep_count(1.0 - sparsity, block_rows * block_cols)


def expand_blocks(
    kept: torch.Tensor, block: tuple[int, int], shape: tuple[int, int]
) -> torch.Tensor:
    """Block mask (block_rows, block_cols) to an element mask of the matrix `shape`."""
    br, bc = block
    element = kept.repeat_interleave(br, dim=0).repeat_interleave(bc, dim=1)
    return element[: shape[0], : shape[1]]


def block_mask_from_scores(
    scores: torch.Tensor,
    shape: tuple[int, int],
    block: tuple[int, int],
    sparsity: float,
    balanced: bool = True,
) -> torch.Tensor:
    """Element mask of a matrix of `shape` from block `scores` (see `kept_blocks`)."""
    return expand_blocks(kept_blocks(scores, sparsity, balanced), block, shape)


def balanced_block_mask(
    matrix: torch.Tensor, block: tuple[int, int], sparsity: float
) -> torch.Tensor:
    """Element mask (matrix's shape) keeping the same number of top-L1 blocks in every block-row."""
    shape = (matrix.shape[0], matrix.shape[1])
    return block_mask_from_scores(block_scores(matrix, block), shape, block, sparsity)


def layer_pruning(name: str, weight: torch.Tensor, block: tuple[int, int]) -> LayerPruning:
    matrix = as_matrix(weight.detach())
    kept = _blocked(matrix != 0, block).any(dim=3).any(dim=2)
    return LayerPruning(
        name=name,
        shape=tuple(weight.shape),
        sparsity=float((weight == 0).float().mean()),
        block_sparsity=float(1.0 - kept.float().mean()),
        nnz_blocks=int(kept.sum()),
        blocks=int(kept.numel()),
    )


def attach_masks(layers: list[tuple[str, Prunable]]) -> dict[str, WeightMask]:
    """Register an all-ones `WeightMask` on every layer's weight; return them by layer name."""
    masks: dict[str, WeightMask] = {}
    for name, module in layers:
        mask = WeightMask(torch.ones_like(module.weight.detach()))
        parametrize.register_parametrization(module, "weight", mask)
        masks[name] = mask
    return masks


def bake_masks(model: nn.Module) -> None:
    """Remove every parametrisation, leaving the masked values (exact zeros) in the weights."""
    for module in model.modules():
        if parametrize.is_parametrized(module):
            parametrizations = module.parametrizations
            assert isinstance(parametrizations, nn.ModuleDict)
            for tensor_name in list(parametrizations.keys()):
                parametrize.remove_parametrizations(module, tensor_name, leave_parametrized=True)
