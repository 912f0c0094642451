"""What the benchmarks share: seeded, block-pruned models and the cells of their tables."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

from codesign.frontend.prune import as_matrix, balanced_block_mask

BLOCK = (1, 4)


def seeded_model(build: Callable[[], nn.Module], sparsity: float, seed: int = 0) -> nn.Module:
    """The architecture with seeded weights, random BatchNorm statistics and, at a sparsity,
    balanced 1x4 block masks on every Linear and Conv2d."""
    torch.manual_seed(seed)
    model = build().eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
            if isinstance(module, nn.Conv2d | nn.Linear) and sparsity > 0:
                mask = balanced_block_mask(as_matrix(module.weight), BLOCK, sparsity)
                module.weight.mul_(mask.reshape(module.weight.shape).to(module.weight.dtype))
    return model


def mlp(sizes: tuple[int, ...]) -> nn.Module:
    """Linear layers of `sizes` (fc1, fc2, ...) with a ReLU after each but the last."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for index, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        layers[f"fc{index + 1}"] = nn.Linear(a, b)
        if index < len(sizes) - 2:
            layers[f"relu{index + 1}"] = nn.ReLU()
    return nn.Sequential(layers)


def share(used: int, available: int) -> str:
    """A table cell: the figure and its share of the board's, e.g. '1,064 (70%)'."""
    return f"{used:,} ({used / available:.0%})"
