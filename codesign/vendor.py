"""Read the reports of the Intel HLS Compiler (i++) when a user has run the Intel flow.

`i++ ... -o <name>-fpga` writes `<name>-fpga.prj/reports/`; its data files (as written by
i++ 19.2, see tests/fixtures/ipp_reports/README.md for a real example) are:

  lib/json/info.json          project, "Target Family, Device", "i++ Version", command
  lib/json/summary.json       "estimatedResources": ALUTs, FFs, RAMs, DSPs, MLABs per
                              component, a "Total" and an "Available" row (HLS estimate)
  lib/verification_data.js    `var verifJSON={...}`: invocations, latency and II (min, max,
                              avg) measured by the i++ testbench's co-simulation of the RTL
  lib/json/quartus.json       the Quartus fit summary (ALMs, registers, DSPs, RAMs, fmax)
                              once `quartus_sh --flow compile` has run; a placeholder before

Nothing is estimated here: every figure is the tool's, and what a report lacks stays None.
Older i++ releases that keep everything in `lib/report_data.js` are not read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from codesign.errors import CodesignError

RESOURCE_KEYS = {"ALUTs": "aluts", "FFs": "ffs", "RAMs": "rams", "DSPs": "dsps", "MLABs": "mlabs"}
QUARTUS_KEYS = ("alm", "reg", "dsp", "ram", "mlab")


def find_report_dirs(project: Path) -> list[Path]:
    """Every `*.prj/reports` folder of i++ in a project (top level, hls/ or hls4ml/)."""
    found: set[Path] = set()
    for pattern in ("*.prj/reports", "*/*.prj/reports", "*/*/*.prj/reports"):
        found.update(path for path in project.glob(pattern) if path.is_dir())
    return sorted(found)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CodesignError(f"{path}: not valid JSON ({error})") from error


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    text = str(value).strip().replace(",", "")
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() else number


def _info(lib: Path) -> dict[str, str]:
    path = lib / "json" / "info.json"
    if not path.is_file():
        return {}
    rows = _load_json(path).get("rows", [])
    return {str(row["name"]): str(row["data"][0]) for row in rows if row.get("data")}


def _estimated_resources(lib: Path) -> dict[str, Any] | None:
    path = lib / "json" / "summary.json"
    if not path.is_file():
        return None
    table = _load_json(path).get("estimatedResources")
    if not table:
        return None
    keys = [RESOURCE_KEYS.get(str(column).strip()) for column in table["columns"][1:]]
    by_name = {child["name"]: child for child in table.get("children", [])}

    def row(name: str) -> dict[str, Any] | None:
        if name not in by_name:
            return None
        return {
            key: _number(value)
            for key, value in zip(keys, by_name[name]["data"], strict=False)
            if key is not None
        }

    components = [
        name
        for name in by_name
        if name not in ("Total", "Available") and "classes" not in by_name[name]
    ]
    return {"components": components, "total": row("Total"), "available": row("Available")}


def _js_object(text: str, variable: str) -> Any:
    """The object literal assigned to `var <variable>=` (JSON but for single-quoted strings)."""
    match = re.search(rf"var\s+{variable}\s*=\s*(.*?);?\s*$", text, re.S)
    if not match:
        return None
    literal = re.sub(r"'([^'\\]*)'", lambda m: json.dumps(m.group(1)), match.group(1))
    try:
        return json.loads(literal)
    except json.JSONDecodeError:
        return None


def _min_max_avg(text: str) -> dict[str, int | float | None]:
    parts = [_number(part) for part in str(text).split(",")]
    parts += [None] * (3 - len(parts))
    return {"min": parts[0], "max": parts[1], "avg": parts[2]}


def _verification(lib: Path) -> dict[str, Any] | None:
    path = lib / "verification_data.js"
    if not path.is_file():
        return None
    data = _js_object(path.read_text(), "verifJSON")
    functions = (data or {}).get("functions") or []
    if not functions:
        return None
    component = functions[0]
    invocations, latency, interval = component["data"][:3]
    return {
        "component": component["name"],
        "invocations": _number(invocations),
        "latency_cycles": _min_max_avg(latency),
        "ii_cycles": _min_max_avg(interval),
    }


def _quartus(lib: Path) -> dict[str, Any] | None:
    path = lib / "json" / "quartus.json"
    if not path.is_file():
        return None
    data = _load_json(path)
    usage = data.get("quartusFitResourceUsageSummary", {}).get("nodes")
    if not usage:
        return None  # the placeholder written before a Quartus compile
    total = usage[-1]
    clock = data.get("quartusFitClockSummary", {}).get("nodes", [{}])[0].get("clock")
    result: dict[str, Any] = {key: _number(total.get(key)) for key in QUARTUS_KEYS}
    result["fmax_mhz"] = _number(clock)
    return result


def read_ipp_reports(reports: Path) -> dict[str, Any]:
    """The figures of one i++ `reports/` folder; absent parts are None."""
    lib = reports / "lib"
    if not lib.is_dir():
        raise CodesignError(f"{reports}: no lib/ folder; is it an i++ reports folder?")
    info = _info(lib)
    return {
        "tool": "i++",
        "path": str(reports),
        "version": info.get("i++ Version"),
        "device": info.get("Target Family, Device"),
        "hls_estimate": _estimated_resources(lib),
        "verification": _verification(lib),
        "quartus_fit": _quartus(lib),
    }


def project_vendor_reports(project: Path) -> dict[str, dict[str, Any]]:
    """i++ reports of a project by role: 'ours' (under hls/) and 'hls4ml' (under hls4ml/)."""
    reports: dict[str, dict[str, Any]] = {}
    for folder in find_report_dirs(project):
        role = "hls4ml" if "hls4ml" in folder.relative_to(project).parts else "ours"
        reports.setdefault(role, read_ipp_reports(folder))
    return reports
