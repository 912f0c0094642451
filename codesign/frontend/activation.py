"""Activation-based channel pruning: APoZ (Hu et al. 2016).

The *Average Percentage of Zeros* of a neuron or channel is the fraction of its post-ReLU
outputs that are zero on calibration data (over samples and, for Conv2d, positions). Channels
that are mostly zero contribute little; they are removed first. Ties (and layers with no ReLU,
whose APoZ is ~0) fall back to the mean absolute activation, smallest first.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

from codesign.frontend.channel import ChannelGroup

CALIBRATION_BATCH = 256
MEAN_WEIGHT = 1e-3


class _Recorder(fx.Interpreter):
    """Runs the traced model and keeps the outputs of the named nodes."""

    def __init__(self, module: fx.GraphModule, names: set[str]) -> None:
        super().__init__(module)
        self.names = names
        self.values: dict[str, torch.Tensor] = {}

    def run_node(self, n: fx.Node) -> Any:
        result = super().run_node(n)
        if n.name in self.names:
            self.values[n.name] = result.detach()
        return result


def _node_names(graph_module: fx.GraphModule, groups: list[ChannelGroup]) -> dict[str, str]:
    """Producer -> the fx node whose output is measured (its ReLU, else the layer itself)."""
    by_target = {
        str(node.target): node.name for node in graph_module.graph.nodes if node.op == "call_module"
    }
    return {g.producer: g.activation_node or by_target[g.producer] for g in groups}


@torch.no_grad()
def apoz(
    graph_module: fx.GraphModule, groups: list[ChannelGroup], x: torch.Tensor
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Producer -> (APoZ per channel, mean |activation| per channel) on inputs `x`."""
    watched = _node_names(graph_module, groups)
    zeros: dict[str, torch.Tensor] = {}
    sums: dict[str, torch.Tensor] = {}
    count: dict[str, int] = {}
    was_training = graph_module.training
    graph_module.eval()
    for start in range(0, len(x), CALIBRATION_BATCH):
        recorder = _Recorder(graph_module, set(watched.values()))
        recorder.run(x[start : start + CALIBRATION_BATCH])
        for producer, node_name in watched.items():
            value = recorder.values[node_name]
            per_channel = value.transpose(0, 1).reshape(value.shape[1], -1)
            zeros[producer] = zeros.get(producer, 0) + (per_channel == 0).sum(dim=1)
            sums[producer] = sums.get(producer, 0) + per_channel.abs().sum(dim=1)
            count[producer] = count.get(producer, 0) + per_channel.shape[1]
    graph_module.train(was_training)
    return {
        producer: (zeros[producer].double() / count[producer], sums[producer] / count[producer])
        for producer in watched
    }


def apoz_keep_scores(
    graph_module: fx.GraphModule, groups: list[ChannelGroup], x: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Producer -> per-channel score, higher = keep: (1 − APoZ) plus a small mean tie-break."""
    scores = {}
    for producer, (zero_fraction, mean) in apoz(graph_module, groups, x).items():
        scale = float(mean.max()) or 1.0
        scores[producer] = (1.0 - zero_fraction).float() + MEAN_WEIGHT * mean.float() / scale
    return scores
