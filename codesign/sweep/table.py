"""A sweep's records: a row per point, `results.csv`, `sweep.json`, and their text forms.

Both files are rewritten (atomically) each time a point ends, so an interrupted sweep leaves
a table of what finished; points not yet run are `pending`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from codesign.errors import CodesignError
from codesign.records.base import dumps, read_json
from codesign.sweep.pareto import Front, bound_text
from codesign.sweep.point import FIGURES
from codesign.sweep.store import write_atomic

SWEEP_SCHEMA = "codesign.sweep/1"
SWEEP_FILE, TABLE_FILE = "sweep.json", "results.csv"


def row(
    axes: Sequence[str],
    stages: Sequence[str],
    key: str,
    point: Mapping[str, Any],
    stored: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The point as this sweep sees it: `done` once every stage it asks for has run, `failed`
    only if one of those stages failed, else `pending` (or `error`, to be retried)."""
    entry: dict[str, Any] = {"key": key, **{axis: point[axis] for axis in axes}}
    if stored is None:
        entry.update(status="pending", error=None, stages="")
        return entry
    ran = set(stored["stages"])
    if all(stage in ran for stage in stages):
        status, error = "done", None
    elif stored["status"] in {"failed", "error"} and (
        stored["status"] == "error" or stored.get("failed_stage") in stages
    ):
        status, error = stored["status"], stored.get("error")
    else:
        status, error = "pending", None
    entry.update(status=status, error=error, stages="+".join(stored["stages"]))
    entry.update({name: stored["figures"].get(name) for name in FIGURES})
    entry["seconds"] = stored.get("seconds_total")
    entry["worker"] = stored.get("worker")
    return entry


def point_name(entry: Mapping[str, Any], axes: Sequence[str]) -> str:
    """'KEY8 sparsity=0.5 block=1x4': a point as a person reads it."""
    return " ".join([entry["key"][:8], *(f"{axis}={entry.get(axis)}" for axis in axes)])


def point_line(number: int, total: int, entry: Mapping[str, Any], axes: Sequence[str]) -> str:
    head = f"point {number}/{total} {point_name(entry, axes)}: {entry['status']}"
    if entry["status"] != "done":
        return f"{head}: {entry['error']}"
    shown = [
        f"{name} {text(entry[name])}"
        for name in ("top1_fixed[D]", "ii[E]", "dsp[E]", "csim_match[C]", "ii[R]")
        if entry.get(name) is not None
    ]
    return f"{head} in {entry.get('seconds') or 0:.0f} s; " + ", ".join(shown)


def columns(axes: Sequence[str]) -> list[str]:
    return ["key", *axes, "status", "error", "stages", *FIGURES, "seconds", "worker"]


def write_records(out_dir: Path, record: Mapping[str, Any]) -> None:
    """results.csv (a row per point, in the spec's order) and sweep.json."""
    stream = io.StringIO()
    writer = csv.DictWriter(stream, columns(record["axes"]), extrasaction="ignore")
    writer.writeheader()
    for entry in record["rows"]:
        writer.writerow({k: ("" if v is None else v) for k, v in entry.items()})
    write_atomic(out_dir / TABLE_FILE, stream.getvalue().encode())
    write_atomic(out_dir / SWEEP_FILE, dumps(record))


def read_sweep(out_dir: Path) -> dict[str, Any]:
    """A sweep's sweep.json, checked, or a clear error."""
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


def front_heading(front: Front, points: int) -> str:
    """'Pareto front (K of N points, C candidates; objectives; within bounds):'."""
    objectives = ", ".join(f"{o} {c} ({g})" for o, c, g in front.objectives)
    bounds = ", ".join(bound_text(o, b) for o, b in front.require.items())
    within = f"; within {bounds}" if bounds else ""
    return (
        f"Pareto front ({len(front.points)} of {points} points, {len(front.candidates)} "
        f"candidates; {objectives}{within}):"
    )


def front_table(axes: Sequence[str], front: Front) -> str:
    """The front as a text table: the axes, then the objectives' columns."""
    shown = [*axes, *(column for _, column, _ in front.objectives)]
    lines = ["  ".join(f"{c:>14}" for c in shown)]
    for entry in front.points:
        lines.append("  ".join(f"{text(entry.get(c)):>14}" for c in shown))
    return "\n".join(lines)


def text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "n/a" if value is None else str(value)
