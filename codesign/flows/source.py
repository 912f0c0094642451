"""Where `generate` gets its model: a prune folder, or a model spec with optional weights.

A built-in model without weights is trained first (seeded), on its own dataset unless another
is given; a model file without weights is taken as it is, with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from codesign.data import Dataset, load_dataset
from codesign.errors import CodesignError
from codesign.flows.generate import check_supported
from codesign.flows.project import load_pruned

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSource:
    """What the command line says about the model: exactly one of `prune_dir`, `spec`."""

    prune_dir: Path | None = None
    spec: str | None = None
    weights: Path | None = None
    dataset: str | None = None
    input_shape: tuple[int, ...] | None = None
    block: tuple[int, int] | None = None


@dataclass(frozen=True)
class ResolvedModel:
    model: nn.Module
    name: str
    dataset: Dataset | None
    input_shape: tuple[int, ...] | None
    block: tuple[int, int] | None
    dense_accuracy: float | None


def resolve_model(
    source: ModelSource, notify: Callable[[str], None] = log.info, progress: bool = False
) -> ResolvedModel:
    """The model, its dataset, shape and block; trains an untrained built-in model (after the
    lowering check, so an unsupported model fails before any training; `progress`: show it)."""
    from codesign.models import BUILTIN_MODELS, check_model_on_dataset, load_model, train_builtin

    block, dense_accuracy, untrained = source.block, None, False
    dataset_name: str | None
    if source.prune_dir is not None:
        pruned = load_pruned(source.prune_dir, notify)
        model, name = pruned.model, pruned.model_spec
        dataset_name = source.dataset or pruned.dataset_name
        block = block or pruned.block
        dense_accuracy = pruned.dense_accuracy
        input_shape = source.input_shape or pruned.input_shape
    elif source.spec is not None:
        model, name = load_model(source.spec, source.weights), source.spec
        input_shape = source.input_shape
        dataset_name = source.dataset
        untrained = source.weights is None and name in BUILTIN_MODELS
        if untrained:
            dataset_name = dataset_name or BUILTIN_MODELS[name].dataset
    else:
        raise CodesignError("give the model: --from PRUNE_DIR or --model")
    if input_shape is None and name in BUILTIN_MODELS:
        input_shape = BUILTIN_MODELS[name].input_shape
    if input_shape is not None:
        check_supported(model, name, input_shape)  # fail before any training
    dataset = load_dataset(dataset_name) if dataset_name else None
    if dataset is not None and input_shape is not None:
        dataset = dataset.reshaped(input_shape)
    if dataset is not None:
        check_model_on_dataset(model, name, dataset)
    if untrained and dataset is not None:
        notify(f"no --weights: training {name} on {dataset.name} (seed 0)")
        model = train_builtin(name, dataset, progress=progress)
    return ResolvedModel(model, name, dataset, input_shape, block, dense_accuracy)
