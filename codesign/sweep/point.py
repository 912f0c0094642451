"""One design point of a sweep: its stages run through the library functions (codesign.flows,
codesign.synth), never through the command line, in whichever process the executor chose.

A point's folder in the store holds `prune/` (the pruned model), `project/` (the generated
project, with csim.json, rtlsim.json, synth.json as the stages add them) and `result.json`
(the figures, written last, by the coordinator). Each figure's column names its source:

    [D] design: the accuracies and sparsity the generated project's report.json records
        (the fixed-point top-1 is the NumPy reference's, the oracle)
    [E] estimate: report.json's cost model
    [C] C simulation (g++), [R] RTL simulation (Verilator), [Y] Yosys (Cyclone V proxy)
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codesign.errors import CodesignError, ToolError

log = logging.getLogger(__name__)

PRUNE_DIR, PROJECT_DIR = "prune", "project"

# column -> what it is; the order of the results table
FIGURES: dict[str, str] = {
    "sparsity[D]": "fraction of zero weights over the prunable layers",
    "top1_dense[D]": "top-1 of the dense float model on the test set",
    "top1_float[D]": "top-1 of the pruned float model",
    "top1_fixed[D]": "top-1 of the fixed-point design (NumPy reference)",
    "ii[E]": "interval, cycles a vector (estimate)",
    "latency_cycles[E]": "latency of one vector, cycles (estimate)",
    "latency_us[E]": "latency at the board clock, µs (estimate)",
    "dsp[E]": "DSP blocks (estimate)",
    "m20k[E]": "M20K blocks (estimate)",
    "alms[E]": "ALMs (estimate)",
    "registers[E]": "registers (estimate)",
    "utilisation[E]": "MACs / (multipliers · interval) (estimate)",
    "energy_nj[E]": "energy per inference, nJ (estimate)",
    "csim_match[C]": "C simulation bit-exact to the reference",
    "ii[R]": "interval measured in Verilator",
    "latency_cycles[R]": "latency measured in Verilator",
    "rtl_match[R]": "RTL simulation bit-exact to the reference",
    "dsp[Y]": "DSP blocks Yosys mapped (Cyclone V proxy)",
    "alms[Y]": "ALMs, lower bound of Yosys's cells' packing",
    "ffs[Y]": "flip-flops Yosys mapped",
}


@dataclass(frozen=True)
class PointTask:
    """Everything a worker needs to run one point (picklable: it travels to Dask workers)."""

    key: str
    folder: Path  # the point's folder in the store (on a filesystem every worker sees)
    model: str
    dataset: str
    weights: Path | None  # the spec's, or the shared dense model's
    input_shape: tuple[int, ...] | None
    options: Mapping[str, Any]
    stages: tuple[str, ...]  # the stages still to run
    figures: Mapping[str, Any]  # what earlier runs of this point measured
    log_dir: Path


def run_point(task: PointTask) -> dict[str, Any]:
    """Run the task's stages; return what was measured, or the error that stopped it.

    A CodesignError (a design too large for its board, a diverged fine-tune) is a result of
    the point (`failed`, kept: a re-run does not retry it); a ToolError (a simulator missing
    here) or any other exception is a fault of the run (`error`, not kept: the next run
    retries the point)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # points run side by side; one thread each keeps results equal
    try:
        with _worker_log(task.log_dir):
            return _run_stages(task)
    finally:
        torch.set_num_threads(threads)


def _run_stages(task: PointTask) -> dict[str, Any]:
    figures, seconds = dict(task.figures), {}
    worker = f"{socket.gethostname()}:{os.getpid()}"
    log.info("point %s: %s, stages %s", task.key, _options_text(task.options), task.stages)
    status, error, done = "done", None, list[str]()
    for stage in task.stages:
        started = time.perf_counter()
        try:
            figures.update(STAGE_RUNNERS[stage](task))
        except ToolError as failure:  # a tool missing or broken here: retried next run
            status, error = "error", f"{stage}: {failure}"
        except CodesignError as failure:
            status, error = "failed", f"{stage}: {failure}"
        except Exception as failure:  # a fault of the run, not a property of the design
            status, error = "error", f"{stage}: {type(failure).__name__}: {failure}"
            log.error("point %s: %s\n%s", task.key, error, traceback.format_exc())
        seconds[stage] = round(time.perf_counter() - started, 2)
        if error is not None:
            log.info("point %s %s: %s", task.key, status, error)
            return _result(task, status, error, done, stage, figures, seconds, worker)
        done.append(stage)
        log.info("point %s: %s done in %.1f s", task.key, stage, seconds[stage])
    return _result(task, status, error, done, None, figures, seconds, worker)


def _result(
    task: PointTask,
    status: str,
    error: str | None,
    done: list[str],
    failed_stage: str | None,
    figures: dict[str, Any],
    seconds: dict[str, float],
    worker: str,
) -> dict[str, Any]:
    return {
        "key": task.key,
        "status": status,
        "error": error,
        "stages_run": done,
        "failed_stage": failed_stage,
        "figures": figures,
        "seconds": seconds,
        "worker": worker,
    }


def _options_text(options: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in options.items() if value is not None)


