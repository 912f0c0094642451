"""Graph -> Graph transformations, one per module (FINN style), run in order by `pipeline`."""

from codesign.passes.compress import compress
from codesign.passes.fold import fold, tile
from codesign.passes.pipeline import STEPS, BuildOptions, build
from codesign.passes.quantise import quantise

__all__ = ["STEPS", "BuildOptions", "build", "compress", "fold", "quantise", "tile"]
