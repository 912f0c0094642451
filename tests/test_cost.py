"""Resource and energy models (codesign.cost): packing rules, counts, the fit check."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from codesign.boards import DEFAULT_MAX_UTILISATION, load_board
from codesign.cost import (
    check_fit,
    fits_board,
    layer_energy,
    layer_resources,
    network_resources,
)
from codesign.engines import matrix_layers
from codesign.engines.energy import (
    SRAM_READ_PJ_PER_BIT,
    add_energy_pj,
    multiply_energy_pj,
    static_watts,
)
from codesign.engines.stream import index_bits, mux_alms, place_rom
from codesign.errors import BoardError
from codesign.ir.graph import Conv2d
from codesign.passes import tile
from tests.conftest import make_graph

A10 = load_board("arria10-gx1150")


def test_rom_placement_follows_the_stated_rules() -> None:
    assert place_rom("w", 1, 4096, A10).placement == "constant"
    shallow = place_rom("w", 5, 45, A10)
    assert (shallow.placement, shallow.mlabs, shallow.m20k_blocks) == ("mlab", 3, 0)
    deep = place_rom("w", 600, 40, A10)  # 1Kx20 needs 2 blocks, 512x40 needs 2 as well
    assert (deep.placement, deep.m20k_blocks) == ("m20k", 2)
    assert place_rom("w", 2048, 10, A10).m20k_blocks == 1  # the 2Kx10 mode
    assert place_rom("w", 16384, 1, A10).m20k_blocks == 1
    # 33 to 64 words: two MLABs deep and a 2:1 select per bit, or an M20K, whichever takes
    # the smaller share of the board
    window = place_rom("w", 58, 320, A10)  # a conv window frame pair: 8 M20K in 512x40
    assert (window.placement, window.mlabs, window.select_alms) == ("mlab", 32, 160)
    assert window.mlab_alms * A10.m20k_blocks <= 8 * A10.alms
    assert place_rom("w", 65, 20, A10).placement == "m20k"  # deeper than any MLAB mode
    few_alms = replace(A10, alms=window.mlab_alms * A10.m20k_blocks // 8 - 1)
    assert place_rom("w", 58, 320, few_alms).placement == "m20k"


def test_mux_and_index_widths() -> None:
    assert [mux_alms(n) for n in (1, 2, 4, 5, 7, 16)] == [0, 1, 1, 2, 2, 5]
    assert [index_bits(n) for n in (1, 2, 3, 4, 5, 16, 17)] == [1, 1, 2, 2, 3, 4, 5]


def test_layer_counts_follow_the_tiling() -> None:
    graph, _ = make_graph([(16, 32)], block=(1, 4), keep=0.5, reuse=3, seed=1)
    layer = graph.layers[0]
    csr, tiling = layer.require_csr(), layer.require_tiling()
    estimate = layer_resources(layer, A10)
    assert estimate.multipliers == tiling.tiles * 4
    assert estimate.dsp_blocks == -(-estimate.multipliers // 2)
    weights, schedule = estimate.memories
    w_bits = layer.require_formats().weight.width
    assert (weights.depth, weights.width) == (tiling.reuse_factor, tiling.tiles * 4 * w_bits)
    assert schedule.width == tiling.tiles * (1 + index_bits(csr.grid[0]) + index_bits(csr.grid[1]))
    assert weights.placement == "mlab" and estimate.mlabs == weights.mlabs + schedule.mlabs
    assert estimate.alm_breakdown["rom_mlab"] == 10 * estimate.mlabs
    assert estimate.alms >= estimate.registers / 4


def test_fully_spatial_layer_has_constant_weights_and_only_the_frame_select() -> None:
    graph, _ = make_graph([(8, 16)], block=(1, 4), keep=0.5, reuse=1)
    layer = graph.layers[0]
    estimate = layer_resources(layer, A10)
    assert all(memory.placement == "constant" for memory in estimate.memories)
    assert estimate.m20k_blocks == 0 and estimate.mlabs == 0
    # each input read picks one of the two input frames: one ALM per bit, no column mux
    x_bits = layer.require_formats().input.width
    columns = np.unique(layer.require_csr().col_idx).size
    assert estimate.alm_breakdown["input_mux"] == columns * 4 * x_bits
    folded = layer_resources(tile(graph, 4).layers[0], A10)
    tiles = tile(graph, 4).layers[0].require_tiling().tiles
    # at RF 4 a tile's column varies in at most 2 bits (4 block columns): an 8:1 mux at most
    assert 0 < folded.alm_breakdown["input_mux"] <= tiles * 4 * x_bits * mux_alms(2 * 4)


def test_constant_weights_take_a_dsp_only_when_wide_enough() -> None:
    from codesign.engines.matrix.cost import _constant_bits, constant_products

    assert [_constant_bits(v) for v in (1, -1, 2, 3, -3, 6, 5, -5, 7, 12, -128)] == [
        2, 1, 2, 3, 3, 3, 4, 4, 4, 3, 1,
    ]  # fmt: skip
    graph, _ = make_graph([(8, 16)], block=(1, 4), keep=1.0, reuse=1, seed=3)
    layer = graph.layers[0]
    csr = layer.require_csr()
    values = [(int(k) * 4 + j, int(v)) for k, b in zip(csr.col_idx, csr.blocks, strict=True)
              for (_, j), v in np.ndenumerate(b) if v != 0]  # fmt: skip
    wide = {pair for pair in values if _constant_bits(pair[1]) >= 4}
    dsp, adders = constant_products(layer)
    assert dsp == len(wide) and dsp < layer_resources(layer, A10).multipliers
    assert layer_resources(layer, A10).dsp_blocks == -(-dsp // 2)
    assert adders == len({pair for pair in values if _constant_bits(pair[1]) == 3})
    # at RF > 1 the weights are registers: every product of a tile is a DSP multiplier
    folded = layer_resources(tile(graph, 2).layers[0], A10)
    assert folded.dsp_blocks == -(-folded.multipliers // 2)


def test_higher_reuse_trades_dsps_for_memory() -> None:
    graph, _ = make_graph([(64, 64)], keep=1.0, reuse=1)
    spatial = network_resources(graph, A10)
    folded = network_resources(tile(graph, 128), A10)  # ROMs deeper than any MLAB
    assert folded.dsp_blocks < spatial.dsp_blocks
    assert folded.m20k_blocks > 0 and spatial.m20k_blocks == 0


def test_fit_check_names_needed_and_available() -> None:
    cyclone = load_board("cyclone10-gx220")
    graph, _ = make_graph([(128, 128)], keep=1.0, reuse=1)
    estimate = network_resources(graph, cyclone)
    check = check_fit(estimate, cyclone)
    assert not check.fits
    share = estimate.dsp_blocks / cyclone.dsp_blocks
    assert (
        f"DSP blocks: needs {estimate.dsp_blocks:,} ({share:.0%}), cyclone10-gx220 has 192, "
        "of which 153 are usable"
    ) in check.message()
    assert "utilisation ceiling of 80%" in check.message()
    small, _ = make_graph([(8, 8)], keep=1.0, reuse=1)
    assert check_fit(network_resources(small, cyclone), cyclone).fits


def test_the_utilisation_ceiling_holds_designs_below_the_device() -> None:
    cyclone = load_board("cyclone10-gx220")
    assert cyclone.max_utilisation == DEFAULT_MAX_UTILISATION == 0.8
    # 160 DSP blocks: 83 % of the 192, under the device but over the 80 % ceiling
    graph, _ = make_graph([(40, 16)], keep=1.0, reuse=2)
    needed = network_resources(graph, cyclone).dsp_blocks
    assert cyclone.usable(cyclone.dsp_blocks) < needed <= cyclone.dsp_blocks
    check = check_fit(network_resources(graph, cyclone), cyclone)
    assert not check.fits and [item.resource for item in check.overflows()] == ["DSP blocks"]
    assert not fits_board(graph, cyclone)
    relaxed = cyclone.with_ceiling(1.0)
    assert check_fit(network_resources(graph, relaxed), relaxed).fits and fits_board(graph, relaxed)
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(BoardError, match="fraction in"):
            cyclone.with_ceiling(bad)


def test_energy_constants_reproduce_horowitz() -> None:
    # Horowitz, ISSCC 2014, 45 nm: 32-bit multiply 3.1 pJ, add 0.1 pJ; 8-bit multiply 0.2 pJ
    assert multiply_energy_pj(32, 32) == pytest.approx(3.1)
    assert add_energy_pj(32) == pytest.approx(0.1)
    assert multiply_energy_pj(8, 8) == pytest.approx(0.2, abs=0.02)
    assert SRAM_READ_PJ_PER_BIT * 64 == pytest.approx(10.0)
    assert static_watts(A10) == pytest.approx(1.5)


def test_layer_energy_counts_kept_blocks_only() -> None:
    dense, _ = make_graph([(16, 32)], keep=1.0, reuse=2)
    sparse, _ = make_graph([(16, 32)], keep=0.25, reuse=2)
    e_dense = layer_energy(dense.layers[0], A10)
    e_sparse = layer_energy(sparse.layers[0], A10)
    assert e_dense.macs == e_dense.dense_macs == 16 * 32
    assert e_sparse.macs == sparse.layers[0].require_csr().nnz_blocks * 4 < e_dense.macs
    assert e_sparse.dynamic_pj < e_dense.dynamic_pj
    formats = sparse.layers[0].require_formats()
    expected = e_sparse.macs * multiply_energy_pj(formats.input.width, formats.weight.width)
    assert e_sparse.multiply_pj == pytest.approx(expected)
    assert e_sparse.static_pj > 0


def test_conv_line_buffers_are_banked_per_window_lane_and_the_default_rf_fits_the_alms() -> None:
    from codesign.cost import network_cost
    from codesign.passes.fold import default_reuse_factor
    from tests._graphs import mnist_cnn_graph

    graph, _ = mnist_cnn_graph(reuse=1)
    board = load_board("cyclone10-gx220")
    conv2 = tile(graph, 4).layers[2]
    assert isinstance(conv2, Conv2d)
    (ring,) = [m for m in layer_resources(conv2, board).memories if m.name == "line_buffer"]
    tiles = conv2.require_tiling().tiles
    # the ring holds (Kh + Sh) lines of the 14 x 14 x 8 input and a beat at least, far from
    # the 1,568-value frame; the 72-value window is read in RF cycles, Bc-multiple lanes a cycle,
    # far fewer than the tiles' inputs, from banks that give each lane and each input value
    # of a beat its own: the ring is stored once, not once per lane
    from codesign.engines.matrix.cost import ring_banks
    from codesign.engines.matrix.timing import window_lanes

    g = conv2.conv
    lines = (g.kernel[0] + g.stride[0]) * g.in_width * g.in_channels
    assert lines + 4 <= conv2.line_values < conv2.in_features
    lanes = window_lanes(conv2)
    reuse = conv2.require_tiling().reuse_factor
    assert lanes * reuse >= conv2.shape[1] and lanes % 4 == 0 and lanes < tiles * 4
    banks = ring_banks(conv2)
    assert banks >= max(lanes, conv2.widths.input) and banks % 9 == 0
    assert ring.depth == -(-conv2.line_values // banks) * banks
    # a board whose usable ALMs (under the fit ceiling) end just below what the DSP-only RF
    # needs (the M20K no longer grow at a small RF: the ring is stored once)
    dsp_only = next(
        r for r in range(1, 100) if network_cost(tile(graph, r), board).est_dsp <= board.dsp_blocks
    )
    needed = network_resources(tile(graph, dsp_only), board).alms
    small = replace(board, alms=int((needed - 1) / board.max_utilisation))
    assert not check_fit(network_resources(tile(graph, dsp_only), small), small).fits
    reuse = default_reuse_factor(graph, small)
    assert reuse > dsp_only
    assert check_fit(network_resources(tile(graph, reuse), small), small).fits


def test_balanced_reuse_reaches_a_smaller_interval() -> None:
    from codesign.cost import fits_board, network_cost
    from codesign.options import BalancedReuse, parse_reuse
    from codesign.passes.fold import (
        balanced_reuse_factors,
        default_reuse_factor,
        reuse_for_interval,
    )
    from tests._graphs import mnist_cnn_graph

    assert parse_reuse("balanced") == BalancedReuse()
    board = load_board("cyclone10-gx220")
    graph, _ = mnist_cnn_graph(reuse=1)
    uniform = network_cost(tile(graph, default_reuse_factor(graph, board)), board)
    reuse = balanced_reuse_factors(graph, board)
    balanced_graph = tile(graph, reuse)
    balanced = network_cost(balanced_graph, board)
    assert fits_board(balanced_graph, board)
    assert balanced.est_ii < uniform.est_ii  # (with more DSPs: the uniform RF is set by the fc
    # layer's input multiplexers, which a large RF keeps few)
    # the streams' bound: pool1 reads 8 x 28 x 28 values at 4 a beat
    stream_bound = 8 * 28 * 28 // 4
    assert balanced.est_ii == stream_bound
    for layer in matrix_layers(balanced_graph):
        assert layer.positions * reuse[layer.name] <= balanced.est_ii
    # with fewer ALMs the interval grows to the smallest that fits, and no shorter
    needed = network_resources(balanced_graph, board).alms
    small = replace(board, alms=int((needed - 1) / board.max_utilisation))
    assert not fits_board(balanced_graph, small)
    constrained = network_cost(tile(graph, balanced_reuse_factors(graph, small)), small)
    assert constrained.est_ii > stream_bound
    assert fits_board(tile(graph, balanced_reuse_factors(graph, small)), small)
    shorter = tile(graph, reuse_for_interval(graph, constrained.est_ii - 1))
    assert not fits_board(shorter, small)


@pytest.mark.parametrize("dsp_blocks", [6, 40, 200, 1518])
def test_default_rf_bisection_finds_what_the_exact_scan_finds(
    dsp_blocks: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A layer with many candidate RFs is bisected (a 4096x4096 matrix has ~4,000): on
    boards from tiny to large it lands on the RF the one-by-one scan finds."""
    import importlib

    from codesign.engines import engine_for
    from tests._hls_cases import block_sparse, build_graph, dense

    fold = importlib.import_module("codesign.passes.fold")  # the module, not passes.fold()

    rng = np.random.default_rng(3)
    weight = block_sparse(rng, (256, 96), (1, 4), density=0.5)
    graph = build_graph("wide", [dense("fc", weight, rng)], 1, rng.normal(size=(64, 96)))
    board = replace(load_board("arria10-gx1150"), dsp_blocks=dsp_blocks)
    sizes = [engine_for(layer).max_reuse(layer) for layer in matrix_layers(graph)]
    assert len({r for s in sizes for r in fold._smallest_reuse_per_tile_count(s)}) > 64
    monkeypatch.setattr(fold, "EXACT_SCAN", 8)  # bisect beyond the eighth candidate
    bisected = fold.default_reuse_factor(graph, board)
    monkeypatch.setattr(fold, "EXACT_SCAN", 10**9)
    assert bisected == fold.default_reuse_factor(graph, board)