class _Forward(logging.Handler):
    """Warnings and errors still reach the handlers above the codesign logger (a terminal)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger().handle(record)


@contextlib.contextmanager
def _worker_log(log_dir: Path) -> Iterator[None]:
    """While a point runs, the codesign log lines (INFO and up) go to
    log_dir/worker-HOST-PID.log; warnings also go where they went before. One point at a
    time per process (the executors see to it: Dask workers run one thread)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_dir / f"worker-{socket.gethostname()}-{os.getpid()}.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger, forward = logging.getLogger("codesign"), _Forward()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.addHandler(forward)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(forward)
        logger.setLevel(level)
        logger.propagate = propagate
        handler.close()


def _board(options: Mapping[str, Any]) -> Any:
    from codesign.boards import load_board

    return load_board(options["board"]).with_ceiling(options["max_utilisation"])


def _block(options: Mapping[str, Any]) -> tuple[int, int] | None:
    from codesign.options import parse_block

    return None if options["block"] is None else parse_block(options["block"])


def _prune(task: PointTask) -> dict[str, Any]:
    from codesign.flows.prune import PruneRequest, prune

    o = task.options
    record = prune(
        PruneRequest(
            model_spec=task.model,
            dataset_name=task.dataset,
            board=_board(o),
            out_dir=task.folder / PRUNE_DIR,
            sparsity=o["sparsity"],
            budget_cycles=o["budget_cycles"],
            budget_dsp=o["budget_dsp"],
            weights=task.weights,
            method=o["method"],
            block=_block(o),
            balanced=o["pattern"] == "balanced",
            criterion=o["criterion"],
            schedule=o["schedule"],
            distill=o["distill"],
            allocator=o["allocator"],
            epochs=o["epochs"],
            learning_rate=o["learning_rate"],
            weight_bits=o["weight_bits"],
            act_bits=o["act_bits"],
            seed=o["seed"],
            force=True,
            input_shape=task.input_shape,
        )
    ).record
    return {  # generate reads the same from the project's report.json
        "sparsity[D]": round(record.achieved_sparsity, 4),
        "top1_dense[D]": record.accuracy.get("dense"),
        "top1_float[D]": record.accuracy.get("pruned"),
    }


def _generate(task: PointTask) -> dict[str, Any]:
    from codesign.flows.generate import GenerateRequest, generate
    from codesign.flows.source import ModelSource, resolve_model
    from codesign.options import parse_reuse

    o = task.options
    pruned = task.folder / PRUNE_DIR
    source = (
        ModelSource(prune_dir=pruned, dataset=task.dataset, block=_block(o))
        if pruned.is_dir()
        else ModelSource(
            spec=task.model,
            weights=task.weights,
            dataset=task.dataset,
            input_shape=task.input_shape,
            block=_block(o),
        )
    )
    resolved = resolve_model(source)
    report = generate(
        GenerateRequest(
            model=resolved.model,
            model_name=resolved.name,
            board=_board(o),
            out_dir=task.folder / PROJECT_DIR,
            dataset=resolved.dataset,
            input_shape=resolved.input_shape,
            block=resolved.block,
            reuse=parse_reuse(o["reuse"], o["target_ii"]),
            weight_bits=o["weight_bits"],
            act_bits=o["act_bits"],
            n_vectors=o["vectors"],
            force=True,
            dense_accuracy=resolved.dense_accuracy,
        )
    )
    totals, accuracy = report.totals, report.accuracy or {}
    return {
        "sparsity[D]": round(totals.sparsity, 4),
        "top1_dense[D]": accuracy.get("dense_float"),
        "top1_float[D]": accuracy.get("pruned_float"),
        "top1_fixed[D]": accuracy.get("fixed_point"),
        "ii[E]": totals.est_ii,
        "latency_cycles[E]": totals.est_cycles,
        "latency_us[E]": totals.est_latency_us,
        "dsp[E]": totals.est_dsp,
        "m20k[E]": totals.resources.get("m20k_blocks"),
        "alms[E]": totals.resources.get("alms"),
        "registers[E]": totals.resources.get("registers"),
        "utilisation[E]": totals.est_utilisation,
        "energy_nj[E]": totals.energy.get("total_nj"),
    }


def _csim(task: PointTask) -> dict[str, Any]:
    from codesign.flows.project import csim

    result = csim(task.folder / PROJECT_DIR)
    return {"csim_match[C]": bool(result["outputs_match"])}


def _simulate(task: PointTask) -> dict[str, Any]:
    from codesign.flows.project import simulate

    result = simulate(task.folder / PROJECT_DIR, n_vectors=task.options["sim_vectors"])
    network = result["network"]
    matches = [entry["outputs_match"] for entry in [*result["layers"], network]]
    return {
        "ii[R]": network["sim_ii"],
        "latency_cycles[R]": network["sim_cycles"],
        "rtl_match[R]": all(matches),
    }


def _synth(task: PointTask) -> dict[str, Any]:
    from codesign.synth import synthesise

    totals = synthesise(task.folder / PROJECT_DIR).totals
    return {
        "dsp[Y]": totals["dsp_blocks"],
        "alms[Y]": totals["alms_lower_bound"],
        "ffs[Y]": totals["flip_flops"],
    }


STAGE_RUNNERS = {
    "prune": _prune,
    "generate": _generate,
    "csim": _csim,
    "simulate": _simulate,
    "synth": _synth,
}
