"""The flows behind the commands: prune a model, generate a project, as explicit step lists.

Library code: it logs and returns; the CLI prints.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from codesign import reference
from codesign.boards import Board
from codesign.cost import (
    check_fit,
    graph_layer_resources,
    layer_energy,
    network_energy,
    network_resources,
)
from codesign.cost.energy import model_description as energy_model
from codesign.data import Dataset
from codesign.emit.plan import BuildPlan, check_output_dir, write_plan
from codesign.errors import CodesignError
from codesign.frontend.lower import lower
from codesign.hardware import (
    balanced_reuse_factors,
    default_reuse_factor,
    layer_cost,
    network_cost,
)
from codesign.ir.graph import Activation, Add, Dense, Graph, Pool2d
from codesign.ir.serialize import graph_text, graph_to_files
from codesign.models import accuracy
from codesign.options import BALANCED, resolve_block
from codesign.passes import compress, quantise, tile
from codesign.precision import Precision
from codesign.vectors import vector_files

if TYPE_CHECKING:
    from codesign.frontend.budget import Allocation, Budget
    from codesign.frontend.hwcost import DesignEstimate
    from codesign.frontend.pipeline import PruneConfig, PruneResult

log = logging.getLogger(__name__)

REPORT_SCHEMA = "codesign.report/2"
FIT_MODES = ("error", "warn")
CALIBRATION_SAMPLES = 512
DEFAULT_VECTORS = 32
RANDOM_SEED = 0


@dataclass(frozen=True)
class GenerateRequest:
    model: nn.Module
    model_name: str
    board: Board
    out_dir: Path
    dataset: Dataset | None = None
    input_shape: tuple[int, ...] | None = None
    block: str | tuple[int, int] | None = None
    reuse: int | dict[str, int] | str | None = None  # str: "balanced"
    weight_bits: int = 8
    act_bits: int = 16
    precision: Precision | None = None  # per-layer format overrides (codesign.precision)
    n_vectors: int = DEFAULT_VECTORS
    force: bool = False
    dense_accuracy: float | None = None
    fit: str = "error"  # "error": refuse a design that does not fit the board; "warn": log it


def generate(request: GenerateRequest) -> dict[str, object]:
    """Lower, quantise, compress, tile and emit a project; return its report.json content."""
    check_output_dir(request.out_dir, request.force)
    if request.dataset is not None and request.input_shape is not None:
        # the same values in another shape (digits' 64 features as 1×8×8) are taken as given
        request = replace(request, dataset=request.dataset.reshaped(request.input_shape))
    input_shape = _input_shape(request)
    operand_bits = max(request.weight_bits, request.act_bits)
    block = resolve_block(request.block, request.board, operand_bits)
    calibration, vectors = _calibration_and_vectors(request, input_shape)

    graph = lower(request.model, request.model_name, input_shape, block)
    steps: list[Callable[[Graph], Graph]] = [
        lambda g: quantise(
            g, calibration, request.weight_bits, request.act_bits, request.precision
        ),
        compress,
        lambda g: tile(g, _reuse_for(g, request)),
    ]
    for step in steps:
        graph = step(graph)
    _check_fit(graph, request)

    emitted = _emit(graph, request.board)  # refuses formats the kernels cannot implement
    x_raw = reference.quantize_inputs(graph, vectors)
    traces = reference.run(graph, x_raw)
    emitted = emitted.merged(BuildPlan(vector_files(graph, x_raw, traces)))
    report = _report(request, graph, emitted.digest())
    _add_overflows(report, traces)
    files = dict(emitted.files)
    files.update(graph_to_files(graph))
    files["design.txt"] = graph_text(graph).encode()
    files["report.json"] = (json.dumps(report, indent=2) + "\n").encode()
    write_plan(BuildPlan(files), request.out_dir, force=request.force)
    log.info("wrote %s (%d files)", request.out_dir, len(files))
    return report


def _check_fit(graph: Graph, request: GenerateRequest) -> None:
    """Compare the resource estimate with the board; raise or log when it does not fit."""
    if request.fit not in FIT_MODES:
        raise CodesignError(f"fit mode must be one of {FIT_MODES}, got {request.fit!r}")
    check = check_fit(network_resources(graph, request.board), request.board)
    if check.fits:
        return
    advice = "raise --reuse, prune harder or pick a larger board"
    if request.fit == "error":
        raise CodesignError(f"{check.message()}; {advice} (or pass --fit warn)")
    log.warning("%s; generating anyway (--fit warn)", check.message())


def check_supported(model: nn.Module, name: str, input_shape: tuple[int, ...]) -> None:
    """Raise the lowering error now if the hardware flow cannot take `model`."""
    lower(model, name, input_shape, (1, 1))


def _emit(graph: Graph, board: Board) -> BuildPlan:
    from codesign.emit.hls import emit_hls
    from codesign.emit.rtl import emit_rtl

    return emit_hls(graph, board).merged(emit_rtl(graph))


def _input_shape(request: GenerateRequest) -> tuple[int, ...]:
    if request.dataset is not None:
        return request.dataset.input_shape
    if request.input_shape is None:
        raise CodesignError("without --dataset the model's --input-shape must be given")
    return tuple(request.input_shape)


def _calibration_and_vectors(
    request: GenerateRequest, input_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    if request.dataset is not None:
        return (
            request.dataset.x_train[:CALIBRATION_SAMPLES],
            request.dataset.x_test[: request.n_vectors],
        )
    rng = np.random.default_rng(RANDOM_SEED)
    calibration = rng.standard_normal((CALIBRATION_SAMPLES, *input_shape)).astype(np.float32)
    return calibration, calibration[: request.n_vectors]


def _reuse_for(graph: Graph, request: GenerateRequest) -> int | dict[str, int]:
    if request.reuse is None:
        reuse = default_reuse_factor(graph, request.board)
        log.info("default reuse factor on %s: %d", request.board.key, reuse)
        return reuse
    if isinstance(request.reuse, int):
        return request.reuse
    if isinstance(request.reuse, str):
        if request.reuse != BALANCED:
            raise CodesignError(f"--reuse {request.reuse!r}: give RF, name=RF,... or balanced")
        balanced = balanced_reuse_factors(graph, request.board)
        log.info("balanced reuse factors on %s: %s", request.board.key, balanced)
        return balanced
    names = {layer.name for layer in graph.matrix_layers}
    by_source = {layer.source_name: layer.name for layer in graph.matrix_layers}
    per_layer: dict[str, int] = {}
    for name, value in request.reuse.items():
        key = name if name in names else by_source.get(name)
        if key is None:
            raise CodesignError(
                f"--reuse names unknown layer {name!r}; layers with a weight matrix: "
                f"{sorted(names)}"
            )
        per_layer[key] = value
    missing = sorted(names - per_layer.keys())
    if missing:
        raise CodesignError(f"--reuse per layer must name every layer; missing: {missing}")
    return per_layer


def _report(request: GenerateRequest, graph: Graph, digest: str) -> dict[str, object]:
    board = request.board
    cost = network_cost(graph, board)
    layers = []
    estimates = graph_layer_resources(graph, board)
    for layer, layer_resource in zip(graph.layers, estimates, strict=True):
        c = layer_cost(layer, board)
        entry: dict[str, object] = {
            "name": layer.name,
            "source_name": layer.source_name,
            "kind": layer.kind,
            "inputs": list(graph.inputs_of(layer)),
            "output_shape": list(layer.out_shape),
        }
        entry.update(_matrix_fields(layer) if isinstance(layer, Dense) else _other_fields(layer))
        entry.update(
            {
                # pooling and adds have no tiles to reuse
                "reuse_factor": c.reuse_factor if isinstance(layer, Dense) else None,
                "tiles": c.tiles if isinstance(layer, Dense) else None,
                "multipliers": c.multipliers,
                "macs": c.macs,
                "est_dsp": c.est_dsp,
                "est_cycles": c.est_cycles,
                "est_ii": c.est_ii,
                "ideal_ii": c.ideal_ii,
                "est_latency_us": round(c.est_cycles / board.clock_mhz, 4),
                "resources": layer_resource.to_json(),
                "energy": layer_energy(layer, board).to_json(),
            }
        )
        layers.append(entry)
    resources = network_resources(graph, board)
    report: dict[str, object] = {
        "schema": REPORT_SCHEMA,
        "board": board.key,
        "part": board.part,
        "model": request.model_name,
        "clock_mhz": board.clock_mhz,
        "weight_bits": request.weight_bits,
        "act_bits": request.act_bits,
        "layers": layers,
        "totals": {
            "multipliers": cost.multipliers,
            "est_dsp": cost.est_dsp,
            "board_dsp": board.dsp_blocks,
            "est_cycles": cost.est_cycles,
            "est_ii": cost.est_ii,
            "ideal_ii": cost.ideal_ii,
            "est_latency_us": round(cost.est_cycles / board.clock_mhz, 4),
            "sparsity": round(_total_sparsity(graph), 6),
            "resources": resources.to_json(),
            "energy": network_energy(graph, board).to_json(),
        },
        "fit": check_fit(resources, board).to_json(),
        "resource_model": {
            "kind": "estimate",
            "source": "codesign.cost.resources (RTL engine; Arria 10 M20K/MLAB/ALM rules)",
        },
        "energy_model": energy_model(board),
        "digest": digest,
    }
    if request.dataset is not None:
        report["accuracy"] = _accuracies(request, graph)
    return report


def _add_overflows(report: dict[str, Any], traces: list[reference.LayerTrace]) -> None:
    """The reference's overflow counts on the test vectors, per layer (design.md §5)."""
    report["n_vectors"] = int(traces[0].output.shape[0])  # the test vectors they count over
    for entry, trace in zip(report["layers"], traces, strict=True):
        entry["overflows"] = int(trace.saturated)
        entry["accum_overflows"] = int(trace.accum_overflows)


