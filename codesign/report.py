"""Compare projects: per layer and in total, every figure with the file (and so the source) it
came from.

A project folder holds report.json (`codesign generate`: estimates), and when they were run
csim.json (g++ C simulation), rtlsim.json (Verilator), synth.json (`codesign synth`: Yosys,
a Cyclone V proxy), hls4ml_baseline.json (`codesign
baseline`: hls4ml's dense Quartus C simulation) and i++ `*.prj/reports/` folders (the Intel
flow, read by codesign.vendor). Figures are copied unchanged; the only derived figure is the
simulated latency in µs, `sim_cycles / clock_mhz`. What a project lacks is None, printed `n/a`:
nothing is invented (hls4ml gives no cycle count without the Intel tools, so none is shown).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codesign.errors import CodesignError
from codesign.records.base import read_json
from codesign.records.csim import FILE as CSIM_FILE
from codesign.records.csim import CsimRecord
from codesign.records.report import FILE as REPORT_FILE
from codesign.records.report import Report
from codesign.records.rtlsim import FILE as RTLSIM_FILE
from codesign.records.rtlsim import RtlsimRecord
from codesign.records.synth import FILE as SYNTH_FILE
from codesign.records.synth import SynthRecord
from codesign.vendor import project_vendor_reports

COMBINED_SCHEMA = "codesign.comparison/2"
HLS4ML_RECORD = "hls4ml_baseline.json"  # written by `codesign baseline`

# where a figure comes from: tag in the terminal table, words in Markdown and JSON
SOURCES = {
    "design": ("D", "report.json: design"),
    "estimate": ("E", "estimate: report.json"),
    "C-sim": ("C", "C-sim: csim.json"),
    "RTL-sim": ("R", "RTL-sim: rtlsim.json"),
    "hls4ml": ("H", "hls4ml baseline: hls4ml_baseline.json"),
    "vendor": ("V", "vendor: i++ reports of our HLS project"),
    "yosys": ("Y", "Yosys: synth.json (Cyclone V proxy, per engine)"),
    "vendor-hls4ml": ("W", "vendor: i++ reports of the hls4ml project"),
}


@dataclass(frozen=True)
class Project:
    path: Path
    report: dict[str, Any]
    csim: dict[str, Any] | None
    rtlsim: dict[str, Any] | None
    hls4ml: dict[str, Any] | None = None
    vendor: dict[str, dict[str, Any]] = field(default_factory=dict)
    synth: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"


def _checked(path: Path, record: Any) -> dict[str, Any] | None:
    """The JSON object of a record file, checked by its record type (schema and keys), as
    written (older files keep their keys); None when the file is absent."""
    if not path.is_file():
        return None
    data = read_json(path)
    if record is not None:
        record.from_json(data, str(path))
    return data


def load_project(path: Path) -> Project:
    """A project's records, each read with a check of its schema and keys."""
    report = _checked(path / REPORT_FILE, Report)
    if report is None:
        raise CodesignError(f"{path}: no report.json; is it the --out of `codesign generate`?")
    return Project(
        path,
        report,
        _checked(path / CSIM_FILE, CsimRecord),
        _checked(path / RTLSIM_FILE, RtlsimRecord),
        _checked(path / HLS4ML_RECORD, None),
        project_vendor_reports(path),
        synth=_checked(path / SYNTH_FILE, SynthRecord),
    )


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    source: str
    views: tuple[str, ...]
    unit: str = ""


VIEWS = {
    "latency": "Latency and throughput (cycles at the board clock)",
    "resources": "Resources",
    "energy": "Energy per inference, accuracy and correctness",
}
_ALL = tuple(VIEWS)
_LAT, _RES, _EN = ("latency",), ("resources",), ("energy",)

