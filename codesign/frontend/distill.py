"""Knowledge distillation from the dense model (Hinton et al. 2015).

The pruned student learns from `alpha` · T² · KL(teacher ‖ student at temperature T) plus
(1 − alpha) · cross-entropy on the labels: the dense network's soft outputs carry what the
pruned weights knew, which is how the pruned model is "combined with the original" (design §8).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

DEFAULT_TEMPERATURE = 4.0
DEFAULT_ALPHA = 0.7


def frozen_teacher(model: nn.Module) -> nn.Module:
    """A detached copy of `model` in eval mode with no trainable parameters."""
    teacher = copy.deepcopy(model).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


def distillation_loss(
    teacher: nn.Module, temperature: float = DEFAULT_TEMPERATURE, alpha: float = DEFAULT_ALPHA
) -> LossFn:
    """`loss(student_logits, labels, inputs)` mixing soft teacher targets and hard labels."""

    def loss(logits: torch.Tensor, labels: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            soft_targets = F.softmax(teacher(inputs) / temperature, dim=1)
        soft = F.kl_div(
            F.log_softmax(logits / temperature, dim=1), soft_targets, reduction="batchmean"
        )
        hard = F.cross_entropy(logits, labels)
        return alpha * temperature**2 * soft + (1.0 - alpha) * hard

    return loss


def cross_entropy_loss(
    logits: torch.Tensor, labels: torch.Tensor, inputs: torch.Tensor
) -> torch.Tensor:
    del inputs
    return F.cross_entropy(logits, labels)
