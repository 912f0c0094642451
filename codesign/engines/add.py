"""The add engine: y = act(a + b) element-wise (residual connections).

a and b are aligned exactly to the finer fraction (left shifts) and summed one bit wider; the
activation and the cast to the calibrated output format follow. Both operands keep the formats
of their producers.

Cycles: I input beats (both operands at the input width), one registered compute cycle, O
output beats at the output width. Resources (rtl_sim/add_engine.sv.j2): operand frames
(features·x bits each, RAMs in P banks for the P values of an output beat): two per operand,
and for the operand that arrives early (a residual skip) as many as codesign.cost.input_frames
gives, so the network keeps its interval; P aligning adders plus the output conversion per
lane. Energy: one add per value; the frames are read and written once per value.
HLS (hls_templates/add.h.j2): fully unrolled.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from codesign.boards import Board
from codesign.engines.base import (
    TWO_FRAMES,
    Arrays,
    Engine,
    LayerCycles,
    activation_fields,
    activation_text,
    stage_cycles,
)
from codesign.engines.energy import (
    SRAM_READ_PJ_PER_BIT,
    EnergyEstimate,
    add_energy_pj,
    static_pj,
)
from codesign.engines.hls_common import (
    OUTPUT,
    ActivationView,
    CppType,
    KernelView,
    Port,
    activation_view,
    common_fields,
    cpp_type,
    exact,
    identifiers,
)
from codesign.engines.rtl_common import (
    ACTIVATION_CODES,
    EngineView,
    alpha_words,
    bit,
    cast_parameters,
    check_alpha,
    check_shift,
)
from codesign.engines.stream import (
    PHASE_BITS,
    ResourceEstimate,
    adder_alms,
    beats,
    estimate,
    index_bits,
    place_ram,
)
from codesign.ir.fixed import FixedPoint
from codesign.ir.graph import Activation, Add, Layer, activation_frac_bits
from codesign.precision import Precision

COMPUTE_CYCLES = 1  # one registered stage between load and drain
MODULE = "add_engine"


@dataclass(frozen=True)
class AddView(KernelView):
    activation: ActivationView
    a_type: CppType
    b_type: CppType
    sum_type: CppType  # both inputs aligned to the finer fraction, one more integer bit
    output_type: CppType


def _add(layer: Layer) -> Add:
    assert isinstance(layer, Add), f"layer {layer.name} is not an add layer"
    return layer


def add_shifts(layer: Add) -> tuple[int, int, int]:
    """Left shifts aligning a and b to the finer fraction, and the output cast's shift."""
    a_format, b_format = layer.require_input_formats()
    frac = layer.sum_frac
    out_shift = frac + activation_frac_bits(layer.activation) - layer.out_format().frac
    return frac - a_format.frac, frac - b_format.frac, out_shift