COLUMNS = [
    Column("design", "design", "design", _ALL),
    Column("board", "board", "design", _ALL),
    Column("clock_mhz", "MHz", "design", _LAT, "MHz"),
    Column("layer", "layer", "design", _ALL),
    Column("shape", "shape", "design", _RES),
    Column("block", "block", "design", _RES),
    Column("sparsity", "sparsity", "design", _LAT + _RES + _EN),
    Column("reuse_factor", "RF", "design", _LAT + _RES),
    Column("est_cycles", "cycles", "estimate", _LAT, "cycles"),
    Column("sim_cycles", "cycles", "RTL-sim", _LAT, "cycles"),
    Column("est_ii", "II", "estimate", _LAT, "cycles"),
    Column("sim_ii", "II", "RTL-sim", _LAT, "cycles"),
    Column("ideal_ii", "II ideal", "estimate", _LAT, "cycles"),
    Column("efficiency", "eff", "RTL-sim", _LAT),
    Column("utilisation", "util", "RTL-sim", _LAT),
    Column("est_latency_us", "us", "estimate", _LAT, "us"),
    Column("sim_latency_us", "us", "RTL-sim", _LAT, "us"),
    Column("vendor_latency", "cycles", "vendor", _LAT, "cycles"),
    Column("vendor_ii", "II", "vendor", _LAT, "cycles"),
    Column("hls4ml_reuse_factor", "RF", "hls4ml", _LAT + _RES),
    Column("hls4ml_vendor_latency", "cycles", "vendor-hls4ml", _LAT, "cycles"),
    Column("multipliers", "mults", "estimate", _RES),
    Column("est_dsp", "DSP", "estimate", _RES, "DSP blocks"),
    Column("vendor_dsp", "DSP", "vendor", _RES, "DSP blocks"),
    Column("yosys_dsp", "DSP", "yosys", _RES, "DSP blocks"),
    Column("est_m20k", "M20K", "estimate", _RES, "M20K blocks"),
    Column("vendor_ram", "RAM", "vendor", _RES, "RAM blocks"),
    Column("yosys_ram", "RAM", "yosys", _RES, "M10K blocks and MLAB cells"),
    Column("est_mlabs", "MLAB", "estimate", _RES, "MLABs"),
    Column("est_alms", "ALM", "estimate", _RES, "ALMs"),
    Column("est_alms_logic", "ALM*", "estimate", _RES, "ALMs with the DSP blocks' sums as logic"),
    Column("yosys_alms", "ALM>=", "yosys", _RES, "ALMs (lower bound of the cells' packing)"),
    Column("vendor_aluts", "ALUT", "vendor", _RES, "ALUTs"),
    Column("yosys_aluts", "ALUT", "yosys", _RES, "ALUT cells"),
    Column("est_registers", "regs", "estimate", _RES, "registers"),
    Column("vendor_ffs", "FF", "vendor", _RES, "registers"),
    Column("yosys_ffs", "FF", "yosys", _RES, "flip-flops"),
    Column("hls4ml_multipliers", "mults", "hls4ml", _RES),
    Column("hls4ml_vendor_dsp", "DSP", "vendor-hls4ml", _RES, "DSP blocks"),
    Column("macs", "MACs", "estimate", _EN),
    Column("dense_macs", "dense MACs", "estimate", _EN),
    Column("energy_dynamic_pj", "dyn pJ", "estimate", _EN, "pJ"),
    Column("energy_static_pj", "static pJ", "estimate", _EN, "pJ"),
    Column("energy_nj", "total nJ", "estimate", _EN, "nJ"),
    Column("accuracy_float", "top-1 float", "design", _EN),
    Column("accuracy_fixed", "top-1 fixed", "design", _EN),
    Column("csim_match", "match", "C-sim", _EN),
    Column("rtl_match", "match", "RTL-sim", _EN),
    Column("hls4ml_match", "match", "hls4ml", _EN),
]


