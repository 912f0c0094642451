"""Models: the built-in ones (architectures fixed here), user models from `file.py:function`,
weights from a state_dict, and a small seeded trainer.
"""

from __future__ import annotations

import importlib.util
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from codesign.data import Dataset
from codesign.errors import ModelError

log = logging.getLogger(__name__)


def digits_mlp() -> nn.Module:
    """64 → 64 → 32 → 10 MLP for scikit-learn's 8×8 digits."""
    return nn.Sequential(
        OrderedDict(
            fc1=nn.Linear(64, 64),
            relu1=nn.ReLU(),
            fc2=nn.Linear(64, 32),
            relu2=nn.ReLU(),
            fc3=nn.Linear(32, 10),
        )
    )


def mnist_cnn() -> nn.Module:
    """conv-pool-conv-pool-linear for 28×28 MNIST."""
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(1, 8, kernel_size=3, padding=1),
            relu1=nn.ReLU(),
            pool1=nn.MaxPool2d(2),
            conv2=nn.Conv2d(8, 16, kernel_size=3, padding=1),
            relu2=nn.ReLU(),
            pool2=nn.MaxPool2d(2),
            flatten=nn.Flatten(),
            fc=nn.Linear(16 * 7 * 7, 10),
        )
    )


class _ResidualStack(nn.Module):
    """ResNet-8's stack: two 3×3 convs with BatchNorm, added to the input (through a strided
    1×1 conv where the stack halves the map and widens the channels), then ReLU."""

    def __init__(self, channels_in: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = (
            nn.Conv2d(channels_in, channels, 1, stride=stride)
            if stride != 1 or channels_in != channels
            else None
        )
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        skip = x if self.shortcut is None else self.shortcut(x)
        result: torch.Tensor = self.relu2(y + skip)
        return result


def resnet8() -> nn.Module:
    """MLPerf Tiny image classification's ResNet-8 for 3×32×32 images (CIFAR-10 shaped):
    a 16-filter 3×3 stem, three residual stacks of 16, 32 and 64 filters (the last two
    stride 2 with 1×1 shortcuts), global average pooling and a 10-way Linear."""
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(3, 16, 3, padding=1),
            bn=nn.BatchNorm2d(16),
            relu=nn.ReLU(),
            stack1=_ResidualStack(16, 16, 1),
            stack2=_ResidualStack(16, 32, 2),
            stack3=_ResidualStack(32, 64, 2),
            pool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(),
            fc=nn.Linear(64, 10),
        )
    )


def dscnn() -> nn.Module:
    """MLPerf Tiny keyword spotting's DS-CNN (small) for 1×49×10 MFCC maps: a 64-filter
    10×4 stride-2 conv, four depthwise-separable blocks (3×3 depthwise, groups = 64, then
    1×1 pointwise, each with BatchNorm and ReLU), global average pooling, a 12-way Linear."""
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        conv=nn.Conv2d(1, 64, (10, 4), stride=2, padding=(5, 1)),
        bn=nn.BatchNorm2d(64),
        relu=nn.ReLU(),
    )
    for index in range(1, 5):
        layers[f"dw{index}"] = nn.Conv2d(64, 64, 3, padding=1, groups=64)
        layers[f"dw{index}_bn"] = nn.BatchNorm2d(64)
        layers[f"dw{index}_relu"] = nn.ReLU()
        layers[f"pw{index}"] = nn.Conv2d(64, 64, 1)
        layers[f"pw{index}_bn"] = nn.BatchNorm2d(64)
        layers[f"pw{index}_relu"] = nn.ReLU()
    layers["pool"] = nn.AdaptiveAvgPool2d(1)
    layers["flatten"] = nn.Flatten()
    layers["fc"] = nn.Linear(64, 12)
    return nn.Sequential(layers)


@dataclass(frozen=True)
class BuiltinModel:
    build: Callable[[], nn.Module]
    dataset: str
    input_shape: tuple[int, ...]
    epochs: int
    learning_rate: float


BUILTIN_MODELS = {
    "digits-mlp": BuiltinModel(digits_mlp, "digits", (64,), epochs=80, learning_rate=1e-3),
    "mnist-cnn": BuiltinModel(mnist_cnn, "mnist5k", (1, 28, 28), epochs=12, learning_rate=2e-3),
}


def load_model(spec: str, weights: Path | None = None) -> nn.Module:
    """A built-in model name or `path/to/file.py:function`; optional state_dict `weights`."""
    if spec in BUILTIN_MODELS:
        model = BUILTIN_MODELS[spec].build()
    elif ":" in spec and spec.rsplit(":", 1)[0].endswith(".py"):
        model = _model_from_file(spec)
    else:
        known = ", ".join(sorted(BUILTIN_MODELS))
        raise ModelError(
            f"unknown model {spec!r}; use a built-in model ({known}) or path/to/file.py:function"
        )
    if weights is not None:
        load_weights(model, weights)
    return model


def _model_from_file(spec: str) -> nn.Module:
    file_name, function_name = spec.rsplit(":", 1)
    path = Path(file_name)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    module_spec = importlib.util.spec_from_file_location(f"codesign_user_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise ModelError(f"cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as error:
        raise ModelError(f"importing {path} failed: {type(error).__name__}: {error}") from error
    factory = getattr(module, function_name, None)
    if not callable(factory):
        raise ModelError(f"{path} has no function {function_name!r}")
    model = factory()
    if not isinstance(model, nn.Module):
        raise ModelError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def load_weights(model: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise ModelError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (RuntimeError, ValueError, OSError) as error:
        raise ModelError(f"cannot load weights {path} into the model: {error}") from error


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def train(
    model: nn.Module,
    dataset: Dataset,
    epochs: int,
    learning_rate: float = 2e-3,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = False,
    loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> nn.Module:
    """Train (or fine-tune) `model` in place with Adam; seeded, CPU.

    `loss_fn(logits, labels, inputs)` replaces cross-entropy (distillation uses it).
    """
    from tqdm import tqdm

    generator = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(dataset.x_train)
    y = torch.from_numpy(dataset.y_train)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    cross_entropy = nn.CrossEntropyLoss()
    model.train()
    for _ in tqdm(range(epochs), desc="train", unit="epoch", disable=not progress, leave=False):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            index = order[start : start + batch_size]
            logits = model(x[index])
            if loss_fn is None:
                loss = cross_entropy(logits, y[index])
            else:
                loss = loss_fn(logits, y[index], x[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    return model


@torch.no_grad()
def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    logits = model(torch.from_numpy(np.asarray(x, dtype=np.float32)))
    return float((logits.argmax(dim=1).numpy() == y).mean())


def train_builtin(name: str, dataset: Dataset, seed: int = 0, progress: bool = False) -> nn.Module:
    """A built-in model trained from scratch on `dataset` with its default schedule."""
    spec = BUILTIN_MODELS[name]
    seed_everything(seed)
    model = spec.build()
    return train(model, dataset, spec.epochs, spec.learning_rate, seed=seed, progress=progress)
