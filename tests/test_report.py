"""`codesign report`: dense and sparse designs on two boards, every figure traced to its file.

Projects are generated from a small untrained MLP (no dataset: random calibration inputs), so
the module needs no training; the test with simulations carries the csim and rtlsim markers.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from codesign.boards import load_board
from codesign.cli import main
from codesign.flows.generate import GenerateRequest, generate
from codesign.flows.project import csim, simulate
from codesign.report import COLUMNS, format_table, load_project, rows
from codesign.vendor import read_ipp_reports

FIXTURE = Path(__file__).parent / "fixtures" / "ipp_reports" / "myproject-fpga.prj"
BOARDS = ("arria10-gx1150", "cyclone10-gx220")

# column -> where it comes from in the project's files (independent of codesign.report)
FROM_REPORT_LAYER = {
    "reuse_factor": ("reuse_factor",),
    "sparsity": ("sparsity",),
    "est_cycles": ("est_cycles",),
    "est_ii": ("est_ii",),
    "ideal_ii": ("ideal_ii",),
    "est_latency_us": ("est_latency_us",),
    "multipliers": ("multipliers",),
    "est_dsp": ("est_dsp",),
    "est_m20k": ("resources", "m20k_blocks"),
    "est_mlabs": ("resources", "mlabs"),
    "est_alms": ("resources", "alms"),
    "est_registers": ("resources", "registers"),
    "macs": ("energy", "macs"),
    "dense_macs": ("energy", "dense_macs"),
    "energy_dynamic_pj": ("energy", "dynamic_pj"),
    "energy_static_pj": ("energy", "static_pj"),
    "energy_nj": ("energy", "total_nj"),
}
FROM_RTLSIM = {
    "sim_cycles": "sim_cycles",
    "sim_ii": "sim_ii",
    "efficiency": "efficiency",
    "utilisation": "utilisation",
    "rtl_match": "outputs_match",
}


def mlp(sparse: bool) -> nn.Module:
    """64 -> 32 -> 10; sparse: 3 of every 4 1x4 blocks of each row zeroed (balanced)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    if sparse:
        with torch.no_grad():
            for linear in (model[0], model[2]):
                rows_, cols = linear.weight.shape
                grid = torch.arange(cols // 4)[None, :] % 4 == torch.arange(rows_)[:, None] % 4
                linear.weight.mul_(grid.repeat_interleave(4, dim=1).float())
    return model


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("designs")
    paths = []
    for board_key in BOARDS:
        for variant in ("dense", "sparse"):
            path = root / board_key / variant
            generate(
                GenerateRequest(
                    model=mlp(variant == "sparse"),
                    model_name="mlp",
                    board=load_board(board_key),
                    out_dir=path,
                    input_shape=(64,),
                    n_vectors=8,
                )
            )
            paths.append(path)
    return paths


def _at(data: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        data = data[key]
    return data


def check_traced(comparison: dict[str, Any], projects: list[Path]) -> None:
    """Every number of every row equals the figure in the file it came from."""
    by_label = {f"{p.parent.name}/{p.name}": p for p in projects}
    for row in comparison["rows"]:
        project = by_label[row["design"]]
        report = json.loads((project / "report.json").read_text())
        rtl_path = project / "rtlsim.json"
        rtl = json.loads(rtl_path.read_text()) if rtl_path.is_file() else None
        if row["layer"] == "network":
            source = report["totals"]
            rtl_entry = rtl["network"] if rtl else None
        else:
            source = next(layer for layer in report["layers"] if layer["name"] == row["layer"])
            rtl_entry = next(e for e in rtl["layers"] if e["name"] == row["layer"]) if rtl else None
        checked = {"clock_mhz", "sim_latency_us", "accuracy_float", "accuracy_fixed"}
        assert row["clock_mhz"] == report["clock_mhz"]
        for key, path in FROM_REPORT_LAYER.items():
            if key == "reuse_factor" and row["layer"] == "network":
                assert row[key] is None
            else:
                assert row[key] == _at(source, path), (row["design"], row["layer"], key)
            checked.add(key)
        for key, name in FROM_RTLSIM.items():
            assert row[key] == (rtl_entry[name] if rtl_entry else None), key
            checked.add(key)
        if rtl_entry:
            assert row["sim_latency_us"] == round(rtl_entry["sim_cycles"] / report["clock_mhz"], 4)
        else:
            assert row["sim_latency_us"] is None
        csim_path = project / "csim.json"
        csim_result = json.loads(csim_path.read_text()) if csim_path.is_file() else None
        if csim_result and row["layer"] != "network":
            csim_result = next(e for e in csim_result["layers"] if e["name"] == row["layer"])
        assert row["csim_match"] == (csim_result["outputs_match"] if csim_result else None)
        checked.add("csim_match")
        numbers = {k for k, v in row.items() if isinstance(v, int | float) and v is not None}
        unchecked = numbers - checked - {"vendor_dsp", "vendor_ram", "vendor_aluts", "vendor_ffs"}
        unchecked -= {"vendor_latency", "vendor_ii"}
        assert not unchecked, f"numbers with no source check: {unchecked}"


def test_report_json_has_schema_2_with_resources_energy_and_fit(projects: list[Path]) -> None:
    report = json.loads((projects[0] / "report.json").read_text())
    assert report["schema"] == "codesign.report/2"
    assert report["fit"]["fits"] is True
    assert {item["resource"] for item in report["fit"]["items"]} == {
        "DSP blocks",
        "M20K blocks",
        "ALMs",
        "registers",
    }
    layer = report["layers"][0]
    assert layer["resources"]["dsp_blocks"] == layer["est_dsp"]
    assert layer["energy"]["macs"] > 0 and "Horowitz" in report["energy_model"]["source"]
    totals = report["totals"]
    assert totals["resources"]["dsp_blocks"] == totals["est_dsp"]
    assert totals["resources"]["alms"] == sum(x["resources"]["alms"] for x in report["layers"])


def test_report_compares_boards_and_writes_every_format(
    projects: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    assert main(["report", *map(str, projects), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("report.md", "report.csv", "report.json", "latency.png", "resources.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    assert (out / "energy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "== Resources ==" in printed and "cyclone10-gx220" in printed
    assert "n/a" in printed  # no simulation, no hls4ml baseline, no vendor report: n/a

    comparison = json.loads((out / "report.json").read_text())
    assert comparison["schema"] == "codesign.comparison/2"
    assert len(comparison["rows"]) == 4 * 3  # two layers and the network, four designs
    check_traced(comparison, projects)

    with (out / "report.csv").open() as stream:
        for csv_row, json_row in zip(csv.DictReader(stream), comparison["rows"], strict=True):
            for key, value in json_row.items():
                assert csv_row[key] == ("" if value is None else str(value)), key

    markdown = (out / "report.md").read_text()
    assert "cycles (estimate)" in markdown and "match (hls4ml baseline)" in markdown
    sources = {column["key"]: column["source"] for column in comparison["columns"]}
    assert sources["sim_cycles"] == "RTL-sim" and sources["vendor_dsp"] == "vendor"

    # sparse uses fewer DSPs than dense on each board, at the same or a smaller RF
    network = {r["design"]: r for r in comparison["rows"] if r["layer"] == "network"}
    for board in BOARDS:
        dense, sparse = network[f"{board}/dense"], network[f"{board}/sparse"]
        assert sparse["macs"] < dense["macs"]
        assert sparse["energy_dynamic_pj"] < dense["energy_dynamic_pj"]


def test_vendor_fixture_is_read_as_published() -> None:
    figures = read_ipp_reports(FIXTURE / "reports")
    assert figures["version"] == "19.2.0 Build 57"
    assert figures["device"] == "Arria10, 10AS066H2F34I1SG"
    assert figures["hls_estimate"]["total"] == {
        "aluts": 32287,
        "ffs": 13058,
        "rams": 0,
        "dsps": 57,
        "mlabs": 411,
    }
    assert figures["hls_estimate"]["available"]["dsps"] == 1518
    assert figures["verification"]["latency_cycles"] == {"min": 20, "max": 20, "avg": 20}
    assert figures["verification"]["ii_cycles"]["max"] == 1
    assert figures["quartus_fit"] is None  # i++ wrote its placeholder: Quartus was not run


def test_vendor_figures_appear_beside_ours(projects: list[Path], tmp_path: Path) -> None:
    project = tmp_path / "with-vendor"
    shutil.copytree(projects[1], project)
    shutil.copytree(FIXTURE, project / "hls" / FIXTURE.name)
    loaded = load_project(project)
    assert set(loaded.vendor) == {"ours"}
    table = rows([loaded])
    network = table[-1]
    assert (network["vendor_dsp"], network["vendor_latency"], network["vendor_ii"]) == (57, 20, 1)
    assert all(row["vendor_dsp"] is None for row in table[:-1])  # i++ gives no per-layer figure
    assert "DSP[V]" in format_table(table, view="resources")


def mlp_file(folder: Path, name: str, *sizes: int) -> str:
    """A model file with function `name`: Linear layers of `sizes` with ReLUs; its --model."""
    layers = ", nn.ReLU(), ".join(f"nn.Linear({a}, {b})" for a, b in pairwise(sizes))
    path = folder / f"{name}.py"
    path.write_text(f"from torch import nn\n\ndef {name}():\n    return nn.Sequential({layers})\n")
    return f"{path}:{name}"


def test_fit_check_refuses_a_model_too_large_for_cyclone10(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = mlp_file(tmp_path, "wide", 256, 128, 10)
    argv = ["generate", "--model", model, "--input-shape", "256"]
    argv += ["--board", "cyclone10-gx220", "--reuse", "1", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    error = capsys.readouterr().err
    needs = r"DSP blocks: needs [\d,]+ \(\d+%\), cyclone10-gx220 has 192, of which 153"
    assert re.search(needs, error)
    assert "--fit warn" in error
    assert "raise --target-ii or --reuse (every layer at its largest RF fits)" in error
    assert "--max-utilisation (now 80%)" in error


def test_fit_advice_says_when_no_reuse_factor_helps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = mlp_file(tmp_path, "huge", 64, 4096, 64)
    argv = ["generate", "--model", model, "--input-shape", "64"]
    argv += ["--board", "cyclone10-gx220", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "no reuse factor helps: even one tile per layer needs" in error
    assert "raise --reuse" not in error
    assert not (tmp_path / "out").exists()


def test_fit_warn_generates_and_records_the_overflow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_file = tmp_path / "mid.py"
    model_file.write_text(
        "from torch import nn\n\ndef mid():\n    return nn.Sequential(nn.Linear(32, 32))\n"
    )
    argv = ["generate", "--model", f"{model_file}:mid", "--input-shape", "32", "--fit", "warn"]
    argv += ["--board", "cyclone10-gx220", "--reuse", "1", "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    assert "DOES NOT FIT" in capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    dsp = report["fit"]["items"][0]
    assert report["fit"]["fits"] is False and dsp["available"] == 192
    assert dsp["needed"] == report["totals"]["resources"]["dsp_blocks"] > dsp["usable"] == 153


@pytest.mark.csim
@pytest.mark.rtlsim
def test_simulated_figures_are_traced_too(projects: list[Path], tmp_path: Path) -> None:
    for project in projects:
        csim(project)
        simulate(project)
    out = tmp_path / "cmp"
    assert main(["report", *map(str, projects), "--out", str(out)]) == 0
    comparison = json.loads((out / "report.json").read_text())
    check_traced(comparison, projects)
    for row in comparison["rows"]:
        assert row["csim_match"] is True and row["rtl_match"] is True
        assert row["sim_latency_us"] is not None
    assert {column.key for column in COLUMNS} <= set(comparison["rows"][0])


def test_hls4ml_baseline_columns_come_from_its_record(projects: list[Path], tmp_path: Path) -> None:
    project = tmp_path / "with-baseline"
    shutil.copytree(projects[0], project)
    report = json.loads((project / "report.json").read_text())
    layers = [
        {"name": layer["name"], "reuse_factor": 4, "multipliers": 100 + index}
        for index, layer in enumerate(report["layers"])
    ]
    record = {"schema": "codesign.hls4ml/1", "layers": layers, "multipliers": 201}
    record["outputs_match"] = True
    (project / "hls4ml_baseline.json").write_text(json.dumps(record))
    table = rows([load_project(project)])
    assert [row["hls4ml_multipliers"] for row in table] == [100, 101, 201]
    assert [row["hls4ml_reuse_factor"] for row in table] == [4, 4, None]
    assert table[-1]["hls4ml_match"] is True and table[0]["hls4ml_match"] is None
    assert table[-1]["hls4ml_vendor_latency"] is None  # no i++ run: never a cycle figure
