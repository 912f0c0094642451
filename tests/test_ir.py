"""IR passes (quantise, compress, tile), serialisation and the reference."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from codesign import reference
from codesign.emit.plan import BuildPlan, write_plan
from codesign.engines.matrix.ir import tile as tile_layer
from codesign.ir.blocks import block_mask
from codesign.ir.graph import Graph
from codesign.records.design import graph_text, graph_to_files, load_graph
from tests.conftest import make_graph


def test_compress_keeps_exactly_the_nonzero_blocks(small_graph: tuple[Graph, np.ndarray]) -> None:
    graph, _ = small_graph
    for layer in graph.layers:
        csr = layer.require_csr()
        assert csr.nnz_blocks == int(block_mask(layer.weight, layer.block).sum())
        assert np.array_equal(csr.to_dense(), layer.weight_raw)
        assert csr.row_ptr[-1] == csr.nnz_blocks
        for r in range(csr.grid[0]):
            cols = csr.col_idx[csr.row_ptr[r] : csr.row_ptr[r + 1]]
            assert np.all(np.diff(cols) > 0)


def test_tiling_deals_every_block_once() -> None:
    graph, _ = make_graph([(16, 24)], block=(1, 4), keep=0.5, reuse=1)
    layer = graph.layers[0]
    nnz = layer.require_csr().nnz_blocks
    for reuse in (1, 2, 3, 5, nnz, nnz + 7):
        tiling = tile_layer(layer, reuse).require_tiling()
        used = tiling.slots[tiling.slots >= 0]
        assert sorted(used.tolist()) == list(range(nnz))
        assert tiling.tiles == -(-nnz // min(reuse, nnz))
        # the RF shrinks to what those tiles need: no tile idles a whole cycle
        assert tiling.reuse_factor == -(-nnz // tiling.tiles) <= min(reuse, nnz)
        assert int(np.sum(tiling.slots < 0)) < tiling.tiles


def test_requested_reuse_shrinks_to_what_the_tiles_need() -> None:
    graph, _ = make_graph([(16, 16)], block=(1, 4), keep=1.0, reuse=1)
    layer = graph.layers[0]
    assert layer.require_csr().nnz_blocks == 64
    tiling = tile_layer(layer, 30).require_tiling()
    assert (tiling.tiles, tiling.reuse_factor) == (3, 22)  # not 30: 64 blocks on 3 tiles


def test_all_zero_layer_gets_one_idle_tile() -> None:
    graph, _ = make_graph([(8, 8)], keep=0.0)
    tiling = graph.layers[0].require_tiling()
    assert tiling.tiles == 1 and tiling.slots.tolist() == [[-1]]


def test_reference_tracks_float_model(small_graph: tuple[Graph, np.ndarray]) -> None:
    graph, x = small_graph
    fixed = reference.predict(graph, x)
    h = x
    for layer in graph.layers:
        h = h @ layer.weight.T + layer.bias
        if layer.activation.value == "relu":
            h = np.maximum(h, 0)
    assert np.abs(fixed - h).max() < 0.05
    traces = reference.run(graph, reference.quantize_inputs(graph, x))
    stats = reference.nontrivial(traces, graph)
    assert stats["nonzero_output_fraction"] > 0.5 and stats["saturated_fraction"] < 0.01


def test_design_files_round_trip(small_graph: tuple[Graph, np.ndarray], tmp_path: Path) -> None:
    graph, x = small_graph
    write_plan(BuildPlan(graph_to_files(graph)), tmp_path / "p")
    loaded = load_graph(tmp_path / "p")
    assert graph_text(loaded) == graph_text(graph)
    raw = reference.quantize_inputs(graph, x)
    for a, b in zip(reference.run(graph, raw), reference.run(loaded, raw), strict=True):
        assert np.array_equal(a.output, b.output)


def test_graph_text_is_stable(small_graph: tuple[Graph, np.ndarray]) -> None:
    graph, _ = small_graph
    assert graph_text(graph).splitlines()[1].split() == [
        "dense",
        "fc1",
        "(net.fc1)",
        "10x13",
        "act=relu",
        "block=2x4",
        "in=s16.15",
        "w=s8.7",
        "acc=s28.22",
        "out=s16.12",
        f"nnz_blocks={graph.layers[0].require_csr().nnz_blocks}",
        "rf=2",
        f"tiles={graph.layers[0].require_tiling().tiles}",
    ]


def test_formats_the_kernels_cannot_implement_exactly_are_refused() -> None:
    import pytest

    from codesign.boards import load_board
    from codesign.emit.hls import emit_hls
    from codesign.ir.fixed import FixedPoint

    graph, _ = make_graph([(8, 12)], keep=0.5)
    layer = graph.layers[0]
    formats = layer.require_formats()
    assert layer.check_exact_formats() == formats
    dropped_bit = replace(layer, formats=replace(formats, accum=FixedPoint(30, 30 - 3)))
    with pytest.raises(ValueError, match="fraction bits"):
        dropped_bit.check_exact_formats()
    with pytest.raises(ValueError, match="fraction bits"):
        emit_hls(replace(graph, layers=(dropped_bit,)), load_board("arria10-gx1150"))
    wide = formats.bias.width + 5
    wide_bias = FixedPoint(wide, wide - formats.accum.frac)
    saturating = FixedPoint(formats.accum.width, formats.accum.integer)  # AC_SAT
    with pytest.raises(ValueError, match="no wider than the accumulator"):
        replace(
            layer, formats=replace(formats, bias=wide_bias, accum=saturating)
        ).check_exact_formats()
    # a wrapping accumulator takes the sum modulo its width, a wider bias included
    replace(layer, formats=replace(formats, bias=wide_bias)).check_exact_formats()
