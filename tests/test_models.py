"""Built-in models train on the bundled data; pruning handles Conv2d as (Cout, Cin·Kh·Kw)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codesign.data import load_dataset
from codesign.errors import ModelError
from codesign.frontend.pipeline import prune_blocks
from codesign.frontend.prune import as_matrix, block_scores
from codesign.models import accuracy, load_model, train_builtin


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "dataset", "floor"), [("digits-mlp", "digits", 0.95), ("mnist-cnn", "mnist5k", 0.93)]
)
def test_builtin_models_train_in_seconds(model: str, dataset: str, floor: float) -> None:
    data = load_dataset(dataset)
    net = train_builtin(model, data, seed=0)
    assert accuracy(net, data.x_test, data.y_test) >= floor


@pytest.mark.slow
@pytest.mark.parametrize(("model", "floor"), [("dscnn", 0.2)])
def test_mlperf_tiny_models_learn_their_synthetic_inputs(model: str, floor: float) -> None:
    """DS-CNN on synthetic-kws (12 classes, chance 0.083) after its 2 epochs; ResNet-8's
    epoch takes about a minute here and is exercised by hand (README)."""
    from codesign.models import BUILTIN_MODELS

    data = load_dataset(BUILTIN_MODELS[model].dataset)
    net = train_builtin(model, data, seed=0)
    assert accuracy(net, data.x_test, data.y_test) >= floor


def test_conv_layers_are_pruned_in_pytorch_order() -> None:
    data = load_dataset("digits")  # only its size matters: no fine-tuning here
    model = load_model("mnist-cnn")
    prune_blocks(model, data, 0.5, (1, 4), epochs=0)
    conv2 = model.conv2.weight.detach()  # 16 x 8 x 3 x 3 -> 16 x 72 = 18 blocks per row
    kept = block_scores(as_matrix(conv2).abs(), (1, 4)) > 0
    assert kept.sum(dim=1).tolist() == [9] * 16
    assert not hasattr(model.conv2, "parametrizations")  # masks baked in as zeros
    assert torch.count_nonzero(model.fc.weight) == model.fc.weight.numel() // 2


def test_user_model_file_and_weights(tmp_path: Path) -> None:
    source = tmp_path / "mine.py"
    source.write_text(
        "from torch import nn\n"
        "def tiny():\n    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))\n"
        "def not_a_model():\n    return 42\n"
    )
    model = load_model(f"{source}:tiny")
    torch.save(model.state_dict(), tmp_path / "w.pt")
    reloaded = load_model(f"{source}:tiny", tmp_path / "w.pt")
    assert torch.equal(reloaded[0].weight, model[0].weight)
    with pytest.raises(ModelError, match="returned int, not a torch.nn.Module"):
        load_model(f"{source}:not_a_model")
    with pytest.raises(ModelError, match="has no function 'missing'"):
        load_model(f"{source}:missing")
    with pytest.raises(ModelError, match="cannot load weights"):
        load_model("digits-mlp", tmp_path / "w.pt")