def _matrix_fields(layer: Dense) -> dict[str, object]:
    csr = layer.require_csr()
    formats = layer.require_formats()
    return {
        "shape": list(layer.shape),
        "block": list(csr.block),
        "formats": {
            k: getattr(formats, k).describe() for k in ("input", "weight", "accum", "output")
        },
        "sparsity": round(layer.sparsity, 6),
        "block_sparsity": round(csr.block_sparsity, 6),
        "nnz_blocks": csr.nnz_blocks,
        "positions": layer.positions,
        # weights that saturated when quantised (a --precision weight format too narrow)
        "weight_overflows": layer.weight_overflows,
        **_activation_fields(layer),
    }


def _other_fields(layer: Pool2d | Add) -> dict[str, object]:
    """Pooling and adds: no weight matrix, so no block, sparsity or tiles."""
    if isinstance(layer, Pool2d):
        return {
            "shape": [layer.channels, layer.in_height, layer.in_width],
            "mode": layer.mode.value,
            "kernel": list(layer.kernel),
            "stride": list(layer.stride),
            "formats": {
                "input": layer.in_format().describe(),
                "output": layer.out_format().describe(),
            },
        }
    return {
        "shape": [layer.features],
        **_activation_fields(layer),
        "formats": {
            "input": ",".join(f.describe() for f in layer.require_input_formats()),
            "output": layer.out_format().describe(),
        },
    }


