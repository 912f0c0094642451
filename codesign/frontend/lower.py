"""Lower a PyTorch model to the IR with torch.fx.

The hardware flow takes a chain of Linear layers, each optionally followed by ReLU; Flatten
(before the first Linear), Dropout and Identity are accepted as no-ops in inference. Anything
else is refused with the node's name and the list of what is supported.
"""

from __future__ import annotations

import operator
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from codesign.errors import ModelError
from codesign.ir.graph import Activation, Dense, Graph
from codesign.ir.names import safe_identifier

SUPPORTED = "Linear, ReLU, Flatten (before the first Linear), Dropout, Identity"
_RELU_FUNCTIONS = {F.relu, torch.relu}
_PASSTHROUGH_MODULES = (nn.Dropout, nn.Identity)
_FLATTEN_FUNCTIONS = {torch.flatten}
_FLATTEN_METHODS = {"flatten", "view", "reshape"}


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
    layers: list[Dense] = []
    taken: set[str] = set()
    current: fx.Node | None = None  # the node whose value is the running activation
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            current = node
            continue
        if node.op == "output":
            if node.args[0] is not current:
                raise ModelError("the model's output is not the result of its last layer")
            break
        if node.op in ("get_attr",):
            raise ModelError(f"node {node.name!r} reads a parameter directly; {SUPPORTED} only")
        inputs = [a for a in node.all_input_nodes]
        if inputs != [current]:
            raise ModelError(
                f"node {node.name!r} ({_describe(node, modules)}) does not simply consume the "
                "previous layer's output; the hardware flow supports a chain of layers only"
            )
        module = modules.get(node.target) if node.op == "call_module" else None
        if isinstance(module, nn.Linear):
            layers.append(_dense(module, str(node.target), taken, block))
        elif _is_relu(node, module):
            if not layers or layers[-1].activation is not Activation.NONE:
                raise ModelError(f"ReLU {node.name!r} must follow a Linear layer")
            layers[-1] = replace(layers[-1], activation=Activation.RELU)
        elif isinstance(module, _PASSTHROUGH_MODULES):
            pass
        elif _is_flatten(node, module):
            if layers:
                raise ModelError(f"Flatten {node.name!r} after a Linear layer is not supported")
        else:
            raise ModelError(
                f"layer {node.target!s} ({_describe(node, modules)}) is not supported by the "
                f"hardware flow; supported: {SUPPORTED}"
            )
        current = node
    if not layers:
        raise ModelError(f"the model has no Linear layer; supported: {SUPPORTED}")
    _check_chain(layers, input_shape)
    return Graph(name=safe_identifier(name, set()), input_shape=input_shape, layers=tuple(layers))


def _dense(module: nn.Linear, source_name: str, taken: set[str], block: tuple[int, int]) -> Dense:
    weight = module.weight.detach().cpu().double().numpy()
    if module.bias is not None:
        bias = module.bias.detach().cpu().double().numpy()
    else:
        bias = np.zeros(weight.shape[0])
    return Dense(
        name=safe_identifier(source_name, taken),
        source_name=source_name,
        weight=weight,
        bias=bias,
        block=block,
    )


def _is_relu(node: fx.Node, module: nn.Module | None) -> bool:
    if isinstance(module, nn.ReLU):
        return True
    if node.op == "call_function" and node.target in _RELU_FUNCTIONS:
        return True
    return node.op == "call_method" and node.target in ("relu", "relu_")


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
        if node.target in (operator.add, torch.add):
            return "add"
        return getattr(node.target, "__name__", str(node.target))
    return f"{node.op} {node.target}"


def _check_chain(layers: list[Dense], input_shape: tuple[int, ...]) -> None:
    features = int(np.prod(input_shape))
    for layer in layers:
        if layer.in_features != features:
            raise ModelError(
                f"layer {layer.source_name} expects {layer.in_features} inputs but receives "
                f"{features} (input shape {input_shape})"
            )
        features = layer.out_features
