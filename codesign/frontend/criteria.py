"""Importance criteria: one nonnegative score per weight, summed per block by the pruner.

  l1          |w|                          block score = block L1 norm
  l2          w²                           block score = squared block L2 norm (same ranking)
  taylor      |w · ∂L/∂w| summed over calibration batches (first-order Taylor, Molchanov
              et al. 2017): the loss change if the weight were removed
  activation  |w| · ‖x_j‖₂ with x_j the j-th input column seen on calibration data (Wanda,
              Sun et al. 2023); for Conv2d the columns are the unfolded (Cin, Kh, Kw) patches

Scores are computed on the current (masked) weights, so a pruned block scores zero and stays
pruned as a gradual schedule tightens.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from codesign.errors import PruneError
from codesign.frontend.prune import Prunable, as_matrix

CRITERIA = ("l1", "l2", "taylor", "activation")
CALIBRATION_SAMPLES = 512
CALIBRATION_BATCH = 128

Scorer = Callable[[nn.Module, list[tuple[str, Prunable]]], dict[str, torch.Tensor]]


def check_criterion(criterion: str) -> None:
    if criterion not in CRITERIA:
        raise PruneError(f"unknown criterion {criterion!r}; use one of {', '.join(CRITERIA)}")


def importance(
    model: nn.Module,
    layers: list[tuple[str, Prunable]],
    criterion: str,
    x: torch.Tensor | None = None,
    y: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Element importance of every layer as its pruning matrix (Cout, fan_in), by name.

    `x`, `y` are calibration inputs and labels (needed by taylor; activation needs `x`).
    """
    check_criterion(criterion)
    if criterion in ("l1", "l2"):
        power = 1 if criterion == "l1" else 2
        return {name: as_matrix(module.weight.detach()).abs() ** power for name, module in layers}
    if x is None or (criterion == "taylor" and y is None):
        raise PruneError(f"criterion {criterion!r} needs calibration data")
    if criterion == "taylor":
        assert y is not None
        return taylor_importance(model, layers, x, y)
    return activation_importance(model, layers, x)


def taylor_importance(
    model: nn.Module, layers: list[tuple[str, Prunable]], x: torch.Tensor, y: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Σ over batches of |w · ∂L/∂w| (cross-entropy on the calibration data)."""
    was_training = model.training
    model.eval()
    totals = {name: torch.zeros_like(as_matrix(m.weight.detach())) for name, m in layers}
    for start in range(0, len(x), CALIBRATION_BATCH):
        # `cached` makes module.weight one tensor for the whole forward pass, so its gradient
        # is the gradient of the masked weight itself.
        with parametrize.cached():
            weights = [module.weight for _, module in layers]
            for weight in weights:
                if not weight.requires_grad:
                    weight.requires_grad_(True)
            loss = F.cross_entropy(
                model(x[start : start + CALIBRATION_BATCH]),
                y[start : start + CALIBRATION_BATCH],
                reduction="sum",
            )
            grads = torch.autograd.grad(loss, weights)
        for (name, _), weight, grad in zip(layers, weights, grads, strict=True):
            totals[name] += as_matrix((weight.detach() * grad).abs())
    model.train(was_training)
    return totals


def input_column_norms(module: Prunable, inputs: torch.Tensor) -> torch.Tensor:
    """Σ x_j² over samples (and output positions) per input column of the pruning matrix."""
    if isinstance(module, nn.Conv2d):
        patches = F.unfold(
            inputs,
            kernel_size=module.kernel_size,
            dilation=module.dilation,
            padding=module.padding,  # type: ignore[arg-type]
            stride=module.stride,
        )  # (N, Cin·Kh·Kw, positions), PyTorch's (Cin, Kh, Kw) order as in as_matrix
        return (patches**2).sum(dim=(0, 2))
    return (inputs.reshape(len(inputs), -1) ** 2).sum(dim=0)


@torch.no_grad()
def activation_importance(
    model: nn.Module, layers: list[tuple[str, Prunable]], x: torch.Tensor
) -> dict[str, torch.Tensor]:
    """|w_ij| · ‖x_j‖₂ from the layer inputs seen on the calibration data."""
    sums = {
        name: torch.zeros(as_matrix(m.weight.detach()).shape[1] * _groups(m)) for name, m in layers
    }
    handles = []
    for name, module in layers:

        def hook(mod: nn.Module, args: tuple[torch.Tensor, ...], name: str = name) -> None:
            assert isinstance(mod, nn.Linear | nn.Conv2d)
            sums[name] += input_column_norms(mod, args[0].detach())

        handles.append(module.register_forward_pre_hook(hook))
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(x), CALIBRATION_BATCH):
            model(x[start : start + CALIBRATION_BATCH])
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return {
        name: as_matrix(module.weight.detach()).abs() * _row_norms(module, sums[name].sqrt())
        for name, module in layers
    }


def _groups(module: Prunable) -> int:
    return module.groups if isinstance(module, nn.Conv2d) else 1


def _row_norms(module: Prunable, norms: torch.Tensor) -> torch.Tensor:
    """The input norms each row of the pruning matrix sees: a grouped conv's row reads only
    its group's input channels (rows × columns; one row for all when there are no groups)."""
    groups = _groups(module)
    if groups == 1:
        return norms[None, :]
    rows = module.weight.shape[0]
    return norms.reshape(groups, -1).repeat_interleave(rows // groups, dim=0)
