"""One entry point for every pruning method: choose masks, fine-tune on a schedule (with
distillation from the dense model), bake the zeros in, rebuild channel-pruned models smaller.

  block         Br×Bc blocks at the board's block, balanced (default) or unbalanced, by criterion
  unstructured  single weights by criterion (1×1 blocks, unbalanced)
  channel       whole output channels/neurons by criterion (summed per row), model rebuilt
  activation    whole channels/neurons by APoZ on calibration data, model rebuilt

`sparsity` is the fraction of zero (or removed) weights over all Linear/Conv2d layers, spread
uniformly per layer unless `layer_sparsity` (budget mode) gives each block-pruned layer its own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from codesign.data import Dataset
from codesign.errors import PruneError
from codesign.frontend.channel import ChannelGroup, channel_groups, rebuild, traced
from codesign.frontend.criteria import check_criterion, importance
from codesign.frontend.distill import (
    DEFAULT_ALPHA,
    DEFAULT_TEMPERATURE,
    LossFn,
    cross_entropy_loss,
    distillation_loss,
    frozen_teacher,
)
from codesign.frontend.finetune import Masker, finetune
from codesign.frontend.maskers import BlockMasker, ChannelMasker
from codesign.frontend.prune import LayerPruning, check_sparsity, layer_pruning, prunable_layers
from codesign.frontend.schedules import Schedule

log = logging.getLogger(__name__)

METHODS = ("block", "unstructured", "channel", "activation")


def check_method(method: str) -> None:
    if method not in METHODS:
        raise PruneError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")


@dataclass(frozen=True)
class PruneConfig:
    sparsity: float = 0.75
    method: str = "block"
    block: tuple[int, int] = (1, 4)
    balanced: bool = True
    criterion: str = "l1"
    schedule: str = "gradual"
    pruning_steps: int = 10
    ramp_fraction: float = 0.5
    epochs: int = 30
    learning_rate: float = 2e-3
    distill: bool = True
    temperature: float = DEFAULT_TEMPERATURE
    alpha: float = DEFAULT_ALPHA
    seed: int = 0
    progress: bool = False
    calibration_samples: int = 512
    layer_sparsity: Mapping[str, float] | None = None

    def check(self) -> None:
        check_method(self.method)
        check_criterion(self.criterion)
        check_sparsity(self.sparsity)
        for sparsity in (self.layer_sparsity or {}).values():
            check_sparsity(sparsity)
        if self.epochs < 0:
            raise PruneError(f"--epochs must be >= 0, got {self.epochs}")

    def make_schedule(self) -> Schedule:
        return Schedule(self.schedule, self.pruning_steps, self.ramp_fraction)

    @property
    def criterion_used(self) -> str:
        return "apoz" if self.method == "activation" else self.criterion


@dataclass
class PruneResult:
    layers: list[LayerPruning]
    achieved_sparsity: float
    original_shapes: dict[str, tuple[int, ...]]
    resized: dict[str, dict[str, int]] | None = None
    notes: list[str] = field(default_factory=list)


def calibration(dataset: Dataset, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.from_numpy(dataset.x_train[:samples]),
        torch.from_numpy(dataset.y_train[:samples]),
    )


def prune_model(
    model: nn.Module,
    dataset: Dataset,
    config: PruneConfig,
    masker: Masker | None = None,
) -> PruneResult:
    """Prune `model` in place by `config` (or by a given `masker`, with the same fine-tuning)."""
    config.check()
    layers = prunable_layers(model)
    original = {name: tuple(module.weight.shape) for name, module in layers}
    calib = calibration(dataset, config.calibration_samples)
    schedule = config.make_schedule()
    groups: list[ChannelGroup] = []
    notes: list[str] = []
    if masker is None and config.method in ("channel", "activation"):
        masker, groups = _channel_masker(model, dataset, config, calib, schedule)
        skipped = sorted(set(original) - {g.producer for g in groups})
        notes.append(f"kept whole (output branches or is the model output): {', '.join(skipped)}")
    elif masker is None:
        masker = _block_masker(config, layers, calib, schedule)
    loss: LossFn = cross_entropy_loss
    if config.distill:
        loss = distillation_loss(frozen_teacher(model), config.temperature, config.alpha)
    finetune(
        model,
        dataset,
        masker,
        schedule,
        config.epochs,
        config.learning_rate,
        seed=config.seed,
        loss_fn=loss,
        progress=config.progress,
    )
    resized = None
    if isinstance(masker, ChannelMasker):
        resized = rebuild(model, groups, masker.keep)
    layers = prunable_layers(model)
    kept = sum(int(torch.count_nonzero(module.weight)) for _, module in layers)
    total = sum(int(torch.Size(shape).numel()) for shape in original.values())
    return PruneResult(
        layers=[layer_pruning(name, module.weight, config.block) for name, module in layers],
        achieved_sparsity=1.0 - kept / total,
        original_shapes=original,
        resized=resized,
        notes=notes,
    )


def _block_masker(
    config: PruneConfig,
    layers: list[tuple[str, nn.Linear | nn.Conv2d]],
    calib: tuple[torch.Tensor, torch.Tensor],
    schedule: Schedule,
) -> BlockMasker:
    if config.layer_sparsity is not None:
        unknown = sorted(set(config.layer_sparsity) - {name for name, _ in layers})
        if unknown:
            raise PruneError(f"per-layer sparsity names unknown layers: {unknown}")
        sparsities = dict(config.layer_sparsity)
    else:
        sparsities = {name: config.sparsity for name, _ in layers}
    unstructured = config.method == "unstructured"
    return BlockMasker(
        sparsities,
        (1, 1) if unstructured else config.block,
        balanced=config.balanced and not unstructured,
        criterion=config.criterion,
        schedule=schedule,
        calibration=calib,
    )


def _channel_masker(
    model: nn.Module,
    dataset: Dataset,
    config: PruneConfig,
    calib: tuple[torch.Tensor, torch.Tensor],
    schedule: Schedule,
) -> tuple[ChannelMasker, list[ChannelGroup]]:
    from codesign.frontend.activation import apoz_keep_scores
    from codesign.frontend.channel import ratio_for_sparsity

    graph_module = traced(model, dataset.input_shape)
    groups = channel_groups(graph_module)
    ratio = ratio_for_sparsity(model, groups, config.sparsity)
    x, y = calib

    def by_activation(_: nn.Module) -> dict[str, torch.Tensor]:
        return apoz_keep_scores(graph_module, groups, x)

    def by_criterion(current: nn.Module) -> dict[str, torch.Tensor]:
        producers = {g.producer for g in groups}
        layers = [(n, m) for n, m in prunable_layers(current) if n in producers]
        return {
            n: s.sum(dim=1) for n, s in importance(current, layers, config.criterion, x, y).items()
        }

    scorer = by_activation if config.method == "activation" else by_criterion
    return ChannelMasker(groups, ratio, scorer, schedule), groups


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
    """Balanced block-L1 pruning, one shot, plain fine-tuning (the simplest configuration)."""
    result = prune_model(
        model,
        dataset,
        PruneConfig(
            sparsity=sparsity,
            block=block,
            schedule="oneshot",
            distill=False,
            epochs=epochs,
            learning_rate=learning_rate,
            seed=seed,
            progress=progress,
        ),
    )
    return result.layers
