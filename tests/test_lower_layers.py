"""Lowering Conv2d, pooling, BatchNorm, LeakyReLU and residual adds, checked against PyTorch.

The quantised reference must follow the float model closely (8-bit weights, 16-bit
activations), which checks the im2col order, the (C, H, W) flattening, the BatchNorm fold and
the residual wiring together; the errors must name the layer and what is supported.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from codesign import reference
from codesign.errors import ModelError
from codesign.frontend.lower import lower
from codesign.ir.graph import GRAPH_INPUT, Activation, Add, Conv2d, Pool2d, PoolMode
from codesign.models import dscnn, mnist_cnn, resnet8
from codesign.passes import BuildOptions, build, quantise
from codesign.records.design import graph_text, graph_to_files, load_graph
from tests._graphs import ResidualBlock, prune_model


def quantised(model: nn.Module, shape: tuple[int, ...], seed: int = 0):  # type: ignore[no-untyped-def]
    x = np.random.default_rng(seed).uniform(0.0, 1.0, size=(64, *shape)).astype(np.float32)
    graph = build(lower(model, "net", shape), BuildOptions(x, block=(1, 4), reuse=2))
    return graph, x


def float_outputs(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x)).double().numpy()


def test_mnist_cnn_lowers_to_conv_pool_and_dense() -> None:
    graph = lower(mnist_cnn(), "mnist-cnn", (1, 28, 28))
    kinds = [(layer.kind, layer.name) for layer in graph.layers]
    assert kinds == [
        ("conv2d", "conv1"),
        ("pool2d", "pool1"),
        ("conv2d", "conv2"),
        ("pool2d", "pool2"),
        ("dense", "fc"),
    ]
    conv2 = graph.layers[2]
    assert isinstance(conv2, Conv2d)
    assert conv2.shape == (16, 72) and conv2.positions == 196
    assert (conv2.in_features, conv2.out_features) == (8 * 14 * 14, 16 * 14 * 14)
    assert conv2.activation is Activation.RELU
    pool = graph.layers[3]
    assert isinstance(pool, Pool2d) and pool.mode is PoolMode.MAX
    assert pool.out_features == 16 * 7 * 7 == graph.layers[4].in_features
    assert graph.is_chain


def test_cnn_reference_follows_pytorch() -> None:
    torch.manual_seed(1)
    model = prune_model(mnist_cnn(), 0.5, seed=1)
    graph, x = quantised(model, (1, 28, 28))
    expected = float_outputs(model, x)
    got = reference.predict(graph, x)
    assert np.abs(got - expected).max() < 0.02 * np.abs(expected).max()


def test_strided_padded_conv_matches_pytorch_conv2d() -> None:
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=(1, 0)), nn.Flatten())
    graph, x = quantised(model, (3, 7, 6))
    conv = graph.layers[0]
    assert isinstance(conv, Conv2d) and conv.out_shape == (5, 4, 5)
    expected = float_outputs(model, x)
    got = reference.predict(graph, x)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 0.02 * np.abs(expected).max()


def test_residual_block_folds_batch_norm_and_wires_the_skip() -> None:
    torch.manual_seed(3)
    model = prune_model(ResidualBlock(), 0.5, seed=3)
    graph, x = quantised(model, (1, 8, 8))
    assert [layer.kind for layer in graph.layers] == [
        "conv2d",
        "conv2d",
        "conv2d",
        "add",
        "pool2d",
        "dense",
    ]
    add = graph.layers[3]
    assert isinstance(add, Add)
    assert graph.inputs_of(add) == ("stem", "conv2")
    assert add.activation is Activation.LEAKY_RELU and add.alpha == 0.125
    assert graph.inputs_of(graph.layers[0]) == (GRAPH_INPUT,)
    assert [c.name for c in graph.consumers_of("stem")] == ["conv1", "add"]
    assert not graph.is_chain
    # BatchNorm scaled the rows: pruned blocks stay pruned after the fold
    conv2 = graph.layers[2]
    assert isinstance(conv2, Conv2d)
    original = model.conv2.weight.detach().numpy().reshape(8, -1)
    assert np.array_equal(conv2.weight == 0, original == 0)
    expected = float_outputs(model, x)
    got = reference.predict(graph, x)
    assert np.abs(got - expected).max() < 0.02 * np.abs(expected).max()
    # the IR round-trips through a project's design files
    files = graph_to_files(graph)
    assert b'"kind": "add"' in files["design.json"]


def test_design_files_round_trip_every_layer_kind(tmp_path) -> None:  # type: ignore[no-untyped-def]
    graph, x = quantised(prune_model(ResidualBlock(), 0.5, seed=4), (1, 8, 8))
    for name, content in graph_to_files(graph).items():
        (tmp_path / name).write_bytes(content)
    loaded = load_graph(tmp_path)
    assert graph_text(loaded) == graph_text(graph)
    raw = reference.quantize_inputs(graph, x)
    for a, b in zip(reference.run(graph, raw), reference.run(loaded, raw), strict=True):
        assert np.array_equal(a.output, b.output)


def test_leaky_relu_is_fused_with_its_slope() -> None:
    model = nn.Sequential(
        OrderedDict(fc1=nn.Linear(6, 8), act=nn.LeakyReLU(0.2), fc2=nn.Linear(8, 3))
    )
    graph, x = quantised(model, (6,))
    assert graph.layers[0].activation is Activation.LEAKY_RELU
    assert graph.layers[0].alpha == pytest.approx(0.2)
    got = reference.predict(graph, x)
    expected = float_outputs(model, x)
    assert np.abs(got - expected).max() < 0.02 * np.abs(expected).max()


def test_average_pool_of_a_power_of_two_window_is_exact() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.AvgPool2d(2))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    graph, _ = quantised(model, (1, 4, 4))
    raw = np.arange(16, dtype=np.int64).reshape(1, 16) * 4
    traces = reference.run(graph, raw)
    # maps stream channel-last: (H, W, C) back to (C, H, W)
    conv_out = traces[0].output.reshape(4, 4, 2).transpose(2, 0, 1)
    pooled = traces[1].output.reshape(2, 2, 2).transpose(2, 0, 1)
    windows = conv_out.reshape(2, 2, 2, 2, 2).transpose(0, 1, 3, 2, 4).reshape(2, 2, 2, 4)
    assert np.array_equal(pooled, windows.sum(axis=-1) // 4)


@pytest.mark.parametrize(
    ("model", "shape", "message"),
    [
        (nn.Sequential(nn.Conv2d(2, 4, 3, dilation=2)), (2, 8, 8), r"dilation=\(2, 2\)"),
        (nn.Sequential(nn.MaxPool2d(2, padding=1)), (1, 8, 8), "padding=1 is not supported"),
        (nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.BatchNorm1d(4)), (4,), "BatchNorm"),
        (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(4, 2)), (1, 8, 8), "flatten it first"),
    ],
)
def test_unsupported_configurations_are_named(
    model: nn.Module, shape: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ModelError, match=message):
        lower(model, "m", shape)


def test_add_of_a_constant_and_of_a_forked_activation_are_refused() -> None:
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) + 1.0

    with pytest.raises(ModelError, match="only the sum of two layer outputs"):
        lower(Scaled(), "m", (4,))

    class Forked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(4, 4)
            self.fc2 = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.fc1(x)
            return torch.relu(y) + self.fc2(y)

    with pytest.raises(ModelError, match="also used elsewhere"):
        lower(Forked(), "m", (4,))


def test_residual_on_the_network_input() -> None:
    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) + x

    graph = lower(Residual(), "res", (8,))
    assert graph.inputs_of(graph.layers[-1]) == ("fc", GRAPH_INPUT)


class ViewNet(nn.Module):
    """A CNN as often written by hand: functional ReLU and x.view(x.size(0), -1)."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv(x)))
        if self.how == "size":
            x = x.view(x.size(0), -1)
        elif self.how == "reshape":
            x = x.reshape(-1, 64)
        elif self.how == "two_steps":
            x = torch.flatten(x, start_dim=2).reshape(x.size(0), 64)
        return self.fc(x)


