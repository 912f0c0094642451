"""Datasets: built-ins with fixed seeded splits, and user .npz files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from codesign.data import load_dataset
from codesign.errors import DatasetError


def test_digits_split_is_fixed_and_scaled() -> None:
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.x_train.shape == (1437, 64) and a.x_test.shape == (360, 64)
    assert np.array_equal(a.x_test, b.x_test)
    assert 0.0 <= a.x_train.min() and a.x_train.max() == 1.0
    assert a.num_classes == 10


def test_mnist5k_is_real_mnist() -> None:
    data = load_dataset("mnist5k")
    assert data.x_train.shape == (4000, 1, 28, 28) and data.x_test.shape == (1000, 1, 28, 28)
    assert sorted(np.unique(data.y_test).tolist()) == list(range(10))


@pytest.mark.parametrize(
    ("name", "shape", "classes"),
    [("synthetic-cifar", (3, 32, 32), 10), ("synthetic-kws", (1, 49, 10), 12)],
)
def test_synthetic_stand_ins_are_seeded_balanced_and_learnable(
    name: str, shape: tuple[int, ...], classes: int
) -> None:
    """The MLPerf Tiny input shapes; a nearest-class-mean rule beats chance by far, so the
    classes differ, but not trivially (noise is twice the pattern's range)."""
    a, b = load_dataset(name), load_dataset(name)
    assert a.input_shape == shape and a.num_classes == classes
    assert len(a.x_train) == 2400 and len(a.x_test) == 600
    assert np.array_equal(a.x_test, b.x_test) and np.isfinite(a.x_train).all()
    assert np.bincount(a.y_test).tolist() == [600 // classes] * classes
    means = np.stack([a.x_train[a.y_train == c].mean(axis=0) for c in range(classes)])
    flat = a.x_test.reshape(len(a.x_test), -1)
    nearest = ((flat[:, None, :] - means.reshape(classes, -1)[None]) ** 2).sum(-1).argmin(1)
    assert (nearest == a.y_test).mean() > 3 / classes


def test_npz_dataset(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(
        path,
        x_train=rng.random((20, 6)),
        y_train=rng.integers(0, 3, 20),
        x_test=rng.random((5, 6)),
        y_test=rng.integers(0, 3, 5),
    )
    data = load_dataset(str(path))
    assert data.name == "mine" and data.input_shape == (6,) and data.x_train.dtype == np.float32


def test_bad_datasets(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown dataset 'cifar'.*digits, mnist5k"):
        load_dataset("cifar")
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(str(tmp_path / "none.npz"))
    partial = tmp_path / "partial.npz"
    np.savez(partial, x_train=np.zeros((2, 3)), y_train=np.zeros(2, dtype=int))
    with pytest.raises(DatasetError, match="missing array.*x_test, y_test"):
        load_dataset(str(partial))
    mismatched = tmp_path / "mismatched.npz"
    np.savez(
        mismatched,
        x_train=np.zeros((2, 3)),
        y_train=np.zeros(3, dtype=int),
        x_test=np.zeros((1, 3)),
        y_test=np.zeros(1, dtype=int),
    )
    with pytest.raises(DatasetError, match="same N"):
        load_dataset(str(mismatched))
