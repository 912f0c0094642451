"""Lower a PyTorch model to the IR with torch.fx.

Supported (inference semantics): Linear, Conv2d (stride, zero padding, groups, depthwise
included, as a block-diagonal matrix; no dilation), BatchNorm1d/2d folded into the Linear or
Conv2d before it, ReLU and LeakyReLU fused into the layer before them (Linear, Conv2d or a
residual add), MaxPool2d and AvgPool2d (no padding), their adaptive forms where the output
size divides the input (global pooling), Flatten and view/reshape (the stream keeps its
channel-last order: a Flatten before a Linear permutes its columns, and a flat value is viewed
as a map only where both orders agree; `x.size(0)` may give the batch), residual `+` of two
layer outputs of the same shape,
and Dropout and Identity as no-ops. Anything else is refused with the node's name
and this list.
"""

from __future__ import annotations

import operator
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from codesign.errors import ModelError
from codesign.frontend.lower_layers import (
    LoweringState,
    Value,
    adaptive_pool,
    batch_norm,
    conv,
    linear,
    pool,
)
from codesign.ir.graph import (
    ALPHA_BITS,
    ALPHA_FRAC,
    GRAPH_INPUT,
    Activation,
    Add,
    Dense,
    Graph,
    Layer,
    Pool2d,
    alpha_fits,
)
from codesign.ir.names import safe_identifier

SUPPORTED = (
    "Linear, Conv2d (grouped and depthwise too), BatchNorm (after Linear/Conv2d), ReLU, "
    "LeakyReLU, MaxPool2d, AvgPool2d, AdaptiveMax/AvgPool2d (output size dividing the input), "
    "Flatten, view/reshape, residual add, Dropout, Identity"
)
_RELU_FUNCTIONS = {F.relu, torch.relu}
_PASSTHROUGH_MODULES = (nn.Dropout, nn.Identity)
_FLATTEN_FUNCTIONS = {torch.flatten}
_FLATTEN_METHODS = {"flatten", "view", "reshape"}
_ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}


def lower(model: nn.Module, name: str, input_shape: tuple[int, ...]) -> Graph:
    """The IR graph of `model` for inputs of `input_shape` (no batch dimension); hardware
    choices (the block shape among them) enter at the passes."""
    model = model.eval()
    try:
        traced = fx.symbolic_trace(model)
    except Exception as error:  # torch.fx raises many kinds for untraceable code
        raise ModelError(f"cannot trace the model with torch.fx: {error}") from error
    modules = dict(traced.named_modules())
    state = LoweringState(tuple(input_shape))
    output: Value | None = None
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            if state.values:
                raise ModelError(f"the model takes more than one input ({node.name!r})")
            state.values[node] = Value(GRAPH_INPUT, tuple(input_shape))
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
    state: LoweringState, node: fx.Node, module: nn.Module | None, modules: dict[str, nn.Module]
) -> Value:
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
        return linear(state, module, str(node.target), value)
    if isinstance(module, nn.Conv2d):
        return conv(state, module, str(node.target), value)
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return batch_norm(state, node, module, value)
    if _is_relu(node, module) or isinstance(module, nn.LeakyReLU) or _is_leaky(node):
        return _activation(state, node, module, value)
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return pool(state, module, str(node.target), value)
    if isinstance(module, (nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)):
        return adaptive_pool(state, module, str(node.target), value)
    if isinstance(module, _PASSTHROUGH_MODULES):
        return value
    if _is_flatten(node, module):
        return _view(node, value, _reshaped(node, module, value.shape, state.sizes))
    raise ModelError(
        f"layer {node.target!s} ({_describe(node, modules)}) is not supported by the "
        f"hardware flow; supported: {SUPPORTED}"
    )


def _activation(
    state: LoweringState, node: fx.Node, module: nn.Module | None, value: Value
) -> Value:
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


def _add(state: LoweringState, node: fx.Node) -> Value:
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
    if a.map_shape != b.map_shape:
        raise ModelError(
            f"add {node.name!r}: one operand is a flattened feature map and the other is not; "
            "add the maps before flattening"
        )
    total = state.add_layer(
        Add(
            name=safe_identifier(node.name, state.taken),
            source_name=node.name,
            features=int(np.prod(a.shape)),
            inputs=(a.source, b.source),
            shape_of_output=a.shape,
        )
    )
    return Value(total.source, total.shape, a.map_shape)


def _view(node: fx.Node, value: Value, shape: tuple[int, ...]) -> Value:
    """`value` seen with per-sample `shape`: the stream keeps its order (maps channel-last), so
    a flatten of a map is remembered for the Linear that reads it, and a flat value becomes a
    map only where both orders agree (one channel, one pixel, or the map it was flattened
    from)."""
    current = value.map_shape or (value.shape if len(value.shape) == 3 else None)
    if shape == value.shape:
        return value
    if len(shape) == 3:
        if current == shape or shape[0] == 1 or shape[1] * shape[2] == 1:
            return Value(value.source, shape)
        raise ModelError(
            f"{node.name!r}: viewing {value.shape} as the map {shape}: feature maps stream "
            "channel-last (H, W, C), and only a map's own flatten, or a map of one channel or "
            "one pixel, can be viewed as a map again"
        )
    if current is not None and current[0] > 1 and current[1] * current[2] > 1:
        return Value(value.source, shape, current)
    return Value(value.source, shape)


def _reshaped(
    node: fx.Node, module: nn.Module | None, shape: tuple[int, ...], sizes: set[fx.Node]
) -> tuple[int, ...]:
    """The per-sample shape after a Flatten, flatten, view or reshape.

    The data stays as it is (`_view` says what the new shape means for stream order); the
    batch dimension must stay first.
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


def _check_output(layers: list[Layer], output: Value) -> tuple[Layer, ...]:
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
