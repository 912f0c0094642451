"""Graph -> Graph transformations, one per module (FINN style), run in order by `pipeline`."""

from codesign.passes.compress import compress
from codesign.passes.fold import fold, fold_to_interval, smallest_interval, tile
from codesign.passes.pipeline import STEPS, BuildOptions, build
from codesign.passes.quantise import quantise

__all__ = [
    "STEPS",
    "BuildOptions",
    "build",
    "compress",
    "fold",
    "fold_to_interval",
    "quantise",
    "smallest_interval",
    "tile",
]
