"""The build: one named list of passes from a lowered Graph to a tiled one (FINN's step list).

    quantise  formats from the calibration data (and --precision), raw weights
    compress  block-CSR at the block shape (the block enters the flow here)
    fold      reuse factors for the board (codesign.passes.fold), then tiles

`build` runs them in order; `until` stops after a step, and `checkpoint` sees the IR after
lowering and after every step (generate --checkpoints writes their text form into the
project). Every flow, test and benchmark builds a graph through this list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from codesign.boards import Board
from codesign.ir.graph import Graph
from codesign.ir.layout import DEFAULT_VALUES_PER_BEAT
from codesign.options import DEFAULT_REUSE, Reuse
from codesign.passes.compress import compress
from codesign.passes.fold import fold, tile
from codesign.passes.quantise import quantise
from codesign.precision import Precision

LOWERED = "lower"  # the checkpoint name of the graph before any step


@dataclass(frozen=True)
class BuildOptions:
    """What the steps need. `reuse`: a folding rule (needs `board`), one RF or one per layer."""

    calibration: npt.ArrayLike
    board: Board | None = None
    block: tuple[int, int] | None = None  # None: each layer's own (set where it was built)
    reuse: Reuse | int | Mapping[str, int] = DEFAULT_REUSE
    weight_bits: int = 8
    act_bits: int = 16
    precision: Precision | None = None
    # stream widths: one, or per value; the folding rule (FoldedReuse) chooses its own
    values_per_beat: int | Mapping[str, int] = DEFAULT_VALUES_PER_BEAT


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Graph, BuildOptions], Graph]
    doc: str


def _quantise(graph: Graph, options: BuildOptions) -> Graph:
    calibration = np.asarray(options.calibration)
    return quantise(graph, calibration, options.weight_bits, options.act_bits, options.precision)


def _compress(graph: Graph, options: BuildOptions) -> Graph:
    return compress(graph, options.block)


def _fold(graph: Graph, options: BuildOptions) -> Graph:
    if isinstance(options.reuse, int | Mapping):
        return tile(graph, options.reuse, options.values_per_beat)
    return fold(graph, options.board, options.reuse, options.values_per_beat)


STEPS: tuple[Step, ...] = (
    Step("quantise", _quantise, "fixed-point formats from calibration data, raw weights"),
    Step("compress", _compress, "weights to block-CSR at the block shape"),
    Step("fold", _fold, "reuse factors for the board, kept blocks onto tiles"),
)
STEP_NAMES = tuple(step.name for step in STEPS)


def build(
    graph: Graph,
    options: BuildOptions,
    *,
    until: str | None = None,
    checkpoint: Callable[[str, Graph], None] | None = None,
) -> Graph:
    """Run the steps on a lowered graph, in order; stop after `until` if given."""
    if until is not None and until not in STEP_NAMES:
        raise ValueError(f"no build step {until!r}; steps: {', '.join(STEP_NAMES)}")
    if checkpoint is not None:
        checkpoint(LOWERED, graph)
    for step in STEPS:
        graph = step.run(graph, options)
        if checkpoint is not None:
            checkpoint(step.name, graph)
        if step.name == until:
            break
    return graph
