"""The add engine: y = act(a + b) element-wise (residual connections).

a and b are aligned exactly to the finer fraction (left shifts) and summed one bit wider; the
activation and the cast to the calibrated output format follow. Both operands keep the formats
of their producers.

Streaming (rtl_sim/add_engine.sv.j2): each operand's values go into a FIFO, and output beat j
(P_out values) is formed, registered, in the cycle after both operands' beats holding its
last value are accepted (and after beat j - 1 is formed): for input beats accepted at a_k[b],

    formed_j = max(max_k a_k[b_j] + 1, formed_{j-1} + 1),  output beat j at formed_j + 1,

b_j the input beat with value min((j + 1)·P_out, F) - 1 (`add_timing`; the output is always
taken). Alone (both operands one beat a cycle from cycle 0) that is I + 1 + O cycles at most
and est_ii = max(I, O). The FIFOs are sized (`size_input`) from the beats the operands are
offered at in the network, with vectors every est_ii cycles, so that in steady state no input
beat waits: the operand of the shorter path (a residual skip) holds what the longer path
delays the other by, no whole vector. (Vectors that come faster at start-up may fill it and
stall the fork for a while, never for good: how far the skip runs ahead of its reader is
bounded by value indices the modelled schedule already meets.) A FIFO holds at least
P_out + P_in - 1 values, so a beat always fits beside a not yet complete output beat. Its
in_ready also counts the values an output beat takes in the same cycle, so ready passes
combinationally through an add (from its out_ready). Resources: the two FIFOs (RAMs in
max(P_in, P_out) banks, one value of a beat each, the depth rounded up to whole banks, with
a rotation of the lanes at the write and the read offsets), P_out aligning adders plus the
output conversion per lane, the counters. Energy: one add per value; every value is written
to and read from a FIFO once.
HLS (hls_templates/add.h.j2): fully unrolled.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from codesign.boards import Board
from codesign.engines.base import (
    Arrays,
    Cycles,
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
from codesign.ir.graph import Activation, Add, Layer, activation_frac_bits, ceil_div
from codesign.precision import Precision

COMPUTE_CYCLES = 1  # one registered stage between load and drain
MODULE = "add_engine"


def _needed_beats(add: Add) -> npt.NDArray[np.int64]:
    """Per output beat, the input beat (of either operand) holding its last value."""
    ends = np.minimum(
        np.arange(1, beats(add.features, add.widths.output) + 1) * add.widths.output, add.features
    )
    return np.asarray((ends - 1) // add.widths.input, dtype=np.int64)


def add_timing(add: Add, accepted: tuple[Cycles, ...]) -> Cycles:
    """The cycle each output beat is formed, for input beats accepted at `accepted`."""
    ready = np.max([times[_needed_beats(add)] for times in accepted], axis=0) + 1
    # formed_j = max(ready_j, formed_{j-1} + 1): a running maximum of ready_j - j, plus j
    steps = np.arange(len(ready), dtype=np.int64)
    return np.maximum.accumulate(ready - steps) + steps


def fifo_values(add: Add, accepted: Cycles, formed: Cycles, interval: int) -> int:
    """The FIFO depth that takes every beat of one operand as it is offered (`accepted`),
    with vectors every `interval` cycles, their beats formed at `formed` (each vector's):
    at an input beat's cycle the values of every vector in flight already held (accepted
    in an earlier cycle, not read by a beat formed in an earlier cycle or this one: a beat
    may enter as an output beat leaves) plus the beat."""
    f, p_in, p_out = add.features, add.widths.input, add.widths.output
    in_values = np.minimum(np.arange(1, len(accepted) + 1) * p_in, f)  # through beat b
    out_values = np.minimum(np.arange(1, len(formed) + 1) * p_out, f)
    beat = np.diff(np.concatenate([[0], in_values]))
    span = int(max(accepted[-1], formed[-1]) - min(accepted[0], formed[0])) + 1
    shifts = range(-(span // interval) - 1, span // interval + 2) if interval else range(1)
    need = beat.copy()
    for v in shifts:  # vector v starts v * interval cycles after this one
        times = accepted - v * interval
        held_in = np.searchsorted(accepted, times, "left")  # beats accepted before
        held_out = np.searchsorted(formed, times, "right")  # beats formed until then
        values_in = np.where(held_in > 0, in_values[np.maximum(held_in - 1, 0)], 0)
        values_out = np.where(held_out > 0, out_values[np.maximum(held_out - 1, 0)], 0)
        need += values_in - values_out
    return int(max(need.max(), p_in + p_out - 1))


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
    rtl_parts: ClassVar[tuple[str, ...]] = ("output_cast",)
    streams_output: ClassVar[bool] = True

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
        stages = stage_cycles(
            beats(add.features, add.widths.input),
            COMPUTE_CYCLES,
            beats(add.features, add.widths.output),
        )
        alone = np.arange(stages.in_beats, dtype=np.int64)
        last = int(add_timing(add, (alone, alone))[-1]) + 1  # the last output beat's cycle
        return replace(stages, est_cycles=last + 1)

    def output_beats(self, layer: Layer, offered: tuple[Cycles, ...]) -> Cycles:
        # the FIFOs are sized never to stall an input beat: each is accepted as offered
        return add_timing(_add(layer), offered) + 1

    def size_input(
        self, layer: Layer, offered: tuple[Cycles, ...], may_stall: bool, interval: int
    ) -> Layer:
        add = _add(layer)
        formed = add_timing(add, offered)
        depths = tuple(fifo_values(add, times, formed, interval) for times in offered)
        return replace(add, buffer_values=depths)

    def buffer_values(self, add: Add) -> tuple[int, ...]:
        """The FIFOs' depths: as sized, else those of the add alone, one beat a cycle."""
        if add.buffer_values:
            return add.buffer_values
        alone = np.arange(beats(add.features, add.widths.input), dtype=np.int64)
        sized = _add(self.size_input(add, (alone, alone), False, self.cycles(add).est_ii))
        return sized.buffer_values

    def resources(self, layer: Layer, board: Board) -> ResourceEstimate:
        add = _add(layer)
        beat = min(add.widths.output, add.features)  # output lanes, each reading both operands
        banks = max(beat, min(add.widths.input, add.features))
        formats = add.require_input_formats()
        widths = [f.width for f in formats]
        depths = self.buffer_values(add)
        memories = tuple(
            place_ram(f"fifo{k}", ceil_div(depth, banks) * banks, width, banks, board, banked=True)
            for k, (width, depth) in enumerate(zip(widths, depths, strict=True))
        )
        # lanes to banks at the write offset and banks to lanes at the read offset: log2(banks)
        # stages of 2:1 multiplexers, two to an ALM
        rotate = sum(
            ceil_div((add.widths.input + beat) * width * index_bits(banks), 2) for width in widths
        )
        sum_bits = max(widths) + abs(formats[0].frac - add.sum_frac) + 1
        # per operand a count, a head, a tail and the vector index; the output's index
        counters = sum(3 * index_bits(depth + 1) for depth in depths) + 3 * index_bits(
            add.features + 1
        )
        breakdown = {
            "add": beat * 3 * adder_alms(sum_bits),
            "rotate": rotate,
            "control": counters + PHASE_BITS,
        }
        registers = beat * add.out_format().width + counters + PHASE_BITS
        return estimate(memories, breakdown, registers)

    def energy(self, layer: Layer, board: Board) -> EnergyEstimate:
        add = _add(layer)
        bits = add.in_format().width
        frame_bits = 4 * add.features * bits  # both operands written and read once
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

    def rtl_view(self, layer: Layer) -> EngineView:
        add = _add(layer)
        depths = self.buffer_values(add)
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
            ("A_DEPTH", str(depths[0])),
            ("B_DEPTH", str(depths[1])),
            ("ACTIVATION", str(ACTIVATION_CODES[add.activation])),
            ("OUT_SHIFT", str(shift)),
            *cast_parameters(add.out_format()),
        )
        summary = (
            f"{add.name} (add): {add.features} values, {add.activation.value}, "
            f"FIFOs of {depths[0]} and {depths[1]} values"
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
            "fifo_values": list(self.buffer_values(add)),
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
            "buffer_values": list(add.buffer_values),
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
            buffer_values=tuple(int(v) for v in entry["buffer_values"]),
        )

    def describe(self, layer: Layer) -> tuple[str, list[str]]:
        add = _add(layer)
        parts = [f"act={activation_text(add.activation, add.alpha)}"]
        if add.output_format is not None and add.input_formats is not None:
            ins = ",".join(f.describe() for f in add.input_formats)
            parts.append(f"in={ins} out={add.output_format.describe()}")
        return f" {add.features}", parts
