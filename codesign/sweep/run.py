"""`codesign sweep`: every point of a spec through its stages, on local processes or on Dask.

    spec → points (keys) → the store's results → the missing stages, on the executor
         → result.json per point → results.csv + sweep.json → the Pareto front

The coordinator (this process) checks the spec, makes each point's starting weights once
(a built-in model trained, a model file's initial weights), sends the points out, and
writes every result as it arrives, so an interrupted sweep keeps what finished. Workers
write the point folders; with Dask the store must be on a filesystem every worker sees (a
shared or network folder), as it is on a LocalCluster.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codesign.errors import CodesignError, OutputDirError
from codesign.sweep.executors import executor
from codesign.sweep.pareto import Front, pareto_front
from codesign.sweep.point import FIGURES, PointTask, run_point
from codesign.sweep.spec import SweepSpec
from codesign.sweep.store import (
    Store,
    board_identity,
    check_store,
    code_digest,
    content_key,
    dataset_identity,
    file_digest,
    model_identity,
    write_atomic,
)
from codesign.sweep.table import SWEEP_SCHEMA, point_line, row, write_records

log = logging.getLogger(__name__)

LOG_DIR, STORE_DIR = "logs", "points"
SWEEP_MARKER = ".codesign-sweep"  # a sweep's --out, resumed without --force


@dataclass(frozen=True)
class SweepOutcome:
    spec: SweepSpec
    out_dir: Path
    rows: tuple[Mapping[str, Any], ...]  # one per point, in the spec's order
    counts: Mapping[str, int]  # computed, cached, failed, error
    front: Front
    seconds: float
    executor: str


def run_sweep(
    spec: SweepSpec,
    out_dir: Path,
    jobs: int = 1,
    scheduler: str | None = None,
    store_dir: Path | None = None,
    force: bool = False,
    retry_failed: bool = False,
    progress: bool = False,
    notify: Callable[[str], None] = log.info,
) -> SweepOutcome:
    """Run (or resume) the sweep into `out_dir`; `jobs` local processes, or the Dask scheduler
    at `scheduler`; the points live in `store_dir` (default out_dir/points), which other
    sweeps may share; `retry_failed` runs again the points whose design failed."""
    started = time.perf_counter()
    store = Store(store_dir or out_dir / STORE_DIR)
    _check_folders(out_dir, store, force, jobs)  # before anything is written
    with executor(run_point, jobs, scheduler) as (pool, pool_name), store.locked():
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / SWEEP_MARKER).write_text("written by `codesign sweep`, which resumes here\n")
        weights = _starting_weights(spec, store, notify)
        tasks, rows = _plan(spec, store, out_dir, weights, retry_failed)
        cached = len(spec.points) - len(tasks)
        notify(
            f"{spec.describe()}: {cached} already in {store.root}, {len(tasks)} to run "
            f"({pool_name})"
        )
        counts = {"computed": 0, "cached": cached, "failed": 0, "error": 0}

        def record() -> dict[str, Any]:
            seconds = time.perf_counter() - started
            return _sweep_record(spec, rows, counts, store, pool_name, seconds)

        write_records(out_dir, record())
        with _Bar(len(tasks), progress) as bar, contextlib.closing(pool.completed(tasks)) as ends:
            for task, result in ends:
                index, entry = _keep(store, spec, rows, task, result)
                counts["computed" if result["status"] == "done" else result["status"]] += 1
                bar.line(point_line(index + 1, len(rows), entry, spec.axes), counts)
                write_records(out_dir, record())
        final = record()
        write_records(out_dir, final)
    front = pareto_front(rows, spec.objectives, spec.require)
    return SweepOutcome(spec, out_dir, tuple(rows), counts, front, final["seconds"], pool_name)


def _check_folders(out_dir: Path, store: Store, force: bool, jobs: int) -> None:
    """A sweep's own --out is resumed; any other non-empty folder needs --force. The store
    is a folder of points: inside --out (the default) or apart from it."""
    if jobs < 1:
        raise CodesignError(f"--jobs must be at least 1, got {jobs}")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputDirError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / SWEEP_MARKER).is_file():
        if not force:
            raise OutputDirError(
                f"{out_dir} is not empty and is no sweep's --out (no {SWEEP_MARKER}); choose "
                "another --out, or pass --force to write the sweep's files beside what it holds"
            )
    out = out_dir.resolve()
    if store.root == out or store.root in out.parents:
        raise OutputDirError(
            f"--store {store.root} is or holds --out {out_dir}; give the store a folder of "
            f"its own (default: {out_dir / STORE_DIR})"
        )
    check_store(store.root)


def _starting_weights(
    spec: SweepSpec, store: Store, notify: Callable[[str], None]
) -> dict[int, tuple[Path | None, Any]]:
    """seed -> (the points' starting weights, their identity for the key): the spec's
    weights; else, made once per seed here and shared by every point, a built-in model
    trained, or a model file's initial weights (so every point starts from the same)."""
    seeds = sorted({int(point["seed"]) for point in spec.points})
    if spec.weights is not None:
        return {seed: (spec.weights, file_digest(spec.weights)) for seed in seeds}
    weights: dict[int, tuple[Path | None, Any]] = {}
    for seed in seeds:
        identity = {
            "start": model_identity(spec.model),
            "dataset": dataset_identity(spec.dataset),
            "input_shape": spec.input_shape,
            "seed": seed,
        }
        key = content_key(identity)
        path = store.base_weights(key)
        if not path.is_file():
            _make_start(spec, seed, path, notify)
        weights[seed] = (path, {"start": key})
    return weights


def _make_start(spec: SweepSpec, seed: int, path: Path, notify: Callable[[str], None]) -> None:
    import torch

    from codesign.data import load_dataset
    from codesign.models import BUILTIN_MODELS, load_model, seed_everything, train_builtin

    # one thread, as every point runs: a float sum split over more threads rounds otherwise,
    # and the weights (so every figure) would depend on the machine the coordinator runs on
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if spec.model in BUILTIN_MODELS:
            notify(f"training the dense {spec.model} on {spec.dataset} once (seed {seed})")
            dataset = load_dataset(spec.dataset)
            if spec.input_shape is not None:
                dataset = dataset.reshaped(spec.input_shape)
            model = train_builtin(spec.model, dataset, seed=seed)
        else:
            notify(f"{spec.model}: no weights given; every point starts from its initial ones")
            seed_everything(seed)
            model = load_model(spec.model)
    finally:
        torch.set_num_threads(threads)
    content = io.BytesIO()
    torch.save(model.state_dict(), content)
    write_atomic(path, content.getvalue())


def _plan(
    spec: SweepSpec,
    store: Store,
    out_dir: Path,
    weights: Mapping[int, tuple[Path | None, Any]],
    retry_failed: bool,
) -> tuple[list[PointTask], list[dict[str, Any]]]:
    """The tasks still to run, and a row per point (the stored result where there is one)."""
    identity = {
        "model": model_identity(spec.model),
        "dataset": dataset_identity(spec.dataset),
        "input_shape": spec.input_shape,
    }
    tasks, rows = [], []
    for point in spec.points:
        start, start_identity = weights[int(point["seed"])]
        key = content_key(
            {
                **identity,
                "weights": start_identity,
                "board": board_identity(point["board"]),
                "options": dict(point),
            }
        )
        stored = store.result(key)
        if stored and retry_failed and stored["status"] == "failed":
            stored = None  # started again from nothing
        rows.append(row(spec.axes, spec.stages, key, point, stored))
        if rows[-1]["status"] in {"done", "failed"}:
            continue  # a design's own failure (it does not fit, ...) is not retried
        done = tuple(stored["stages"]) if stored else ()
        tasks.append(
            PointTask(
                key=key,
                folder=store.prepare(key, keep=bool(done)),
                model=spec.model,
                dataset=spec.dataset,
                weights=start,
                input_shape=spec.input_shape,
                options=dict(point),
                stages=tuple(stage for stage in spec.stages if stage not in done),
                figures=dict(stored["figures"]) if stored else {},
                log_dir=(out_dir / LOG_DIR).resolve(),
            )
        )
    return tasks, rows


def _keep(
    store: Store,
    spec: SweepSpec,
    rows: list[dict[str, Any]],
    task: PointTask,
    result: Mapping[str, Any],
) -> tuple[int, dict[str, Any]]:
    """Store the point's result (its stages so far, even when a later one failed) and
    update its row."""
    earlier = store.result(task.key)
    stages = [*(earlier["stages"] if earlier else []), *result["stages_run"]]
    seconds = dict(earlier.get("seconds", {}) if earlier else {})
    seconds.update(result["seconds"])
    stored = {
        "key": task.key,
        "options": dict(task.options),
        "status": result["status"],
        "error": result["error"],
        "failed_stage": result.get("failed_stage"),
        "stages": stages,
        "figures": result["figures"],
        "seconds": seconds,
        "seconds_total": round(sum(seconds.values()), 2),
        "worker": result["worker"],
    }
    store.save(task.key, stored)
    index = next(i for i, entry in enumerate(rows) if entry["key"] == task.key)
    rows[index] = row(spec.axes, spec.stages, task.key, task.options, stored)
    if result["status"] == "error":  # the run's fault, not the design's: shown, and retried
        rows[index].update(status="error", error=result["error"])
    return index, rows[index]


def _sweep_record(
    spec: SweepSpec,
    rows: list[dict[str, Any]],
    counts: Mapping[str, int],
    store: Store,
    executor_name: str,
    seconds: float,
) -> dict[str, Any]:
    front = pareto_front(rows, spec.objectives, spec.require)
    return {
        "schema": SWEEP_SCHEMA,
        "spec": str(spec.path.resolve()),
        "model": spec.model,
        "dataset": spec.dataset,
        "stages": list(spec.stages),
        "search": spec.search,
        "axes": list(spec.axes),
        "objectives": [{"objective": o, "column": c, "goal": g} for o, c, g in front.objectives],
        "require": dict(spec.require),
        "store": str(store.root),
        "executor": executor_name,
        "codesign": code_digest(),
        "counts": dict(counts),
        "seconds": round(seconds, 1),
        "figures": FIGURES,
        "rows": list(rows),
        "front": [entry["key"] for entry in front.points],
        "excluded": [{"key": key, "why": why} for key, why in front.excluded],
    }


class _Bar:
    """One bar over the points to run (a terminal), a line per point in any case."""

    def __init__(self, total: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=total, desc="sweep", unit="point", disable=not (enabled and sys.stderr.isatty())
        )

    def line(self, text: str, counts: Mapping[str, int]) -> None:
        self.bar.write(text, file=sys.stdout)
        self.bar.set_postfix_str(
            f"done {counts['computed']}, cached {counts['cached']}, "
            f"failed {counts['failed'] + counts['error']}"
        )
        self.bar.update(1)
        sys.stdout.flush()

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
