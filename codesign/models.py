"""Models: the built-in ones (architectures fixed here), user models from `file.py:function`,
weights from a state_dict, and a small seeded trainer.
"""

from __future__ import annotations

import importlib.util
import logging
import pickle
from collections import OrderedDict
from collections.abc import Callable, Mapping
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
    # MLPerf Tiny's architectures on seeded synthetic stand-ins of their inputs (codesign.data)
    "resnet8": BuiltinModel(resnet8, "synthetic-cifar", (3, 32, 32), epochs=1, learning_rate=2e-3),
    "dscnn": BuiltinModel(dscnn, "synthetic-kws", (1, 49, 10), epochs=2, learning_rate=2e-3),
}


def load_model(spec: str, weights: Path | None = None) -> nn.Module:
    """A built-in model name or `path/to/file.py:function`; optional state_dict `weights`."""
    if spec in BUILTIN_MODELS:
        model = BUILTIN_MODELS[spec].build()
    elif model_file(spec) is not None:
        model = _model_from_file(spec)
    else:
        known = ", ".join(sorted(BUILTIN_MODELS))
        raise ModelError(
            f"unknown model {spec!r}; use a built-in model ({known}) or path/to/file.py:function"
        )
    if weights is not None:
        load_weights(model, weights)
    return model


def model_file(spec: str) -> tuple[Path, str] | None:
    """(file, function) of a `path/to/file.py:function` spec; None for any other spec."""
    file_name, colon, function_name = spec.rpartition(":")
    if not colon or not file_name.endswith(".py") or not function_name:
        return None
    return Path(file_name), function_name


def _model_from_file(spec: str) -> nn.Module:
    found = model_file(spec)
    assert found is not None
    path, function_name = found
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
    try:
        model = factory()
    except Exception as error:  # the user's constructor: any failure is theirs to fix
        raise ModelError(
            f"{spec}: calling {function_name}() failed: {type(error).__name__}: {error} "
            "(the function must build the model with no arguments)"
        ) from error
    if not isinstance(model, nn.Module):
        raise ModelError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def load_weights(model: nn.Module, path: Path) -> None:
    """Load a state_dict file into `model`: only tensors (weights_only), of the model's keys,
    shapes and kinds (floating point where the model's are), every value finite."""
    if not path.is_file():
        raise ModelError(f"weights file {path} does not exist")
    save_hint = "save it with torch.save(model.state_dict(), path)"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "unsupported global" not in str(error).lower():  # garbage, not a pickled object
            raise ModelError(
                f"weights file {path} is not a torch file (it does not unpickle); {save_hint}"
            ) from None
        raise ModelError(
            f"weights file {path} is not a plain state_dict: it holds a pickled model or "
            f"object, which codesign does not run; {save_hint}"
        ) from None
    except Exception as error:  # a truncated, empty or foreign file: any unpickling failure
        raise ModelError(
            f"weights file {path} is not a torch file ({type(error).__name__}: {error}); "
            f"{save_hint}"
        ) from None
    if not isinstance(state, Mapping) or not all(
        isinstance(value, torch.Tensor) for value in state.values()
    ):
        raise ModelError(
            f"weights file {path} holds a {type(state).__name__}, not a state_dict of "
            f"tensors; {save_hint}"
        )
    expected = model.state_dict()
    for key, value in state.items():
        reference = expected.get(key)
        if reference is not None and reference.is_floating_point():
            if not value.is_floating_point():
                raise ModelError(
                    f"weights file {path}: {key} is {value.dtype}, the model's is "
                    f"{reference.dtype}; save floating-point weights"
                )
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                raise ModelError(f"weights file {path}: {key} holds {bad} NaN or infinite values")
    try:
        model.load_state_dict(state)
    except (RuntimeError, ValueError) as error:
        detail = " ".join(str(error).split())  # torch's message spans lines
        raise ModelError(f"cannot load weights {path} into the model: {detail}") from None


def check_model_on_dataset(model: nn.Module, name: str, dataset: Dataset) -> None:
    """One forward pass on two training samples, before any training: the model must take
    the dataset's sample shape and give one score per class."""
    shape = dataset.input_shape
    sample = torch.from_numpy(np.asarray(dataset.x_train[:2], dtype=np.float32))
    was_training = model.training
    try:
        with torch.no_grad():
            output = model.eval()(sample)
    except Exception as error:  # the user's forward: any failure is a mismatch to report
        detail = " ".join(str(error).split())
        raise ModelError(
            f"{name} cannot take {dataset.name}'s samples of shape {shape} "
            f"({type(error).__name__}: {detail}); give --input-shape or another dataset"
        ) from None
    finally:
        model.train(was_training)
    if not isinstance(output, torch.Tensor) or output.ndim != 2:
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ModelError(f"{name} must return (batch, classes) scores, returns {got}")
    if output.shape[1] < dataset.num_classes:
        raise ModelError(
            f"{name} gives {output.shape[1]} scores per sample, {dataset.name} has "
            f"{dataset.num_classes} classes (labels 0 to {dataset.num_classes - 1})"
        )


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
    from codesign.progress import Progress

    generator = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(dataset.x_train)
    y = torch.from_numpy(dataset.y_train)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    cross_entropy = nn.CrossEntropyLoss()
    model.train()
    with Progress(epochs, "train", "epochs", progress) as bar:
        for _ in range(epochs):
            _train_epoch(model, x, y, generator, batch_size, optimizer, cross_entropy, loss_fn)
            bar.update()
    model.eval()
    return model


def _train_epoch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    generator: torch.Generator,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    cross_entropy: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None,
) -> None:
    """One epoch of seeded mini-batches."""
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