def _activation_fields(layer: Dense | Add) -> dict[str, object]:
    """`activation`, and LeakyReLU's slope as `alpha`."""
    fields: dict[str, object] = {"activation": layer.activation.value}
    if layer.activation is Activation.LEAKY_RELU:
        fields["alpha"] = layer.alpha
    return fields


def _total_sparsity(graph: Graph) -> float:
    layers = graph.matrix_layers
    zeros = sum(int(np.count_nonzero(layer.weight == 0)) for layer in layers)
    return zeros / sum(layer.weight.size for layer in layers)


def _accuracies(request: GenerateRequest, graph: Graph) -> dict[str, object]:
    dataset = request.dataset
    assert dataset is not None
    float_acc = accuracy(request.model, dataset.x_test, dataset.y_test)
    fixed_logits = reference.predict(graph, dataset.x_test)
    fixed_acc = float((fixed_logits.argmax(axis=1) == dataset.y_test).mean())
    with torch.no_grad():
        float_logits = request.model(torch.from_numpy(dataset.x_test)).double().numpy()
    return {
        "dense_float": request.dense_accuracy if request.dense_accuracy is not None else float_acc,
        "pruned_float": float_acc,
        "fixed_point": fixed_acc,
        "max_abs_logit_error": float(np.abs(fixed_logits - float_logits).max()),
        "n_test": int(len(dataset.y_test)),
    }


