"""The HLS C++ emitter: files, determinism, exact constants, and no multiply for pruned blocks.

These read the generated text only; tests/test_csim.py compiles and runs it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from _graphs import mixed_graph, residual_graph
from _hls_cases import block_sparse, build_graph, dense, mlp

from codesign.boards import Board, load_board
from codesign.emit.hls import emit_hls
from codesign.emit.plan import BuildPlan, write_plan
from codesign.engines.hls_common import ac_fixed
from codesign.ir import FixedPoint, Graph
from codesign.ir.graph import ALPHA_FRAC, Add, Conv2d, Pool2d, alpha_raw
from codesign.records.design import graph_to_files, load_graph
from codesign.sim.tools import ac_types_include


@pytest.fixture(scope="module")
def board() -> Board:
    return load_board("arria10-gx1150")


@pytest.fixture(scope="module")
def graph() -> Graph:
    """1x4 at RF 1 with an empty block-row, 2x2 at RF 3 (idle slots), an all-zero layer."""
    rng = np.random.default_rng(1)
    layers = [
        dense("fc1", block_sparse(rng, (12, 13), (1, 4), density=0.6, empty_rows=[2]), rng),
        dense("fc2", block_sparse(rng, (9, 12), (2, 2), density=0.7), rng, block=(2, 2)),
        dense("fc3", np.zeros((4, 9)), rng, relu=False),
    ]
    return build_graph("net", layers, {"fc1": 1, "fc2": 3, "fc3": 1}, rng.normal(size=(64, 13)))


def text(plan: BuildPlan, path: str) -> str:
    return plan.files[path].decode()


def array_body(source: str, name: str) -> str:
    """The initialiser of `static const ... name[...] = { ... };`."""
    match = re.search(rf"static const \w+ {name}(\[\d+\])+ = \{{(.*?)\n\}};", source, re.S)
    assert match is not None, f"no array {name}"
    return re.sub(r"//[^\n]*", "", match.group(2))


def numbers(body: str) -> list[str]:
    return re.findall(r"-?\d+(?:\.\d+)?", body)


def test_plan_holds_the_project_files(graph: Graph, board: Board) -> None:
    plan = emit_hls(graph, board)
    assert sorted(plan.files) == [
        "hls/Makefile",
        "hls/README.md",
        "hls/ihls_shim/HLS/ac_fixed.h",
        "hls/ihls_shim/HLS/ac_int.h",
        "hls/ihls_shim/HLS/hls.h",
        "hls/layers/fc1.h",
        "hls/layers/fc2.h",
        "hls/layers/fc3.h",
        "hls/net.cpp",
        "hls/net.h",
        "hls/net_types.h",
        "hls/tb_net.cpp",
    ]


def test_output_is_deterministic_and_survives_serialisation(
    graph: Graph, board: Board, tmp_path: Path
) -> None:
    plan = emit_hls(graph, board)
    assert emit_hls(graph, board).files == plan.files
    write_plan(BuildPlan(graph_to_files(graph)), tmp_path / "project")
    assert emit_hls(load_graph(tmp_path / "project"), board).digest() == plan.digest()


def test_only_kept_blocks_have_weights(graph: Graph, board: Board) -> None:
    plan = emit_hls(graph, board)
    for layer in graph.layers[:2]:
        assert layer.csr is not None and layer.tiling is not None
        br, bc = layer.block
        source = text(plan, f"hls/layers/{layer.name}.h")
        nnz = layer.csr.nnz_blocks
        assert nnz < layer.csr.grid[0] * layer.csr.grid[1]  # something is pruned
        assert f"{layer.name}_weights[{nnz}][{br}][{bc}]" in source
        assert len(numbers(array_body(source, f"{layer.name}_weights"))) == nnz * br * bc
        block_col = [int(v) for v in numbers(array_body(source, f"{layer.name}_block_col"))]
        assert block_col == layer.csr.col_idx.tolist()
        slots = [int(v) for v in numbers(array_body(source, f"{layer.name}_slot_block"))]
        assert slots == layer.tiling.slots.ravel().tolist()
        rows = [int(v) for v in numbers(array_body(source, f"{layer.name}_slot_row"))]
        block_row = layer.csr.block_row_of()
        assert rows == [int(block_row[k]) if k >= 0 else -1 for k in slots]
        # One product statement, inside the loops over cycles, tiles and the block.
        assert source.count(" * x_padded[") == 1
        assert f"cycle < {layer.tiling.reuse_factor}" in source
        assert f"tile < {layer.tiling.tiles}" in source


def test_weights_and_biases_are_raw_integer_tables(graph: Graph, board: Board) -> None:
    plan = emit_hls(graph, board)
    for layer in graph.layers[:2]:
        assert layer.formats is not None and layer.csr is not None and layer.bias_raw is not None
        source = text(plan, f"hls/layers/{layer.name}.h")
        assert f"static const int8_t {layer.name}_weights[" in source  # 8-bit weights
        weights = [int(v) for v in numbers(array_body(source, f"{layer.name}_weights"))]
        assert weights == layer.csr.blocks.ravel().tolist()
        assert f"static const int32_t {layer.name}_bias[" in source
        bias = [int(v) for v in numbers(array_body(source, f"{layer.name}_bias"))]
        padded = np.zeros(layer.csr.padded_shape[0], dtype=np.int64)
        padded[: layer.out_features] = layer.bias_raw
        assert bias == padded.tolist()
        # Each raw value becomes an ac_fixed by setting its bits.
        assert f"codesign_from_raw<{layer.name}_weight_t>({layer.name}_weights[" in source
        assert f"codesign_from_raw<{layer.name}_accum_t>({layer.name}_bias[r])" in source


def test_all_zero_layer_has_no_multiplier(graph: Graph, board: Board) -> None:
    source = text(emit_hls(graph, board), "hls/layers/fc3.h")
    assert "fc3_weights" not in source and "x_padded" not in source
    assert "for (int cycle" not in source
    assert "acc[r] = codesign_from_raw<fc3_accum_t>(fc3_bias[r]);" in source
    assert "y[r] = acc[r];" in source  # no activation


def test_relu_only_where_asked(graph: Graph, board: Board) -> None:
    plan = emit_hls(graph, board)
    assert "acc[r] < 0 ?" in text(plan, "hls/layers/fc1.h")
    assert "acc[r] < 0 ?" not in text(plan, "hls/layers/fc3.h")


def test_types_follow_the_formats(graph: Graph, board: Board) -> None:
    types = text(emit_hls(graph, board), "hls/net_types.h")
    for layer in graph.layers:
        assert layer.formats is not None
        for role in ("input", "weight", "accum", "output"):
            fixed = getattr(layer.formats, role)
            assert f"typedef {ac_fixed(fixed)} {layer.name}_{role}_t;" in types


def test_component_and_testbench(graph: Graph, board: Board) -> None:
    plan = emit_hls(graph, board)
    header = text(plan, "hls/net.h")
    intel_only = header.split("#ifdef __INTELFPGA_COMPILER__")[1].split("#else")[0]
    assert "hls_component_ii(3)" in intel_only  # the largest reuse factor
    assert "component" in intel_only and "hls_scheduler_target_fmax_mhz(200)" in intel_only
    # Streaming interfaces: one word per vector in, one out.
    assert (
        "CODESIGN_COMPONENT void net(ihc::stream_in<net_input_t> &input_stream, "
        "ihc::stream_out<net_output_t> &output_stream);" in header
    )
    types = text(plan, "hls/net_types.h")
    assert '#include "HLS/hls.h"' in types.split("#ifdef __INTELFPGA_COMPILER__")[0]
    assert '#include "HLS/ac_fixed.h"' in types.split("#ifdef __INTELFPGA_COMPILER__")[1]
    source = text(plan, "hls/net.cpp")
    calls = re.findall(r"::(\w+)\((\S+), (\S+)\);", source)
    assert calls == [
        ("fc1", "input.data", "fc1_out"),
        ("fc2", "fc1_out", "fc2_out"),
        ("fc3", "fc2_out", "output.data"),
    ]
    testbench = text(plan, "hls/tb_net.cpp")
    for layer in graph.layers:
        assert f'"/layers/{layer.name}.txt"' in testbench
    assert "input_stream.read()" in source and "output_stream.write(output);" in source
    assert "::net(input_stream, output_stream)" in testbench and "set_slc" in testbench
    # The layers (and their weight tables) are compiled once, in the component's source.
    assert '#include "layers/' not in testbench and '#include "layers/fc1.h"' in source
    for layer in graph.layers:
        assert f"\nvoid {layer.name}(const {layer.name}_input_t x[" in header


def test_makefile_targets_the_board(graph: Graph, board: Board) -> None:
    makefile = text(emit_hls(graph, board), "hls/Makefile")
    for target in ("csim:", "csim-build:", "emu:", "fpga:", "clean:"):
        assert f"\n{target}" in makefile
    # no path of this machine: the default is found through Python when make runs
    assert str(ac_types_include()) not in makefile
    assert "ifeq ($(origin AC_TYPES), undefined)" in makefile
    assert "VECTORS      ?= ../vectors" in makefile
    assert "-march=$(HLS_TARGET) --clock $(CLOCK)" in makefile
    assert "HLS_TARGET := Arria10" in makefile and "CLOCK      := 5ns" in makefile
    assert "-march=x86-64" in makefile and "-std=c++17" in makefile
    readme = text(emit_hls(graph, board), "hls/README.md")
    assert board.name in readme and "bit-accurate" in readme


def test_other_board_clock(graph: Graph) -> None:
    board = load_board("stratix10-gx2800")
    plan = emit_hls(graph, board)
    assert f"HLS_TARGET := {board.hls_target}" in text(plan, "hls/Makefile")
    assert "CLOCK      := 4ns" in text(plan, "hls/Makefile")
    assert "hls_scheduler_target_fmax_mhz(250)" in text(plan, "hls/net.h")


def test_balanced_sparse_mlp_weight_count(board: Board) -> None:
    graph, _ = mlp(3, [64, 64, 32, 10], 1, keep_per_row=[4, 4, 2])
    plan = emit_hls(graph, board)
    for layer, kept in zip(graph.layers, (64 * 4, 32 * 4, 10 * 2), strict=True):
        source = text(plan, f"hls/layers/{layer.name}.h")
        assert len(numbers(array_body(source, f"{layer.name}_weights"))) == kept * 4
        assert f"tile < {kept}" in source and "cycle < 1;" in source


@pytest.mark.parametrize("name", ["int", "component", "tb", "module", "1fc", "ac_layer", "a__b"])
def test_unsafe_layer_names_are_refused(graph: Graph, board: Board, name: str) -> None:
    layers = (replace(graph.layers[0], name=name), *graph.layers[1:])
    with pytest.raises(ValueError, match="safe_identifier"):
        emit_hls(replace(graph, layers=layers), board)


def test_layer_named_like_the_network_is_refused(graph: Graph, board: Board) -> None:
    layers = (replace(graph.layers[0], name="net"), *graph.layers[1:])
    with pytest.raises(ValueError, match="both 'net'"):
        emit_hls(replace(graph, layers=layers), board)


def test_format_chain_must_hold(graph: Graph, board: Board) -> None:
    second = graph.layers[1]
    assert second.formats is not None
    wider = replace(second.formats, input=FixedPoint(18, 6))
    layers = (graph.layers[0], replace(second, formats=wider), graph.layers[2])
    with pytest.raises(ValueError, match="input format"):
        emit_hls(replace(graph, layers=layers), board)


# --- Conv2d, Pool2d, Add, LeakyReLU ------------------------------------------------------------


@pytest.fixture(scope="module")
def resblock() -> Graph:
    """stem conv, conv1, conv2, add(stem, conv2) with LeakyReLU, avg pool, fc; RF 2."""
    return residual_graph(reuse=2)[0]


@pytest.fixture(scope="module")
def mixed() -> Graph:
    """pre conv, add(<input>, pre), conv (3x2, stride 1x2, LeakyReLU), max pool 2x1, fc1 with
    LeakyReLU, fc2; RF 1."""
    return mixed_graph(reuse=1)[0]


def test_one_header_per_layer_of_every_kind(resblock: Graph, board: Board) -> None:
    plan = emit_hls(resblock, board)
    headers = sorted(path for path in plan.files if path.startswith("hls/layers/"))
    assert headers == sorted(f"hls/layers/{layer.name}.h" for layer in resblock.layers)
    assert "average pooling 2x2" in text(plan, "hls/layers/pool.h")
    assert "y = act(a + b)" in text(plan, "hls/layers/add.h")


def test_conv_kernel_runs_the_tile_schedule_at_every_position(
    resblock: Graph, board: Board
) -> None:
    plan = emit_hls(resblock, board)
    conv = resblock.layers[1]
    assert isinstance(conv, Conv2d) and conv.csr is not None and conv.tiling is not None
    g = conv.conv
    source = text(plan, f"hls/layers/{conv.name}.h")
    nnz, (br, bc) = conv.csr.nnz_blocks, conv.block
    assert nnz < conv.csr.grid[0] * conv.csr.grid[1]  # something is pruned
    assert f"{conv.name}_weights[{nnz}][{br}][{bc}]" in source
    weights = [int(v) for v in numbers(array_body(source, f"{conv.name}_weights"))]
    assert weights == conv.csr.blocks.ravel().tolist()
    assert source.count(" * x_padded[") == 1  # one product statement, in the tile schedule
    assert f"cycle < {conv.tiling.reuse_factor}" in source
    assert f"tile < {conv.tiling.tiles}" in source
    assert f"position < {g.positions}" in source
    # The patch: (channel, kernel row, kernel column) order, zero outside the input.
    assert f"x_padded[(c * {g.kernel[0]} + i) * {g.kernel[1]} + j]" in source
    assert f"row >= 0 && row < {g.in_height} && col >= 0 && col < {g.in_width}" in source
    assert f"- {g.padding[0]};" in source and f"* {g.stride[1]} - {g.padding[1]};" in source
    # The input read channel-last: (row, column, channel).
    assert f"x[(row * {g.in_width} + col) * {g.in_channels} + c]" in source
    # Outputs channel-last, a position's channels together; ReLU, then the cast.
    assert f"y[position * {conv.shape[0]} + r] = acc[r] < 0 ?" in source


def test_leaky_relu_multiplies_by_the_raw_alpha(mixed: Graph, board: Board) -> None:
    plan = emit_hls(mixed, board)
    types = text(plan, "hls/mixed_net_types.h")
    for name, alpha in (("conv", 0.1), ("fc1", 0.3)):
        raw = alpha_raw(alpha)
        bits = raw.bit_length() + 1
        source = text(plan, f"hls/layers/{name}.h")
        assert f"codesign_from_raw<{name}_alpha_t>({raw});" in source
        assert f"codesign_leaky_relu<{name}_output_t>(acc[r], {name}_alpha)" in source
        assert f"ac_fixed<{bits}, {bits - ALPHA_FRAC}, true, AC_TRN, AC_WRAP> {name}_alpha_t;" in (
            types
        )
    assert "_alpha" not in text(plan, "hls/layers/fc2.h")  # no activation
    assert "y[r] = acc[r];" in text(plan, "hls/layers/fc2.h")


def test_conv_patch_padded_to_whole_blocks(mixed: Graph, board: Board) -> None:
    conv = mixed.layers[2]
    assert isinstance(conv, Conv2d) and conv.conv.patch == 6 and conv.block == (1, 4)
    source = text(emit_hls(mixed, board), "hls/layers/conv.h")
    assert "x_padded[8]" in source and "for (int k = 6; k < 8; ++k)" in source
    assert "(position % 4) * 2 - 0;" in source  # stride 2, no padding across columns


def test_pool_kernels(mixed: Graph, resblock: Graph, board: Board) -> None:
    max_pool = text(emit_hls(mixed, board), "hls/layers/pool.h")
    assert "if (value > best)" in max_pool and "= best;" in max_pool
    assert "out_row < 4" in max_pool and "i < 2" in max_pool and "j < 1" in max_pool
    assert "reciprocal" not in max_pool
    pool = resblock.layers[4]
    assert isinstance(pool, Pool2d)
    plan = emit_hls(resblock, board)
    average = text(plan, "hls/layers/pool.h")
    assert "codesign_from_raw<pool_reciprocal_t>(16384);" in average  # 2^16 / 4
    assert "= sum * reciprocal;" in average
    types = text(plan, "hls/resblock_types.h")
    # The sum of 4 values of s16.13 needs two more integer bits; 1/4 is u15.16.
    assert "typedef ac_fixed<18, 5, true, AC_TRN, AC_WRAP> pool_sum_t;" in types
    assert "typedef ac_fixed<15, -1, false, AC_TRN, AC_WRAP> pool_reciprocal_t;" in types


def test_add_sums_exactly_then_activates(resblock: Graph, board: Board) -> None:
    add = resblock.layers[3]
    assert isinstance(add, Add)
    a, b = add.require_input_formats()
    plan = emit_hls(resblock, board)
    source = text(plan, "hls/layers/add.h")
    assert "void add(const add_a_t a[512], const add_b_t b[512], add_output_t y[512])" in source
    assert "total += b[i];" in source
    assert "y[i] = codesign_leaky_relu<add_output_t>(total, add_alpha);" in source
    frac, integer = max(a.frac, b.frac), max(a.integer, b.integer) + 1
    types = text(plan, "hls/resblock_types.h")
    assert f"typedef ac_fixed<{integer + frac}, {integer}, true, AC_TRN, AC_WRAP> add_sum_t;" in (
        types
    )
    assert f"typedef {ac_fixed(a)} add_a_t;" in types
    assert f"typedef {ac_fixed(b)} add_b_t;" in types


def test_component_wires_the_dag(resblock: Graph, mixed: Graph, board: Board) -> None:
    plan = emit_hls(resblock, board)
    calls = re.findall(r"::(\w+)\(([^)]*)\);", text(plan, "hls/resblock.cpp"))
    assert calls == [
        ("stem", "input.data, stem_out"),
        ("conv1", "stem_out, conv1_out"),
        ("conv2", "conv1_out, conv2_out"),
        ("add", "stem_out, conv2_out, add_out"),
        ("pool", "add_out, pool_out"),
        ("fc", "pool_out, output.data"),
    ]
    testbench = text(plan, "hls/tb_resblock.cpp")
    assert "::add(stem_out, conv2_out, add_out);" in testbench
    for layer in resblock.layers:
        assert f'"/layers/{layer.name}.txt"' in testbench
    # The busiest layer reuses its tiles at 64 positions for 2 cycles each.
    assert "hls_component_ii(128)" in text(plan, "hls/resblock.h")
    header = text(emit_hls(mixed, board), "hls/mixed_net.h")
    assert "stem_input_t" not in header and "pre_input_t data[64];" in header
    source = text(emit_hls(mixed, board), "hls/mixed_net.cpp")
    assert "::add(input.data, pre_out, add_out);" in source  # the add reads the network input


def test_add_input_format_must_match_its_producer(resblock: Graph, board: Board) -> None:
    add = resblock.layers[3]
    assert isinstance(add, Add) and add.input_formats is not None
    wrong = (add.input_formats[0], FixedPoint(16, 4))
    layers = (*resblock.layers[:3], replace(add, input_formats=wrong), *resblock.layers[4:])
    with pytest.raises(ValueError, match="add: input format s16.12 differs .* layer conv2"):
        emit_hls(replace(resblock, layers=layers), board)


@pytest.mark.parametrize("index", [3, 4])
def test_unsafe_pool_and_add_names_are_refused(resblock: Graph, board: Board, index: int) -> None:
    layers = list(resblock.layers)
    layers[index] = replace(layers[index], name="int")
    with pytest.raises(ValueError, match="safe_identifier"):
        emit_hls(replace(resblock, layers=tuple(layers)), board)


def test_conv_output_is_deterministic_and_survives_serialisation(
    resblock: Graph, board: Board, tmp_path: Path
) -> None:
    plan = emit_hls(resblock, board)
    assert emit_hls(resblock, board).files == plan.files
    write_plan(BuildPlan(graph_to_files(resblock)), tmp_path / "project")
    assert emit_hls(load_graph(tmp_path / "project"), board).digest() == plan.digest()
