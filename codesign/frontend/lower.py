"""Lower a PyTorch model to the IR with torch.fx.

Supported (inference semantics): Linear, Conv2d (stride, zero padding, no groups or
dilation), BatchNorm1d/2d folded into the Linear or Conv2d before it, ReLU and LeakyReLU
fused into the layer before them (Linear, Conv2d or a residual add), MaxPool2d and AvgPool2d
(no padding), their adaptive forms where the output size divides the input (global pooling),
Flatten and view/reshape (values are flat, so these only change the shape the next layer
checks; `x.size(0)` may give the batch), residual `+` of two layer outputs of the same shape,
and Dropout and Identity as no-ops. Anything else is refused with the node's name
and this list.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from codesign.errors import ModelError
from codesign.ir.graph import (
    ALPHA_BITS,
    ALPHA_FRAC,
    GRAPH_INPUT,
    Activation,
    Add,
    Conv2d,
    ConvGeometry,
    Dense,
    Graph,
    Layer,
    Pool2d,
    PoolMode,
    alpha_fits,
)
from codesign.ir.names import safe_identifier

SUPPORTED = (
    "Linear, Conv2d, BatchNorm (after Linear/Conv2d), ReLU, LeakyReLU, MaxPool2d, AvgPool2d, "
    "AdaptiveMax/AvgPool2d (output size dividing the input), Flatten, view/reshape, residual "
    "add, Dropout, Identity"
)
_RELU_FUNCTIONS = {F.relu, torch.relu}
_PASSTHROUGH_MODULES = (nn.Dropout, nn.Identity)
_FLATTEN_FUNCTIONS = {torch.flatten}
_FLATTEN_METHODS = {"flatten", "view", "reshape"}
_ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}


@dataclass(frozen=True)
class _Value:
    """What an fx node computes: the output of layer `source` (or the input), of `shape`."""

    source: str
    shape: tuple[int, ...]


class _Lowering:
    def __init__(self, input_shape: tuple[int, ...], block: tuple[int, int]) -> None:
        self.block = block
        self.layers: list[Layer] = []
        self.taken: set[str] = set()
        self.values: dict[fx.Node, _Value] = {}
        self.sizes: set[fx.Node] = set()  # x.size(...) nodes: shapes for a view, not values
        self.input_shape = input_shape

    def index_of(self, name: str) -> int:
        return next(i for i, layer in enumerate(self.layers) if layer.name == name)

    def add_layer(self, layer: Layer) -> _Value:
        self.layers.append(layer)
        return _Value(layer.name, layer.out_shape)

    def fusable(self, node: fx.Node, value: _Value, what: str) -> int:
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


def lower(
    model: nn.Module, name: str, input_shape: tuple[int, ...], block: tuple[int, int]
) -> Graph:
    """The IR graph of `model` for inputs of `input_shape` (no batch dimension)."""
    model = model.eval()
    try:
        traced = fx.symbolic_trace(model)
    except Exception as error:  # torch.fx raises many kinds for untraceable code
        raise ModelError(f"cannot trace the model with torch.fx: {error}") from error
    modules = dict(traced.named_modules())
    state = _Lowering(tuple(input_shape), block)
    output: _Value | None = None
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            if state.values:
                raise ModelError(f"the model takes more than one input ({node.name!r})")
            state.values[node] = _Value(GRAPH_INPUT, tuple(input_shape))
            continue
        if node.op == "output":
            result = node.args[0]
            if not isinstance(result, fx.Node) or result not in state.values:
                raise ModelError("the model must return one tensor computed by its layers")
            output = state.values[result]
            break
        if node.op == "get_attr":
            raise ModelError(
                f"node {node.name!r} reads a parameter directly; supported: {SUPPORTED}"
            )
        if is_shape_query(node, state.sizes):
            state.sizes.add(node)  # only read by a view/reshape: the batch size
            continue
        module = modules.get(str(node.target)) if node.op == "call_module" else None
        state.values[node] = _lower_node(state, node, module, modules)
    if output is None or not any(isinstance(layer, Dense) for layer in state.layers):
        raise ModelError(f"the model has no Linear or Conv2d layer; supported: {SUPPORTED}")
    layers = _check_output(state.layers, output)
    return Graph(name=safe_identifier(name, set()), input_shape=tuple(input_shape), layers=layers)


def _lower_node(
    state: _Lowering, node: fx.Node, module: nn.Module | None, modules: dict[str, nn.Module]
) -> _Value:
    inputs = [n for n in node.all_input_nodes if n not in state.sizes]
    operands = [state.values[n] for n in inputs if n in state.values]
    if len(operands) != len(inputs):
        raise ModelError(f"node {node.name!r} reads a value the hardware flow does not compute")
    if _is_add(node):
        return _add(state, node)
    if len(operands) != 1:
        raise ModelError(
            f"node {node.name!r} ({_describe(node, modules)}) combines several values; only a "
            f"residual add can; supported: {SUPPORTED}"
        )
    value = operands[0]
    if isinstance(module, nn.Linear):
        return _linear(state, module, str(node.target), value)
    if isinstance(module, nn.Conv2d):
        return _conv(state, module, str(node.target), value)
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return _batch_norm(state, node, module, value)
    if _is_relu(node, module) or isinstance(module, nn.LeakyReLU) or _is_leaky(node):
        return _activation(state, node, module, value)
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return _pool(state, module, str(node.target), value)
    if isinstance(module, (nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)):
        return _adaptive_pool(state, module, str(node.target), value)
    if isinstance(module, _PASSTHROUGH_MODULES):
        return value
    if _is_flatten(node, module):
        return _Value(value.source, _reshaped(node, module, value.shape, state.sizes))
    raise ModelError(
        f"layer {node.target!s} ({_describe(node, modules)}) is not supported by the "
        f"hardware flow; supported: {SUPPORTED}"
    )


def _linear(state: _Lowering, module: nn.Linear, source_name: str, value: _Value) -> _Value:
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
    weight, bias = _parameters(module)
    return state.add_layer(
        Dense(
            name=safe_identifier(source_name, state.taken),
            source_name=source_name,
            weight=weight,
            bias=bias,
            block=state.block,
            inputs=(value.source,),
        )
    )


def _conv(state: _Lowering, module: nn.Conv2d, source_name: str, value: _Value) -> _Value:
    problems = []
    if module.groups != 1:
        problems.append(f"groups={module.groups}")
    if tuple(module.dilation) != (1, 1):
        problems.append(f"dilation={tuple(module.dilation)}")
    if module.padding_mode != "zeros":
        problems.append(f"padding_mode={module.padding_mode!r}")
    if isinstance(module.padding, str):
        problems.append(f"padding={module.padding!r} (give integers)")
    if problems:
        raise ModelError(
            f"layer {source_name} (Conv2d): {', '.join(problems)} is not supported; the "
            "hardware flow takes groups=1, dilation=1 and integer zero padding"
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
        padding=(int(module.padding[0]), int(module.padding[1])),  # type: ignore[index]
    )
    if geometry.out_height < 1 or geometry.out_width < 1:
        raise ModelError(f"layer {source_name} (Conv2d): kernel larger than its padded input")
    weight, bias = _parameters(module)
    return state.add_layer(
        Conv2d(
            name=safe_identifier(source_name, state.taken),
            source_name=source_name,
            weight=weight.reshape(weight.shape[0], -1),
            bias=bias,
            block=state.block,
            inputs=(value.source,),
            geometry=geometry,
        )
    )


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()


def _parameters(module: nn.Linear | nn.Conv2d) -> tuple[np.ndarray, np.ndarray]:
    weight = _numpy(module.weight)
    bias = _numpy(module.bias) if module.bias is not None else np.zeros(weight.shape[0])
    return weight, bias


def _batch_norm(
    state: _Lowering, node: fx.Node, module: nn.BatchNorm1d | nn.BatchNorm2d, value: _Value
) -> _Value:
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
    mean, var = _numpy(module.running_mean), _numpy(module.running_var)
    gamma = _numpy(module.weight) if module.affine else np.ones_like(mean)
    beta = _numpy(module.bias) if module.affine else np.zeros_like(mean)
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


def _activation(state: _Lowering, node: fx.Node, module: nn.Module | None, value: _Value) -> _Value:
    leaky = isinstance(module, nn.LeakyReLU) or _is_leaky(node)
    what = "LeakyReLU" if leaky else "ReLU"
    index = state.fusable(node, value, what)
    layer = state.layers[index]
    if isinstance(layer, Pool2d) or layer.activation is not Activation.NONE:
        raise ModelError(
            f"{what} {node.name!r} must follow a Linear, Conv2d or residual add "
            "(optionally with a BatchNorm between)"
        )
    if leaky:
        slope: object = 0.01  # F.leaky_relu's default
        if isinstance(module, nn.LeakyReLU):
            slope = module.negative_slope
        elif "negative_slope" in node.kwargs:
            slope = node.kwargs["negative_slope"]
        elif len(node.args) > 1:
            slope = node.args[1]
        if not isinstance(slope, (int, float)):
            raise ModelError(f"LeakyReLU {node.name!r}: its slope must be a constant number")
        if not alpha_fits(float(slope)):
            raise ModelError(
                f"LeakyReLU {node.name!r}: slope {slope} is outside [-2, 2), the range the "
                f"kernels store ({ALPHA_BITS}-bit signed, {ALPHA_FRAC} fraction bits)"
            )
        state.layers[index] = replace(layer, activation=Activation.LEAKY_RELU, alpha=float(slope))
    else:
        state.layers[index] = replace(layer, activation=Activation.RELU)
    return value


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


def _pool(
    state: _Lowering, module: nn.MaxPool2d | nn.AvgPool2d, source_name: str, value: _Value
) -> _Value:
    kind = type(module).__name__
    kernel = _pair(module.kernel_size)
    stride = _pair(module.stride if module.stride is not None else module.kernel_size)
    problems = []
    if _pair(module.padding) != (0, 0):
        problems.append(f"padding={module.padding}")
    if module.ceil_mode:
        problems.append("ceil_mode=True")
    if isinstance(module, nn.MaxPool2d) and _pair(module.dilation) != (1, 1):
        problems.append(f"dilation={module.dilation}")
    if isinstance(module, nn.AvgPool2d) and module.divisor_override is not None:
        problems.append(f"divisor_override={module.divisor_override}")
    if problems:
        raise ModelError(
            f"layer {source_name} ({kind}): {', '.join(problems)} is not supported; the "
            "hardware flow pools without padding, in floor mode"
        )
    mode = PoolMode.MAX if isinstance(module, nn.MaxPool2d) else PoolMode.AVG
    return _pool_layer(state, source_name, kind, mode, value, kernel, stride)


def _adaptive_pool(
    state: _Lowering,
    module: nn.AdaptiveMaxPool2d | nn.AdaptiveAvgPool2d,
    source_name: str,
    value: _Value,
) -> _Value:
    """Adaptive pooling to an output size that divides the input: fixed windows and strides
    (AdaptiveAvgPool2d(1) is global average pooling)."""
    kind = type(module).__name__
    _, height, width = _feature_map(value, source_name, kind)
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
    return _pool_layer(state, source_name, kind, mode, value, window, window)


def _feature_map(value: _Value, source_name: str, kind: str) -> tuple[int, int, int]:
    """The (C, H, W) shape a pooling layer reads, or a ModelError naming the layer."""
    if len(value.shape) != 3:
        raise ModelError(
            f"layer {source_name} ({kind}) expects a (C, H, W) input, gets {value.shape}"
        )
    channels, height, width = value.shape
    return channels, height, width


def _pool_layer(
    state: _Lowering,
    source_name: str,
    kind: str,
    mode: PoolMode,
    value: _Value,
    kernel: tuple[int, int],
    stride: tuple[int, int],
) -> _Value:
    channels, height, width = _feature_map(value, source_name, kind)
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


def _add(state: _Lowering, node: fx.Node) -> _Value:
    """The sum of two values; read from the node's arguments, since `all_input_nodes` lists
    a value added to itself once."""
    args = node.args
    if len(args) != 2 or node.kwargs or not all(arg in state.values for arg in args):
        raise ModelError(
            f"add {node.name!r}: only the sum of two layer outputs (a residual connection) is "
            "supported, not constants or scaled sums"
        )
    a, b = (state.values[arg] for arg in args if isinstance(arg, fx.Node))
    if a.shape != b.shape:
        raise ModelError(f"add {node.name!r}: operand shapes differ: {a.shape} and {b.shape}")
    if a.source == b.source:
        raise ModelError(f"add {node.name!r}: adds a value to itself; scale the layer instead")
    return state.add_layer(
        Add(
            name=safe_identifier(node.name, state.taken),
            source_name=node.name,
            features=int(np.prod(a.shape)),
            inputs=(a.source, b.source),
            shape_of_output=a.shape,
        )
    )


def _reshaped(
    node: fx.Node, module: nn.Module | None, shape: tuple[int, ...], sizes: set[fx.Node]
) -> tuple[int, ...]:
    """The per-sample shape after a Flatten, flatten, view or reshape.

    Values travel flat in (C, H, W) order, so any of these keeps the data as it is and only
    changes the shape the next layer checks. The batch dimension must stay first.
    """
    dims = (1, *shape)  # with the batch
    if (
        isinstance(module, nn.Flatten)
        or node.target in _FLATTEN_FUNCTIONS
        or node.target == "flatten"
    ):
        if isinstance(module, nn.Flatten):
            start, end = module.start_dim, module.end_dim
        else:
            args = [*node.args[1:], None, None]
            start = _constant(node, node.kwargs.get("start_dim", args[0]), 0)
            end = _constant(node, node.kwargs.get("end_dim", args[1]), -1)
        start, end = start % len(dims), end % len(dims)
        if start == 0:
            raise ModelError(f"{node.name!r} flattens the batch dimension; flatten from dim 1")
        merged = int(np.prod(dims[start : end + 1]))
        return (*dims[1:start], merged, *dims[end + 1 :])
    target = node.args[1:]
    if len(target) == 1 and isinstance(target[0], (tuple, list)):
        target = tuple(target[0])
    if not target or not (
        target[0] in sizes or target[0] == -1 or (isinstance(target[0], int) and target[0] >= 1)
    ):
        raise ModelError(f"{node.name!r}: a view/reshape must keep the batch dimension first")
    per_sample = [_constant(node, d, None) for d in target[1:]]
    total = int(np.prod(shape))
    known = int(np.prod([d for d in per_sample if d != -1]))
    if per_sample.count(-1) == 1:
        per_sample[per_sample.index(-1)] = total // max(1, known)
    if int(np.prod(per_sample)) != total or per_sample.count(-1):
        raise ModelError(f"{node.name!r}: cannot view {total} values per sample as {target[1:]}")
    return tuple(int(d) for d in per_sample)


def _constant(node: fx.Node, value: object, default: int | None) -> int:
    """An integer argument of `node` (or `default` when it is absent)."""
    if value is None and default is not None:
        return default
    if not isinstance(value, int):
        raise ModelError(
            f"{node.name!r}: shape arguments must be constants, x.size(0) or x.shape[0]"
        )
    return value


def _check_output(layers: list[Layer], output: _Value) -> tuple[Layer, ...]:
    """The output must be the last layer's, and every layer's output must be used."""
    if output.source == GRAPH_INPUT or output.source != layers[-1].name:
        raise ModelError("the model's output is not the result of its last layer")
    used = {name for layer in layers for name in layer.inputs}
    unused = [layer.source_name for layer in layers[:-1] if layer.name not in used]
    if unused:
        raise ModelError(f"the outputs of {unused} are never used; remove those layers")
    return tuple(layers)


def is_shape_query(node: fx.Node, sizes: frozenset[fx.Node] | set[fx.Node] = frozenset()) -> bool:
    """x.size(...), x.shape or an element of either: shape metadata, not a value."""
    if node.op == "call_method" and node.target == "size":
        return True
    if node.op == "call_function" and node.target is getattr and node.args[1:] == ("shape",):
        return True
    return (
        node.op == "call_function"
        and node.target is operator.getitem
        and isinstance(node.args[0], fx.Node)
        and node.args[0] in sizes
    )


def _is_add(node: fx.Node) -> bool:
    if node.op == "call_function" and node.target in _ADD_FUNCTIONS:
        return True
    return node.op == "call_method" and node.target in ("add", "add_", "__add__", "__iadd__")


def _is_relu(node: fx.Node, module: nn.Module | None) -> bool:
    if isinstance(module, nn.ReLU):
        return True
    if node.op == "call_function" and node.target in _RELU_FUNCTIONS:
        return True
    return node.op == "call_method" and node.target in ("relu", "relu_")


def _is_leaky(node: fx.Node) -> bool:
    return node.op == "call_function" and node.target is F.leaky_relu


def _is_flatten(node: fx.Node, module: nn.Module | None) -> bool:
    if isinstance(module, nn.Flatten):
        return True
    if node.op == "call_function" and node.target in _FLATTEN_FUNCTIONS:
        return True
    return node.op == "call_method" and node.target in _FLATTEN_METHODS


def _describe(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        return type(modules[str(node.target)]).__name__
    if node.op == "call_function":
        return getattr(node.target, "__name__", str(node.target))
    return f"{node.op} {node.target}"
