"""Choose every layer's reuse factor for the board and tile the graph with it (the folding pass).

`tile` applies given reuse factors: how a matrix layer's kept blocks are dealt to tiles is its
engine's (codesign.engines.matrix.ir.tile); pooling and adds only take the stream width.

The options (codesign.options.Reuse):
  DefaultReuse   the smallest RF, uniform over the network, whose design fits the board: its
                 DSP blocks first, then the resource estimate (M20K, ALMs, registers), since a
                 conv's input frame is copied for every tile input that reads it;
  BalancedReuse  per-layer RFs for the smallest interval the board can hold: every matrix layer
                 gets the largest RF whose compute stage (positions·RF) fits the interval;
  UniformReuse   one given RF for all layers;  PerLayerReuse  one given RF per layer.
Every design is costed by the engines' own models (codesign.cost).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace

from codesign.boards import Board
from codesign.cost import fits_board, layer_cycles
from codesign.engines import engine_for, matrix_layers
from codesign.engines.stream import DEFAULT_VALUES_PER_BEAT
from codesign.errors import CodesignError
from codesign.ir.graph import Graph, ceil_div
from codesign.options import (
    DEFAULT_REUSE,
    DefaultReuse,
    PerLayerReuse,
    Reuse,
    UniformReuse,
)

log = logging.getLogger(__name__)
EXACT_SCAN = 256  # default reuse: candidate RFs tried one by one; the rest are bisected


def fold(
    graph: Graph,
    board: Board | None,
    reuse: Reuse = DEFAULT_REUSE,
    values_per_beat: int = DEFAULT_VALUES_PER_BEAT,
) -> Graph:
    """The compressed graph tiled at the reuse factors `reuse` chooses on `board` (a rule
    that only applies given factors needs no board)."""
    return tile(graph, reuse_factors(graph, board, reuse, values_per_beat), values_per_beat)


def tile(
    graph: Graph,
    reuse: int | Mapping[str, int],
    values_per_beat: int = DEFAULT_VALUES_PER_BEAT,
) -> Graph:
    """Tile every layer; `reuse` is one RF for all or a mapping from layer name to RF
    (layers without tiles need no entry)."""
    layers = []
    for layer in graph.layers:
        engine = engine_for(layer)
        requested = reuse if isinstance(reuse, int) else reuse.get(layer.name, 1)
        if engine.folded and not isinstance(reuse, int) and layer.name not in reuse:
            raise KeyError(f"layer {layer.name}: no reuse factor given")
        layers.append(engine.tile(layer, requested, values_per_beat))
    return replace(graph, layers=tuple(layers))


def reuse_factors(
    graph: Graph,
    board: Board | None,
    reuse: Reuse,
    values_per_beat: int = DEFAULT_VALUES_PER_BEAT,
) -> int | dict[str, int]:
    """One RF for every layer, or one per matrix layer (by IR name), for streams of
    `values_per_beat` values."""
    if isinstance(reuse, UniformReuse):
        return reuse.reuse_factor
    if isinstance(reuse, PerLayerReuse):
        return _per_layer(graph, reuse)
    if board is None:
        raise CodesignError(f"the reuse rule {type(reuse).__name__} needs a board to fit")
    if isinstance(reuse, DefaultReuse):
        factor = default_reuse_factor(graph, board, values_per_beat)
        log.info("default reuse factor on %s: %d", board.key, factor)
        return factor
    balanced = balanced_reuse_factors(graph, board, values_per_beat)
    log.info("balanced reuse factors on %s: %s", board.key, balanced)
    return balanced


def _per_layer(graph: Graph, reuse: PerLayerReuse) -> dict[str, int]:
    layers = matrix_layers(graph)
    names = {layer.name for layer in layers}
    by_source = {layer.source_name: layer.name for layer in layers}
    per_layer: dict[str, int] = {}
    for name, value in reuse.factors:
        key = name if name in names else by_source.get(name)
        if key is None:
            raise CodesignError(
                f"--reuse names unknown layer {name!r}; layers with a weight matrix: "
                f"{sorted(names)}"
            )
        if key in per_layer:
            raise CodesignError(f"--reuse names layer {key!r} twice")
        per_layer[key] = value
    missing = sorted(names - per_layer.keys())
    if missing:
        raise CodesignError(f"--reuse per layer must name every layer; missing: {missing}")
    return per_layer


def _smallest_reuse_per_tile_count(nnz_blocks: int) -> list[int]:
    """The smallest RF of every tile count ceil(nnz / RF): where a layer's design changes."""
    starts, reuse = [], 1
    while reuse <= nnz_blocks:
        starts.append(reuse)
        tiles = ceil_div(nnz_blocks, reuse)
        if tiles == 1:
            break
        reuse = ceil_div(nnz_blocks, tiles - 1)
    return starts or [1]