@pytest.mark.parametrize("how", ["size", "reshape", "two_steps"])
def test_a_flatten_before_a_linear_permutes_its_columns(how: str) -> None:
    torch.manual_seed(5)
    model = ViewNet(how)
    graph, x = quantised(model, (1, 8, 8))
    assert [layer.kind for layer in graph.layers] == ["conv2d", "pool2d", "dense"]
    fc = graph.layers[2]
    # the 4x4x4 map streams channel-last; the Linear's columns stay in PyTorch's order
    assert fc.input_map == (4, 4, 4)
    assert np.array_equal(fc.weight, model.fc.weight.detach().double().numpy())
    sources = fc.column_sources
    assert sources is not None and sorted(sources) == list(range(64))
    assert sources[:3].tolist() == [0, 4, 8] and sources[16] == 1  # (c, y, x) -> (y, x, c)
    expected = float_outputs(model, x)
    got = reference.predict(graph, x)
    assert np.abs(got - expected).max() < 0.02 * np.abs(expected).max()


def test_inputs_and_conv_outputs_stream_channel_last() -> None:
    torch.manual_seed(9)
    model = nn.Sequential(nn.Conv2d(3, 2, 1, bias=False))
    graph, x = quantised(model, (3, 2, 2))
    raw = reference.quantize_inputs(graph, x[:1])
    # the input image pixel by pixel, its 3 channels together
    expected, _ = graph.input_format.quantize(x[:1].transpose(0, 2, 3, 1).reshape(1, -1))
    assert np.array_equal(raw, expected)
    conv = graph.layers[0]
    assert isinstance(conv, Conv2d) and conv.weight_raw is not None
    accum = reference.run(graph, raw)[-1].accum.reshape(2, 2, 2)  # (H, W, C)
    # per pixel: its 3 input channels in, its 2 output channels together out
    assert np.array_equal(accum, raw.reshape(2, 2, 3) @ conv.weight_raw.T)
    # predict gives PyTorch's (C, H, W) order back
    assert reference.predict(graph, x[:1]).shape == (1, 8)


