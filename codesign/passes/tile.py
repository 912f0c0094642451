"""Map each layer's kept blocks onto multiplier tiles for a reuse factor (design.md §4).

Tiles = ceil(nnz_blocks / RF) for the requested RF; the layer's RF is then
ceil(nnz_blocks / tiles), which is at most the requested one and leaves no tile idle for a
whole cycle (so the compute stage meets ceil(MACs / multipliers)). Blocks are dealt in storage
order, RF consecutive blocks per tile, so tile `t` computes block `t·RF + c` in cycle `c`. A
layer with fewer kept blocks than the requested RF uses RF = nnz_blocks (one tile); an
all-zero layer keeps one idle tile so the datapath still produces its bias.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from codesign.ir.graph import Dense, Graph, Layer, Tiling, ceil_div

DEFAULT_VALUES_PER_BEAT = 4


def tile(
    graph: Graph,
    reuse: int | Mapping[str, int],
    values_per_beat: int = DEFAULT_VALUES_PER_BEAT,
) -> Graph:
    """Tile every matrix layer; `reuse` is one RF for all or a mapping from layer name to RF.

    Pooling and adds have no tiles; they only take the stream width.
    """
    layers: list[Layer] = []
    for layer in graph.layers:
        if not isinstance(layer, Dense):
            layers.append(replace(layer, values_per_beat=values_per_beat))
            continue
        requested = reuse if isinstance(reuse, int) else reuse[layer.name]
        layers.append(tile_layer(layer, requested, values_per_beat))
    return replace(graph, layers=tuple(layers))


def tiles_and_reuse(nnz_blocks: int, requested: int) -> tuple[int, int]:
    """Tiles for `nnz_blocks` kept blocks at a requested RF, and the RF those tiles need.

    ceil(nnz / tiles) cycles suffice, so no tile idles a whole cycle and the compute stage
    meets its ideal ceil(MACs / multipliers) (at most the requested RF). At least one tile.
    """
    tiles = max(1, ceil_div(nnz_blocks, max(1, min(requested, nnz_blocks))))
    return tiles, max(1, ceil_div(nnz_blocks, tiles))


def tile_layer(layer: Dense, reuse_factor: int, values_per_beat: int) -> Dense:
    if reuse_factor < 1:
        raise ValueError(f"layer {layer.name}: reuse factor must be >= 1, got {reuse_factor}")
    nnz = layer.require_csr().nnz_blocks
    tiles, effective = tiles_and_reuse(nnz, reuse_factor)
    slots = np.full(tiles * effective, -1, dtype=np.int64)
    slots[:nnz] = np.arange(nnz)
    tiling = Tiling(
        reuse_factor=effective,
        values_per_beat=values_per_beat,
        slots=slots.reshape(tiles, effective),
    )
    return replace(layer, tiling=tiling)
