"""RTL simulation of convolutional and residual graphs: Conv2d, Pool2d and Add engines.

The graphs are tests/_graphs.py's on real images (digits, MNIST), pruned to balanced 1x4
block patterns. Each case asserts bit-exact outputs in all three harness phases, latency and
interval equal to the cycle model (the engines meet it exactly), and non-trivial values. The
small CNN's conv (stride 2, padding 1, a 9-column patch not divisible by the 1x4 block) and
max pool run alone as `codesign simulate --layer` does; mnist-cnn and the residual block run
end to end, each layer also alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _graphs import (
    mixed_graph,
    mnist_cnn_graph,
    residual_graph,
    separable_graph,
    small_cnn_graph,
)
from _rtl_cases import assert_rtlsim_ok, require_verilator, write_project

from codesign.engines import matrix_layers
from codesign.ir.graph import Activation, Conv2d, Pool2d
from codesign.passes import tile
from codesign.sim.rtlsim import simulate

pytestmark = pytest.mark.rtlsim


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_verilator()
    return tmp_path_factory.mktemp("codesign-cache")


@pytest.fixture(scope="module")
def small_cnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    graph, x = small_cnn_graph(reuse=2, vectors=6)
    return write_project(graph, x, tmp_path_factory.mktemp("small_cnn"))


def assert_exact(result: dict[str, Any]) -> None:
    """Bit-exact and non-trivial (§7), and the cycle model met exactly, not only within 2."""
    assert_rtlsim_ok(result)
    for entry in [*result["layers"], result["network"]]:
        assert (entry["sim_cycles"], entry["sim_ii"]) == (entry["est_cycles"], entry["est_ii"])
        assert entry["efficiency"] is None or 0 < entry["efficiency"] <= 1.0, entry


def test_strided_padded_conv_alone(small_cnn: Path, cache: Path) -> None:
    result = simulate(small_cnn, layer="conv", cache_dir=cache)
    assert_exact(result)
    (conv,) = result["layers"]
    # 6 x (8 x 8 -> 4 x 4) at RF 2: 16 positions x 2 cycles; 16 input beats, one 6-value
    # beat a pixel. The first window (2 lines of 8 pixels, padded) is in after 3 beats, is
    # read from the ring (registered, all 9 values at RF 2) and moved to the tiles in the two
    # cycles after, the positions follow back to back, and the last pixel leaves the cycle
    # after its last compute cycle: not a whole frame in, then a whole frame out
    assert (conv["name"], conv["est_cycles"], conv["est_ii"]) == ("conv", 3 + 2 + 32 + 1, 32)
    assert result["n_vectors"] == 6
    assert (small_cnn / "rtlsim" / "conv" / "harness.log").is_file()


def test_drain_bound_conv_interval_with_few_vectors(cache: Path, tmp_path: Path) -> None:
    """At RF 1 and 2 values a beat the conv drains 48 beats (3 a pixel) but computes 16
    cycles and loads 32 beats: the drain sets the interval.

    Its line buffer takes the first vectors faster than they leave, so the interval must be
    measured where vectors leave; with 4 vectors the input side would show 32.
    """
    graph, x = small_cnn_graph(reuse=1, vectors=4)
    graph = tile(graph, 1, 2)
    result = simulate(write_project(graph, x, tmp_path / "p"), layer="conv", cache_dir=cache)
    assert_exact(result)
    (conv,) = result["layers"]
    # the drain bounds it, not the 16 compute cycles: efficiency 16 / 48
    assert (conv["est_ii"], conv["sim_ii"], conv["ideal_ii"]) == (48, 48, 16)


def test_max_pool_alone(small_cnn: Path, cache: Path) -> None:
    result = simulate(small_cnn, layer="pool", cache_dir=cache)
    assert_exact(result)
    (pool,) = result["layers"]
    # 6 x 4 x 4 -> 6 x 2 x 2: 16 input beats (the conv's pixels, 6 values each), one
    # compute cycle, 6 output beats
    assert (pool["est_cycles"], pool["est_ii"]) == (16 + 1 + 6, 16)


def test_pruned_mnist_cnn_end_to_end_time_multiplexed(cache: Path, tmp_path: Path) -> None:
    """conv-pool-conv-pool-linear on MNIST digits, 75 % block sparsity, every tile reused."""
    graph, x = mnist_cnn_graph(reuse=4, sparsity=0.75, vectors=4)
    graph = tile(graph, {"conv1": 4, "conv2": 4, "fc": 49})  # fc: 10 tiles instead of 123
    assert all(layer.require_tiling().reuse_factor > 1 for layer in matrix_layers(graph))
    result = simulate(write_project(graph, x, tmp_path / "p"), cache_dir=cache)
    assert_exact(result)
    assert [e["name"] for e in result["layers"]] == ["conv1", "pool1", "conv2", "pool2", "fc"]
    conv1 = result["layers"][0]
    assert conv1["est_ii"] == 28 * 28 * 4  # positions x RF: conv1 sets the pace
    assert result["network"]["sim_ii"] == conv1["sim_ii"]


def test_residual_block_end_to_end_keeps_the_slowest_layers_interval(
    cache: Path, tmp_path: Path
) -> None:
    """conv, conv, conv + skip, LeakyReLU, avg pool, linear: the skip waits in a FIFO."""
    graph, x = residual_graph(reuse=2, vectors=12)
    add = graph.layer("add")
    assert any(isinstance(layer, Conv2d) for layer in graph.layers)
    assert isinstance(graph.layer("pool"), Pool2d)
    # the skip's FIFO holds what conv1 and conv2 delay it by: more than a few beats, less
    # than a vector (the add streams, no frames)
    skip, other = add.buffer_values
    assert 4 * 4 < skip < add.features and other <= 4 * 4
    project = write_project(graph, x, tmp_path / "p")
    result = simulate(project, cache_dir=cache)
    assert_exact(result)
    assert result["n_vectors"] == 12
    # alone, the add reads both operands from the reference outputs of its producers
    alone = simulate(project, layer="add", n_vectors=4, cache_dir=cache)
    assert_exact(alone)
    assert alone["layers"][0]["sim_cycles"] == result["layers"][3]["sim_cycles"]


def test_mixed_graph_with_leaky_relus_and_an_input_skip(cache: Path, tmp_path: Path) -> None:
    """An add that reads the network input, a 3x2-kernel conv with LeakyReLU, max pooling of
    negative values and a LeakyReLU Dense layer: the slopes come from memory files."""
    graph, x = mixed_graph(reuse=3, vectors=6)
    kinds = {layer.kind for layer in graph.layers}
    assert {"add", "conv2d", "pool2d", "dense"} <= kinds
    leaky = [
        layer.name
        for layer in graph.layers
        if getattr(layer, "activation", None) is Activation.LEAKY_RELU
    ]
    assert len(leaky) >= 2
    result = simulate(write_project(graph, x, tmp_path / "p"), cache_dir=cache)
    assert_exact(result)


def test_depthwise_separable_block_end_to_end(cache: Path, tmp_path: Path) -> None:
    """DS-CNN's block: the depthwise conv is a block-diagonal matrix whose structural zeros
    are pruned blocks, so it runs on the block-sparse engine bit-exact and on time."""
    graph, x = separable_graph(reuse=2, vectors=4)
    dw = graph.layer("dw")
    assert isinstance(dw, Conv2d) and dw.groups == 8 and dw.shape == (8, 72)
    assert dw.require_csr().nnz_blocks <= 8 * 3  # at most 3 of the 18 blocks per row
    result = simulate(write_project(graph, x, tmp_path / "p"), cache_dir=cache)
    assert_exact(result)
    assert [e["name"] for e in result["layers"]] == ["conv", "dw", "pw", "pool", "fc"]