PRUNE_SCHEMA = "codesign.prune/1"


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
    block: str | tuple[int, int] | None = None
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
    record: dict[str, Any]


def _prune_budget(request: PruneRequest) -> Budget | None:
    from codesign.errors import PruneError
    from codesign.frontend.budget import ALLOCATORS, Budget

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
    from codesign.frontend.pipeline import PruneConfig, calibration, prune_model
    from codesign.frontend.prune import prunable_layers
    from codesign.models import BUILTIN_MODELS, load_model, seed_everything, train

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
    if request.weights is None and request.model_spec in BUILTIN_MODELS:
        spec = BUILTIN_MODELS[request.model_spec]
        train(
            model, dataset, spec.epochs, spec.learning_rate, request.seed, progress=request.progress
        )
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
            model, request.criterion, block, request.balanced, calibration(dataset, 512)
        )
        allocation = allocate(cost, sens, budget, request.allocator)
        config = replace(config, layer_sparsity=allocation.sparsity)
    result = prune_model(model, dataset, config)
    pruned_accuracy = accuracy(model, dataset.x_test, dataset.y_test)
    pruned_cost = CostModel(model, request.board, block, dataset.input_shape, calib, *bits)
    design = pruned_cost.estimate_model(model)
    record = _prune_record(request, config, result, design, dense_design, allocation)
    record["accuracy"] = {"dense": dense_accuracy, "pruned": pruned_accuracy}
    weights = io.BytesIO()
    torch.save(model.state_dict(), weights)
    files = {
        "prune.json": (json.dumps(record, indent=2) + "\n").encode(),
        "model.pt": weights.getvalue(),
    }
    write_plan(BuildPlan(files), request.out_dir, force=request.force)
    return PruneOutcome(model, dataset, record)


def _prune_record(
    request: PruneRequest,
    config: PruneConfig,
    result: PruneResult,
    design: DesignEstimate,
    dense_design: DesignEstimate,
    allocation: Allocation | None,
) -> dict[str, Any]:
    targets = config.layer_sparsity or {}
    by_name = {estimate.name: estimate for estimate in design.layers}
    layers = []
    for layer in result.layers:
        entry: dict[str, Any] = {
            "name": layer.name,
            "shape": list(layer.shape),
            "sparsity": round(layer.sparsity, 6),
            "block_sparsity": round(layer.block_sparsity, 6),
            "nnz_blocks": layer.nnz_blocks,
            "est_cycles": by_name[layer.name].est_cycles,
            "est_dsp": by_name[layer.name].est_dsp,
            "reuse_factor": by_name[layer.name].reuse_factor,
        }
        if layer.name in targets:
            entry["target_sparsity"] = targets[layer.name]
        original = result.original_shapes.get(layer.name)
        if original is not None and tuple(original) != tuple(layer.shape):
            entry["original_shape"] = list(original)
        layers.append(entry)
    record: dict[str, Any] = {
        "schema": PRUNE_SCHEMA,
        "model": request.model_spec,
        "dataset": request.dataset_name,
        "input_shape": list(request.input_shape) if request.input_shape else None,
        "board": request.board.key,
        "method": config.method,
        "balanced": config.balanced if config.method == "block" else None,
        "block": list(config.block),
        "criterion": config.criterion_used,
        "schedule": config.schedule,
        "distill": config.distill,
        "target_sparsity": request.sparsity,
        "achieved_sparsity": round(result.achieved_sparsity, 6),
        "epochs": config.epochs,
        "learning_rate": config.learning_rate,
        "seed": config.seed,
        "weight_bits": request.weight_bits,
        "act_bits": request.act_bits,
        "layers": layers,
        "hardware": {
            "cost_model": design.source,
            "reuse_factor": design.reuse_factor,
            "est_cycles": design.est_cycles,
            "est_dsp": design.est_dsp,
            "dense": {"est_cycles": dense_design.est_cycles, "est_dsp": dense_design.est_dsp},
        },
    }
    if allocation is not None:
        budget = allocation.budget
        record["budget"] = {
            "metric": budget.metric,
            "limit": budget.limit,
            "allocator": allocation.allocator,
            "estimate": design.value(budget.metric),
            "met": budget.met(design),
        }
    if result.resized is not None:
        record["resized"] = result.resized
    if result.notes:
        record["notes"] = result.notes
    return record


