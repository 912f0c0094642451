"""Channel / neuron pruning that rebuilds the model smaller.

Which channels can go is read from the model's torch.fx graph: a Linear or Conv2d layer (the
*producer*) whose output reaches exactly one next Linear/Conv2d (the *consumer*) through
per-channel operations only (ReLU, LeakyReLU, BatchNorm, max/avg and adaptive pooling, Dropout,
Identity, Flatten/view; shape queries such as x.size(0) aside) can lose output channels; the
consumer loses the matching inputs (for Conv2d → Flatten → Linear, the H·W columns of each
channel) and every BatchNorm on the way loses the same features, so the rebuilt model computes
exactly what the masked one did. A layer whose output branches
(e.g. into a residual add) or reaches the model's output is kept whole, so adds stay
consistent. The saved `resized` map (module name → new sizes) lets `load_pruned` rebuild the
architecture before loading the weights.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from codesign.errors import ModelError, PruneError
from codesign.frontend.lower import is_shape_query

log = logging.getLogger(__name__)

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_PER_CHANNEL_MODULES = (
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveAvgPool2d,
    nn.LeakyReLU,
    nn.Dropout,
    nn.Identity,
)
_RELU_FUNCTIONS: set[Callable[..., Any]] = {F.relu, torch.relu}
_PER_CHANNEL_FUNCTIONS: set[Callable[..., Any]] = {
    F.max_pool2d,
    F.avg_pool2d,
    F.adaptive_max_pool2d,
    F.adaptive_avg_pool2d,
    F.leaky_relu,
    F.dropout,
}
_FLATTEN_METHODS = {"flatten", "view", "reshape"}


@dataclass
class ChannelGroup:
    """Output channels of `producer`, as seen by `consumer` (`spatial` columns per channel)."""

    producer: str
    consumer: str
    channels: int
    spatial: int = 1
    norms: list[str] = field(default_factory=list)
    activation_node: str | None = None  # the first ReLU after the producer (APoZ is read there)


def traced(model: nn.Module, input_shape: tuple[int, ...]) -> fx.GraphModule:
    """torch.fx trace of `model` (sharing its modules) with shapes propagated."""
    try:
        graph_module = fx.symbolic_trace(model)
    except Exception as error:  # torch.fx raises many kinds for untraceable code
        raise ModelError(f"channel pruning needs a torch.fx-traceable model: {error}") from error
    ShapeProp(graph_module).propagate(torch.zeros(1, *input_shape))
    return graph_module


def channel_groups(graph_module: fx.GraphModule) -> list[ChannelGroup]:
    """Every producer whose output channels can be removed, with its consumer."""
    modules = dict(graph_module.named_modules())
    groups = []
    for node in graph_module.graph.nodes:
        module = modules.get(node.target) if node.op == "call_module" else None
        if isinstance(module, nn.Linear | nn.Conv2d) and _groups_ok(module):
            group = _follow(node, module, modules)
            if group is not None:
                groups.append(group)
    return groups


def _groups_ok(module: nn.Module) -> bool:
    return not isinstance(module, nn.Conv2d) or module.groups == 1


def _follow(
    start: fx.Node, producer: nn.Linear | nn.Conv2d, modules: dict[str, nn.Module]
) -> ChannelGroup | None:
    group = ChannelGroup(str(start.target), "", _out_channels(producer))
    current = start
    flattened = False
    while True:
        users = [user for user in current.users if not is_shape_query(user)]
        if len(users) != 1:
            return None  # branches (residual adds) and the model output keep their channels
        node = users[0]
        module = modules.get(str(node.target)) if node.op == "call_module" else None
        if isinstance(module, nn.Linear | nn.Conv2d):
            conv_in = isinstance(producer, nn.Conv2d)
            if isinstance(module, nn.Conv2d) and (
                flattened or not conv_in or not _groups_ok(module)
            ):
                return None
            if isinstance(module, nn.Linear) and conv_in and not flattened:
                return None
            group.consumer = str(node.target)
            return group
        if isinstance(module, _NORMS):
            group.norms.append(str(node.target))
        elif isinstance(module, nn.ReLU) or _is_function(node, _RELU_FUNCTIONS, ("relu",)):
            group.activation_node = group.activation_node or node.name
        elif isinstance(module, nn.Flatten) or _is_flatten(node):
            flattened = True
            shape = current.meta["tensor_meta"].shape
            group.spatial = math.prod(shape[2:])
        elif module is None and not _is_function(node, _PER_CHANNEL_FUNCTIONS, ()):
            return None
        elif module is not None and not isinstance(module, _PER_CHANNEL_MODULES):
            return None
        current = node


def _is_function(
    node: fx.Node, functions: set[Callable[..., Any]], methods: tuple[str, ...]
) -> bool:
    if node.op == "call_function":
        return node.target in functions
    return node.op == "call_method" and node.target in methods


def _is_flatten(node: fx.Node) -> bool:
    if node.op == "call_function":
        return node.target is torch.flatten
    return node.op == "call_method" and node.target in _FLATTEN_METHODS


def _out_channels(module: nn.Linear | nn.Conv2d) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def removed_count(channels: int, ratio: float) -> int:
    """Channels removed at `ratio`; at least one channel always stays."""
    return min(channels - 1, max(0, round(ratio * channels)))


def weight_counts(model: nn.Module, groups: list[ChannelGroup], ratio: float) -> tuple[int, int]:
    """(weights of every Linear/Conv2d now, weights after removing `ratio` of each group)."""
    sizes = {
        name: (m.weight.shape[0], m.weight[0].numel())
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear | nn.Conv2d)
    }
    outs = {name: rows for name, (rows, _) in sizes.items()}
    fan_in = {name: cols for name, (_, cols) in sizes.items()}
    for group in groups:
        removed = removed_count(group.channels, ratio)
        consumer = dict(model.named_modules())[group.consumer]
        per_channel = group.spatial
        if isinstance(consumer, nn.Conv2d):
            per_channel = consumer.kernel_size[0] * consumer.kernel_size[1]
        outs[group.producer] -= removed
        fan_in[group.consumer] -= removed * per_channel
    before = sum(rows * cols for rows, cols in sizes.values())
    return before, sum(outs[name] * fan_in[name] for name in sizes)


def ratio_for_sparsity(model: nn.Module, groups: list[ChannelGroup], sparsity: float) -> float:
    """The smallest uniform channel ratio whose rebuilt model has `sparsity` fewer weights."""
    if not groups:
        raise PruneError(
            "no layer can lose channels: every Linear/Conv2d output branches or is the output"
        )
    before, _ = weight_counts(model, groups, 0.0)
    best = 1.0 - weight_counts(model, groups, 1.0)[1] / before
    if sparsity > best + 1e-9:
        raise PruneError(
            f"channel pruning cannot remove {sparsity:.1%} of the weights: keeping one channel "
            f"per prunable layer removes at most {best:.1%}"
        )
    low, high = 0.0, 1.0
    for _ in range(40):
        middle = (low + high) / 2
        if 1.0 - weight_counts(model, groups, middle)[1] / before >= sparsity:
            high = middle
        else:
            low = middle
    return high


# --- rebuilding ---------------------------------------------------------------------------------


def rebuild(
    model: nn.Module, groups: list[ChannelGroup], keep: dict[str, torch.Tensor]
) -> dict[str, dict[str, int]]:
    """Replace layers by smaller copies keeping channels `keep[producer]`; return `resized`."""
    modules = dict(model.named_modules())
    out_keep: dict[str, torch.Tensor] = {}
    in_keep: dict[str, torch.Tensor] = {}
    for group in groups:
        kept = keep[group.producer].sort().values
        out_keep[group.producer] = kept
        for norm in group.norms:
            out_keep[norm] = kept
        consumer = modules[group.consumer]
        if isinstance(consumer, nn.Linear) and group.spatial > 1:
            offsets = torch.arange(group.spatial)
            in_keep[group.consumer] = (kept[:, None] * group.spatial + offsets[None, :]).flatten()
        else:
            in_keep[group.consumer] = kept
    resized: dict[str, dict[str, int]] = {}
    for name in sorted(out_keep.keys() | in_keep.keys()):
        old = modules[name]
        new = _smaller(old, out_keep.get(name), in_keep.get(name))
        model.set_submodule(name, new)
        resized[name] = module_sizes(new)
    return resized


def module_sizes(module: nn.Module) -> dict[str, int]:
    if isinstance(module, nn.Linear):
        return {"in_features": module.in_features, "out_features": module.out_features}
    if isinstance(module, nn.Conv2d):
        return {"in_channels": module.in_channels, "out_channels": module.out_channels}
    if isinstance(module, _NORMS):
        return {"num_features": module.num_features}
    raise ModelError(f"cannot resize a {type(module).__name__}")


@torch.no_grad()
def _smaller(
    old: nn.Module, out_keep: torch.Tensor | None, in_keep: torch.Tensor | None
) -> nn.Module:
    if isinstance(old, _NORMS):
        assert out_keep is not None
        norm = _empty_like(old, {"num_features": len(out_keep)})
        for key in ("weight", "bias", "running_mean", "running_var"):
            source = getattr(old, key)
            if source is not None:
                getattr(norm, key).copy_(source[out_keep])
        tracked = old.num_batches_tracked
        if isinstance(tracked, torch.Tensor) and isinstance(norm.num_batches_tracked, torch.Tensor):
            norm.num_batches_tracked.copy_(tracked)
        return norm
    assert isinstance(old, nn.Linear | nn.Conv2d)
    weight = old.weight
    bias = old.bias
    if out_keep is not None:
        weight = weight[out_keep]
        bias = bias[out_keep] if bias is not None else None
    if in_keep is not None:
        weight = weight[:, in_keep]
    if isinstance(old, nn.Linear):
        sizes = {"in_features": weight.shape[1], "out_features": weight.shape[0]}
    else:
        sizes = {"in_channels": weight.shape[1], "out_channels": weight.shape[0]}
    new = _empty_like(old, sizes)
    assert isinstance(new, nn.Linear | nn.Conv2d)
    new.weight.copy_(weight)
    if bias is not None and new.bias is not None:
        new.bias.copy_(bias)
    return new


def _empty_like(old: nn.Module, sizes: dict[str, int]) -> nn.Module:
    """A fresh module of `old`'s type and settings with new sizes."""
    if isinstance(old, nn.Linear):
        linear = nn.Linear(sizes["in_features"], sizes["out_features"], bias=old.bias is not None)
        return linear.train(old.training)
    if isinstance(old, nn.Conv2d):
        return nn.Conv2d(
            sizes["in_channels"],
            sizes["out_channels"],
            kernel_size=old.kernel_size,  # type: ignore[arg-type]
            stride=old.stride,  # type: ignore[arg-type]
            padding=old.padding,  # type: ignore[arg-type]
            dilation=old.dilation,  # type: ignore[arg-type]
            bias=old.bias is not None,
            padding_mode=old.padding_mode,
        ).train(old.training)
    if isinstance(old, _NORMS):
        norm = type(old)(
            sizes["num_features"],
            eps=old.eps,
            momentum=old.momentum,
            affine=old.affine,
            track_running_stats=old.track_running_stats,
        )
        return norm.train(old.training)
    raise ModelError(f"cannot resize a {type(old).__name__}")


def apply_resized(model: nn.Module, resized: dict[str, dict[str, int]]) -> None:
    """Rebuild the smaller architecture a channel-pruning run saved (before loading weights)."""
    modules = dict(model.named_modules())
    for name, sizes in resized.items():
        if name not in modules:
            raise ModelError(f"prune.json resizes {name!r}, which the model does not have")
        try:
            model.set_submodule(name, _empty_like(modules[name], dict(sizes)))
        except (KeyError, TypeError) as error:
            raise ModelError(f"prune.json: cannot resize {name!r} with {sizes}: {error}") from error
