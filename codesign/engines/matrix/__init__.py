"""The matrix engine: Dense and Conv2d layers as block-sparse tiles of Br×Bc multipliers.

A Dense is y = act(W x + b) with W in block-CSR; a Conv2d is the same matrix applied at every
output position to the input patch (im2col). The cost closed forms are in `cost`, the IR
parts in `ir`, the HLS view-model in `hls`, the RTL view-model and memory files in `rtl`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from codesign.boards import Board
from codesign.engines.base import Arrays, Cycles, Engine, LayerCycles
from codesign.engines.energy import EnergyEstimate
from codesign.engines.matrix import cost, hls, ir, rtl, timing
from codesign.engines.rtl_common import EngineView, alpha_words
from codesign.engines.stream import ResourceEstimate
from codesign.ir.fixed import FixedPoint
from codesign.ir.graph import Conv2d, Dense, Layer
from codesign.precision import Precision


def _matrix(layer: Layer) -> Dense:
    assert isinstance(layer, Dense), f"layer {layer.name} is not a matrix layer"
    return layer


def _conv(layer: Layer) -> Conv2d:
    assert isinstance(layer, Conv2d), f"layer {layer.name} is not a conv layer"
    return layer


class MatrixEngine(Engine):
    """Dense: the whole input vector in one of two input frames, the tiles on it."""

    kinds: ClassVar[tuple[str, ...]] = ("dense",)
    labels: ClassVar[dict[str, str]] = {"dense": "linear"}
    module: ClassVar[str] = rtl.MODULE
    rtl_parts: ClassVar[tuple[str, ...]] = rtl.PARTS
    folded: ClassVar[bool] = True

    def quantise(
        self,
        layer: Layer,
        inputs: tuple[FixedPoint, ...],
        output: FixedPoint,
        weight_bits: int,
        precision: Precision,
    ) -> Layer:
        return ir.quantise(_matrix(layer), inputs[0], output, weight_bits, precision)

    def compress(self, layer: Layer, block: tuple[int, int] | None) -> Layer:
        return ir.compress(_matrix(layer), block)

    def tile(self, layer: Layer, reuse_factor: int) -> Layer:
        return ir.tile(_matrix(layer), reuse_factor)

    def max_reuse(self, layer: Layer) -> int:
        return max(1, _matrix(layer).require_csr().nnz_blocks)

    def positions(self, layer: Layer) -> int:
        return _matrix(layer).positions

    def cycles(self, layer: Layer) -> LayerCycles:
        return cost.cycles(_matrix(layer))

    def dsp_blocks(self, layer: Layer, board: Board) -> int:
        return cost.dsp_blocks(_matrix(layer), board)

    def resources(self, layer: Layer, board: Board) -> ResourceEstimate:
        return cost.resources(_matrix(layer), board)

    def energy(self, layer: Layer, board: Board) -> EnergyEstimate:
        return cost.energy(_matrix(layer), board)

    def check(self, layer: Layer) -> None:
        matrix = _matrix(layer)
        matrix.check_exact_formats()
        matrix.require_csr()
        matrix.require_tiling()

    def hls_view(self, layer: Layer) -> hls.MatrixView:
        return hls.matrix_view(_matrix(layer))

    def rtl_view(self, layer: Layer) -> EngineView:
        return rtl.engine_view(_matrix(layer))

    def memory_words(self, layer: Layer) -> dict[str, list[str]]:
        matrix = _matrix(layer)
        return {**rtl.memory_words(matrix), **alpha_words(matrix.activation, matrix.alpha)}

    def report_fields(self, layer: Layer) -> dict[str, Any]:
        return ir.report_fields(_matrix(layer))

    def to_entry(self, layer: Layer, prefix: str, arrays: Arrays) -> dict[str, Any]:
        return ir.to_entry(_matrix(layer), prefix, arrays)

    def from_entry(self, entry: dict[str, Any], prefix: str, arrays: Any) -> Layer:
        return ir.from_entry(entry, prefix, arrays)

    def describe(self, layer: Layer) -> tuple[str, list[str]]:
        return ir.describe(_matrix(layer))


class ConvEngine(MatrixEngine):
    """Conv2d: the same tiles at every output position, on a window of a line buffer
    (rtl_sim/conv_engine.sv.j2); its timing follows the input beats (`timing`)."""

    kinds: ClassVar[tuple[str, ...]] = ("conv2d",)
    labels: ClassVar[dict[str, str]] = {"conv2d": "conv"}
    module: ClassVar[str] = rtl.CONV_MODULE
    rtl_parts: ClassVar[tuple[str, ...]] = rtl.CONV_PARTS
    streams_output: ClassVar[bool] = True

    def output_width(self, layer: Layer, given: int) -> int:
        """A pixel's channels leave together: the smallest divisor of Cout from `given` on."""
        channels = _conv(layer).shape[0]
        return next(d for d in range(min(given, channels), channels + 1) if channels % d == 0)

    def output_beats(self, layer: Layer, offered: tuple[Cycles, ...]) -> Cycles:
        conv = _conv(layer)
        return timing.conv_timing(conv, offered[0], timing.ring_values(conv)).outputs

    def size_input(
        self, layer: Layer, offered: tuple[Cycles, ...], may_stall: bool, interval: int
    ) -> Layer:
        conv = _conv(layer)
        if may_stall:
            return replace(conv, line_values=timing.minimum_line_values(conv))
        return replace(conv, line_values=timing.line_values_for(conv, offered[0]))

    def rtl_view(self, layer: Layer) -> EngineView:
        return rtl.conv_view(_conv(layer))
