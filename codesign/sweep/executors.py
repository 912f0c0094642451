"""Where a sweep's points run: in this process, on local processes, or on a Dask cluster.

Each executor takes the tasks and yields (task, result) as each point ends, so the
coordinator keeps every result the moment it exists.

A local worker process that dies (out of memory, a simulator's segfault) breaks the whole
process pool, and every point in it with it. The points that were in a broken pool go to a
fresh one; a point that was in two is run alone in a pool of its own, where a death is its
own: only that point is an `error`, the others finish.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from codesign.errors import CodesignError

CONNECT_TIMEOUT_S = 10
Runner = Callable[[Any], dict[str, Any]]


Ends = Generator[tuple[Any, dict[str, Any]], None, None]  # (task, result) as each point ends


class Executor(Protocol):
    def completed(self, tasks: list[Any]) -> Ends: ...


def failure(task: Any, error: BaseException | str) -> dict[str, Any]:
    """The result of a point whose run failed outside the point's own code."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return {
        "key": task.key,
        "status": "error",
        "error": f"the worker failed: {text}",
        "stages_run": [],
        "failed_stage": None,
        "figures": dict(task.figures),
        "seconds": {},
        "worker": None,
    }


class InlineExecutor:
    """--jobs 1: the points run in this process, one after the other."""

    def __init__(self, run: Runner) -> None:
        self.run = run

    def completed(self, tasks: list[Any]) -> Ends:
        for task in tasks:
            yield task, self.run(task)


class ProcessExecutor:
    """--jobs N: N spawned processes (a forked copy of a process that has run torch may hang
    in its thread pools)."""

    def __init__(self, run: Runner, jobs: int) -> None:
        self.run, self.jobs = run, jobs
        self.context = multiprocessing.get_context("spawn")

    def completed(self, tasks: list[Any]) -> Ends:
        breaks: Counter[str] = Counter()
        queue = list(tasks)
        while queue:
            shared = [task for task in queue if breaks[task.key] < 2]
            alone = [task for task in queue if breaks[task.key] >= 2]
            queue = []
            groups = [(shared, self.jobs)] + [([task], 1) for task in alone]
            for group, workers in groups:
                if not group:
                    continue
                for task, result in self._pool(group, workers):
                    if result is not None:
                        yield task, result
                    elif workers == 1 and breaks[task.key] >= 2:
                        yield task, failure(task, "its process died (out of memory?)")
                    else:
                        breaks[task.key] += 1
                        queue.append(task)

    def _pool(self, tasks: list[Any], workers: int) -> Iterator[tuple[Any, dict[str, Any] | None]]:
        """Each task with its result, or None when the pool broke under it."""
        before = set(multiprocessing.active_children())
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=self.context)
        futures = {pool.submit(self.run, task): task for task in tasks}
        try:
            for future in concurrent.futures.as_completed(futures):
                task = futures[future]
                try:
                    yield task, dict(future.result())
                except BrokenProcessPool:
                    yield task, None
                except Exception as error:
                    yield task, failure(task, error)
        except BaseException:  # Ctrl-C or the coordinator's error: drop the running points
            for child in set(multiprocessing.active_children()) - before:
                child.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


class DaskExecutor:
    """--scheduler: every point a task on the cluster (the store on a shared filesystem)."""

    def __init__(self, run: Runner, client: Any) -> None:
        self.run, self.client = run, client

    def completed(self, tasks: list[Any]) -> Ends:
        futures = {self.client.submit(self.run, task, pure=False): task for task in tasks}
        distributed: Any = __import__("distributed")
        try:
            for future in distributed.as_completed(list(futures)):
                task = futures[future]
                try:
                    yield task, dict(future.result())
                except Exception as error:  # a worker Dask gave up on (KilledWorker, ...)
                    yield task, failure(task, error)
        finally:  # queued points are dropped; a point already running ends on its worker
            self.client.cancel(list(futures))


@contextlib.contextmanager
def executor(run: Runner, jobs: int, scheduler: str | None) -> Iterator[tuple[Executor, str]]:
    """The executor for the command line's --jobs / --scheduler, and its description."""
    if scheduler is not None:
        if jobs != 1:
            raise CodesignError("give --jobs (local processes) or --scheduler (Dask), not both")
        with _dask_client(scheduler) as client:
            threads = client.nthreads()
            many = {worker: n for worker, n in threads.items() if n > 1}
            if many:
                raise CodesignError(
                    f"Dask workers {', '.join(sorted(many))} run {max(many.values())} threads; "
                    "a point sets process-wide state (torch's threads, its log), so start "
                    "workers with --nthreads 1 (and --nworkers N for N points at once)"
                )
            yield DaskExecutor(run, client), f"Dask at {scheduler}, {len(threads)} workers"
        return
    if jobs == 1:
        yield InlineExecutor(run), "this process"
    else:
        yield ProcessExecutor(run, jobs), f"{jobs} local processes"


@contextlib.contextmanager
def _dask_client(scheduler: str) -> Iterator[Any]:
    try:
        import distributed
    except ImportError as error:  # a dependency; only a broken install lacks it
        raise CodesignError(f"--scheduler needs Dask distributed: {error}") from error
    dask: Any = distributed  # untyped
    try:
        client = dask.Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError, ValueError) as error:
        raise CodesignError(
            f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT_S} s "
            f"({type(error).__name__}: {error}); start one with `dask scheduler` and "
            "`dask worker ADDRESS --nthreads 1`, or leave out --scheduler to run locally"
        ) from error
    try:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except (TimeoutError, OSError) as error:
            raise CodesignError(
                f"the Dask scheduler at {scheduler} has no worker after {CONNECT_TIMEOUT_S} s; "
                "start some with `dask worker ADDRESS --nthreads 1`"
            ) from error
        yield client
    finally:
        client.close()
