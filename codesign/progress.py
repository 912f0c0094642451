"""Progress of the steps that take more than a few seconds, on a terminal and in a log.

On a terminal a step shows a tqdm bar (stderr, erased when done). When stderr is not a
terminal (output to a log file or a pipe) a bar would print nothing useful, so the step writes
plain lines to stdout instead: one when it starts, one at most every PLAIN_EVERY seconds, one
when it ends with its time. Errors stay one line on stderr. The library is silent unless a
caller asks: `Progress(..., enabled=True)` for counted steps (training), and the
"codesign.progress" logger for single long steps (Verilator builds), which the CLI
turns on (`enable_step_lines`).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from types import TracebackType

PLAIN_EVERY = 10.0  # seconds between plain progress lines
STEPS = logging.getLogger("codesign.progress")


class _StdoutLines(logging.Handler):
    """Each record as a plain line on the stdout of the moment (not the one at set-up, which
    a caller such as a test harness may have replaced and closed since)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), flush=True)
        except Exception:  # a broken stdout must not break the step nor print a traceback
            pass


def enable_step_lines() -> Callable[[], None]:
    """Print the long steps' start and end lines (the CLI's choice) to stdout, unprefixed;
    returns what undoes it (the CLI calls it when the command ends). Calling it again while
    it is on adds nothing (and its undo does nothing)."""
    if any(isinstance(handler, _StdoutLines) for handler in STEPS.handlers):
        return lambda: None
    handler, level, propagate = _StdoutLines(), STEPS.level, STEPS.propagate
    STEPS.addHandler(handler)
    STEPS.setLevel(logging.INFO)
    STEPS.propagate = False

    def restore() -> None:
        STEPS.removeHandler(handler)
        STEPS.setLevel(level)
        STEPS.propagate = propagate

    return restore


class Progress:
    """`total` units (`unit`, plural: "epochs") of a step; `update()` after each."""

    def __init__(self, total: int, description: str, unit: str, enabled: bool) -> None:
        from tqdm import tqdm

        self.total, self.description, self.unit = total, description, unit
        self.terminal = enabled and sys.stderr.isatty()
        self.plain = enabled and not self.terminal and total > 0
        self.bar = tqdm(
            total=total, desc=description, unit=unit, disable=not self.terminal, leave=False
        )
        self.done = 0
        self.started = self.last_line = time.perf_counter()
        if self.plain:
            print(f"{description}: {total} {unit}", flush=True)

    def update(self, count: int = 1) -> None:
        self.done += count
        self.bar.update(count)
        now = time.perf_counter()
        if self.plain and now - self.last_line >= PLAIN_EVERY and self.done < self.total:
            self.last_line = now
            print(
                f"{self.description}: {self.done}/{self.total} {self.unit} "
                f"({self.done / self.total:.0%}, {now - self.started:.0f} s)",
                flush=True,
            )

    def close(self) -> None:
        self.bar.close()
        if self.plain:
            seconds = time.perf_counter() - self.started
            line = f"{self.description}: done, {self.done} {self.unit} in {seconds:.0f} s"
            print(line, flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.bar.close()
