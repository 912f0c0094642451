"""hls4ml interoperability: the dense baseline through hls4ml's Quartus backend agrees bit for bit
with our C simulation, and our block-sparse kernel registered inside hls4ml predicts the same
outputs as our own project. Each compiled case is one small hls4ml g++ build (2-4 s here).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from _graphs import residual_graph
from _hls_cases import block_sparse, build_graph, dense, mlp, write_project

from codesign import reference, vectors
from codesign.baseline import hls4ml_dense, hls4ml_sparse
from codesign.boards import Board, load_board
from codesign.cli import main
from codesign.errors import CodesignError
from codesign.ir import Activation, FixedPoint, Graph
from codesign.ir.fixed import Overflow, Rounding
from codesign.sim.csim import csim_output_dir, run_csim

RECORD_KEYS = {
    "schema",
    "hls4ml_version",
    "backend",
    "layers",
    "multipliers",
    "outputs_match",
    "mismatches",
    "matches_reference",
    "n_vectors",
    "build_seconds",
}


@pytest.fixture(scope="module")
def board() -> Board:
    return load_board("arria10-gx1150")


def mixed_graph() -> tuple[Graph, np.ndarray]:
    """Sparse 1x4 at RF 2, a dense layer (nothing pruned) at RF 3, sparse 2x2 on 5 rows with
    idle tile slots at RF 3, no activation on the last layer."""
    rng = np.random.default_rng(21)
    layers = [
        dense("fc1", block_sparse(rng, (12, 16), (1, 4), keep_per_row=2), rng),
        dense("fc2", block_sparse(rng, (10, 12), (1, 4)), rng),
        dense("head", block_sparse(rng, (5, 10), (2, 2), density=0.6), rng, (2, 2), relu=False),
    ]
    graph = build_graph(
        "mixed_net", layers, {"fc1": 2, "fc2": 3, "head": 3}, rng.normal(size=(256, 16))
    )
    return graph, rng.normal(size=(32, 16))


def test_precisions_spell_our_formats() -> None:
    spell = hls4ml_dense.hls4ml_precision
    assert spell(FixedPoint(16, 6)) == "fixed<16,6,RND,SAT>"
    assert spell(FixedPoint(30, 9, rounding=Rounding.TRN, overflow=Overflow.WRAP)) == (
        "fixed<30,9,TRN,WRAP>"
    )
    assert spell(FixedPoint(8, -2, signed=False)) == "ufixed<8,-2,RND,SAT>"


def test_sparse_attributes_follow_our_compress_and_tile_passes() -> None:
    graph, _ = mixed_graph()
    for layer in graph.layers:
        csr, tiling = layer.require_csr(), layer.require_tiling()
        attributes = hls4ml_sparse.block_sparse_attributes(
            layer.weight, layer.bias, layer.block, tiling.reuse_factor
        )
        assert attributes["nnz_blocks"] == csr.nnz_blocks
        assert attributes["block_col"] == csr.col_idx.tolist()
        assert attributes["slot_block"] == tiling.slots.tolist()
        assert attributes["tiles"] == tiling.tiles and attributes["cycles"] == tiling.reuse_factor
        kept = np.asarray(attributes["weight_data"]).reshape(csr.blocks.shape)
        assert (kept != 0).tolist() == (csr.blocks != 0).tolist()


@pytest.mark.csim
def test_dense_baseline_agrees_bit_for_bit_with_our_csim(
    toolchain: None, board: Board, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph, x = mixed_graph()
    project = write_project(graph, x, board, tmp_path / "project")

    assert main(["baseline", str(project)]) == 0

    record = json.loads((project / hls4ml_dense.RECORD).read_text())
    assert set(record) == RECORD_KEYS
    assert record["schema"] == "codesign.hls4ml/1"
    assert record["outputs_match"] is True and record["mismatches"] == 0
    assert record["matches_reference"] is True
    assert record["n_vectors"] == len(x)
    assert record["build_seconds"] > 0
    for entry, layer in zip(record["layers"], graph.layers, strict=True):
        assert entry["name"] == layer.name
        rf = entry["reuse_factor"]
        assert entry["multipliers"] == math.ceil(layer.in_features * layer.out_features / rf)
    assert (project / "hls4ml" / "firmware" / "myproject.cpp").is_file()
    assert "bit-exact to ours" in capsys.readouterr().out
    # Our C simulation ran for the comparison; the check counts only on non-trivial outputs.
    traces = reference.run(graph, vectors.load_inputs(project))
    measures = reference.nontrivial(traces, graph)
    assert measures["nonzero_output_fraction"] >= 0.5 and measures["saturated_fraction"] < 0.01


@pytest.mark.csim
def test_the_rounding_mode_reaches_hls4ml(toolchain: None, tmp_path: Path) -> None:
    """Negative control: outputs truncated instead of rounded no longer match our outputs."""
    graph, x = mlp(4, [16, 12, 5], 1, name="trn_net")
    truncating = replace(
        graph,
        layers=tuple(
            replace(
                layer,
                formats=replace(
                    layer.require_formats(),
                    output=replace(layer.require_formats().output, rounding=Rounding.TRN),
                ),
            )
            for layer in graph.layers
        ),
    )
    x_raw = reference.quantize_inputs(graph, x)
    model = hls4ml_dense.convert(truncating, tmp_path / "hls4ml")
    hls4ml_dense.compile_model(model)
    got = hls4ml_dense.predict_raw(model, graph, x_raw)

    assert (got == reference.run(truncating, x_raw)[-1].output).all()
    assert (got != reference.run(graph, x_raw)[-1].output).any()


@pytest.mark.csim
def test_our_sparse_kernel_inside_hls4ml_predicts_our_outputs(
    toolchain: None, board: Board, tmp_path: Path
) -> None:
    graph, x = mixed_graph()
    project = write_project(graph, x, board, tmp_path / "project")
    assert run_csim(project, rebuild=False)["outputs_match"] is True
    ours = vectors.parse_rows((csim_output_dir(project) / "network.txt").read_text())

    model = hls4ml_sparse.convert_sparse(graph, tmp_path / "hls4ml_sparse")
    # fc2 has no pruned block: it stays hls4ml's Dense.
    assert hls4ml_sparse.sparse_layers(model) == ["fc1", "head"]
    hls4ml_dense.compile_model(model)
    got = hls4ml_dense.predict_raw(model, graph, vectors.load_inputs(project))

    assert got.shape == ours.shape and (got == ours).all()
    header = tmp_path / "hls4ml_sparse" / "firmware" / "nnet_utils" / hls4ml_sparse.HEADER
    assert header.is_file()
    source = (tmp_path / "hls4ml_sparse" / "firmware" / "myproject.cpp").read_text()
    assert source.count("nnet::block_sparse_dense<") == 2


def test_baselines_refuse_layers_they_do_not_map(
    board: Board, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hls4ml baselines stay Dense-only: a Conv2d (or pooling, an add, a LeakyReLU) is a
    clear error before anything is built, not a wrong network."""
    graph, x = residual_graph(reuse=1)
    unsupported = "layer 'stem' (stem) is a conv2d layer"
    with pytest.raises(CodesignError, match=re.escape(unsupported)):
        hls4ml_dense.convert(graph, tmp_path / "dense")
    with pytest.raises(CodesignError, match=re.escape(unsupported)):
        hls4ml_sparse.convert_sparse(graph, tmp_path / "sparse")
    project = write_project(graph, x, board, tmp_path / "project")
    assert main(["baseline", str(project)]) == 2
    assert unsupported in capsys.readouterr().err
    assert not (project / "hls4ml").exists() and not (project / "hls" / "build").exists()

    leaky, _ = mlp(4, [16, 12, 5], 1)
    first = replace(leaky.layers[0], activation=Activation.LEAKY_RELU, alpha=0.1)
    leaky = replace(leaky, layers=(first, *leaky.layers[1:]))
    with pytest.raises(CodesignError, match="layer 'fc1' .* has leaky_relu"):
        hls4ml_dense.convert(leaky, tmp_path / "leaky")
