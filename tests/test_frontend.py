"""Lowering PyTorch models to the IR, and balanced block pruning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from codesign.errors import ModelError, PruneError
from codesign.frontend.lower import lower
from codesign.frontend.prune import balanced_block_mask, block_scores, prunable_layers
from codesign.ir.graph import Activation
from codesign.models import digits_mlp


def test_digits_mlp_lowers_to_three_dense_layers() -> None:
    graph = lower(digits_mlp(), "digits-mlp", (64,))
    assert graph.name == "digits_mlp"
    assert [(layer.name, layer.shape, layer.activation) for layer in graph.layers] == [
        ("fc1", (64, 64), Activation.RELU),
        ("fc2", (32, 64), Activation.RELU),
        ("fc3", (10, 32), Activation.NONE),
    ]
    assert all(layer.block is None for layer in graph.layers)  # the block enters at compress


def test_functional_relu_flatten_and_dropout_are_accepted() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(12, 6)
            self.drop = nn.Dropout(0.2)
            self.b = nn.Linear(6, 3, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.drop(torch.relu(self.a(torch.flatten(x, 1)))))

    graph = lower(Net(), "net", (3, 4))
    assert [layer.activation for layer in graph.layers] == [Activation.RELU, Activation.NONE]
    assert np.all(graph.layers[1].bias == 0.0)


def test_unsupported_layer_is_named_with_what_is_supported() -> None:
    model = nn.Sequential(nn.Linear(8, 8), nn.Sigmoid())
    with pytest.raises(ModelError, match=r"1 \(Sigmoid\) is not supported.*supported: Linear"):
        lower(model, "m", (8,))


def test_shape_mismatch_is_reported() -> None:
    with pytest.raises(ModelError, match="expects 64 inputs but receives 32"):
        lower(digits_mlp(), "m", (32,))


def test_hostile_layer_names_become_unique_identifiers() -> None:
    model = nn.Sequential()
    model.add_module("int", nn.Linear(4, 4))
    model.add_module("Int", nn.Linear(4, 4))
    model.add_module("9 lives!", nn.Linear(4, 2))
    names = [layer.name for layer in lower(model, "class", (4,)).layers]
    assert names == ["layer_int", "layer_int_2", "layer_9_lives"]


def test_balanced_mask_keeps_same_blocks_per_row() -> None:
    torch.manual_seed(0)
    weight = torch.randn(10, 30)
    mask = balanced_block_mask(weight, (2, 4), 0.75)
    assert mask.shape == weight.shape
    blocks = block_scores(mask.float(), (2, 4)) > 0
    # 8 block columns (30 padded to 32): keep round(0.25 * 8) = 2 per block-row
    assert blocks.sum(dim=1).tolist() == [2] * 5
    # the kept blocks are the largest by L1 norm
    scores = block_scores(weight, (2, 4))
    for row in range(5):
        kept = scores[row][blocks[row]]
        dropped = scores[row][~blocks[row]]
        assert kept.min() >= dropped.max()


def test_every_block_row_keeps_at_least_one_block() -> None:
    mask = balanced_block_mask(torch.randn(4, 8), (1, 4), 0.9)
    assert (block_scores(mask.float(), (1, 4)) > 0).sum(dim=1).tolist() == [1] * 4


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5])
def test_sparsity_outside_unit_interval_is_refused(sparsity: float) -> None:
    with pytest.raises(PruneError, match=r"sparsity must be in \[0, 1\)"):
        balanced_block_mask(torch.randn(4, 8), (1, 4), sparsity)


def test_model_without_prunable_layers_is_refused() -> None:
    with pytest.raises(PruneError, match="no prunable layer"):
        prunable_layers(nn.Sequential(nn.ReLU()))
