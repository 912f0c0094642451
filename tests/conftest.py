"""Shared fixtures: small IR graphs built without torch."""

from __future__ import annotations

import os

import numpy as np
import pytest

from codesign.errors import ToolError
from codesign.ir import Activation, Dense, Graph
from codesign.passes import BuildOptions, build
from codesign.sim import tools


def block_sparse(
    rng: np.random.Generator, shape: tuple[int, int], block: tuple[int, int], keep: float
) -> np.ndarray:
    """Random weights with whole blocks zeroed (unbalanced: each block kept with prob `keep`)."""
    rows, cols = shape
    br, bc = block
    grid = rng.random((-(-rows // br), -(-cols // bc))) < keep
    mask = np.kron(grid, np.ones(block))[:rows, :cols]
    return rng.normal(0.0, 0.5, size=shape) * mask


def make_graph(
    shapes: list[tuple[int, int]],
    block: tuple[int, int] = (1, 4),
    keep: float = 0.5,
    reuse: int = 1,
    seed: int = 0,
) -> tuple[Graph, np.ndarray]:
    """A quantised, compressed, tiled chain of Dense layers and 64 calibration inputs."""
    rng = np.random.default_rng(seed)
    layers = []
    for index, shape in enumerate(shapes):
        last = index == len(shapes) - 1
        layers.append(
            Dense(
                name=f"fc{index + 1}",
                source_name=f"net.fc{index + 1}",
                weight=block_sparse(rng, shape, block, keep),
                bias=rng.normal(0.0, 0.1, size=shape[0]),
                activation=Activation.NONE if last else Activation.RELU,
                block=block,
            )
        )
    x = rng.uniform(-1.0, 1.0, size=(64, shapes[0][1]))
    graph = Graph("net", (shapes[0][1],), tuple(layers))
    return build(graph, BuildOptions(calibration=x, reuse=reuse)), x


@pytest.fixture
def small_graph() -> tuple[Graph, np.ndarray]:
    return make_graph([(10, 13), (5, 10)], block=(2, 4), keep=0.6, reuse=2)


@pytest.fixture
def toolchain() -> None:
    """g++, make and hls4ml's ac_types, or a skip saying why (CI installs them: it fails there)."""
    try:
        tools.gxx()
        tools.make()
        tools.ac_types_include()
    except ToolError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"C simulation needs g++, make and hls4ml's ac_types: {error}")