@dataclass(frozen=True)
class PrunedModel:
    model: nn.Module
    model_spec: str
    dataset_name: str
    block: tuple[int, int]
    dense_accuracy: float | None
    input_shape: tuple[int, ...] | None = None  # the shape the dataset was viewed in


def load_pruned(prune_dir: Path) -> PrunedModel:
    """Rebuild the model a `prune` run saved (prune.json + model.pt), resized if channel
    pruning made it smaller."""
    from codesign.frontend.channel import apply_resized
    from codesign.models import load_model, load_weights

    record_path = prune_dir / "prune.json"
    if not record_path.is_file():
        raise CodesignError(f"{prune_dir}: no prune.json; is it the --out of `codesign prune`?")
    try:
        record = json.loads(record_path.read_text())
        spec, dataset_name = str(record["model"]), str(record["dataset"])
        block = (int(record["block"][0]), int(record["block"][1]))
        dense = record.get("accuracy", {}).get("dense")
        shape = record.get("input_shape")
        input_shape = tuple(int(d) for d in shape) if shape else None
        resized = {
            str(name): {str(k): int(v) for k, v in sizes.items()}
            for name, sizes in record.get("resized", {}).items()
        }
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        raise CodesignError(f"{record_path}: malformed ({error!r})") from error
    if record.get("schema") != PRUNE_SCHEMA:
        raise CodesignError(
            f"{record_path}: schema {record.get('schema')!r}, expected {PRUNE_SCHEMA}"
        )
    model = load_model(spec)
    apply_resized(model, resized)
    load_weights(model, prune_dir / "model.pt")
    return PrunedModel(model, spec, dataset_name, block, dense, input_shape)


def csim(project: Path) -> dict[str, Any]:
    """Build and run the project's C simulation; write and return csim.json."""
    from codesign.sim.csim import run_csim

    result = run_csim(project)
    _write_json(project / "csim.json", result)
    return result


def simulate(
    project: Path, layer: str | None = None, n_vectors: int | None = None
) -> dict[str, Any]:
    """Simulate the project's RTL in Verilator; write and return rtlsim.json.

    A single layer's result goes to rtlsim/<layer>/rtlsim.json so that it never replaces the
    network's.
    """
    from codesign.sim.rtlsim import simulate as run_rtlsim

    result = run_rtlsim(project, layer=layer, n_vectors=n_vectors)
    simulated = result["layers"][0]["name"] if layer is not None else None
    _write_json(rtlsim_json(project, simulated), result)
    return result


def rtlsim_json(project: Path, layer: str | None = None) -> Path:
    """rtlsim.json of the whole network, or of one layer simulated alone (kept apart)."""
    if layer is None:
        return project / "rtlsim.json"
    return project / "rtlsim" / layer / "rtlsim.json"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")
