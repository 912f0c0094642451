"""The lowering's state and its rules for the layers that become IR layers (torch.fx nodes to
codesign.ir): Linear, Conv2d, BatchNorm folded into the layer before it, pooling. The fx
traversal, activations, adds and views are in codesign.frontend.lower.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import fx, nn

from codesign.errors import ModelError
from codesign.ir.graph import (
    GRAPH_INPUT,
    Activation,
    Conv2d,
    ConvGeometry,
    Dense,
    Layer,
    Pool2d,
    PoolMode,
)
from codesign.ir.names import safe_identifier


@dataclass(frozen=True)
class Value:
    """What an fx node computes: the output of layer `source` (or the input), of `shape`.

    Values travel in stream order, maps channel-last (codesign.ir.graph); `map_shape` is the
    (C, H, W) map a flat value is PyTorch's flatten of, so a Linear reading it knows which
    stream value each of its columns is (None: the value is in PyTorch's order already).
    """

    source: str
    shape: tuple[int, ...]
    map_shape: tuple[int, int, int] | None = None


class LoweringState:
    def __init__(self, input_shape: tuple[int, ...]) -> None:
        self.layers: list[Layer] = []
        self.taken: set[str] = set()
        self.values: dict[fx.Node, Value] = {}
        self.sizes: set[fx.Node] = set()  # x.size(...) nodes: shapes for a view, not values
        self.input_shape = input_shape

    def index_of(self, name: str) -> int:
        return next(i for i, layer in enumerate(self.layers) if layer.name == name)

    def add_layer(self, layer: Layer) -> Value:
        self.layers.append(layer)
        return Value(layer.name, layer.out_shape)

    def fusable(self, node: fx.Node, value: Value, what: str) -> int:
        """Index of the layer producing `value`, which `node` (an activation or BN) modifies.

        Fusing changes the layer's output for every reader, so `node` must be its only one:
        the layer's node and the views, flattens and no-ops of it (its aliases) may have no
        other user (shape queries aside).
        """
        if value.source == GRAPH_INPUT:
            raise ModelError(f"{what} {node.name!r} must follow a layer, not the model's input")
        aliases = {n for n, v in self.values.items() if v.source == value.source}
        readers = {
            user
            for alias in aliases
            for user in alias.users
            if user not in aliases and user not in self.sizes
        }
        if readers != {node}:
            raise ModelError(
                f"{what} {node.name!r}: the value it reads is also used elsewhere, so it cannot "
                "be fused into the layer that computes it"
            )
        return self.index_of(value.source)


def linear(state: LoweringState, module: nn.Linear, source_name: str, value: Value) -> Value:
    features = int(np.prod(value.shape))
    if len(value.shape) != 1:
        raise ModelError(
            f"layer {source_name} (Linear) reads a value of shape {value.shape}; flatten it first"
        )
    if module.in_features != features:
        raise ModelError(
            f"layer {source_name} expects {module.in_features} inputs but receives {features} "
            f"(input shape {state.input_shape})"
        )
    weight, bias = parameters(module)
    return state.add_layer(
        Dense(
            name=safe_identifier(source_name, state.taken),
            source_name=source_name,
            weight=weight,
            bias=bias,
            inputs=(value.source,),
            input_map=value.map_shape,
        )
    )


def conv(state: LoweringState, module: nn.Conv2d, source_name: str, value: Value) -> Value:
    problems = []
    if tuple(module.dilation) != (1, 1):
        problems.append(f"dilation={tuple(module.dilation)}")
    if module.padding_mode != "zeros":
        problems.append(f"padding_mode={module.padding_mode!r}")
    if isinstance(module.padding, str):
        problems.append(f"padding={module.padding!r} (give integers)")
    if problems:
        raise ModelError(
            f"layer {source_name} (Conv2d): {', '.join(problems)} is not supported; the "
            "hardware flow takes dilation=1 and integer zero padding"
        )
    if len(value.shape) != 3 or value.shape[0] != module.in_channels:
        raise ModelError(
            f"layer {source_name} (Conv2d) expects a ({module.in_channels}, H, W) input, "
            f"receives shape {value.shape}"
        )
    channels, height, width = value.shape
    geometry = ConvGeometry(
        in_channels=channels,
        in_height=height,
        in_width=width,
        kernel=(int(module.kernel_size[0]), int(module.kernel_size[1])),
        stride=(int(module.stride[0]), int(module.stride[1])),
        padding=(int(module.padding[0]), int(module.padding[1])),
    )
    if geometry.out_height < 1 or geometry.out_width < 1:
        raise ModelError(f"layer {source_name} (Conv2d): kernel larger than its padded input")
    weight, bias = parameters(module)
    return state.add_layer(
        Conv2d(
            name=safe_identifier(source_name, state.taken),
            source_name=source_name,
            weight=grouped_matrix(weight, module.groups),
            bias=bias,
            inputs=(value.source,),
            geometry=geometry,
            groups=int(module.groups),
        )
    )


def grouped_matrix(weight: np.ndarray, groups: int) -> np.ndarray:
    """A conv weight (Cout, Cin/groups, Kh, Kw) as the (Cout, Cin·Kh·Kw) matrix of the whole
    patch: with groups > 1 (depthwise: groups = Cin) it is block-diagonal, row o reading only
    its group's channels, and the zeros outside the groups are pruned blocks (no multiplier,
    no cycle), so grouped convs use the block-sparse engine as they are."""
    rows, group_channels = weight.shape[:2]
    area = int(np.prod(weight.shape[2:]))
    compact = weight.reshape(rows, group_channels * area)
    if groups == 1:
        return compact
    matrix = np.zeros((rows, groups * group_channels * area), dtype=compact.dtype)
    per_group = rows // groups
    for row in range(rows):
        start = row // per_group * group_channels * area
        matrix[row, start : start + group_channels * area] = compact[row]
    return matrix


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()


def parameters(module: nn.Linear | nn.Conv2d) -> tuple[np.ndarray, np.ndarray]:
    weight = to_numpy(module.weight)
    bias = to_numpy(module.bias) if module.bias is not None else np.zeros(weight.shape[0])
    return weight, bias


def batch_norm(
    state: LoweringState, node: fx.Node, module: nn.BatchNorm1d | nn.BatchNorm2d, value: Value
) -> Value:
    """Fold y = (x - mean) / sqrt(var + eps) * gamma + beta into the layer computing x.

    Scaling a row of the weights keeps its zeros, so the block pattern survives the fold.
    """
    index = state.fusable(node, value, "BatchNorm")
    layer = state.layers[index]
    if not isinstance(layer, Dense) or layer.activation is not Activation.NONE:
        raise ModelError(
            f"BatchNorm {node.name!r} must directly follow a Linear or Conv2d layer (before its "
            "activation) to be folded into it"
        )
    if module.running_mean is None or module.running_var is None:
        raise ModelError(f"BatchNorm {node.name!r} has no running statistics to fold")
    mean, var = to_numpy(module.running_mean), to_numpy(module.running_var)
    gamma = to_numpy(module.weight) if module.affine else np.ones_like(mean)
    beta = to_numpy(module.bias) if module.affine else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + module.eps)
    if scale.shape[0] != layer.weight.shape[0]:
        raise ModelError(
            f"BatchNorm {node.name!r} has {scale.shape[0]} features, {layer.source_name} "
            f"{layer.weight.shape[0]} outputs"
        )
    state.layers[index] = replace(
        layer,
        weight=layer.weight * scale[:, None],
        bias=(layer.bias - mean) * scale + beta,
    )
    return value


def pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


def pool(
    state: LoweringState, module: nn.MaxPool2d | nn.AvgPool2d, source_name: str, value: Value
) -> Value:
    kind = type(module).__name__
    kernel = pair(module.kernel_size)
    stride = pair(module.stride if module.stride is not None else module.kernel_size)
    problems = []
    if pair(module.padding) != (0, 0):
        problems.append(f"padding={module.padding}")
    if module.ceil_mode:
        problems.append("ceil_mode=True")
    if isinstance(module, nn.MaxPool2d) and pair(module.dilation) != (1, 1):
        problems.append(f"dilation={module.dilation}")
    if isinstance(module, nn.AvgPool2d) and module.divisor_override is not None:
        problems.append(f"divisor_override={module.divisor_override}")
    if problems:
        raise ModelError(
            f"layer {source_name} ({kind}): {', '.join(problems)} is not supported; the "
            "hardware flow pools without padding, in floor mode"
        )
    mode = PoolMode.MAX if isinstance(module, nn.MaxPool2d) else PoolMode.AVG
    return pool_layer(state, source_name, kind, mode, value, kernel, stride)


def adaptive_pool(
    state: LoweringState,
    module: nn.AdaptiveMaxPool2d | nn.AdaptiveAvgPool2d,
    source_name: str,
    value: Value,
) -> Value:
    """Adaptive pooling to an output size that divides the input: fixed windows and strides
    (AdaptiveAvgPool2d(1) is global average pooling)."""
    kind = type(module).__name__
    _, height, width = feature_map(value, source_name, kind)
    size = module.output_size
    pair = (size, size) if isinstance(size, int) or size is None else tuple(size)
    out = (height if pair[0] is None else int(pair[0]), width if pair[1] is None else int(pair[1]))
    if height % out[0] or width % out[1]:
        raise ModelError(
            f"layer {source_name} ({kind}): output size {out} must divide the input "
            f"{(height, width)} (windows of one size)"
        )
    window = (height // out[0], width // out[1])
    mode = PoolMode.MAX if isinstance(module, nn.AdaptiveMaxPool2d) else PoolMode.AVG
    return pool_layer(state, source_name, kind, mode, value, window, window)


def feature_map(value: Value, source_name: str, kind: str) -> tuple[int, int, int]:
    """The (C, H, W) shape a pooling layer reads, or a ModelError naming the layer."""
    if len(value.shape) != 3:
        raise ModelError(
            f"layer {source_name} ({kind}) expects a (C, H, W) input, gets {value.shape}"
        )
    channels, height, width = value.shape
    return channels, height, width


def pool_layer(
    state: LoweringState,
    source_name: str,
    kind: str,
    mode: PoolMode,
    value: Value,
    kernel: tuple[int, int],
    stride: tuple[int, int],
) -> Value:
    channels, height, width = feature_map(value, source_name, kind)
    if kernel[0] > height or kernel[1] > width:
        raise ModelError(f"layer {source_name} ({kind}): window {kernel} larger than {value.shape}")
    return state.add_layer(
        Pool2d(
            name=safe_identifier(source_name, state.taken),
            source_name=source_name,
            mode=mode,
            channels=channels,
            in_height=height,
            in_width=width,
            kernel=kernel,
            stride=stride,
            inputs=(value.source,),
        )
    )
