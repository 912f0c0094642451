"""`codesign generate`: lower a model, run the build steps, emit and write the project.

    lower → quantise → compress → fold  (codesign.passes.pipeline.STEPS)
          → emit (HLS C++ + SystemVerilog + vectors) → report.json → write the project

Library code: it logs and returns; the CLI prints.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
from torch import nn

from codesign import reference
from codesign.boards import Board
from codesign.cost import check_fit, network_resources
from codesign.data import Dataset
from codesign.emit.hls import emit_hls
from codesign.emit.plan import BuildPlan, check_output_dir, write_plan
from codesign.emit.rtl import emit_rtl
from codesign.errors import CodesignError
from codesign.flows.estimates import build_report
from codesign.frontend.lower import lower
from codesign.ir.graph import Graph
from codesign.options import DEFAULT_REUSE, Reuse, resolve_block
from codesign.passes.fold import smallest_design
from codesign.passes.pipeline import BuildOptions, build
from codesign.precision import Precision
from codesign.records.design import graph_text, graph_to_files
from codesign.records.report import Report
from codesign.vectors import vector_files

log = logging.getLogger(__name__)

FIT_MODES = ("error", "warn")
CALIBRATION_SAMPLES = 512
DEFAULT_VECTORS = 32
RANDOM_SEED = 0
CHECKPOINTS = "checkpoints"  # the IR after each build step, with generate --checkpoints


@dataclass(frozen=True)
class GenerateRequest:
    model: nn.Module
    model_name: str
    board: Board
    out_dir: Path
    dataset: Dataset | None = None
    input_shape: tuple[int, ...] | None = None
    block: tuple[int, int] | None = None  # None: the board's default for the operand width
    reuse: Reuse = DEFAULT_REUSE
    weight_bits: int = 8
    act_bits: int = 16
    precision: Precision | None = None  # per-layer format overrides (codesign.precision)
    n_vectors: int = DEFAULT_VECTORS
    force: bool = False
    dense_accuracy: float | None = None
    fit: str = "error"  # "error": refuse a design that does not fit the board; "warn": log it
    checkpoints: bool = False  # write the IR's text after every step into checkpoints/


def generate(request: GenerateRequest) -> Report:
    """Lower, build and emit a project; return its report (report.json)."""
    check_output_dir(request.out_dir, request.force)
    if request.fit not in FIT_MODES:
        raise CodesignError(f"fit mode must be one of {FIT_MODES}, got {request.fit!r}")
    if request.dataset is not None and request.input_shape is not None:
        # the same values in another shape (digits' 64 features as 1×8×8) are taken as given
        request = replace(request, dataset=request.dataset.reshaped(request.input_shape))
    input_shape = _input_shape(request)
    operand_bits = max(request.weight_bits, request.act_bits)
    calibration, vectors = _calibration_and_vectors(request, input_shape)
    options = BuildOptions(
        calibration=calibration,
        board=request.board,
        block=resolve_block(request.block, request.board, operand_bits),
        reuse=request.reuse,
        weight_bits=request.weight_bits,
        act_bits=request.act_bits,
        precision=request.precision,
    )
    checkpoints: dict[str, bytes] = {}

    def keep(step: str, graph: Graph) -> None:
        if request.checkpoints:
            name = f"{CHECKPOINTS}/{len(checkpoints)}_{step}.txt"
            checkpoints[name] = graph_text(graph).encode()

    graph = build(lower(request.model, request.model_name, input_shape), options, checkpoint=keep)
    _check_fit(graph, request)

    emitted = emit_hls(graph, request.board).merged(emit_rtl(graph))  # refuses bad formats
    x_raw = reference.quantize_inputs(graph, vectors)
    traces = reference.run(graph, x_raw)
    emitted = emitted.merged(BuildPlan(vector_files(graph, x_raw, traces)))
    accuracy = _accuracies(request, graph) if request.dataset is not None else None
    report = build_report(
        graph,
        request.board,
        request.model_name,
        (request.weight_bits, request.act_bits),
        emitted.digest(),
        traces,
        accuracy,
    )
    files = dict(emitted.files)
    files.update(graph_to_files(graph))
    files["design.txt"] = graph_text(graph).encode()
    files["report.json"] = report.to_bytes()
    files.update(checkpoints)
    write_plan(BuildPlan(files), request.out_dir, force=request.force)
    log.info("wrote %s (%d files)", request.out_dir, len(files))
    return report


def _check_fit(graph: Graph, request: GenerateRequest) -> None:
    """Compare the resource estimate with the board; raise or log when it does not fit."""
    check = check_fit(network_resources(graph, request.board), request.board)
    if check.fits:
        return
    smallest = check_fit(network_resources(smallest_design(graph), request.board), request.board)
    if smallest.fits:
        advice = "raise --target-ii or --reuse (every layer at its largest RF fits), prune harder"
    else:  # no reuse factor helps: say what the smallest design still needs
        needs = ", ".join(f"{item.needed:,} {item.resource}" for item in smallest.overflows())
        advice = (
            f"no reuse factor helps: even one tile per layer needs {needs}; prune harder, "
            "use fewer bits or smaller blocks"
        )
    advice += f", raise --max-utilisation (now {request.board.max_utilisation:.0%})"
    advice += " or pick a larger board"
    if request.fit == "error":
        raise CodesignError(f"{check.message()}; {advice} (or pass --fit warn)")
    log.warning("%s; generating anyway (--fit warn)", check.message())


def check_supported(model: nn.Module, name: str, input_shape: tuple[int, ...]) -> None:
    """Raise the lowering error now if the hardware flow cannot take `model`."""
    lower(model, name, input_shape)


def _input_shape(request: GenerateRequest) -> tuple[int, ...]:
    if request.dataset is not None:
        return request.dataset.input_shape
    if request.input_shape is None:
        raise CodesignError("without --dataset the model's --input-shape must be given")
    return tuple(request.input_shape)


def _calibration_and_vectors(
    request: GenerateRequest, input_shape: tuple[int, ...]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    if request.dataset is not None:
        return (
            request.dataset.x_train[:CALIBRATION_SAMPLES],
            request.dataset.x_test[: request.n_vectors],
        )
    rng = np.random.default_rng(RANDOM_SEED)
    calibration = rng.standard_normal((CALIBRATION_SAMPLES, *input_shape)).astype(np.float32)
    return calibration, calibration[: request.n_vectors]


def _accuracies(request: GenerateRequest, graph: Graph) -> dict[str, object]:
    import torch

    from codesign.models import accuracy

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
