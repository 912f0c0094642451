"""RTL simulation in Verilator through cocotb: bit-exact outputs and cycles as the model says.

Each case asserts, for every layer and the network, outputs bit-exact to the reference in all
three harness phases (isolated, streaming, random stalls), |sim - est| <= 2 for latency and
initiation interval (the engine meets the model exactly: back-to-back vectors overlap, so the
interval is the busiest of load, compute and drain), and non-trivial values. Together the
cases cover RF 1, 2, 3 and 5, per-layer RF, 2x2, 1x4 and 1x2 blocks, dimensions not divisible
by the block or by the beat, an empty block-row, a fully dense layer, an all-zero layer,
unbalanced patterns, unsigned/wrapping/truncating and left-shifting output casts, and random
single layers (hypothesis). Builds are cached per module; patterns of one shape share a build.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from _hls_cases import block_sparse, dense
from _rtl_cases import (
    FloatArray,
    assert_rtlsim_ok,
    require_verilator,
    tiled,
    with_formats,
    write_project,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesign import reference
from codesign.engines.matrix.rtl import output_shift
from codesign.ir import Dense, FixedPoint, Graph, Overflow, Rounding
from codesign.sim.rtlsim import simulate
from codesign.vectors import FOLDER

pytestmark = pytest.mark.rtlsim


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_verilator()
    return tmp_path_factory.mktemp("codesign-cache")


def three_layers(reuse: int, seed: int = 3) -> tuple[Graph, FloatArray]:
    """13 -> 10 -> 7 -> 5, 2x2 blocks, 3 values per beat: nothing divides evenly.

    fc1 is unbalanced with an empty block-row, fc2 fully dense, fc3 unbalanced and linear.
    Returns the graph and its calibration inputs (the first 16 are the test vectors).
    """
    rng = np.random.default_rng(seed)
    layers = [
        dense(
            "fc1",
            block_sparse(rng, (10, 13), (2, 2), density=0.6, empty_rows=[2]),
            rng,
            block=(2, 2),
        ),
        dense("fc2", block_sparse(rng, (7, 10), (2, 2)), rng, block=(2, 2)),
        dense("fc3", block_sparse(rng, (5, 7), (2, 2), density=0.7), rng, block=(2, 2), relu=False),
    ]
    calibration = rng.normal(size=(256, 13))
    return tiled("three", layers, reuse, 3, calibration), calibration


def rotated_block_columns(graph: Graph) -> list[Dense]:
    """The float layers of `graph` with fc1's whole block-columns rotated by one: another
    pattern with the same kept-block counts, hence the same tiles and the same sources."""
    bare = [
        replace(layer, formats=None, weight_raw=None, bias_raw=None, csr=None, tiling=None)
        for layer in graph.layers
    ]
    fc1 = bare[0]
    width = fc1.block[1]
    full = fc1.in_features // width
    order = np.roll(np.arange(full), 1)
    columns = np.concatenate(
        [np.arange(c * width, (c + 1) * width) for c in order]
        + [np.arange(full * width, fc1.in_features)]
    )
    bare[0] = replace(fc1, weight=fc1.weight[:, columns])
    return bare


@pytest.mark.parametrize("reuse", [1, 2, 5])
def test_network_is_bit_exact_and_meets_the_cycle_model(
    reuse: int, cache: Path, tmp_path: Path
) -> None:
    graph, calibration = three_layers(reuse)
    result = simulate(write_project(graph, calibration[:16], tmp_path / "p"), cache_dir=cache)
    assert_rtlsim_ok(result)
    assert [e["name"] for e in result["layers"]] == ["fc1", "fc2", "fc3"]
    assert result["n_vectors"] == 16
    assert result["sim_cycles_per_second"] > 0
    # the implementation meets the model exactly, not only within the 2-cycle tolerance
    for entry in [*result["layers"], result["network"]]:
        assert (entry["sim_cycles"], entry["sim_ii"]) == (entry["est_cycles"], entry["est_ii"])


def test_back_to_back_vectors_overlap_so_the_busiest_stage_sets_the_interval(
    cache: Path, tmp_path: Path
) -> None:
    """6 -> 16 -> 5 in beats of 2: fc1 is drain-bound (8 output beats), fc2 load-bound."""
    rng = np.random.default_rng(21)
    layers = [
        dense("fc1", block_sparse(rng, (16, 6), (1, 2), density=0.8), rng, block=(1, 2)),
        dense(
            "fc2", block_sparse(rng, (5, 16), (1, 2), density=0.8), rng, block=(1, 2), relu=False
        ),
    ]
    calibration = rng.normal(size=(256, 6))
    graph = tiled("expand", layers, 2, 2, calibration)
    result = simulate(write_project(graph, calibration[:16], tmp_path / "p"), cache_dir=cache)
    assert_rtlsim_ok(result)
    fc1, fc2 = result["layers"]
    assert (fc1["sim_ii"], fc2["sim_ii"], result["network"]["sim_ii"]) == (8, 8, 8)
    for entry in [fc1, fc2, result["network"]]:
        assert entry["sim_ii"] < entry["sim_cycles"]  # vectors overlap
        assert (entry["sim_cycles"], entry["sim_ii"]) == (entry["est_cycles"], entry["est_ii"])
        # streams of 2 values bound the interval, not the multipliers: lost efficiency
        assert entry["ideal_ii"] < entry["sim_ii"]
        assert entry["efficiency"] == pytest.approx(entry["ideal_ii"] / entry["sim_ii"])


def test_patterns_of_one_shape_share_a_build_and_reruns_reuse_it(
    cache: Path, tmp_path: Path
) -> None:
    graph, calibration = three_layers(2)
    first = simulate(write_project(graph, calibration[:16], tmp_path / "a"), cache_dir=cache)
    again = simulate(tmp_path / "a", cache_dir=cache)
    assert again["build_cached"] and again["build_seconds"] == 0.0
    assert again["build_dir"] == first["build_dir"]

    other = tiled("three", rotated_block_columns(graph), 2, 3, calibration)
    assert not np.array_equal(
        other.layers[0].require_csr().col_idx, graph.layers[0].require_csr().col_idx
    )
    result = simulate(write_project(other, calibration[:16], tmp_path / "b"), cache_dir=cache)
    assert result["build_cached"] and result["build_dir"] == first["build_dir"]
    assert_rtlsim_ok(result)


def test_a_build_for_simulation_speed_is_bit_exact_too(cache: Path, tmp_path: Path) -> None:
    """Long runs get a build with only the bench's signals public (rtlsim.FAST_SIM_ARGS)."""
    graph, calibration = three_layers(2)
    project = write_project(graph, calibration[:16], tmp_path / "p")
    fast = simulate(project, cache_dir=cache, fast_sim=True)
    assert fast["fast_sim_build"]
    assert_rtlsim_ok(fast)
    default = simulate(project, cache_dir=cache)
    assert not default["fast_sim_build"] and default["build_dir"] != fast["build_dir"]
    entries = zip(
        [*fast["layers"], fast["network"]], [*default["layers"], default["network"]], strict=True
    )
    for a, b in entries:
        assert (a["sim_cycles"], a["sim_ii"]) == (b["sim_cycles"], b["sim_ii"])
    assert set(fast["phases"]) == {"isolated", "streaming", "stalled"}
    assert fast["phases"]["streaming"]["cycles"] >= 16 * fast["network"]["est_ii"]


