"""Stream order: how values travel between layers (design.md §4).

Feature maps are channel-last, pixel by pixel in raster order with a pixel's C values together
((H, W, C), as hls4ml's io_stream and FINN stream them), so a layer with a window can start
on the first rows of its input; anything else travels as it is. PyTorch's layout of a map is
(C, H, W): these helpers convert batches between the two, and give the permutation a Linear
after a Flatten reads its columns through. How many values a beat carries is a design
parameter of every stream (`StreamWidths`, chosen by the fold pass).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# the order values travel in, stated in design.json and report.json
STREAM_ORDER = "feature maps channel-last: (H, W, C), a pixel's channels together"
DEFAULT_VALUES_PER_BEAT = 4


@dataclass(frozen=True)
class StreamWidths:
    """Values per beat of a layer's input streams (every operand's: the streams of the values
    it reads) and of its output stream. A stream has one width, its producer's output width,
    so a layer's `input` is its producers' `output` (the tile pass sets both)."""

    input: int = DEFAULT_VALUES_PER_BEAT
    output: int = DEFAULT_VALUES_PER_BEAT

    def __post_init__(self) -> None:
        if self.input < 1 or self.output < 1:
            raise ValueError(f"values per beat must be at least 1, got {self}")


def to_stream(x: npt.ArrayLike, shape: tuple[int, ...]) -> npt.NDArray[np.float64]:
    """A batch of values of per-sample `shape` in PyTorch's layout (a (C, H, W) map) as flat
    vectors in stream order ((H, W, C) for a map; anything else as it is)."""
    array = np.asarray(x)
    batch = array.reshape(len(array), *shape)
    if len(shape) == 3:
        batch = batch.transpose(0, 2, 3, 1)
    return np.asarray(batch.reshape(len(array), -1))


def from_stream(x: npt.ArrayLike, shape: tuple[int, ...]) -> npt.NDArray[np.float64]:
    """Flat vectors in stream order back to PyTorch's layout of per-sample `shape`."""
    array = np.asarray(x)
    if len(shape) != 3:
        return np.asarray(array.reshape(len(array), *shape))
    channels, height, width = shape
    maps = array.reshape(len(array), height, width, channels)
    return np.asarray(maps.transpose(0, 3, 1, 2))


def flatten_sources(map_shape: tuple[int, int, int]) -> npt.NDArray[np.int64]:
    """For every value of a PyTorch-flattened (C, H, W) map, in that (c, y, x) order, its
    index in the stream ((y·W + x)·C + c): the columns a Linear after Flatten reads."""
    channels, height, width = map_shape
    c, y, x = np.meshgrid(np.arange(channels), np.arange(height), np.arange(width), indexing="ij")
    return np.asarray(((y * width + x) * channels + c).reshape(-1), dtype=np.int64)
