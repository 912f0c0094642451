"""`codesign report --sweep DIR`: a sweep's table (Markdown, CSV) and its Pareto front plotted.

Every plotted point is a row of the table; the front is recomputed from the rows with the
objectives the sweep recorded (codesign.sweep.pareto), so the plot, the table and the printed
front cannot disagree.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from codesign.sweep.pareto import Front, bound_text, pareto_front
from codesign.sweep.point import FIGURES

TABLE, MARKDOWN, PLOT = "sweep.csv", "sweep.md", "sweep_front.png"


def sweep_front(data: Mapping[str, Any]) -> Front:
    """The front of a sweep.json's rows over its objectives."""
    objectives = [entry["objective"] for entry in data["objectives"]]
    return pareto_front(data["rows"], objectives, data.get("require") or {})


def _columns(data: Mapping[str, Any]) -> list[str]:
    present = [name for name in FIGURES if any(r.get(name) is not None for r in data["rows"])]
    return ["key", *data["axes"], "status", *present, "front"]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def to_csv(data: Mapping[str, Any], front: Front) -> str:
    on_front = {row["key"] for row in front.points}
    text = io.StringIO()
    writer = csv.writer(text)
    columns = _columns(data)
    writer.writerow(columns)
    for row in data["rows"]:
        values = dict(row, front=row["key"] in on_front)
        writer.writerow(["" if values.get(c) is None else values.get(c) for c in columns])
    return text.getvalue()


def to_markdown(data: Mapping[str, Any], front: Front) -> str:
    on_front = {row["key"] for row in front.points}
    columns = _columns(data)
    objectives = ", ".join(f"{o} ({c}, {g})" for o, c, g in front.objectives)
    if front.require:
        bounds = ", ".join(bound_text(o, b) for o, b in front.require.items())
        objectives += f", among the points within {bounds}"
    lines = [
        f"# Sweep of {data['model']} on {data['dataset']}",
        "",
        f"{len(data['rows'])} points, stages {', '.join(data['stages'])}; "
        f"{len(front.points)} on the Pareto front over {objectives}. "
        "Column tags: [D] design (report.json; the fixed-point top-1 is the NumPy "
        "reference's), [E] estimate, [C] C simulation, [R] RTL simulation, [Y] Yosys.",
        "",
        "| " + " | ".join(c.replace("|", "/") for c in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in data["rows"]:
        values = dict(row, key=row["key"][:8], front="yes" if row["key"] in on_front else "")
        lines.append("| " + " | ".join(_cell(values.get(c)) for c in columns) + " |")
    for key, why in front.excluded:
        lines.append(f"\n- {key[:8]} is not a candidate: {why}")
    return "\n".join(lines) + "\n"


def plot_front(data: Mapping[str, Any], front: Front, path: Path) -> Path:
    """The first objective against each other one; the front ringed in red."""
    from matplotlib.figure import Figure  # no pyplot: a notebook's backend stays as it is

    (first, first_column, _), *others = front.objectives
    figure = Figure(figsize=(5 * len(others), 4.2))
    axes = figure.subplots(1, len(others), squeeze=False)[0]
    candidates, points = front.candidates, front.points
    chosen = {row["key"] for row in candidates}
    for axis, (objective, column, goal) in zip(axes, others, strict=True):
        outside = [
            row
            for row in data["rows"]
            if row["key"] not in chosen
            and row.get("status") == "done"
            and row.get(column) is not None
            and row.get(first_column) is not None
        ]
        if outside:
            _scatter(axis, outside, column, first_column, "not a candidate", "o", "lightgrey")
        _scatter(axis, candidates, column, first_column, "design points", "o", "tab:blue")
        _scatter(axis, points, column, first_column, "Pareto front", "o", "none", ring=True)
        better = "lower" if goal == "min" else "higher"
        axis.set_xlabel(f"{objective}: {column} ({better} is better)")
        axis.set_ylabel(f"{first}: {first_column}")
        if objective in {"interval", "latency", "dsp", "alms"} and _spread(candidates, column):
            axis.set_xscale("log")
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    title = f"{data['model']}: {len(data['rows'])} points, {len(points)} on the front"
    if front.require:
        title += f" of the {len(candidates)} within " + ", ".join(
            bound_text(o, b) for o, b in front.require.items()
        )
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def _scatter(
    axis: Any,
    rows: Sequence[Mapping[str, Any]],
    x: str,
    y: str,
    label: str,
    marker: str,
    colour: str,
    ring: bool = False,
) -> None:
    xs, ys = [float(r[x]) for r in rows], [float(r[y]) for r in rows]
    if ring:
        axis.scatter(xs, ys, s=160, facecolors="none", edgecolors="red", label=label)
    else:
        axis.scatter(xs, ys, marker=marker, color=colour, label=label)


def _spread(rows: Sequence[Mapping[str, Any]], column: str) -> bool:
    values = [float(r[column]) for r in rows if r.get(column) is not None]
    return bool(values) and min(values) > 0 and max(values) / min(values) > 20


def write_sweep_report(data: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """sweep.csv, sweep.md and sweep_front.png under `out_dir`."""
    front = sweep_front(data)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in ((TABLE, to_csv(data, front)), (MARKDOWN, to_markdown(data, front))):
        (out_dir / name).write_text(text)
        paths.append(out_dir / name)
    if front.candidates and len(front.objectives) > 1:
        paths.append(plot_front(data, front, out_dir / PLOT))
    return paths