def default_reuse_factor(
    graph: Graph, board: Board, values_per_beat: int = DEFAULT_VALUES_PER_BEAT
) -> int:
    """The smallest uniform RF whose design fits the board (see the module docstring).

    The design only changes where some layer's tile count does, so only those RFs are
    candidates. The first EXACT_SCAN of them are tried in ascending order, the same answer
    as trying every RF (fit is not monotone at small RFs: RF 1 has no multiplexer or ROM, and
    conv frame copies shrink as tiles do). Beyond them (large layers: a 4096x4096 matrix has
    about 4,000 candidates) the rest is bisected, which assumes that there a larger RF never
    needs more of any resource; and the largest RF is costed first, so a design that fits
    at no RF is refused at once. Returns the RF at which every layer is a single tile if
    even that does not fit; the caller reports the overflow.
    """
    sizes = [engine_for(layer).max_reuse(layer) for layer in matrix_layers(graph)]
    largest = max(sizes, default=1)
    candidates = sorted({r for size in sizes for r in _smallest_reuse_per_tile_count(size)})

    def fits(reuse: int) -> bool:
        return fits_board(tile(graph, reuse, values_per_beat), board)

    if len(candidates) > EXACT_SCAN and not fits(candidates[-1]):
        return largest
    found = next((reuse for reuse in candidates[:EXACT_SCAN] if fits(reuse)), None)
    if found is not None or len(candidates) <= EXACT_SCAN:
        return largest if found is None else found
    return _first_fitting(candidates[EXACT_SCAN:], fits)  # its last entry fits


def _first_fitting(candidates: list[int], fits: Callable[[int], bool]) -> int:
    """Bisection: the first of ascending `candidates` that fits, given the last one does and
    a fitting candidate is followed only by fitting ones."""
    low, high = 0, len(candidates) - 1
    while low < high:
        middle = (low + high) // 2
        if fits(candidates[middle]):
            high = middle
        else:
            low = middle + 1
    return candidates[low]


def smallest_design(graph: Graph, values_per_beat: int = DEFAULT_VALUES_PER_BEAT) -> Graph:
    """The graph with every matrix layer at its largest RF (one tile): the fewest DSP blocks
    and logic any reuse factor gives."""
    largest = {layer.name: engine_for(layer).max_reuse(layer) for layer in matrix_layers(graph)}
    return tile(graph, largest, values_per_beat)


def reuse_for_interval(graph: Graph, interval: int) -> dict[str, int]:
    """Per matrix layer, the largest RF whose compute (positions·RF) stays within `interval`."""
    factors = {}
    for layer in matrix_layers(graph):
        engine = engine_for(layer)
        factors[layer.name] = max(
            1, min(engine.max_reuse(layer), interval // engine.positions(layer))
        )
    return factors


def balanced_reuse_factors(
    graph: Graph, board: Board, values_per_beat: int = DEFAULT_VALUES_PER_BEAT
) -> dict[str, int]:
    """Per-layer RFs for the smallest interval the board can hold (`--reuse balanced`).

    The interval is the smallest, from the streams' own bound (the most input or output beats
    of any layer) up, whose design fits the board (binary search: a longer interval never
    needs more tiles). If none fits, every layer is one tile.
    """
    beats = map(layer_cycles, tile(graph, 1, values_per_beat).layers)  # not on the RF
    stream_bound = max(max(c.in_beats, c.out_beats) for c in beats)
    candidates = sorted(
        {stream_bound}
        | {
            engine_for(layer).positions(layer) * reuse
            for layer in matrix_layers(graph)
            for reuse in range(1, engine_for(layer).max_reuse(layer) + 1)
            if engine_for(layer).positions(layer) * reuse > stream_bound
        }
    )

    def fits(interval: int) -> bool:
        return fits_board(tile(graph, reuse_for_interval(graph, interval), values_per_beat), board)

    if not fits(candidates[-1]):
        return reuse_for_interval(graph, candidates[-1])
    return reuse_for_interval(graph, _first_fitting(candidates, fits))
