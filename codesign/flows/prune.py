"""`codesign prune`: train (or load) a model, prune it for the board, fine-tune, save it.

Library code: it logs and returns; the CLI prints.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from codesign.boards import Board
from codesign.data import Dataset
from codesign.emit.plan import BuildPlan, check_output_dir, write_plan
from codesign.errors import PruneError
from codesign.flows.generate import CALIBRATION_SAMPLES
from codesign.frontend.budget import ALLOCATORS, Allocation, Budget
from codesign.frontend.hwcost import DesignEstimate
from codesign.frontend.pipeline import PruneConfig, PruneResult
from codesign.models import model_file
from codesign.options import resolve_block
from codesign.records.prune import PruneLayer, PruneRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PruneRequest:
    """`codesign prune`: exactly one of `sparsity`, `budget_cycles`, `budget_dsp` is given."""

    model_spec: str
    dataset_name: str
    board: Board
    out_dir: Path
    sparsity: float | None = None
    budget_cycles: int | None = None
    budget_dsp: int | None = None
    weights: Path | None = None
    method: str = "block"
    block: tuple[int, int] | None = None  # None: the board's default for the operand width
    balanced: bool = True
    criterion: str = "l1"
    schedule: str = "gradual"
    distill: bool = True
    allocator: str = "knapsack"
    epochs: int = 30
    learning_rate: float = 2e-3
    weight_bits: int = 8
    act_bits: int = 16
    seed: int = 0
    force: bool = False
    progress: bool = False
    input_shape: tuple[int, ...] | None = None  # view the dataset's samples in this shape


@dataclass(frozen=True)
class PruneOutcome:
    model: nn.Module
    dataset: Dataset
    record: PruneRecord


def _prune_budget(request: PruneRequest) -> Budget | None:
    if request.allocator not in ALLOCATORS:
        raise PruneError(
            f"unknown allocator {request.allocator!r}; use one of {', '.join(ALLOCATORS)}"
        )
    given = [
        value
        for value in (request.sparsity, request.budget_cycles, request.budget_dsp)
        if value is not None
    ]
    if len(given) != 1:
        raise PruneError("give exactly one of --sparsity, --budget-cycles, --budget-dsp")
    if request.sparsity is not None:
        return None
    if request.method != "block":
        raise PruneError(f"a hardware budget needs --method block, not {request.method!r}")
    if request.budget_cycles is not None:
        return Budget("cycles", request.budget_cycles)
    assert request.budget_dsp is not None
    return Budget("dsp", request.budget_dsp)


def prune(request: PruneRequest) -> PruneOutcome:
    """Train (or load) the model, prune it by method/criterion/schedule (per-layer sparsity from
    the hardware budget if one is given), fine-tune, and save model.pt + prune.json."""
    from codesign.data import load_dataset
    from codesign.frontend.budget import allocate, sensitivity
    from codesign.frontend.hwcost import CostModel
    from codesign.frontend.pipeline import calibration, prune_model
    from codesign.frontend.prune import prunable_layers
    from codesign.models import (
        BUILTIN_MODELS,
        accuracy,
        check_model_on_dataset,
        load_model,
        seed_everything,
        train,
    )

    check_output_dir(request.out_dir, request.force)
    budget = _prune_budget(request)
    block = resolve_block(request.block, request.board, max(request.weight_bits, request.act_bits))
    config = PruneConfig(
        sparsity=request.sparsity if request.sparsity is not None else 0.0,
        method=request.method,
        block=block,
        balanced=request.balanced,
        criterion=request.criterion,
        schedule=request.schedule,
        epochs=request.epochs,
        learning_rate=request.learning_rate,
        distill=request.distill,
        seed=request.seed,
        progress=request.progress,
    )
    config.check()
    config.make_schedule()
    dataset = load_dataset(request.dataset_name)
    if request.input_shape is not None:
        dataset = dataset.reshaped(tuple(request.input_shape))
    seed_everything(request.seed)  # before building: same initial weights as train_builtin
    model = load_model(request.model_spec, request.weights)
    prunable_layers(model)  # no prunable layer: an error before any training
    check_model_on_dataset(model, request.model_spec, dataset)
    dense_weights = None  # the dense model this run trained, saved as DENSE_FILE
    if request.weights is None and request.model_spec in BUILTIN_MODELS:
        spec = BUILTIN_MODELS[request.model_spec]
        train(
            model, dataset, spec.epochs, spec.learning_rate, request.seed, progress=request.progress
        )
        dense_weights = io.BytesIO()
        torch.save(model.state_dict(), dense_weights)
    dense_accuracy = accuracy(model, dataset.x_test, dataset.y_test)
    calib = dataset.x_train[:CALIBRATION_SAMPLES]
    bits = (request.weight_bits, request.act_bits)
    cost = CostModel(
        model, request.board, block, dataset.input_shape, calib, *bits, request.balanced
    )
    dense_design = cost.estimate({})
    allocation = None
    if budget is not None:
        sens = sensitivity(
            model,
            request.criterion,
            block,
            request.balanced,
            calibration(dataset, CALIBRATION_SAMPLES),
        )
        allocation = allocate(cost, sens, budget, request.allocator)
        config = replace(config, layer_sparsity=allocation.sparsity)
    result = prune_model(model, dataset, config)
    _check_finite(model, config.learning_rate)
    pruned_accuracy = accuracy(model, dataset.x_test, dataset.y_test)
    pruned_cost = CostModel(model, request.board, block, dataset.input_shape, calib, *bits)
    design = pruned_cost.estimate_model(model)
    record = _prune_record(
        request,
        config,
        result,
        design,
        dense_design,
        allocation,
        {"dense": dense_accuracy, "pruned": pruned_accuracy},
    )
    weights = io.BytesIO()
    torch.save(model.state_dict(), weights)
    files = {"prune.json": record.to_bytes(), "model.pt": weights.getvalue()}
    if dense_weights is not None:  # `--weights DIR/dense.pt` prunes again without training
        files[DENSE_FILE] = dense_weights.getvalue()
    found = model_file(request.model_spec)
    if found is not None:  # the model's source as it was, for when the file moves or changes
        files[f"{MODEL_COPY}/{found[0].name}"] = found[0].read_bytes()
    write_plan(BuildPlan(files), request.out_dir, force=request.force)
    return PruneOutcome(model, dataset, record)


MODEL_COPY = "model_source"  # the prune folder's copy of a model file
DENSE_FILE = "dense.pt"  # the dense built-in model prune trained


def _absolute_model(spec: str) -> str:
    """A model file's spec with its path absolute, so `generate --from` works from anywhere."""
    found = model_file(spec)
    return spec if found is None else f"{found[0].resolve()}:{found[1]}"


