"""`codesign sweep`: every point of a spec through its stages, on local processes or on Dask.

    spec → points (keys) → the store's results → the missing stages, on the executor
         → result.json per point → results.csv + sweep.json → the Pareto front

The coordinator (this process) checks the spec, trains each shared dense model once, sends
the points out, and writes every result as it arrives, so an interrupted sweep keeps what
finished. Workers write the point folders; with Dask the store must be on a filesystem
every worker sees (a shared or network folder), as it is on a LocalCluster.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import io
import logging
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codesign.errors import CodesignError, OutputDirError
from codesign.records.base import dumps, read_json
from codesign.sweep.pareto import Front, pareto_front
from codesign.sweep.point import FIGURES, PointTask, run_point
from codesign.sweep.spec import SweepSpec
from codesign.sweep.store import (
    Store,
    check_store,
    content_key,
    dataset_identity,
    model_identity,
    write_atomic,
)

log = logging.getLogger(__name__)

SWEEP_SCHEMA = "codesign.sweep/1"
SWEEP_FILE, TABLE_FILE, LOG_DIR, STORE_DIR = "sweep.json", "results.csv", "logs", "points"
SWEEP_MARKER = ".codesign-sweep"  # a sweep's --out, resumed without --force
CONNECT_TIMEOUT_S = 10


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
    progress: bool = False,
    notify: Callable[[str], None] = log.info,
) -> SweepOutcome:
    """Run (or resume) the sweep into `out_dir`; `jobs` local processes, or the Dask scheduler
    at `scheduler`; the points live in `store_dir` (default out_dir/points), which other
    sweeps may share."""
    started = time.perf_counter()
    _check_out_dir(out_dir, force)
    store = Store(store_dir or out_dir / STORE_DIR)
    check_store(store.root)
    if jobs < 1:
        raise CodesignError(f"--jobs must be at least 1, got {jobs}")
    with _executor(jobs, scheduler) as (executor, executor_name):
        weights = _dense_weights(spec, store, notify)
        tasks, rows = _plan(spec, store, out_dir, weights)
        cached = len(spec.points) - len(tasks)
        notify(
            f"{spec.describe()}: {cached} already in {store.root}, {len(tasks)} to run "
            f"({executor_name})"
        )
        counts = {"computed": 0, "cached": cached, "failed": 0, "error": 0}
        with _Bar(len(tasks), progress) as bar:
            for task, result in executor.completed(tasks):
                index, row = _record(store, spec, rows, task, result)
                counts["computed" if result["status"] == "done" else result["status"]] += 1
                bar.line(_point_line(index + 1, len(rows), row, result, spec.axes), counts)
                _write_table(out_dir, spec, rows)
    front = pareto_front(rows, spec.objectives, spec.require)
    outcome = SweepOutcome(
        spec, out_dir, tuple(rows), counts, front, time.perf_counter() - started, executor_name
    )
    _write_table(out_dir, spec, rows)
    write_atomic(out_dir / SWEEP_FILE, dumps(_sweep_record(outcome, store)))
    return outcome


def _check_out_dir(out_dir: Path, force: bool) -> None:
    """A sweep's own folder is resumed; any other non-empty folder needs --force."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputDirError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / SWEEP_MARKER).is_file():
        if not force:
            raise OutputDirError(
                f"{out_dir} is not empty and is no sweep's --out (no {SWEEP_MARKER}); choose "
                "another --out, or pass --force to write the sweep's files beside what it holds"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SWEEP_MARKER).write_text("written by `codesign sweep`, which resumes here\n")


class _InlineExecutor:
    """--jobs 1: the points run in this process, one after the other."""

    def completed(self, tasks: list[PointTask]) -> Iterator[tuple[PointTask, dict[str, Any]]]:
        for task in tasks:
            yield task, run_point(task)


class _PoolExecutor:
    """Local processes or a Dask cluster (concurrent.futures executors): every point is sent
    at once and comes back when it is done."""

    def __init__(self, executor: concurrent.futures.Executor) -> None:
        self.executor = executor

    def completed(self, tasks: list[PointTask]) -> Iterator[tuple[PointTask, dict[str, Any]]]:
        futures = {self.executor.submit(run_point, task): task for task in tasks}
        try:
            for future in concurrent.futures.as_completed(futures):
                yield futures[future], _result_of(future, futures[future])
        finally:
            for pending in futures:
                pending.cancel()


_Executor = _InlineExecutor | _PoolExecutor


@contextlib.contextmanager
def _executor(jobs: int, scheduler: str | None) -> Iterator[tuple[_Executor, str]]:
    if scheduler is not None:
        with _dask_client(scheduler) as client:
            workers = len(client.scheduler_info().get("workers", {}))
            pool = _PoolExecutor(client.get_executor(pure=False))
            yield pool, f"Dask at {scheduler}, {workers} workers"
        return
    if jobs == 1:
        yield _InlineExecutor(), "this process"
        return
    # spawn: a forked copy of a process that has run torch may hang in its thread pools
    context = multiprocessing.get_context("spawn")
    processes = concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context)
    try:
        yield _PoolExecutor(processes), f"{jobs} local processes"
    except BaseException:  # Ctrl-C or an error: the points still running are dropped
        for child in multiprocessing.active_children():
            child.terminate()
        processes.shutdown(wait=True, cancel_futures=True)
        raise
    processes.shutdown(wait=True)


