"""Block pruning matched to the board's DSP tiling (first version: balanced block magnitude).

A block of Br output rows × Bc inputs is the unit of pruning and of hardware (design.md §4).
Conv2d weights are pruned as `weight.reshape(Cout, Cin·Kh·Kw)`. In balanced mode every
block-row keeps `max(1, round((1 − s)·blocks_per_row))` blocks, the ones of largest L1 norm.
Masks are applied with `torch.nn.utils.parametrize` during fine-tuning and then baked in, so the
exported weights hold exact zeros.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from codesign.data import Dataset
from codesign.errors import PruneError
from codesign.models import train

log = logging.getLogger(__name__)

PRUNABLE = (nn.Linear, nn.Conv2d)


class WeightMask(nn.Module):
    """Parametrisation `weight -> weight * mask` (mask fixed, not trained)."""

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


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Linear | nn.Conv2d]]:
    layers: list[tuple[str, nn.Linear | nn.Conv2d]] = [
        (name, m) for name, m in model.named_modules() if isinstance(m, PRUNABLE)
    ]
    if not layers:
        raise PruneError("the model has no prunable layer (nn.Linear or nn.Conv2d)")
    return layers


def as_matrix(weight: torch.Tensor) -> torch.Tensor:
    """The weight as the pruning matrix: (Cout, Cin·Kh·Kw) for Conv2d, itself for Linear."""
    return weight.reshape(weight.shape[0], -1)


def _blocked(matrix: torch.Tensor, block: tuple[int, int]) -> torch.Tensor:
    """Zero-pad to whole blocks; (block_rows, block_cols, Br, Bc)."""
    br, bc = block
    rows, cols = matrix.shape
    grid_rows, grid_cols = -(-rows // br), -(-cols // bc)
    padded = matrix.new_zeros(grid_rows * br, grid_cols * bc)
    padded[:rows, :cols] = matrix
    return padded.reshape(grid_rows, br, grid_cols, bc).permute(0, 2, 1, 3)


def block_scores(matrix: torch.Tensor, block: tuple[int, int]) -> torch.Tensor:
    """L1 norm of every block: (block_rows, block_cols)."""
    return _blocked(matrix.abs(), block).sum(dim=(2, 3))


def balanced_block_mask(
    matrix: torch.Tensor, block: tuple[int, int], sparsity: float
) -> torch.Tensor:
    """Element mask (matrix's shape) keeping the same number of top blocks in every block-row."""
    check_sparsity(sparsity)
    scores = block_scores(matrix, block)
    block_cols = scores.shape[1]
    keep = max(1, round((1.0 - sparsity) * block_cols))
    top = scores.topk(keep, dim=1).indices
    kept = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, top, True)
    br, bc = block
    element = kept.repeat_interleave(br, dim=0).repeat_interleave(bc, dim=1)
    return element[: matrix.shape[0], : matrix.shape[1]]


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


def prune_blocks(
    model: nn.Module,
    dataset: Dataset,
    sparsity: float,
    block: tuple[int, int],
    epochs: int,
    seed: int = 0,
    learning_rate: float = 1e-3,
    progress: bool = False,
) -> list[LayerPruning]:
    """Prune `model` in place to balanced block sparsity, fine-tune, and bake the zeros in."""
    check_sparsity(sparsity)
    layers = prunable_layers(model)
    for _name, module in layers:
        weight = module.weight.detach()
        mask = balanced_block_mask(as_matrix(weight), block, sparsity).reshape(weight.shape)
        parametrize.register_parametrization(module, "weight", WeightMask(mask))
    if epochs > 0:
        train(model, dataset, epochs, learning_rate, seed=seed, progress=progress)
    for _name, module in layers:
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return [layer_pruning(name, module.weight, block) for name, module in layers]
