"""The demo-sized MLP the speed benchmarks build: 64-64-32-10, 1x4 blocks, seeded random weights.

`keep_per_row` gives the blocks each block-row keeps per layer (balanced), or None for dense.
Shared by hls_csim_speed.py and rtl_sim_speed.py (run as scripts from this folder).
"""

from __future__ import annotations

import numpy as np

from codesign.ir import Activation, Dense, Graph
from codesign.passes import BuildOptions, build

SIZES = (64, 64, 32, 10)
BLOCK = (1, 4)


def mlp(keep_per_row: tuple[int, ...] | None, reuse: int, rng: np.random.Generator) -> Graph:
    layers = []
    for index, (fan_in, fan_out) in enumerate(zip(SIZES[:-1], SIZES[1:], strict=True)):
        weight = rng.normal(size=(fan_out, fan_in)) / np.sqrt(fan_in)
        if keep_per_row is not None:
            grid_cols = fan_in // BLOCK[1]
            kept = np.zeros((fan_out, grid_cols), dtype=bool)
            for row in range(fan_out):
                kept[row, rng.choice(grid_cols, keep_per_row[index], replace=False)] = True
            weight = np.where(np.repeat(kept, BLOCK[1], axis=1), weight, 0.0)
        activation = Activation.RELU if index < len(SIZES) - 2 else Activation.NONE
        bias = rng.normal(size=fan_out) * 0.1
        layers.append(Dense(f"fc{index + 1}", f"fc{index + 1}", weight, bias, activation, BLOCK))
    graph = Graph("digits_mlp", (SIZES[0],), tuple(layers))
    calibration = rng.normal(size=(256, SIZES[0]))
    return build(graph, BuildOptions(calibration, reuse=reuse, values_per_beat=4))