@contextlib.contextmanager
def _dask_client(scheduler: str) -> Iterator[Any]:
    try:
        import distributed
    except ImportError as error:  # a dependency; only a broken install lacks it
        raise CodesignError(f"--scheduler needs Dask distributed: {error}") from error
    try:
        dask: Any = distributed  # untyped
        client = dask.Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError, ValueError) as error:
        raise CodesignError(
            f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT_S} s "
            f"({type(error).__name__}: {error}); start one with `dask scheduler` and "
            "`dask worker ADDRESS`, or leave out --scheduler to run on local processes"
        ) from error
    try:
        yield client
    finally:
        client.close()


def _dense_weights(
    spec: SweepSpec, store: Store, notify: Callable[[str], None]
) -> dict[int, tuple[Path | None, Any]]:
    """seed -> (starting weights, their identity for the key). A built-in model without
    --weights is trained once per seed, here, and shared by every point."""
    from codesign.models import BUILTIN_MODELS

    seeds = sorted({int(point["seed"]) for point in spec.points})
    if spec.weights is not None:
        return {seed: (spec.weights, _digest(spec.weights)) for seed in seeds}
    if spec.model not in BUILTIN_MODELS:  # a model file is taken with its own initial weights
        return {seed: (None, None) for seed in seeds}
    weights: dict[int, tuple[Path | None, Any]] = {}
    for seed in seeds:
        key = content_key(
            {
                "dense": spec.model,
                "dataset": dataset_identity(spec.dataset),
                "input_shape": spec.input_shape,
                "seed": seed,
            }
        )
        path = store.base_weights(key)
        if not path.is_file():
            notify(f"training the dense {spec.model} on {spec.dataset} once (seed {seed})")
            _train_dense(spec, seed, path)
        weights[seed] = (path, {"dense": key})
    return weights


