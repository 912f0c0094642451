"""Graph -> Graph transformations, one per module (FINN style). The flow lists them in order."""

from codesign.passes.compress import compress
from codesign.passes.quantise import quantise
from codesign.passes.tile import tile

__all__ = ["compress", "quantise", "tile"]
