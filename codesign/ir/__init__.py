"""The intermediate representation: fixed-point formats, block-sparse weights, layers, graphs."""

from codesign.ir.fixed import FixedPoint, Overflow, Rounding
from codesign.ir.graph import Activation, BlockCSR, Dense, Graph, LayerFormats, Tiling

__all__ = [
    "Activation",
    "BlockCSR",
    "Dense",
    "FixedPoint",
    "Graph",
    "LayerFormats",
    "Overflow",
    "Rounding",
    "Tiling",
]