def _train_dense(spec: SweepSpec, seed: int, path: Path) -> None:
    import torch

    from codesign.data import load_dataset
    from codesign.models import train_builtin

    dataset = load_dataset(spec.dataset)
    if spec.input_shape is not None:
        dataset = dataset.reshaped(spec.input_shape)
    # one thread, as every point runs: a float sum split over more threads rounds otherwise,
    # and the weights (so every figure) would depend on the machine the coordinator runs on
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = train_builtin(spec.model, dataset, seed=seed)
    finally:
        torch.set_num_threads(threads)
    content = io.BytesIO()
    torch.save(model.state_dict(), content)
    write_atomic(path, content.getvalue())


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _plan(
    spec: SweepSpec, store: Store, out_dir: Path, weights: Mapping[int, tuple[Path | None, Any]]
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
        key = content_key({**identity, "weights": start_identity, "options": dict(point)})
        stored = store.result(key)
        done = tuple(stored["stages"]) if stored else ()
        rows.append(_row(spec, key, point, stored))
        if stored and stored["status"] == "failed":
            continue  # the design's own failure (it does not fit, ...): not retried
        missing = tuple(stage for stage in spec.stages if stage not in done)
        if not missing:
            continue
        tasks.append(
            PointTask(
                key=key,
                folder=store.prepare(key, keep=bool(done)),
                model=spec.model,
                dataset=spec.dataset,
                weights=start,
                input_shape=spec.input_shape,
                options=dict(point),
                stages=missing,
                figures=dict(stored["figures"]) if stored else {},
                log_dir=(out_dir / LOG_DIR).resolve(),
            )
        )
    return tasks, rows


def _row(
    spec: SweepSpec, key: str, point: Mapping[str, Any], stored: Mapping[str, Any] | None
) -> dict[str, Any]:
    row: dict[str, Any] = {"key": key}
    row.update({axis: point[axis] for axis in spec.axes})
    if stored is None:
        row.update(status="pending", error=None, stages="")
        return row
    row.update(status=stored["status"], error=stored.get("error"))
    row["stages"] = "+".join(stored["stages"])
    row.update({name: stored["figures"].get(name) for name in FIGURES})
    row["seconds"] = stored.get("seconds_total")
    row["worker"] = stored.get("worker")
    return row


def _result_of(future: concurrent.futures.Future[Any], task: PointTask) -> dict[str, Any]:
    """The point's result; a worker that died (or a task Dask gave up on) is an `error`."""
    try:
        return dict(future.result())
    except concurrent.futures.CancelledError:
        raise
    except Exception as error:
        return {
            "key": task.key,
            "status": "error",
            "error": f"the worker failed: {type(error).__name__}: {error}",
            "stages_run": [],
            "figures": dict(task.figures),
            "seconds": {},
            "worker": None,
        }


def _record(
    store: Store,
    spec: SweepSpec,
    rows: list[dict[str, Any]],
    task: PointTask,
    result: Mapping[str, Any],
) -> tuple[int, dict[str, Any]]:
    """Keep the point's result (unless the run itself failed) and update its row."""
    earlier = store.result(task.key)
    stages = [*(earlier["stages"] if earlier else []), *result["stages_run"]]
    seconds = dict(earlier.get("seconds", {}) if earlier else {})
    seconds.update(result["seconds"])
    stored = {
        "key": task.key,
        "options": dict(task.options),
        "status": result["status"],
        "error": result["error"],
        "stages": stages,
        "figures": result["figures"],
        "seconds": seconds,
        "seconds_total": round(sum(seconds.values()), 2),
        "worker": result["worker"],
    }
    if result["status"] != "error":
        store.save(task.key, stored)
    index = next(i for i, row in enumerate(rows) if row["key"] == task.key)
    rows[index] = _row(spec, task.key, task.options, stored)
    return index, rows[index]


def point_name(row: Mapping[str, Any], axes: Sequence[str]) -> str:
    """'KEY8 sparsity=0.5 block=1x4': a point as a person reads it."""
    return " ".join([row["key"][:8], *(f"{axis}={row.get(axis)}" for axis in axes)])


def _point_line(
    number: int, total: int, row: Mapping[str, Any], result: Mapping[str, Any], axes: Sequence[str]
) -> str:
    head = f"point {number}/{total} {point_name(row, axes)}: {result['status']}"
    if result["status"] != "done":
        return f"{head}: {result['error']}"
    shown = [
        f"{name} {_text(row[name])}"
        for name in ("top1_fixed[D]", "ii[E]", "dsp[E]", "csim_match[C]", "ii[R]")
        if row.get(name) is not None
    ]
    return f"{head} in {row.get('seconds') or 0:.0f} s; " + ", ".join(shown)


def table_columns(spec_axes: tuple[str, ...]) -> list[str]:
    return ["key", *spec_axes, "status", "error", "stages", *FIGURES, "seconds", "worker"]


def _write_table(out_dir: Path, spec: SweepSpec, rows: list[dict[str, Any]]) -> None:
    """results.csv: a row per point, in the spec's order (pending points have no figures)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, table_columns(spec.axes), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    write_atomic(out_dir / TABLE_FILE, text.getvalue().encode())


def _sweep_record(outcome: SweepOutcome, store: Store) -> dict[str, Any]:
    from codesign.sweep.store import code_digest

    spec, front = outcome.spec, outcome.front
    return {
        "schema": SWEEP_SCHEMA,
        "spec": str(spec.path.resolve()),
        "model": spec.model,
        "dataset": spec.dataset,
        "stages": list(spec.stages),
        "search": spec.search,
        "axes": list(spec.axes),
        "objectives": [
            {"objective": o, "column": c, "goal": s} for o, c, s in front.objectives
        ],
        "require": dict(spec.require),
        "store": str(store.root),
        "executor": outcome.executor,
        "codesign": code_digest(),
        "counts": dict(outcome.counts),
        "seconds": round(outcome.seconds, 1),
        "figures": FIGURES,
        "rows": list(outcome.rows),
        "front": [row["key"] for row in front.points],
        "excluded": [{"key": key, "why": why} for key, why in front.excluded],
    }


def read_sweep(out_dir: Path) -> dict[str, Any]:
    """A finished sweep's sweep.json, checked, or a clear error."""
    path = Path(out_dir) / SWEEP_FILE
    if not path.is_file():
        raise CodesignError(f"{out_dir}: no {SWEEP_FILE}; is it the --out of `codesign sweep`?")
    data = read_json(path)
    if data.get("schema") != SWEEP_SCHEMA:
        raise CodesignError(f"{path}: schema {data.get('schema')!r}, expected {SWEEP_SCHEMA!r}")
    for key, kind in (("rows", list), ("axes", list), ("objectives", list), ("front", list)):
        if not isinstance(data.get(key), kind):
            raise CodesignError(f"{path}: key {key!r} must be a {kind.__name__}")
    return data


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


def front_heading(front: Front, points: int) -> str:
    """'Pareto front (K of N points; ...objectives; within ...bounds):'."""
    objectives = ", ".join(f"{o} {c} ({g})" for o, c, g in front.objectives)
    bounds = ", ".join(
        f"{objective} {'>=' if objective == 'accuracy' else '<='} {bound:g}"
        for objective, bound in front.require.items()
    )
    within = f"; within {bounds}" if bounds else ""
    return (
        f"Pareto front ({len(front.points)} of {points} points, {len(front.candidates)} "
        f"candidates; {objectives}{within}):"
    )


def front_table(axes: list[str] | tuple[str, ...], front: Front) -> str:
    """The front as a text table: the axes, then the objectives' columns."""
    columns = [*axes, *(column for _, column, _ in front.objectives)]
    lines = ["  ".join(f"{c:>14}" for c in columns)]
    for row in front.points:
        lines.append("  ".join(f"{_text(row.get(c)):>14}" for c in columns))
    return "\n".join(lines)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "n/a" if value is None else str(value)

