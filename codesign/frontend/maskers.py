"""Maskers: the masks of each pruning method, tightened on a schedule during fine-tuning.

`BlockMasker` prunes blocks (Br×Bc; 1×1 is unstructured) by an importance criterion, balanced
or not, to a sparsity per layer. `ChannelMasker` zeroes whole output channels (weight rows,
biases and the BatchNorm features after them) so that `channel.rebuild` can then drop them
without changing the model's outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize

from codesign.frontend.channel import ChannelGroup, removed_count
from codesign.frontend.criteria import importance
from codesign.frontend.prune import (
    Prunable,
    WeightMask,
    as_matrix,
    attach_masks,
    bake_masks,
    block_mask_from_scores,
    block_sum,
    prunable_layers,
)
from codesign.frontend.schedules import Schedule


class BlockMasker:
    """Block (or element) masks from `criterion` scores at `sparsities[layer]`."""

    def __init__(
        self,
        sparsities: Mapping[str, float],
        block: tuple[int, int],
        balanced: bool,
        criterion: str,
        schedule: Schedule,
        calibration: tuple[torch.Tensor, torch.Tensor],
    ) -> None:
        self.sparsities = dict(sparsities)
        self.block = block
        self.balanced = balanced
        self.criterion = criterion
        self.schedule = schedule
        self.calibration = calibration
        self.layers: list[tuple[str, Prunable]] = []
        self.masks: dict[str, WeightMask] = {}

    def attach(self, model: nn.Module) -> None:
        self.layers = prunable_layers(model)
        self.masks = attach_masks(self.layers)

    @torch.no_grad()
    def update(self, model: nn.Module, progress: float) -> None:
        fraction = self.schedule.fraction(progress)
        x, y = self.calibration
        with torch.enable_grad():
            scores = importance(model, self.layers, self.criterion, x, y)
        for name, module in self.layers:
            sparsity = fraction * self.sparsities.get(name, 0.0)
            if sparsity <= 0.0:
                continue
            matrix_shape = as_matrix(module.weight).shape
            mask = block_mask_from_scores(
                block_sum(scores[name], self.block),
                (matrix_shape[0], matrix_shape[1]),
                self.block,
                sparsity,
                self.balanced,
            )
            self.masks[name].mask.copy_(mask.reshape(module.weight.shape))

    def finish(self, model: nn.Module) -> None:
        bake_masks(model)


ChannelScorer = Callable[[nn.Module], dict[str, torch.Tensor]]


class ChannelMasker:
    """Zeroes the least important `ratio` of each group's channels (scores: higher = keep)."""

    def __init__(
        self,
        groups: list[ChannelGroup],
        ratio: float,
        scorer: ChannelScorer,
        schedule: Schedule,
    ) -> None:
        self.groups = groups
        self.ratio = ratio
        self.scorer = scorer
        self.schedule = schedule
        self.channel_masks: dict[str, list[WeightMask]] = {}
        self.keep: dict[str, torch.Tensor] = {}

    def attach(self, model: nn.Module) -> None:
        modules = dict(model.named_modules())
        for group in self.groups:
            masked = []
            targets: list[tuple[nn.Module, str]] = [(modules[group.producer], "weight")]
            targets.append((modules[group.producer], "bias"))
            for norm in group.norms:
                targets += [(modules[norm], "weight"), (modules[norm], "bias")]
            for module, tensor_name in targets:
                tensor = getattr(module, tensor_name, None)
                if tensor is None:
                    continue
                mask = WeightMask(torch.ones_like(tensor.detach()))
                parametrize.register_parametrization(module, tensor_name, mask)
                masked.append(mask)
            self.channel_masks[group.producer] = masked
            self.keep[group.producer] = torch.arange(group.channels)

    @torch.no_grad()
    def update(self, model: nn.Module, progress: float) -> None:
        ratio = self.schedule.fraction(progress) * self.ratio
        with torch.enable_grad():
            scores = self.scorer(model)
        for group in self.groups:
            kept_count = group.channels - removed_count(group.channels, ratio)
            keep = scores[group.producer].topk(kept_count).indices
            self.keep[group.producer] = keep
            channel = torch.zeros(group.channels).index_fill_(0, keep, 1.0)
            for mask in self.channel_masks[group.producer]:
                shape = [group.channels] + [1] * (mask.mask.dim() - 1)
                mask.mask.copy_(channel.reshape(shape).expand_as(mask.mask))

    def finish(self, model: nn.Module) -> None:
        bake_masks(model)
