"""Read a project's report.json, csim.json and rtlsim.json, and compare projects in a table.

Every figure printed comes from one of those files, unchanged; the column says which.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codesign.errors import CodesignError

COMBINED_SCHEMA = "codesign.comparison/1"


@dataclass(frozen=True)
class Project:
    path: Path
    report: dict[str, Any]
    csim: dict[str, Any] | None
    rtlsim: dict[str, Any] | None

    @property
    def label(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CodesignError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise CodesignError(f"{path}: expected a JSON object")
    return data


def load_project(path: Path) -> Project:
    report = _read_json(path / "report.json")
    if report is None:
        raise CodesignError(f"{path}: no report.json; is it the --out of `codesign generate`?")
    return Project(path, report, _read_json(path / "csim.json"), _read_json(path / "rtlsim.json"))


def _by_name(entries: list[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in entries or []}


def rows(projects: list[Project]) -> list[dict[str, Any]]:
    """One row per layer and one per network: estimate, C-sim and RTL-sim figures side by side."""
    table: list[dict[str, Any]] = []
    for project in projects:
        csim_layers = _by_name(project.csim["layers"] if project.csim else None)
        rtl_layers = _by_name(project.rtlsim["layers"] if project.rtlsim else None)
        for layer in project.report["layers"]:
            table.append(
                _row(project, layer, csim_layers.get(layer["name"]), rtl_layers.get(layer["name"]))
            )
        totals = dict(project.report["totals"], name="network", shape=None, block=None)
        table.append(
            _row(
                project, totals, project.csim, project.rtlsim["network"] if project.rtlsim else None
            )
        )
    return table


def _row(
    project: Project,
    layer: dict[str, Any],
    csim: dict[str, Any] | None,
    rtl: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "design": project.label,
        "board": project.report["board"],
        "layer": layer["name"],
        "shape": "x".join(map(str, layer["shape"])) if layer.get("shape") else "",
        "block": "x".join(map(str, layer["block"])) if layer.get("block") else "",
        "sparsity": layer.get("sparsity"),
        "reuse_factor": layer.get("reuse_factor"),
        "multipliers": layer.get("multipliers"),
        "est_dsp": layer.get("est_dsp"),
        "est_cycles": layer.get("est_cycles"),
        "sim_cycles": rtl.get("sim_cycles") if rtl else None,
        "est_ii": layer.get("est_ii"),
        "sim_ii": rtl.get("sim_ii") if rtl else None,
        "ideal_ii": layer.get("ideal_ii"),
        "efficiency": rtl.get("efficiency") if rtl else None,
        "csim_match": csim.get("outputs_match") if csim else None,
        "rtl_match": rtl.get("outputs_match") if rtl else None,
    }


COLUMNS = [
    ("design", "design", "report"),
    ("board", "board", "report"),
    ("layer", "layer", "report"),
    ("shape", "shape", "report"),
    ("block", "block", "report"),
    ("sparsity", "sparsity", "report"),
    ("reuse_factor", "RF", "report"),
    ("multipliers", "mults", "estimate"),
    ("est_dsp", "DSP", "estimate"),
    ("est_cycles", "cycles est", "estimate"),
    ("sim_cycles", "cycles sim", "RTL-sim"),
    ("est_ii", "II est", "estimate"),
    ("sim_ii", "II sim", "RTL-sim"),
    ("ideal_ii", "II ideal", "estimate"),
    ("efficiency", "eff", "RTL-sim"),
    ("csim_match", "csim", "C-sim"),
    ("rtl_match", "rtl", "RTL-sim"),
]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "ok" if value else "MISMATCH"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def format_table(table: list[dict[str, Any]]) -> str:
    headers = [title for _, title, _ in COLUMNS]
    cells = [[_cell(row[key]) for key, _, _ in COLUMNS] for row in table]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def markdown(table: list[dict[str, Any]]) -> str:
    headers = [f"{title} ({source})" for _, title, source in COLUMNS]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in table:
        lines.append("| " + " | ".join(_cell(row[key]) for key, _, _ in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def to_csv(table: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[key for key, _, _ in COLUMNS])
    writer.writeheader()
    for row in table:
        writer.writerow({key: row[key] for key, _, _ in COLUMNS})
    return buffer.getvalue()


def write_comparison(projects: list[Project], out_dir: Path) -> list[Path]:
    table = rows(projects)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = {
        "report.md": markdown(table),
        "report.csv": to_csv(table),
        "report.json": json.dumps(
            {
                "schema": COMBINED_SCHEMA,
                "projects": [str(p.path) for p in projects],
                "rows": table,
            },
            indent=2,
        )
        + "\n",
    }
    paths = []
    for name, text in outputs.items():
        path = out_dir / name
        path.write_text(text)
        paths.append(path)
    return paths
