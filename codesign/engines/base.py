"""The interface every hardware engine implements, and the cycle record they all return.

An engine is the hardware of one IR layer type (FINN's custom op): it owns the closed-form
cycles, the DSP/memory/logic estimate and the energy of its layers, their part of the IR
passes (formats, block compression, tiling), the view-models its HLS and RTL templates print,
its memory files, its fields of report.json and design.json. Outside `engines/` only the
lowering (which makes layers), the reference (the independent oracle) and the hls4ml baseline
(which takes hls4ml's Dense alone) ask a layer what kind it is; everything else asks the
layer's engine (`codesign.engines.engine_for`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt

from codesign.ir.fixed import FixedPoint
from codesign.ir.graph import Activation, Layer, ceil_div

if TYPE_CHECKING:
    from codesign.boards import Board
    from codesign.engines.energy import EnergyEstimate
    from codesign.engines.hls_common import KernelView
    from codesign.engines.rtl_common import EngineView
    from codesign.engines.stream import ResourceEstimate
    from codesign.precision import Precision

Arrays = dict[str, np.ndarray]
Cycles = npt.NDArray[np.int64]  # a cycle per beat


@dataclass(frozen=True)
class LayerCycles:
    """Cycle figures of one layer's engine (board independent), design.md §7.

    A vector passes three stages: `in_beats` input beats (one a cycle, into one of two input
    buffers), `compute_cycles`, and `out_beats` output beats; they overlap on successive
    vectors, so est_cycles = I + C + O and est_ii = max(I, C, O). `macs` counts the products
    per vector (0 without a matrix), `ideal_ii` is the compute bound ceil(MACs / multipliers)
    (without multipliers, the streams' max(I, O)): narrow streams or idle multipliers show as
    lost efficiency.
    """

    reuse_factor: int
    tiles: int
    multipliers: int
    macs: int
    in_beats: int
    out_beats: int
    compute_cycles: int
    est_cycles: int
    est_ii: int
    ideal_ii: int


def stage_cycles(
    in_beats: int,
    compute: int,
    out_beats: int,
    *,
    reuse_factor: int = 1,
    tiles: int = 0,
    multipliers: int = 0,
    macs: int = 0,
) -> LayerCycles:
    """The cycle record of an engine whose load, compute and drain stages overlap."""
    return LayerCycles(
        reuse_factor=reuse_factor,
        tiles=tiles,
        multipliers=multipliers,
        macs=macs,
        in_beats=in_beats,
        out_beats=out_beats,
        compute_cycles=compute,
        est_cycles=in_beats + compute + out_beats,
        est_ii=max(in_beats, compute, out_beats),
        # without multipliers, nothing can idle but the streams: their bound
        ideal_ii=max(1, ceil_div(macs, multipliers)) if multipliers else max(in_beats, out_beats),
    )


class Engine(ABC):
    """One hardware engine. Subclasses set the class attributes and implement the methods."""

    kinds: ClassVar[tuple[str, ...]]  # the IR `kind`s it implements (design.json's "kind")
    module: ClassVar[str]  # its SystemVerilog module
    rtl_parts: ClassVar[tuple[str, ...]]  # the modules it instantiates, in compilation order
    labels: ClassVar[dict[str, str]]  # each kind's short name in tables
    folded: ClassVar[bool] = False  # has tiles and a reuse factor (a weight matrix)
    # sends output while its input still arrives (a sliding window), so a stall of its
    # output delays its input: its readers must not stall it (cost.cycles.size_line_buffers)
    streams_output: ClassVar[bool] = False

    # --- IR passes ---------------------------------------------------------------------------

    def output_format(
        self, layer: Layer, inputs: tuple[FixedPoint, ...], calibrated: FixedPoint
    ) -> FixedPoint:
        """The output format before --precision overrides; `calibrated` from the data range."""
        return calibrated

    @abstractmethod
    def quantise(
        self,
        layer: Layer,
        inputs: tuple[FixedPoint, ...],
        output: FixedPoint,
        weight_bits: int,
        precision: Precision,
    ) -> Layer:
        """The layer with its formats (and raw weights where it has them)."""

    def compress(self, layer: Layer, block: tuple[int, int] | None) -> Layer:
        """The layer with its weights block-compressed (no weights: unchanged)."""
        return layer

    def tile(self, layer: Layer, reuse_factor: int) -> Layer:
        """The layer mapped onto its tiles at a reuse factor (without tiles: unchanged; the
        stream widths are the tile pass's, `layer.widths`)."""
        return layer

    def output_width(self, layer: Layer, given: int) -> int:
        """The values per output beat the engine sends for a given width (the default: it)."""
        return given

    def max_reuse(self, layer: Layer) -> int:
        """The largest reuse factor that changes anything (one tile); 1 without tiles."""
        return 1

    def positions(self, layer: Layer) -> int:
        """Times a weight matrix is applied per vector (a Conv2d's output positions)."""
        return 1

    # --- costs -------------------------------------------------------------------------------

    @abstractmethod
    def cycles(self, layer: Layer) -> LayerCycles: ...

    def output_beats(self, layer: Layer, offered: tuple[Cycles, ...]) -> Cycles:
        """The cycle of each output beat of one vector whose input beats (per operand) are
        offered at the cycles `offered`, the output always taken (cost.cycles.network_timing).
        The default is a frame engine's: it takes every beat as it comes, computes after the
        last one and drains its output frame beat by beat."""
        c = self.cycles(layer)
        last = max(int(times[-1]) for times in offered)
        return last + c.compute_cycles + 1 + np.arange(c.out_beats, dtype=np.int64)

    def size_input(
        self, layer: Layer, offered: tuple[Cycles, ...], may_stall: bool, interval: int
    ) -> Layer:
        """The layer with its input buffers sized for beats offered at `offered` (per
        operand; never stalling them unless `may_stall`) to vectors every `interval` cycles;
        frame engines have nothing to size."""
        return layer

    def dsp_blocks(self, layer: Layer, board: Board) -> int:
        return 0

    @abstractmethod
    def resources(self, layer: Layer, board: Board) -> ResourceEstimate:
        """The engine's estimate (its input buffers as the buffer pass sized them)."""

    @abstractmethod
    def energy(self, layer: Layer, board: Board) -> EnergyEstimate: ...

    # --- views of the templates --------------------------------------------------------------

    def check(self, layer: Layer) -> None:
        """Raise FormatError where the kernels cannot implement the layer exactly (the
        default: every format is implementable)."""
        return None

    @abstractmethod
    def hls_view(self, layer: Layer) -> KernelView: ...

    @abstractmethod
    def rtl_view(self, layer: Layer) -> EngineView: ...

    def memory_words(self, layer: Layer) -> dict[str, list[str]]:
        """The engine's $readmemh files: kind -> hex words (none by default)."""
        return {}

    # --- records -----------------------------------------------------------------------------

    @abstractmethod
    def report_fields(self, layer: Layer) -> dict[str, Any]:
        """The layer's own fields of report.json (shape, formats, ...)."""

    @abstractmethod
    def to_entry(self, layer: Layer, prefix: str, arrays: Arrays) -> dict[str, Any]:
        """The layer's fields of design.json; its arrays go to `arrays` under `prefix`."""

    @abstractmethod
    def from_entry(self, entry: dict[str, Any], prefix: str, arrays: Any) -> Layer:
        """The layer back from design.json and design.npz."""

    @abstractmethod
    def describe(self, layer: Layer) -> tuple[str, list[str]]:
        """graph_text: what follows the name on the layer's line, and the further parts."""


def activation_text(activation: Activation, alpha: float) -> str:
    if activation is Activation.LEAKY_RELU:
        return f"{activation.value}({alpha:g})"
    return activation.value


def activation_fields(activation: Activation, alpha: float) -> dict[str, object]:
    """report.json's `activation`, and LeakyReLU's slope as `alpha`."""
    fields: dict[str, object] = {"activation": activation.value}
    if activation is Activation.LEAKY_RELU:
        fields["alpha"] = alpha
    return fields