def _by_name(entries: list[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in entries or []}


def _get(data: dict[str, Any] | None, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def rows(projects: list[Project]) -> list[dict[str, Any]]:
    """One row per layer and one per network (layer `network`) for every project."""
    table: list[dict[str, Any]] = []
    for project in projects:
        csim_layers = _by_name(_get(project.csim, "layers"))
        rtl_layers = _by_name(_get(project.rtlsim, "layers"))
        hls4ml_layers = _by_name(_get(project.hls4ml, "layers"))
        synth_layers = _by_name(_get(project.synth, "layers"))
        for layer in project.report["layers"]:
            name = layer["name"]
            row = _row(
                project, layer, csim_layers.get(name), rtl_layers.get(name), hls4ml_layers.get(name)
            )
            row.update(_yosys(synth_layers.get(name)))
            table.append(row)
        totals = dict(project.report["totals"], name="network")
        network = _row(project, totals, project.csim, _get(project.rtlsim, "network"), None)
        network.update(_network_only(project))
        if _get(project.synth, "complete"):  # a total of some layers is no network figure
            network.update(_yosys(_get(project.synth, "totals")))
        table.append(network)
    return table


def _row(
    project: Project,
    layer: dict[str, Any],
    csim: dict[str, Any] | None,
    rtl: dict[str, Any] | None,
    hls4ml: dict[str, Any] | None,
) -> dict[str, Any]:
    report = project.report
    clock = report.get("clock_mhz")
    sim_cycles = _get(rtl, "sim_cycles")
    row: dict[str, Any] = {column.key: None for column in COLUMNS}
    row.update(
        {
            "design": project.label,
            "board": report["board"],
            "clock_mhz": clock,
            "layer": layer["name"],
            "shape": "x".join(map(str, layer["shape"])) if layer.get("shape") else None,
            "block": "x".join(map(str, layer["block"])) if layer.get("block") else None,
            "sparsity": layer.get("sparsity"),
            "reuse_factor": layer.get("reuse_factor"),
            "est_cycles": layer.get("est_cycles"),
            "sim_cycles": sim_cycles,
            "est_ii": layer.get("est_ii"),
            "sim_ii": _get(rtl, "sim_ii"),
            "ideal_ii": layer.get("ideal_ii"),
            "efficiency": _get(rtl, "efficiency"),
            "utilisation": _get(rtl, "utilisation"),
            "est_latency_us": layer.get("est_latency_us"),
            "sim_latency_us": round(sim_cycles / clock, 4) if sim_cycles and clock else None,
            "hls4ml_reuse_factor": _get(hls4ml, "reuse_factor"),
            "multipliers": layer.get("multipliers"),
            "est_dsp": layer.get("est_dsp"),
            "est_m20k": _get(layer, "resources", "m20k_blocks"),
            "est_mlabs": _get(layer, "resources", "mlabs"),
            "est_alms": _get(layer, "resources", "alms"),
            "est_registers": _get(layer, "resources", "registers"),
            "est_alms_logic": _alms_as_logic(layer) if project.synth is not None else None,
            "hls4ml_multipliers": _get(hls4ml, "multipliers"),
            "macs": _get(layer, "energy", "macs"),
            "dense_macs": _get(layer, "energy", "dense_macs"),
            "energy_dynamic_pj": _get(layer, "energy", "dynamic_pj"),
            "energy_static_pj": _get(layer, "energy", "static_pj"),
            "energy_nj": _get(layer, "energy", "total_nj"),
            "csim_match": _get(csim, "outputs_match"),
            "rtl_match": _get(rtl, "outputs_match"),
        }
    )
    return row


def _alms_as_logic(layer: dict[str, Any]) -> int | None:
    """The ALM estimate as Yosys builds it: with the sums the Arria 10 DSP blocks hold
    (`dsp_adder_alms`) as logic. Shown only beside synth.json's figures."""
    alms = _get(layer, "resources", "alms")
    extra = _get(layer, "resources", "dsp_adder_alms")
    return None if alms is None or extra is None else alms + extra


def _yosys(entry: dict[str, Any] | None) -> dict[str, Any]:
    """The [Y] columns of a synth.json layer (or of its totals)."""
    return {
        "yosys_dsp": _get(entry, "dsp_blocks"),
        "yosys_ram": _get(entry, "ram_cells"),
        "yosys_alms": _get(entry, "alms_lower_bound"),
        "yosys_aluts": _get(entry, "alut_cells"),
        "yosys_ffs": _get(entry, "flip_flops"),
    }


def _network_only(project: Project) -> dict[str, Any]:
    """Figures that exist for the whole network only: accuracy, vendor reports, hls4ml totals."""
    ours = project.vendor.get("ours")
    theirs = project.vendor.get("hls4ml")
    return {
        "accuracy_float": _get(project.report, "accuracy", "pruned_float"),
        "accuracy_fixed": _get(project.report, "accuracy", "fixed_point"),
        "hls4ml_multipliers": _get(project.hls4ml, "multipliers"),
        "hls4ml_match": _get(project.hls4ml, "outputs_match"),
        "vendor_latency": _get(ours, "verification", "latency_cycles", "max"),
        "vendor_ii": _get(ours, "verification", "ii_cycles", "max"),
        "vendor_dsp": _get(ours, "hls_estimate", "total", "dsps"),
        "vendor_ram": _get(ours, "hls_estimate", "total", "rams"),
        "vendor_aluts": _get(ours, "hls_estimate", "total", "aluts"),
        "vendor_ffs": _get(ours, "hls_estimate", "total", "ffs"),
        "hls4ml_vendor_latency": _get(theirs, "verification", "latency_cycles", "max"),
        "hls4ml_vendor_dsp": _get(theirs, "hls_estimate", "total", "dsps"),
    }


# --- formatting -------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "ok" if value else "MISMATCH"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value}"
    return str(value)


def view_columns(view: str) -> list[Column]:
    return [column for column in COLUMNS if view in column.views]


def _tagged(column: Column) -> str:
    if column.source == "design":
        return column.title
    return f"{column.title}[{SOURCES[column.source][0]}]"


def format_table(table: list[dict[str, Any]], view: str | None = None) -> str:
    """Terminal tables, one per view (or only `view`), with a source tag in every header."""
    views = [view] if view else list(VIEWS)
    blocks = []
    for name in views:
        columns = view_columns(name)
        # a column that is n/a everywhere only says so once, in the legend
        shown = [
            c for c in columns if c.source == "design" or any(r[c.key] is not None for r in table)
        ]
        hidden = [c for c in columns if c not in shown]
        headers = [_tagged(c) for c in shown]
        cells = [[_cell(row[c.key]) for c in shown] for row in table]
        widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
        lines = [f"== {VIEWS[name]} =="]
        lines.append("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
        if hidden:
            lines.append("n/a for every design: " + ", ".join(_tagged(c) for c in hidden))
        blocks.append("\n".join(lines))
    blocks.append(_legend())
    return "\n\n".join(blocks)


def _legend() -> str:
    return "sources: " + ", ".join(f"[{tag}] {text}" for tag, text in SOURCES.values())


def markdown(table: list[dict[str, Any]]) -> str:
    parts = ["# codesign comparison\n"]
    for name, title in VIEWS.items():
        columns = view_columns(name)
        headers = [
            c.title if c.source == "design" else f"{c.title} ({SOURCES[c.source][1].split(':')[0]})"
            for c in columns
        ]
        lines = [f"## {title}\n", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        for row in table:
            lines.append("| " + " | ".join(_cell(row[c.key]) for c in columns) + " |")
        parts.append("\n".join(lines) + "\n")
    parts.append(
        "Sources: " + "; ".join(text for _, text in SOURCES.values()) + ". `n/a`: not available "
        "(not run, or not produced by that tool); no figure is invented.\n"
    )
    return "\n".join(parts)


def to_csv(table: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[column.key for column in COLUMNS])
    writer.writeheader()
    for row in table:
        writer.writerow({column.key: row[column.key] for column in COLUMNS})
    return buffer.getvalue()


def to_json(projects: list[Project], table: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schema": COMBINED_SCHEMA,
        "projects": [str(project.path) for project in projects],
        "columns": [
            {"key": c.key, "title": c.title, "source": c.source, "unit": c.unit} for c in COLUMNS
        ],
        "sources": {key: text for key, (_, text) in SOURCES.items()},
        "rows": table,
        "vendor": {project.label: project.vendor for project in projects if project.vendor},
        "energy_models": {p.label: p.report.get("energy_model") for p in projects},
    }


REPORT_MARKER = ".codesign-report"


def write_comparison(projects: list[Project], out_dir: Path) -> list[Path]:
    """report.md, report.csv, report.json and the PNG plots under `out_dir`."""
    from codesign.plots import write_plots

    table = rows(projects)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / REPORT_MARKER).write_text("written by `codesign report`, which may write again\n")
    writers: dict[str, Callable[[], str]] = {
        "report.md": lambda: markdown(table),
        "report.csv": lambda: to_csv(table),
        "report.json": lambda: json.dumps(to_json(projects, table), indent=2) + "\n",
    }
    paths = []
    for name, render in writers.items():
        path = out_dir / name
        path.write_text(render())
        paths.append(path)
    paths += write_plots(projects, table, out_dir)
    return paths