def test_a_flat_vector_viewed_as_a_multichannel_map_is_refused() -> None:
    class Unflatten(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 2 * 2 * 4)
            self.conv = nn.Conv2d(4, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(self.fc(x).view(-1, 4, 2, 2))

    with pytest.raises(ModelError, match=r"channel-last.*\(4, 2, 2\)|\(4, 2, 2\).*channel-last"):
        lower(Unflatten(), "m", (8,))


def test_resnet8_lowers_and_follows_pytorch() -> None:
    torch.manual_seed(10)
    model = resnet8().eval()
    graph, x = quantised(model, (3, 32, 32))
    kinds = [layer.kind for layer in graph.layers]
    assert (
        kinds.count("conv2d") == 9 and kinds.count("add") == 3 and kinds[-2:] == ["pool2d", "dense"]
    )
    expected = float_outputs(model, x)
    got = reference.predict(graph, x)
    assert np.abs(got - expected).max() < 0.05 * np.abs(expected).max()


def test_grouped_and_depthwise_convs_are_block_diagonal_matrices() -> None:
    torch.manual_seed(11)
    model = nn.Sequential(
        nn.Conv2d(4, 8, 3, padding=1, groups=2), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, groups=8)
    )
    graph, x = quantised(model, (4, 7, 7))
    grouped, depthwise = graph.layers
    assert isinstance(grouped, Conv2d) and isinstance(depthwise, Conv2d)
    assert (grouped.groups, grouped.shape, depthwise.groups, depthwise.shape) == (
        2,
        (8, 36),
        8,
        (8, 72),
    )
    # row o reads only its group's channels: 2 of 4 (18 columns), 1 of 8 (9 columns)
    assert np.count_nonzero(grouped.weight[:4, 18:]) == 0
    assert np.count_nonzero(grouped.weight[4:, :18]) == 0
    for row in range(8):
        outside = np.delete(depthwise.weight[row], np.arange(9 * row, 9 * row + 9))
        assert np.count_nonzero(outside) == 0
    # the structural zeros are not sparsity; the pruned blocks skip them
    assert depthwise.sparsity == 0.0 and depthwise.held_weights == 72
    assert depthwise.csr is not None and depthwise.csr.nnz_blocks < 8 * 18
    expected = float_outputs(model, x).reshape(len(x), -1)
    got = reference.predict(graph, x)
    assert np.abs(got - expected).max() < 0.02 * np.abs(expected).max()


def test_dscnn_lowers_and_follows_pytorch() -> None:
    torch.manual_seed(12)
    model = dscnn().eval()
    graph, x = quantised(model, (1, 49, 10))
    depthwise = [layer for layer in graph.layers if isinstance(layer, Conv2d) and layer.groups > 1]
    assert [layer.name for layer in depthwise] == ["dw1", "dw2", "dw3", "dw4"]
    assert all(layer.groups == 64 and layer.shape == (64, 576) for layer in depthwise)
    expected = float_outputs(model, x)
    got = reference.predict(graph, x)
    assert np.abs(got - expected).max() < 0.05 * np.abs(expected).max()


def test_dilated_convolution_is_refused_by_name() -> None:
    with pytest.raises(ModelError, match=r"layer 0 \(Conv2d\): dilation=\(2, 2\) is not supported"):
        lower(nn.Sequential(nn.Conv2d(2, 2, 3, dilation=2)), "m", (2, 8, 8))


