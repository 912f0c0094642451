"""The hardware engines, one module each, found through one table keyed by IR layer type.

  matrix  Dense: block-sparse Br×Bc multiplier tiles on an input frame (engines/matrix/)
  conv    Conv2d: the same tiles at every output position, on a line buffer's window
  pool    Max/AvgPool2d over kernel windows (engines/pool.py)
  add     the element-wise sum of a residual connection (engines/add.py)
  stream  what they share: stream beats, memory placement, logic primitives

A new engine is one module here (an `Engine` subclass, listed in ENGINES), its templates in
hls_templates/ and rtl_sim/, a function of `codesign.reference` and a lowering rule.
"""

from __future__ import annotations

from codesign.engines.add import AddEngine
from codesign.engines.base import Engine, LayerCycles
from codesign.engines.matrix import ConvEngine, MatrixEngine
from codesign.engines.pool import PoolEngine
from codesign.errors import CodesignError
from codesign.ir.graph import Add, Conv2d, Dense, Graph, Layer, Pool2d

MATRIX, CONV, POOL, ADD = MatrixEngine(), ConvEngine(), PoolEngine(), AddEngine()
ENGINES: dict[type, Engine] = {Dense: MATRIX, Conv2d: CONV, Pool2d: POOL, Add: ADD}
_BY_KIND = {kind: engine for engine in ENGINES.values() for kind in engine.kinds}

__all__ = [
    "ENGINES",
    "Engine",
    "LayerCycles",
    "engine_for",
    "engine_of_kind",
    "kind_label",
    "matrix_layers",
    "modules",
]


def engine_for(layer: Layer) -> Engine:
    """The engine that implements `layer`."""
    try:
        return ENGINES[type(layer)]
    except KeyError:
        raise CodesignError(
            f"layer {layer.name}: no hardware engine for {type(layer).__name__}"
        ) from None


def engine_of_kind(kind: str) -> Engine:
    """The engine of a layer kind as design.json names it."""
    try:
        return _BY_KIND[kind]
    except KeyError:
        raise CodesignError(f"unknown layer kind {kind!r}; known: {sorted(_BY_KIND)}") from None


def modules(graph: Graph) -> tuple[str, ...]:
    """The RTL modules the graph's engines need, each once, parts first, in table order."""
    used = {engine_for(layer).module for layer in graph.layers}
    ordered = [engine for engine in dict.fromkeys(ENGINES.values()) if engine.module in used]
    parts = [part for engine in ordered for part in engine.rtl_parts]
    return tuple(dict.fromkeys([*parts, *(engine.module for engine in ordered)]))


def matrix_layers(graph: Graph) -> tuple[Dense, ...]:
    """The layers with a block-sparse weight matrix (Dense and Conv2d), in graph order."""
    return tuple(layer for layer in graph.layers if isinstance(layer, Dense))


def kind_label(kind: str) -> str:
    """The short name of a layer kind in tables ("linear", "conv", "pool", "add")."""
    engine = _BY_KIND.get(kind)
    return engine.labels.get(kind, kind) if engine is not None else kind