def test_single_layer_is_fed_the_previous_layers_reference_outputs(
    cache: Path, tmp_path: Path
) -> None:
    graph, calibration = three_layers(2)
    project = write_project(graph, calibration[:16], tmp_path / "p")
    result = simulate(project, layer="fc2", n_vectors=8, cache_dir=cache)
    assert_rtlsim_ok(result)
    assert result["scope"] == "layer"
    assert [e["name"] for e in result["layers"]] == ["fc2"]
    assert result["network"]["n_vectors"] == 8
    assert (project / "rtlsim" / "fc2" / "harness.log").is_file()


def test_one_by_four_blocks_with_per_layer_reuse(cache: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    layers = [
        dense("fc1", block_sparse(rng, (9, 18), (1, 4), density=0.5), rng),
        dense("fc2", block_sparse(rng, (6, 9), (1, 4), density=0.8), rng, relu=False),
    ]
    calibration = rng.normal(size=(256, 18))
    graph = tiled("mlp", layers, {"fc1": 3, "fc2": 1}, 4, calibration)
    result = simulate(write_project(graph, calibration[:16], tmp_path / "p"), cache_dir=cache)
    assert_rtlsim_ok(result)


def test_one_by_two_blocks_balanced(cache: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    layers = [
        dense(
            "fc1", block_sparse(rng, (6, 11), (1, 2), keep_per_row=3), rng, block=(1, 2), relu=False
        )
    ]
    calibration = rng.normal(size=(256, 11))
    graph = tiled("one", layers, 3, 2, calibration)
    result = simulate(write_project(graph, calibration[:16], tmp_path / "p"), cache_dir=cache)
    assert_rtlsim_ok(result)
    # the compute bound ceil(36 MACs / 12 multipliers); 6 input beats of 2 values bound it
    assert (result["layers"][0]["ideal_ii"], result["layers"][0]["sim_ii"]) == (3, 6)
    assert result["layers"][0]["efficiency"] == 0.5


def test_all_zero_layer_outputs_its_bias(cache: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    layers = [
        dense("fc1", block_sparse(rng, (6, 8), (1, 4)), rng),
        dense("fc2", np.zeros((4, 6)), rng),
        dense("fc3", block_sparse(rng, (3, 4), (1, 4)), rng, relu=False),
    ]
    calibration = rng.normal(size=(256, 8))
    graph = tiled("zero", layers, 2, 4, calibration)
    assert graph.layers[1].require_csr().nnz_blocks == 0
    result = simulate(write_project(graph, calibration[:16], tmp_path / "p"), cache_dir=cache)
    assert_rtlsim_ok(result)


def test_unsigned_wrapping_truncating_and_left_shifted_outputs(cache: Path, tmp_path: Path) -> None:
    """fc1 casts to unsigned 12 bits (AC_TRN, AC_WRAP); fc2 shifts left into 32 bits."""
    rng = np.random.default_rng(12)
    layers = [
        dense("fc1", block_sparse(rng, (7, 9), (2, 2), density=0.7), rng, block=(2, 2)),
        dense("fc2", block_sparse(rng, (5, 7), (2, 2)), rng, block=(2, 2), relu=False),
    ]
    calibration = rng.normal(size=(256, 9))
    graph = tiled("modes", layers, 2, 3, calibration)
    fc1, fc2 = graph.layers
    narrow = FixedPoint(
        12,
        12 - fc1.require_formats().output.frac,
        signed=False,
        rounding=Rounding.TRN,
        overflow=Overflow.WRAP,
    )
    wide = FixedPoint(32, 32 - (fc2.require_formats().accum.frac + 3))
    graph = Graph(
        graph.name,
        graph.input_shape,
        (
            with_formats(fc1, output=narrow),
            with_formats(fc2, input=narrow, output=wide),
        ),
    )
    assert output_shift(graph.layers[0]) > 0 > output_shift(graph.layers[1])
    result = simulate(write_project(graph, calibration[:16], tmp_path / "p"), cache_dir=cache)
    assert_rtlsim_ok(result, saturation_limit=1.0)  # wrapping is the point here


def test_a_mismatch_names_layer_vector_index_and_values(cache: Path, tmp_path: Path) -> None:
    graph, calibration = three_layers(2)
    project = write_project(graph, calibration[:16], tmp_path / "p")
    expected_file = project / FOLDER / "fc2.txt"
    rows = [line.split() for line in expected_file.read_text().splitlines()]
    rows[3][4] = str(int(rows[3][4]) + 1)
    expected_file.write_text("".join(" ".join(row) + "\n" for row in rows))
    result = simulate(project, cache_dir=cache)
    assert not result["outputs_match"]
    first = result["first_mismatch"]
    assert (first["layer"], first["vector"], first["index"]) == ("fc2", 3, 4)
    assert first["expected"] == first["got"] + 1
    fc2 = result["layers"][1]
    assert not fc2["outputs_match"] and fc2["mismatches"] > 0
    assert result["layers"][0]["outputs_match"]
    shutil.rmtree(project)


@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rows=st.integers(1, 9),
    cols=st.integers(1, 12),
    block=st.sampled_from([(1, 2), (2, 2), (1, 4), (3, 1)]),
    beat=st.integers(1, 4),
    reuse=st.integers(1, 4),
    density=st.sampled_from([0.0, 0.4, 1.0]),
    relu=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_single_layers(
    cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
    rows: int,
    cols: int,
    block: tuple[int, int],
    beat: int,
    reuse: int,
    density: float,
    relu: bool,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    layer = dense(
        "fc1", block_sparse(rng, (rows, cols), block, density=density), rng, block=block, relu=relu
    )
    calibration = rng.normal(size=(128, cols))
    graph = tiled("random", [layer], reuse, beat, calibration)
    project = write_project(graph, calibration[:6], tmp_path_factory.mktemp("random"))
    result = simulate(project, cache_dir=cache)
    assert result["outputs_match"], result["first_mismatch"]
    for entry in [*result["layers"], result["network"]]:
        assert abs(entry["sim_cycles"] - entry["est_cycles"]) <= 2, entry
        assert abs(entry["sim_ii"] - entry["est_ii"]) <= 2, entry


def test_a_narrowed_accumulator_wraps_like_the_reference(cache: Path, tmp_path: Path) -> None:
    """--precision may narrow an accumulator (AC_WRAP): the engine wraps its sums the same."""
    graph, calibration = three_layers(2)
    fc1 = graph.layers[0]
    accum = fc1.require_formats().accum
    narrow = FixedPoint(
        accum.width - 8, accum.integer - 8, rounding=accum.rounding, overflow=Overflow.WRAP
    )
    graph = replace(graph, layers=(with_formats(fc1, accum=narrow), *graph.layers[1:]))
    traces = reference.run(graph, reference.quantize_inputs(graph, calibration[:16]))
    assert traces[0].accum_overflows > 0  # about a quarter of the sums wrap
    project = write_project(graph, calibration[:16], tmp_path / "p")
    result = simulate(project, layer="fc1", cache_dir=cache)
    assert result["outputs_match"], result["first_mismatch"]
