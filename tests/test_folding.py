"""The folding pass: every layer's RF and every stream's width chosen for one interval.

Pure-Python checks of the pass (widths, target interval, fewest DSP blocks, the smallest
interval that fits, errors), then the RTL: the jet-tagging-size MLP (16-64-32-32-5, hls4ml's
jet tagger) at 75 % block sparsity fully parallel (RF 1, whole vectors in one beat) accepts
a vector every cycle, and a residual CNN folded to one interval streams every value at its
own width; both bit-exact, simulated cycles equal to the closed forms.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from _graphs import prune_model, residual_graph
from _rtl_cases import assert_rtlsim_ok, require_verilator, write_project
from conftest import make_graph
from torch import nn

from codesign import passes
from codesign.boards import load_board
from codesign.cost import fits_board, network_cost, network_cycles
from codesign.emit.rtl_views import streams
from codesign.errors import FormatError
from codesign.frontend.lower import lower
from codesign.ir.graph import GRAPH_INPUT, Graph, StreamWidths
from codesign.options import FoldedReuse, UniformFitReuse
from codesign.passes import fold, fold_to_interval, smallest_interval, tile
from codesign.records.design import graph_to_files, load_graph
from codesign.sim.rtlsim import simulate

JET = (16, 64, 32, 32, 5)


def jet_graph(reuse: int | FoldedReuse, vectors: int = 8) -> tuple[Graph, np.ndarray]:
    """The jet-tagging-size MLP with seeded weights, 75 % balanced 1x4 blocks, on seeded
    normal inputs (no jet data exists offline; bit-exactness does not need it)."""
    torch.manual_seed(0)
    sizes = zip(JET, JET[1:], strict=False)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for index, (a, b) in enumerate(sizes):
        layers[f"fc{index + 1}"] = nn.Linear(a, b)
        if index < len(JET) - 2:
            layers[f"relu{index + 1}"] = nn.ReLU()
    model = prune_model(nn.Sequential(layers), 0.75, 0)
    x = np.random.default_rng(0).normal(size=(256, JET[0]))
    options = passes.BuildOptions(x[:192], block=(1, 4), reuse=reuse)
    return passes.build(lower(model, "jet", (JET[0],)), options), x[192 : 192 + vectors]


def test_folding_sets_every_stream_to_the_fewest_values_that_meet_the_interval() -> None:
    graph, _ = make_graph([(64, 64), (32, 64), (10, 32)], keep=0.25)
    for interval in (1, 3, 7, 16, 40):
        folded = fold_to_interval(graph, interval)
        cycles = network_cycles(folded)
        assert cycles.est_ii <= max(interval, 1)
        previous = None
        for layer, c in zip(folded.layers, cycles.layers, strict=True):
            widths = layer.widths
            # the fewest values that meet the interval, at least 4 (or the whole vector)
            wanted = max(-(-layer.out_features // interval), 4)
            assert widths.output == min(wanted, layer.out_features)
            assert c.out_beats <= interval and c.in_beats <= interval
            assert c.compute_cycles <= interval
            # a stream has one width: the consumer reads at its producer's
            assert previous is None or widths.input == previous
            previous = widths.output
        assert folded.layers[0].widths.input == max(-(-64 // interval), 4)
    full = fold_to_interval(graph, 1)
    assert [layer.widths for layer in full.layers] == [
        StreamWidths(64, 64),
        StreamWidths(64, 32),
        StreamWidths(32, 10),
    ]


def test_a_target_interval_takes_the_fewest_multipliers_that_meet_it() -> None:
    graph, _ = make_graph([(64, 64), (32, 64), (10, 32)], keep=0.25)
    board = load_board("arria10-gx1150")
    multipliers = []
    for target in (1, 2, 4, 8, 16):
        folded = fold(graph, None, FoldedReuse(target))
        cost = network_cost(folded, board)
        assert cost.est_ii <= target
        multipliers.append(cost.multipliers)
        # fewer tiles would break the target: the smallest RF that needs fewer tiles,
        # ceil(nnz / (tiles - 1)), takes more than `target` cycles a vector
        for layer in folded.layers:
            tiles = layer.require_tiling().tiles
            nnz = layer.require_csr().nnz_blocks
            assert tiles == 1 or layer.positions * -(-nnz // (tiles - 1)) > target, layer.name
    assert multipliers == sorted(multipliers, reverse=True)
    assert multipliers[0] > 4 * multipliers[-1]


def test_the_default_folding_is_the_smallest_interval_that_fits() -> None:
    graph, _ = make_graph([(64, 64), (32, 64), (10, 32)], keep=1.0)
    board = load_board("cyclone10-gx220")  # 192 DSP blocks: the dense MLP must fold
    interval = smallest_interval(graph, board)
    folded = fold(graph, board, FoldedReuse())
    assert network_cost(folded, board).est_ii == interval
    assert fits_board(folded, board)
    assert not fits_board(fold_to_interval(graph, interval - 1), board)
    # the uniform rule needs the same RFs here, and its 4-value streams are not shorter
    uniform = network_cost(fold(graph, board, UniformFitReuse()), board)
    assert interval <= uniform.est_ii
    assert network_cost(folded, board).est_cycles <= uniform.est_cycles
    # on the GX 1150 the uniform rule is bound by 64 inputs at 4 a beat, the folding is not
    big = load_board("arria10-gx1150")
    uniform = network_cost(fold(graph, big, UniformFitReuse()), big)
    folded_big = network_cost(fold(graph, big, FoldedReuse()), big)
    assert (uniform.est_ii, folded_big.est_ii) == (16, 3)
    assert folded_big.est_dsp <= uniform.est_dsp
    assert folded_big.est_cycles < uniform.est_cycles


def test_widths_survive_design_json_and_bad_widths_are_refused(tmp_path: Path) -> None:
    graph, _ = make_graph([(64, 64), (32, 64), (10, 32)], keep=0.5)
    folded = fold_to_interval(graph, 5)
    for name, content in graph_to_files(folded).items():
        (tmp_path / name).write_bytes(content)
    loaded = load_graph(tmp_path)
    assert [layer.widths for layer in loaded.layers] == [layer.widths for layer in folded.layers]
    with pytest.raises(ValueError, match="values per beat must be at least 1"):
        StreamWidths(0, 4)
    first, second, third = (layer.name for layer in graph.layers)
    widths = {GRAPH_INPUT: 8, first: 3, second: 2, third: 2}
    mismatched = tile(graph, 1, widths)
    assert mismatched.layers[1].widths == StreamWidths(3, 2)  # it reads the first's stream
    # a layer whose input width is not its producer's stream width cannot be wired
    broken = replace(
        mismatched,
        layers=(mismatched.layers[0], replace(mismatched.layers[1], widths=StreamWidths(4, 2)),
                mismatched.layers[2]),
    )  # fmt: skip
    with pytest.raises(FormatError, match=f"{first} streams 3 values per beat, {second} reads 4"):
        streams(broken)


def test_add_operands_stream_at_one_width() -> None:
    graph, _ = residual_graph(reuse=2, vectors=2)
    add = graph.layer("add")
    widths = {GRAPH_INPUT: 1, **{layer.name: 4 for layer in graph.layers}}
    sources = graph.inputs_of(add)
    widths[sources[0]] = 8
    with pytest.raises(ValueError, match=f"layer {add.name}: its operands stream at different"):
        tile(graph, 2, widths)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_verilator()
    return tmp_path_factory.mktemp("codesign-cache")


@pytest.mark.rtlsim
def test_fully_parallel_jet_mlp_takes_a_vector_every_cycle(cache: Path, tmp_path: Path) -> None:
    """issue 13's target: 16-64-32-32-5 at 75 % and RF 1 on the GX 1150, interval 1 and
    latency at most 16 cycles (with 4-value streams: 16 and 42)."""
    graph, x = jet_graph(FoldedReuse(1))
    assert [layer.require_tiling().reuse_factor for layer in graph.layers] == [1] * 4
    assert graph.layers[0].widths.input == 16 and graph.layers[-1].widths.output == 5
    result = simulate(write_project(graph, x, tmp_path / "jet"), cache_dir=cache)
    assert_rtlsim_ok(result)
    network = result["network"]
    assert network["sim_ii"] == network["est_ii"] == 1
    assert network["sim_cycles"] == network["est_cycles"] <= 16
    assert network["utilisation"] == pytest.approx(1.0)
    assert network["efficiency"] == 1.0


@pytest.mark.rtlsim
def test_residual_cnn_folded_to_one_interval_streams_each_value_at_its_width(
    cache: Path, tmp_path: Path
) -> None:
    """conv, conv, conv + skip, LeakyReLU, avg pool, linear at one interval: the convs bound
    it at their positions (one position a cycle), every stream at the width that meets it."""
    graph, x = residual_graph(reuse=FoldedReuse(64), vectors=6)
    widths = [layer.widths for layer in graph.layers]
    assert any(w.input != w.output for w in widths), widths  # maps in, pooled maps out
    assert len({w.output for w in widths}) > 1, widths
    assert network_cycles(graph).est_ii == 64
    result = simulate(write_project(graph, x, tmp_path / "p"), cache_dir=cache)
    assert_rtlsim_ok(result)
    for entry in [*result["layers"], result["network"]]:
        assert (entry["sim_cycles"], entry["sim_ii"]) == (entry["est_cycles"], entry["est_ii"])
