"""The flows behind the commands: prune a model, generate a project, as explicit step lists.

Library code: it logs and returns; the CLI prints.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from codesign import reference
from codesign.boards import Board
from codesign.data import Dataset
from codesign.emit.plan import BuildPlan, check_output_dir, write_plan
from codesign.errors import CodesignError
from codesign.frontend.lower import lower
from codesign.hardware import default_reuse_factor, fits, layer_cost, network_cost
from codesign.ir.graph import Graph
from codesign.ir.serialize import graph_text, graph_to_files
from codesign.models import accuracy
from codesign.options import resolve_block
from codesign.passes import compress, quantise, tile
from codesign.vectors import vector_files

log = logging.getLogger(__name__)

REPORT_SCHEMA = "codesign.report/1"
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
    reuse: int | dict[str, int] | None = None
    weight_bits: int = 8
    act_bits: int = 16
    n_vectors: int = DEFAULT_VECTORS
    force: bool = False
    dense_accuracy: float | None = None


def generate(request: GenerateRequest) -> dict[str, object]:
    """Lower, quantise, compress, tile and emit a project; return its report.json content."""
    check_output_dir(request.out_dir, request.force)
    input_shape = _input_shape(request)
    operand_bits = max(request.weight_bits, request.act_bits)
    block = resolve_block(request.block, request.board, operand_bits)
    calibration, vectors = _calibration_and_vectors(request, input_shape)

    graph = lower(request.model, request.model_name, input_shape, block)
    steps: list[Callable[[Graph], Graph]] = [
        lambda g: quantise(g, calibration, request.weight_bits, request.act_bits),
        compress,
        lambda g: tile(g, _reuse_for(g, request)),
    ]
    for step in steps:
        graph = step(graph)
    cost = network_cost(graph, request.board)
    if not fits(cost, request.board):
        raise CodesignError(
            f"the design needs {cost.est_dsp} DSP blocks but {request.board.key} has "
            f"{request.board.dsp_blocks}; raise --reuse, prune harder or pick a larger board"
        )

    x_raw = reference.quantize_inputs(graph, vectors)
    emitted = _emit(graph, request.board).merged(BuildPlan(vector_files(graph, x_raw)))
    report = _report(request, graph, emitted.digest())
    files = dict(emitted.files)
    files.update(graph_to_files(graph))
    files["design.txt"] = graph_text(graph).encode()
    files["report.json"] = (json.dumps(report, indent=2) + "\n").encode()
    write_plan(BuildPlan(files), request.out_dir, force=request.force)
    log.info("wrote %s (%d files)", request.out_dir, len(files))
    return report


def check_supported(model: nn.Module, name: str, input_shape: tuple[int, ...]) -> None:
    """Raise the lowering error now if the hardware flow cannot take `model`."""
    lower(model, name, input_shape, (1, 1))


def _emit(graph: Graph, board: Board) -> BuildPlan:
    from codesign.emit.hls import emit_hls
    from codesign.emit.rtl import emit_rtl

    return emit_hls(graph, board).merged(emit_rtl(graph))


def _input_shape(request: GenerateRequest) -> tuple[int, ...]:
    if request.dataset is not None:
        shape = request.dataset.input_shape
        if request.input_shape is not None and tuple(request.input_shape) != shape:
            raise CodesignError(
                f"--input-shape {request.input_shape} disagrees with the dataset's {shape}"
            )
        return shape
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
    names = {layer.name for layer in graph.layers}
    by_source = {layer.source_name: layer.name for layer in graph.layers}
    per_layer: dict[str, int] = {}
    for name, value in request.reuse.items():
        key = name if name in names else by_source.get(name)
        if key is None:
            raise CodesignError(f"--reuse names unknown layer {name!r}; layers: {sorted(names)}")
        per_layer[key] = value
    missing = sorted(names - per_layer.keys())
    if missing:
        raise CodesignError(f"--reuse per layer must name every layer; missing: {missing}")
    return per_layer


def _report(request: GenerateRequest, graph: Graph, digest: str) -> dict[str, object]:
    board = request.board
    cost = network_cost(graph, board)
    layers = []
    for layer in graph.layers:
        c = layer_cost(layer, board)
        csr = layer.require_csr()
        layers.append(
            {
                "name": layer.name,
                "source_name": layer.source_name,
                "kind": layer.kind,
                "shape": list(layer.shape),
                "activation": layer.activation.value,
                "block": list(csr.block),
                "formats": {
                    k: getattr(layer.require_formats(), k).describe()
                    for k in ("input", "weight", "accum", "output")
                },
                "sparsity": round(layer.sparsity, 6),
                "block_sparsity": round(csr.block_sparsity, 6),
                "nnz_blocks": csr.nnz_blocks,
                "reuse_factor": c.reuse_factor,
                "tiles": c.tiles,
                "multipliers": c.multipliers,
                "est_dsp": c.est_dsp,
                "est_cycles": c.est_cycles,
                "est_ii": c.est_ii,
                "ideal_ii": c.ideal_ii,
            }
        )
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
        },
        "digest": digest,
    }
    if request.dataset is not None:
        report["accuracy"] = _accuracies(request, graph)
    return report


def _total_sparsity(graph: Graph) -> float:
    zeros = sum(int(np.count_nonzero(layer.weight == 0)) for layer in graph.layers)
    return zeros / sum(layer.weight.size for layer in graph.layers)


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
    model_spec: str
    dataset_name: str
    board: Board
    sparsity: float
    out_dir: Path
    weights: Path | None = None
    block: str | tuple[int, int] | None = None
    epochs: int = 30
    weight_bits: int = 8
    act_bits: int = 16
    seed: int = 0
    force: bool = False
    progress: bool = False


@dataclass(frozen=True)
class PruneOutcome:
    model: nn.Module
    dataset: Dataset
    record: dict[str, Any]


def prune(request: PruneRequest) -> PruneOutcome:
    """Train (or load) the model, block-prune it, fine-tune, and save model.pt + prune.json."""
    from codesign.data import load_dataset
    from codesign.frontend.prune import check_sparsity, prune_blocks
    from codesign.models import BUILTIN_MODELS, load_model, seed_everything, train_builtin

    check_output_dir(request.out_dir, request.force)
    check_sparsity(request.sparsity)
    block = resolve_block(request.block, request.board, max(request.weight_bits, request.act_bits))
    dataset = load_dataset(request.dataset_name)
    seed_everything(request.seed)
    if request.weights is None and request.model_spec in BUILTIN_MODELS:
        model = train_builtin(request.model_spec, dataset, request.seed, request.progress)
    else:
        model = load_model(request.model_spec, request.weights)
    dense_accuracy = accuracy(model, dataset.x_test, dataset.y_test)
    layers = prune_blocks(
        model,
        dataset,
        request.sparsity,
        block,
        request.epochs,
        request.seed,
        progress=request.progress,
    )
    pruned_accuracy = accuracy(model, dataset.x_test, dataset.y_test)
    total = sum(int(np.prod(layer.shape)) for layer in layers)
    zeros = sum(layer.sparsity * int(np.prod(layer.shape)) for layer in layers)
    record: dict[str, Any] = {
        "schema": PRUNE_SCHEMA,
        "model": request.model_spec,
        "dataset": request.dataset_name,
        "board": request.board.key,
        "method": "block",
        "balanced": True,
        "block": list(block),
        "criterion": "l1",
        "target_sparsity": request.sparsity,
        "achieved_sparsity": round(zeros / total, 6),
        "epochs": request.epochs,
        "seed": request.seed,
        "weight_bits": request.weight_bits,
        "act_bits": request.act_bits,
        "accuracy": {"dense": dense_accuracy, "pruned": pruned_accuracy},
        "layers": [
            {
                "name": layer.name,
                "shape": list(layer.shape),
                "sparsity": round(layer.sparsity, 6),
                "block_sparsity": round(layer.block_sparsity, 6),
                "nnz_blocks": layer.nnz_blocks,
            }
            for layer in layers
        ],
    }
    import io

    weights = io.BytesIO()
    torch.save(model.state_dict(), weights)
    files = {
        "prune.json": (json.dumps(record, indent=2) + "\n").encode(),
        "model.pt": weights.getvalue(),
    }
    write_plan(BuildPlan(files), request.out_dir, force=request.force)
    return PruneOutcome(model, dataset, record)


@dataclass(frozen=True)
class PrunedModel:
    model: nn.Module
    model_spec: str
    dataset_name: str
    block: tuple[int, int]
    dense_accuracy: float | None


def load_pruned(prune_dir: Path) -> PrunedModel:
    """Rebuild the model a `prune` run saved (prune.json + model.pt)."""
    from codesign.models import load_model

    record_path = prune_dir / "prune.json"
    if not record_path.is_file():
        raise CodesignError(f"{prune_dir}: no prune.json; is it the --out of `codesign prune`?")
    try:
        record = json.loads(record_path.read_text())
        spec, dataset_name = str(record["model"]), str(record["dataset"])
        block = (int(record["block"][0]), int(record["block"][1]))
        dense = record.get("accuracy", {}).get("dense")
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise CodesignError(f"{record_path}: malformed ({error!r})") from error
    if record.get("schema") != PRUNE_SCHEMA:
        raise CodesignError(
            f"{record_path}: schema {record.get('schema')!r}, expected {PRUNE_SCHEMA}"
        )
    model = load_model(spec, prune_dir / "model.pt")
    return PrunedModel(model, spec, dataset_name, block, dense)


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