def test_a_view_that_drops_the_batch_dimension_is_refused() -> None:
    class Bad(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.reshape(2, 2, 4)[0])

    with pytest.raises(ModelError):
        lower(Bad(), "m", (4,))


def test_global_and_adaptive_pooling_become_fixed_windows() -> None:
    torch.manual_seed(6)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveMaxPool2d((4, 2)),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    graph, x = quantised(model, (1, 8, 8))
    max_pool, avg_pool = graph.layers[1], graph.layers[2]
    assert isinstance(max_pool, Pool2d) and isinstance(avg_pool, Pool2d)
    assert (max_pool.mode, max_pool.kernel, max_pool.stride) == (PoolMode.MAX, (2, 4), (2, 4))
    assert (avg_pool.mode, avg_pool.kernel, avg_pool.out_features) == (PoolMode.AVG, (4, 2), 4)
    expected = float_outputs(model, x)
    got = reference.predict(graph, x)
    assert np.abs(got - expected).max() < 0.02 * np.abs(expected).max()
    with pytest.raises(ModelError, match=r"output size \(3, 3\) must divide the input"):
        lower(nn.Sequential(nn.AdaptiveAvgPool2d(3)), "m", (1, 8, 8))


class SkipAroundView(nn.Module):
    """The layer's raw output is used twice: once through a view and an activation."""

    def __init__(self, through: str) -> None:
        super().__init__()
        self.through = through
        self.fc1 = nn.Linear(16, 16)
        self.fc2 = nn.Linear(16, 16)
        self.drop = nn.Dropout(0.1)
        self.bn = nn.BatchNorm1d(16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.fc1(x)
        if self.through == "view":
            b = F.relu(a.view(a.size(0), -1))
        elif self.through == "dropout":
            b = F.relu(self.drop(a))
        else:
            b = self.bn(torch.flatten(a, 1))
        return self.fc2(b) + a


@pytest.mark.parametrize("through", ["view", "dropout", "flatten_bn"])
def test_fusing_through_an_alias_of_a_value_used_elsewhere_is_refused(through: str) -> None:
    # fusing would change what the skip connection reads
    with pytest.raises(ModelError, match="also used elsewhere"):
        lower(SkipAroundView(through), "m", (16,))


def test_shape_queries_and_self_adds() -> None:
    class ShapeView(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.fc = nn.Linear(2 * 6 * 6, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.relu(self.conv(x))
            return self.fc(y.view(y.shape[0], -1))

    graph = lower(ShapeView(), "m", (1, 8, 8))
    assert [layer.kind for layer in graph.layers] == ["conv2d", "dense"]

    class Double(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x + x)

    with pytest.raises(ModelError, match="adds a value to itself"):
        lower(Double(), "m", (4,))


def test_leaky_relu_slope_outside_the_stored_range_is_refused() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.LeakyReLU(3.0))
    with pytest.raises(ModelError, match=r"slope 3.0 is outside \[-2, 2\)"):
        lower(model, "m", (4,))


def test_wide_leaky_relu_is_exact_beyond_int64() -> None:
    """27-bit operands: the accumulator times the slope needs more than 64 bits."""
    torch.manual_seed(7)
    model = nn.Sequential(nn.Linear(16, 16), nn.LeakyReLU(1.5), nn.Linear(16, 4))
    x = np.random.default_rng(7).uniform(-1, 1, size=(16, 16)).astype(np.float32)
    graph = quantise(lower(model, "m", (16,)), x, weight_bits=27, act_bits=27)
    layer = graph.layers[0]
    formats = layer.require_formats()
    assert formats.accum.width + 18 > 64
    raw = reference.quantize_inputs(graph, x)
    got = reference.run(graph, raw)[0].output
    # the same in Python integers, element by element
    slope = round(1.5 * 2**16)
    shift = formats.accum.frac + 16 - formats.output.frac
    assert layer.weight_raw is not None and layer.bias_raw is not None
    for row, out in zip(raw.tolist(), got.tolist(), strict=True):
        for r in range(16):
            acc = sum(int(w) * int(v) for w, v in zip(layer.weight_raw[r], row, strict=True))
            acc += int(layer.bias_raw[r])
            value = acc * slope if acc < 0 else acc << 16
            value = (value + (1 << (shift - 1))) >> shift
            value = min(max(value, formats.output.min_raw), formats.output.max_raw)
            assert out[r] == value