class AddEngine(Engine):
    kinds: ClassVar[tuple[str, ...]] = ("add",)
    labels: ClassVar[dict[str, str]] = {"add": "add"}
    module: ClassVar[str] = MODULE
    rtl_parts: ClassVar[tuple[str, ...]] = ("input_frames", "frame_drain", "output_cast")

    def quantise(
        self,
        layer: Layer,
        inputs: tuple[FixedPoint, ...],
        output: FixedPoint,
        weight_bits: int,
        precision: Precision,
    ) -> Layer:
        return replace(_add(layer), input_formats=inputs, output_format=output)

    def cycles(self, layer: Layer) -> LayerCycles:
        add = _add(layer)
        return stage_cycles(
            beats(add.features, add.widths.input),
            COMPUTE_CYCLES,
            beats(add.features, add.widths.output),
        )

    def resources(
        self, layer: Layer, board: Board, frames: tuple[int, ...] = TWO_FRAMES
    ) -> ResourceEstimate:
        add = _add(layer)
        beat = min(add.widths.output, add.features)  # output lanes, each reading both operands
        formats = add.require_input_formats()
        widths = [f.width for f in formats]
        memories = tuple(
            place_ram(f"operand{k}_{i}", add.features, width, beat, banked=True)
            for k, (width, count) in enumerate(zip(widths, frames, strict=True))
            for i in range(count)
        )
        sum_bits = max(widths) + abs(formats[0].frac - add.sum_frac) + 1
        counters = 2 * index_bits(beats(add.features, add.widths.input)) + index_bits(
            beats(add.features, add.widths.output)
        )
        breakdown = {
            "add": beat * 3 * adder_alms(sum_bits),
            "control": counters + PHASE_BITS,
        }
        registers = beat * add.out_format().width + counters + PHASE_BITS
        return estimate(memories, breakdown, registers)

    def energy(self, layer: Layer, board: Board) -> EnergyEstimate:
        add = _add(layer)
        bits = add.in_format().width
        frame_bits = 4 * add.features * bits
        return EnergyEstimate(
            macs=0,
            dense_macs=0,
            rom_bits_read=frame_bits,
            multiply_pj=0.0,
            add_pj=add.features * add_energy_pj(bits + 1),
            memory_pj=frame_bits * SRAM_READ_PJ_PER_BIT,
            dense_ops_pj=0.0,
            static_pj=static_pj(board, self.cycles(add).est_cycles),
        )

    def hls_view(self, layer: Layer) -> AddView:
        add = _add(layer)
        name = add.name
        common = common_fields(add)
        a_format, b_format = add.require_input_formats()
        a_type = cpp_type(name, "a", a_format)
        b_type = cpp_type(name, "b", b_format)
        output_type = cpp_type(name, "output", add.out_format())
        signed = a_format.signed or b_format.signed
        # An unsigned input needs one more integer bit in a signed sum; the sum one more still.
        integer = 1 + max(f.integer + (signed and not f.signed) for f in (a_format, b_format))
        frac = add.sum_frac
        sum_type = cpp_type(name, "sum", exact(integer + frac, integer, signed))
        activation = activation_view(name, add.activation, add.alpha)
        types = [a_type, b_type, sum_type, output_type]
        types += [activation.alpha_type] if activation.alpha_type else []
        features = add.features
        return AddView(
            **common,
            template="add.h.j2",
            inputs=[Port(a_type.name, "a", features), Port(b_type.name, "b", features)],
            output=Port(output_type.name, OUTPUT, features),
            types=types,
            in_features=features,
            out_features=features,
            activation=activation,
            a_type=a_type,
            b_type=b_type,
            sum_type=sum_type,
            output_type=output_type,
            identifiers=identifiers(common, types, f"{name}_alpha"),
        )

    def rtl_view(self, layer: Layer, frames: tuple[int, ...] = TWO_FRAMES) -> EngineView:
        add = _add(layer)
        a_format, b_format = add.require_input_formats()
        a_shift, b_shift, shift = add_shifts(add)
        check_shift(add, shift)
        check_alpha(add.name, add.activation, add.alpha)
        parameters = (
            ("FEATURES", str(add.features)),
            ("IN_VALUES_PER_BEAT", str(add.widths.input)),
            ("VALUES_PER_BEAT", str(add.widths.output)),
            ("A_WIDTH", str(a_format.width)),
            ("A_SIGNED", bit(a_format.signed)),
            ("A_SHIFT", str(a_shift)),
            ("B_WIDTH", str(b_format.width)),
            ("B_SIGNED", bit(b_format.signed)),
            ("B_SHIFT", str(b_shift)),
            ("A_DEPTH", str(frames[0])),
            ("B_DEPTH", str(frames[1])),
            ("ACTIVATION", str(ACTIVATION_CODES[add.activation])),
            ("OUT_SHIFT", str(shift)),
            *cast_parameters(add.out_format()),
        )
        summary = (
            f"{add.name} (add): {add.features} values, {add.activation.value}, "
            f"{frames[0]} and {frames[1]} input frames"
        )
        return EngineView(add.name, MODULE, summary, True, parameters, ("in_a", "in_b"))

    def memory_words(self, layer: Layer) -> dict[str, list[str]]:
        add = _add(layer)
        return alpha_words(add.activation, add.alpha)

    def report_fields(self, layer: Layer) -> dict[str, Any]:
        add = _add(layer)
        return {
            "shape": [add.features],
            **activation_fields(add.activation, add.alpha),
            "formats": {
                "input": ",".join(f.describe() for f in add.require_input_formats()),
                "output": add.out_format().describe(),
            },
        }

    def to_entry(self, layer: Layer, prefix: str, arrays: Arrays) -> dict[str, Any]:
        add = _add(layer)
        return {
            "features": add.features,
            "shape": list(add.out_shape),
            "activation": add.activation.value,
            "alpha": add.alpha,
            "input_formats": [f.to_dict() for f in add.require_input_formats()],
            "output_format": add.out_format().to_dict(),
        }

    def from_entry(self, entry: dict[str, Any], prefix: str, arrays: Any) -> Layer:
        return Add(
            name=entry["name"],
            source_name=entry["source_name"],
            features=int(entry["features"]),
            inputs=tuple(entry["inputs"]),
            shape_of_output=tuple(int(v) for v in entry["shape"]),
            activation=Activation(entry["activation"]),
            alpha=float(entry["alpha"]),
            input_formats=tuple(FixedPoint.from_dict(f) for f in entry["input_formats"]),
            output_format=FixedPoint.from_dict(entry["output_format"]),
        )

    def describe(self, layer: Layer) -> tuple[str, list[str]]:
        add = _add(layer)
        parts = [f"act={activation_text(add.activation, add.alpha)}"]
        if add.output_format is not None and add.input_formats is not None:
            ins = ",".join(f.describe() for f in add.input_formats)
            parts.append(f"in={ins} out={add.output_format.describe()}")
        return f" {add.features}", parts
