"""torch.ao.pruning's WeightNormSparsifier as a masker, so it fine-tunes exactly like ours.

The sparsifier zeroes the `sparsity_level` fraction of Br×Bc blocks of smallest L2 norm
anywhere in a weight (unbalanced). Its `update_mask` only handles 2-D weights, so Conv2d
weights are handed to its own mask rule as the (Cout, Cin·Kh·Kw) matrix of design §4.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.ao.pruning.sparsifier.weight_norm_sparsifier import WeightNormSparsifier

from codesign.frontend.prune import as_matrix, prunable_layers
from codesign.frontend.schedules import Schedule


class MatrixWeightNormSparsifier(WeightNormSparsifier):
    """WeightNormSparsifier that sees Conv2d weights as their pruning matrix."""

    def update_mask(  # type: ignore[override]
        self,
        module: nn.Module,
        tensor_name: str,
        sparsity_level: float,
        sparse_block_shape: tuple[int, int],
        zeros_per_block: int,
        **kwargs: Any,
    ) -> None:
        weight = getattr(module, tensor_name)
        if weight.dim() == 2 or sparsity_level <= 0:
            super().update_mask(  # type: ignore[no-untyped-call]
                module, tensor_name, sparsity_level, sparse_block_shape, zeros_per_block, **kwargs
            )
            return
        mask = getattr(module.parametrizations, tensor_name)[0].mask
        data = self.norm_fn(as_matrix(weight))
        matrix_mask = self._make_tensor_mask(  # type: ignore[no-untyped-call]
            data=data,
            input_shape=data.shape,
            sparsity_level=sparsity_level,
            sparse_block_shape=sparse_block_shape,
        )
        mask.data = matrix_mask.reshape(mask.shape).to(mask.dtype)


class WeightNormMasker:
    """Uniform `sparsity` on every Linear/Conv2d, raised on the same schedule as ours."""

    def __init__(self, sparsity: float, block: tuple[int, int], schedule: Schedule) -> None:
        self.sparsity = sparsity
        self.schedule = schedule
        self.sparsifier = MatrixWeightNormSparsifier(sparsity_level=0.0, sparse_block_shape=block)

    def attach(self, model: nn.Module) -> None:
        config = [{"tensor_fqn": f"{name}.weight"} for name, _ in prunable_layers(model)]
        self.sparsifier.prepare(model, config)  # type: ignore[no-untyped-call]

    @torch.no_grad()
    def update(self, model: nn.Module, progress: float) -> None:
        level = self.schedule.fraction(progress) * self.sparsity
        for group in self.sparsifier.groups:
            group["sparsity_level"] = level
        self.sparsifier.step()

    def finish(self, model: nn.Module) -> None:
        self.sparsifier.squash_mask()
