"""Fold every layer onto the board: reuse factors and stream widths (the folding pass).

`tile` applies given reuse factors and stream widths: how a matrix layer's kept blocks are
dealt to tiles is its engine's (codesign.engines.matrix.ir.tile); every layer takes the width
of the streams it reads and of the one it writes (`StreamWidths`).

The options (codesign.options.Reuse):
  FoldedReuse      (the default) one interval for every layer, FINN's SetFolding: each matrix
                   layer at the largest RF whose compute (positions·RF) fits it, each stream
                   at the fewest values per beat that carry its vector within it (at least 4);
                   the smallest interval whose design fits the board, or --target-ii;
  UniformFitReuse  the smallest RF, uniform over the network, whose design fits the board (its
                   DSP blocks first, then the resource estimate: M20K, ALMs, registers), with
                   4-value streams (`--reuse uniform`; the pruning budgets cost this one);
  BalancedReuse    FoldedReuse's RFs with 4-value streams (`--reuse balanced`);
  UniformReuse     one given RF for all layers;  PerLayerReuse  one given RF per layer.
Every design is costed by the engines' own models (codesign.cost).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace

from codesign.boards import Board
from codesign.cost import fits_board, layer_cycles
from codesign.cost.cycles import size_line_buffers
from codesign.engines import engine_for, matrix_layers
from codesign.errors import CodesignError
from codesign.ir.graph import GRAPH_INPUT, Graph, StreamWidths, ceil_div
from codesign.ir.layout import DEFAULT_VALUES_PER_BEAT
from codesign.options import (
    DEFAULT_REUSE,
    FoldedReuse,
    PerLayerReuse,
    Reuse,
    UniformFitReuse,
    UniformReuse,
)

log = logging.getLogger(__name__)
Widths = int | Mapping[str, int]  # values per beat: one for every stream, or one per value
EXACT_SCAN = 256  # default reuse: candidate RFs tried one by one; the rest are bisected


def fold(
    graph: Graph,
    board: Board | None,
    reuse: Reuse = DEFAULT_REUSE,
    values_per_beat: Widths = DEFAULT_VALUES_PER_BEAT,
) -> Graph:
    """The compressed graph tiled at the reuse factors `reuse` chooses on `board` (a rule
    that only applies given factors needs no board); the folding rule also chooses the
    stream widths, the other rules stream `values_per_beat`."""
    if isinstance(reuse, FoldedReuse):
        if reuse.target_ii is None:
            if board is None:
                raise CodesignError("folding to the smallest interval needs a board to fit")
            interval = smallest_interval(graph, board)
        else:
            interval = max(reuse.target_ii, interval_bound(graph))
            if interval > reuse.target_ii:
                log.warning(
                    "--target-ii %d is below what the engines reach (a conv computes one "
                    "output position a cycle); folding to %d",
                    reuse.target_ii,
                    interval,
                )
        log.info("folded to an interval of %d cycles", interval)
        return fold_to_interval(graph, interval)
    return tile(graph, reuse_factors(graph, board, reuse, values_per_beat), values_per_beat)


def fold_to_interval(graph: Graph, interval: int) -> Graph:
    """Every layer folded to `interval` cycles a vector with the fewest multipliers: each
    matrix layer at the largest RF whose compute (positions·RF) fits it, each stream at the
    fewest values per beat that carry its vector in at most `interval` beats, but at least
    DEFAULT_VALUES_PER_BEAT (narrower streams save a few output lanes and add input beats to
    every layer's latency). A layer that cannot meet it (a conv computes one position at a
    time: at least `positions` cycles) takes RF 1 and bounds the interval, and the streams
    are sized for that bound (wider ones would gain nothing)."""
    interval = max(interval, interval_bound(graph))
    return tile(graph, reuse_for_interval(graph, interval), _folded_widths(graph, interval))


def _folded_widths(graph: Graph, interval: int) -> dict[str, int]:
    """Per value, the fewest values per beat (at least DEFAULT_VALUES_PER_BEAT) that carry it
    in at most `interval` beats."""

    def width(length: int) -> int:
        return max(ceil_div(length, interval), DEFAULT_VALUES_PER_BEAT)

    widths = {GRAPH_INPUT: width(graph.layers[0].in_features)}
    for layer in graph.layers:
        widths[layer.name] = width(layer.out_features)
    return widths


def interval_bound(graph: Graph) -> int:
    """The smallest interval any folding reaches: the most output positions of a matrix
    layer (each takes at least one cycle at RF 1)."""
    return max((engine_for(layer).positions(layer) for layer in matrix_layers(graph)), default=1)


def smallest_interval(graph: Graph, board: Board, widths: Widths | None = None) -> int:
    """The smallest interval whose design fits the board, the streams folded to it (`widths`
    None) or at fixed `widths` (`--reuse balanced`), by the search of default_reuse_factor
    (an exact scan of the smallest candidates, then bisection); the largest candidate when
    none fits (the caller reports the overflow). The candidates are where the design changes:
    a layer's positions·RF at each RF that changes its tile count, and a folded stream's
    beats ceil(n / P); none lies below what the engines reach (interval_bound, and with fixed
    widths the most beats of any stream)."""
    bound = interval_bound(graph)
    candidates = {bound}
    for layer in matrix_layers(graph):
        engine = engine_for(layer)
        starts = _smallest_reuse_per_tile_count(engine.max_reuse(layer))
        candidates.update(engine.positions(layer) * reuse for reuse in starts)
    if widths is None:
        lengths = {graph.layers[0].in_features, *(layer.out_features for layer in graph.layers)}
        for length in lengths:
            values = range(DEFAULT_VALUES_PER_BEAT, length + 1)
            candidates.update(ceil_div(length, width) for width in values)
    else:
        streams = map(layer_cycles, tile(graph, 1, widths).layers)  # beats: not on the RF
        bound = max(bound, *(max(c.in_beats, c.out_beats) for c in streams))
        candidates.add(bound)

    def fits(interval: int) -> bool:
        if widths is None:
            return fits_board(fold_to_interval(graph, interval), board)
        return fits_board(tile(graph, reuse_for_interval(graph, interval), widths), board)

    return _smallest_fitting(sorted(c for c in candidates if c >= bound), fits)


def tile(
    graph: Graph,
    reuse: int | Mapping[str, int],
    values_per_beat: Widths = DEFAULT_VALUES_PER_BEAT,
) -> Graph:
    """Tile every layer; `reuse` is one RF for all or a mapping from layer name to RF
    (layers without tiles need no entry). `values_per_beat` is one width for every stream or
    one per value (GRAPH_INPUT and every layer's name; a width above the value's length
    is its length: the whole vector in one beat). Raises ValueError where the two operands
    of an Add would stream at different widths."""
    widths = _value_widths(graph, values_per_beat)
    layers = []
    for layer in graph.layers:
        engine = engine_for(layer)
        requested = reuse if isinstance(reuse, int) else reuse.get(layer.name, 1)
        if engine.folded and not isinstance(reuse, int) and layer.name not in reuse:
            raise KeyError(f"layer {layer.name}: no reuse factor given")
        tiled = engine.tile(layer, requested)
        inputs = {widths[name] for name in graph.inputs_of(layer)}
        if len(inputs) != 1:
            raise ValueError(
                f"layer {layer.name}: its operands stream at different widths {inputs}"
            )
        stream_widths = StreamWidths(input=inputs.pop(), output=widths[layer.name])
        layers.append(replace(tiled, widths=stream_widths))
    return size_line_buffers(replace(graph, layers=tuple(layers)))


def _value_widths(graph: Graph, values_per_beat: Widths) -> dict[str, int]:
    """Values per beat of every value the layers read or write: as given, at most the
    value's length. A conv's output beats carry whole pixels, so its width is the smallest
    divisor of its channels not below the given one, and the operands of an Add given one
    width all take that one."""

    def given(name: str, length: int) -> int:
        if isinstance(values_per_beat, int):
            value = values_per_beat
        elif name in values_per_beat:
            value = values_per_beat[name]
        else:
            raise KeyError(f"no stream width given for {name}")
        return max(1, min(value, length))

    produced = {layer.name: layer for layer in graph.layers}
    asked: dict[str, int] = {}
    for layer in graph.layers:
        for name in graph.inputs_of(layer):
            asked.setdefault(name, given(name, layer.in_features))
        asked[layer.name] = given(layer.name, layer.out_features)

    def pixel_width(name: str, width: int) -> int:
        producer = produced.get(name)
        return width if producer is None else engine_for(producer).output_width(producer, width)

    widths = {name: pixel_width(name, width) for name, width in asked.items()}
    for layer in graph.layers:
        sources = graph.inputs_of(layer)
        if len(sources) > 1 and len({asked[name] for name in sources}) == 1:
            # the first width from the given one on that every producer can send
            common = asked[sources[0]]
            for name in sources:
                common = pixel_width(name, common)
            for name in sources:
                widths[name] = common
    return widths


def reuse_factors(
    graph: Graph,
    board: Board | None,
    reuse: Reuse,
    values_per_beat: Widths = DEFAULT_VALUES_PER_BEAT,
) -> int | dict[str, int]:
    """One RF for every layer, or one per matrix layer (by IR name), for streams of
    `values_per_beat` values."""
    if isinstance(reuse, UniformReuse):
        return reuse.reuse_factor
    if isinstance(reuse, PerLayerReuse):
        return _per_layer(graph, reuse)
    if board is None:
        raise CodesignError(f"the reuse rule {type(reuse).__name__} needs a board to fit")
    if isinstance(reuse, UniformFitReuse):
        factor = default_reuse_factor(graph, board, values_per_beat)
        log.info("smallest uniform reuse factor that fits %s: %d", board.key, factor)
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
    graph: Graph, board: Board, values_per_beat: Widths = DEFAULT_VALUES_PER_BEAT
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
    candidates = sorted({r for size in sizes for r in _smallest_reuse_per_tile_count(size)})

    def fits(reuse: int) -> bool:
        return fits_board(tile(graph, reuse, values_per_beat), board)

    return _smallest_fitting(candidates, fits)


def _smallest_fitting(candidates: list[int], fits: Callable[[int], bool]) -> int:
    """The first of ascending `candidates` that fits: the first EXACT_SCAN tried in order,
    the rest bisected, the last costed first; the last one if none fits (1 if none)."""
    if not candidates:
        return 1
    if len(candidates) > EXACT_SCAN and not fits(candidates[-1]):
        return candidates[-1]
    found = next((value for value in candidates[:EXACT_SCAN] if fits(value)), None)
    if found is not None or len(candidates) <= EXACT_SCAN:
        return candidates[-1] if found is None else found
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


def smallest_design(graph: Graph, values_per_beat: Widths = DEFAULT_VALUES_PER_BEAT) -> Graph:
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
    graph: Graph, board: Board, values_per_beat: Widths = DEFAULT_VALUES_PER_BEAT
) -> dict[str, int]:
    """Per-layer RFs for the smallest interval the board can hold at fixed stream widths
    (`--reuse balanced`: the folding's RFs, the streams not folded)."""
    return reuse_for_interval(graph, smallest_interval(graph, board, values_per_beat))
