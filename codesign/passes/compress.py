"""Compress each layer's quantised weights to block-CSR at the block shape (design.md §4).

The block enters the flow here: lowering is hardware-neutral. Each engine compresses what it
has (codesign.engines.matrix.ir: a block is kept when any of its weights is nonzero); layers
without weights pass through.
"""

from __future__ import annotations

from dataclasses import replace

from codesign.engines import engine_for
from codesign.ir.graph import Graph


def compress(graph: Graph, block: tuple[int, int] | None = None) -> Graph:
    """`block`: the block of every matrix layer (None: each layer's own, set when built)."""
    layers = tuple(engine_for(layer).compress(layer, block) for layer in graph.layers)
    return replace(graph, layers=layers)
