"""PNG plots of a comparison (matplotlib, Agg backend: no display needed).

Every bar is a figure of the comparison table (codesign.report.rows), so a plot never shows a
number that the table, the CSV and the JSON do not hold. Missing figures are left out, and the
axis says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codesign.report import Project


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grouped_bars(axis: Any, groups: list[str], series: dict[str, list[float | None]]) -> None:
    width = 0.8 / max(1, len(series))
    for index, (label, values) in enumerate(series.items()):
        xs = [g + index * width for g, v in enumerate(values) if v is not None]
        ys = [v for v in values if v is not None]
        axis.bar(xs, ys, width, label=label)
    axis.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))])
    rotation = 20 if len(groups) <= 6 else 60
    axis.set_xticklabels(
        groups, rotation=rotation, ha="right", fontsize=8 if len(groups) <= 6 else 7
    )
    axis.legend(fontsize=8)


def plot_latency(table: list[dict[str, Any]], path: Path) -> Path:
    plt = _pyplot()
    networks = [row for row in table if row["layer"] == "network"]
    layers = [row for row in table if row["layer"] != "network"]
    figure, (left, right) = plt.subplots(
        1, 2, figsize=(max(12.0, 6.0 + 0.45 * len(layers)), 5.5), width_ratios=[2, 1]
    )
    _grouped_bars(
        left,
        [f"{r['design']} {r['layer']}" for r in layers],
        {
            "estimate": [r["est_cycles"] for r in layers],
            "RTL-sim": [r["sim_cycles"] for r in layers],
            "II estimate": [r["est_ii"] for r in layers],
            "II RTL-sim": [r["sim_ii"] for r in layers],
        },
    )
    left.set_ylabel("cycles per vector")
    left.set_title("per layer: latency and II")
    _grouped_bars(
        right,
        [r["design"] for r in networks],
        {
            "estimate": [r["est_latency_us"] for r in networks],
            "RTL-sim": [r["sim_latency_us"] for r in networks],
        },
    )
    right.set_ylabel("µs at the board clock")
    right.set_title("network latency")
    right.set_xlabel("hls4ml baseline: no cycle count without i++", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_resources(projects: list[Project], table: list[dict[str, Any]], path: Path) -> Path:
    plt = _pyplot()
    available = {p.label: _available(p.report) for p in projects}
    networks = [row for row in table if row["layer"] == "network"]
    series: dict[str, list[float | None]] = {}
    for label, key, resource in (
        ("DSP blocks", "est_dsp", "DSP blocks"),
        ("M20K blocks", "est_m20k", "M20K blocks"),
        ("ALMs", "est_alms", "ALMs"),
        ("registers", "est_registers", "registers"),
    ):
        series[label] = [
            _percent(row[key], available[row["design"]].get(resource)) for row in networks
        ]
    figure, axis = plt.subplots(figsize=(8, 4.5))
    _grouped_bars(axis, [f"{r['design']}" for r in networks], series)
    axis.set_ylabel("% of the board (estimate)")
    axis.set_title("resource estimate, network")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_energy(table: list[dict[str, Any]], path: Path) -> Path:
    plt = _pyplot()
    networks = [row for row in table if row["layer"] == "network"]
    labels = [row["design"] for row in networks]
    dynamic = [(row["energy_dynamic_pj"] or 0.0) / 1000 for row in networks]
    static = [(row["energy_static_pj"] or 0.0) / 1000 for row in networks]
    figure, axis = plt.subplots(figsize=(8, 4.5))
    axis.bar(labels, dynamic, label="dynamic (Horowitz 45 nm, scaled)")
    axis.bar(labels, static, bottom=dynamic, label="static (assumed power x latency)")
    axis.set_ylabel("nJ per inference (estimate)")
    axis.set_title("energy per inference, network")
    axis.tick_params(axis="x", labelrotation=20, labelsize=8)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _available(report: dict[str, Any]) -> dict[str, int]:
    items = (report.get("fit") or {}).get("items", [])
    return {item["resource"]: item["available"] for item in items}


def _percent(value: Any, available: Any) -> float | None:
    if value is None or not available:
        return None
    return 100.0 * float(value) / float(available)


def write_plots(projects: list[Project], table: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    return [
        plot_latency(table, out_dir / "latency.png"),
        plot_resources(projects, table, out_dir / "resources.png"),
        plot_energy(table, out_dir / "energy.png"),
    ]