def _absolute_dataset(name: str) -> str:
    from codesign.data import BUILTIN_DATASETS

    return name if name in BUILTIN_DATASETS else str(Path(name).resolve())


def _check_finite(model: torch.nn.Module, learning_rate: float) -> None:
    """Fine-tuning that diverged leaves NaN or infinite weights: an error, nothing written."""
    broken = [
        name for name, value in model.state_dict().items() if not bool(torch.isfinite(value).all())
    ]
    if broken:
        raise PruneError(
            f"fine-tuning diverged: {', '.join(broken[:3])}{' ...' if len(broken) > 3 else ''} "
            f"hold NaN or infinite values; lower --lr (now {learning_rate}) or --epochs"
        )


def _prune_record(
    request: PruneRequest,
    config: PruneConfig,
    result: PruneResult,
    design: DesignEstimate,
    dense_design: DesignEstimate,
    allocation: Allocation | None,
    accuracy: dict[str, float],
) -> PruneRecord:
    targets = config.layer_sparsity or {}
    by_name = {estimate.name: estimate for estimate in design.layers}
    layers = []
    for layer in result.layers:
        original = result.original_shapes.get(layer.name)
        resized = original is not None and tuple(original) != tuple(layer.shape)
        layers.append(
            PruneLayer(
                name=layer.name,
                shape=tuple(layer.shape),
                sparsity=round(layer.sparsity, 6),
                block_sparsity=round(layer.block_sparsity, 6),
                nnz_blocks=layer.nnz_blocks,
                est_cycles=by_name[layer.name].est_cycles,
                est_dsp=by_name[layer.name].est_dsp,
                reuse_factor=by_name[layer.name].reuse_factor,
                target_sparsity=targets.get(layer.name),
                original_shape=tuple(original) if resized and original is not None else None,
            )
        )
    budget = None
    if allocation is not None:
        budget = {
            "metric": allocation.budget.metric,
            "limit": allocation.budget.limit,
            "allocator": allocation.allocator,
            "estimate": design.value(allocation.budget.metric),
            "met": allocation.budget.met(design),
        }
    return PruneRecord(
        model=_absolute_model(request.model_spec),
        dataset=_absolute_dataset(request.dataset_name),
        input_shape=tuple(request.input_shape) if request.input_shape else None,
        board=request.board.key,
        method=config.method,
        balanced=config.balanced if config.method == "block" else None,
        block=config.block,
        criterion=config.criterion_used,
        schedule=config.schedule,
        distill=config.distill,
        target_sparsity=request.sparsity,
        achieved_sparsity=round(result.achieved_sparsity, 6),
        epochs=config.epochs,
        learning_rate=config.learning_rate,
        seed=config.seed,
        weight_bits=request.weight_bits,
        act_bits=request.act_bits,
        layers=tuple(layers),
        hardware={
            "cost_model": design.source,
            "reuse_factor": design.reuse_factor,
            "est_cycles": design.est_cycles,
            "est_dsp": design.est_dsp,
            "dense": {"est_cycles": dense_design.est_cycles, "est_dsp": dense_design.est_dsp},
        },
        accuracy=accuracy,
        budget=budget,
        resized=result.resized,
        notes=tuple(result.notes or ()),
    )
