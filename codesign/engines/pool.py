"""The pooling engine: max or average over kernel windows per channel (no padding, floor mode).

Max pooling keeps its input's format (quantise gives it no range of its own); average pooling
multiplies the exact window sum by `pool_reciprocal_raw(area)` (POOL_FRAC fraction bits) and
casts to the output format.

Cycles: I input beats into a double-buffered frame, one registered compute cycle (each beat
is computed from the frame as the previous one leaves), O output beats from the beat register.
Resources (rtl_sim/pool_engine.sv.j2): the frame is double-buffered (2·in_features·x bits,
each a RAM in P·Kh·Kw banks: a beat's windows are a regular pattern, so banks serve it where
the conv needs copies); per output lane Kh·Kw - 1 comparators (max) or adders plus one
constant multiplier built from adders (avg). Energy: one add (comparison) per window element,
average pooling one multiply per output; the frame is read and written once per value.
HLS (hls_templates/pool2d.h.j2): fully unrolled.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from codesign.boards import Board
from codesign.engines.base import Arrays, Engine, LayerCycles, stage_cycles
from codesign.engines.energy import (
    SRAM_READ_PJ_PER_BIT,
    EnergyEstimate,
    add_energy_pj,
    multiply_energy_pj,
    static_pj,
)
from codesign.engines.hls_common import (
    OUTPUT,
    CppType,
    KernelView,
    Port,
    common_fields,
    cpp_type,
    exact,
    identifiers,
)
from codesign.engines.rtl_common import EngineView, bit, cast_parameters, check_shift
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
from codesign.ir.graph import POOL_FRAC, Layer, Pool2d, PoolMode, pool_reciprocal_raw
from codesign.precision import Precision

COMPUTE_CYCLES = 1  # one registered stage between load and drain
MODULE = "pool_engine"
RECIPROCAL_WIDTH = 17  # bits of 1/area the energy model charges the multiply for


@dataclass(frozen=True)
class PoolView(KernelView):
    average: bool
    channels: int
    in_height: int
    in_width: int
    kernel_height: int
    kernel_width: int
    stride_height: int
    stride_width: int
    out_height: int
    out_width: int
    area: int
    reciprocal_raw: int  # average: round(2^POOL_FRAC / area)
    input_type: CppType
    output_type: CppType
    sum_type: CppType | None  # average: the exact window sum
    reciprocal_type: CppType | None


def _pool(layer: Layer) -> Pool2d:
    assert isinstance(layer, Pool2d), f"layer {layer.name} is not a pooling layer"
    return layer


def _pair(values: Any) -> tuple[int, int]:
    return int(values[0]), int(values[1])


class PoolEngine(Engine):
    kinds: ClassVar[tuple[str, ...]] = ("pool2d",)
    module: ClassVar[str] = MODULE
    rtl_parts: ClassVar[tuple[str, ...]] = ("input_frames", "frame_drain", "output_cast")
    labels: ClassVar[dict[str, str]] = {"pool2d": "pool"}

    def output_format(
        self, layer: Layer, inputs: tuple[FixedPoint, ...], calibrated: FixedPoint
    ) -> FixedPoint:
        return inputs[0]  # pooling keeps its input's range

    def quantise(
        self,
        layer: Layer,
        inputs: tuple[FixedPoint, ...],
        output: FixedPoint,
        weight_bits: int,
        precision: Precision,
    ) -> Layer:
        return replace(_pool(layer), input_format=inputs[0], output_format=output)

    def cycles(self, layer: Layer) -> LayerCycles:
        pool = _pool(layer)
        return stage_cycles(
            beats(pool.in_features, pool.widths.input),
            COMPUTE_CYCLES,
            beats(pool.out_features, pool.widths.output),
        )

    def resources(self, layer: Layer, board: Board) -> ResourceEstimate:
        pool = _pool(layer)
        x_bits = pool.in_format().width
        beat = min(pool.widths.output, pool.out_features)  # output lanes
        lanes_ops = pool.area - 1 if pool.mode is PoolMode.MAX else pool.area
        memories = tuple(
            place_ram(f"frame{i}", pool.in_features, x_bits, beat * pool.area, board, banked=True)
            for i in range(2)
        )
        counters = index_bits(beats(pool.in_features, pool.widths.input)) + index_bits(
            beats(pool.out_features, pool.widths.output)
        )
        breakdown = {
            "pool": beat * lanes_ops * adder_alms(x_bits + 16),
            "control": counters + PHASE_BITS,
        }
        registers = beat * pool.out_format().width + counters + PHASE_BITS
        return estimate(memories, breakdown, registers)

    def energy(self, layer: Layer, board: Board) -> EnergyEstimate:
        pool = _pool(layer)
        bits = pool.in_format().width
        adds = pool.out_features * (pool.area - 1)
        multiplies = pool.out_features if pool.mode is PoolMode.AVG else 0
        frame_bits = 2 * pool.in_features * bits
        return EnergyEstimate(
            macs=0,
            dense_macs=0,
            rom_bits_read=frame_bits,
            multiply_pj=multiplies * multiply_energy_pj(bits, RECIPROCAL_WIDTH),
            add_pj=adds * add_energy_pj(bits + 1),
            memory_pj=frame_bits * SRAM_READ_PJ_PER_BIT,
            dense_ops_pj=0.0,
            static_pj=static_pj(board, self.cycles(pool).est_cycles),
        )

    def hls_view(self, layer: Layer) -> PoolView:
        pool = _pool(layer)
        name = pool.name
        common = common_fields(pool)
        input_format = pool.in_format()
        input_type = cpp_type(name, "input", input_format)
        output_type = cpp_type(name, "output", pool.out_format())
        average = pool.mode is PoolMode.AVG
        reciprocal = pool_reciprocal_raw(pool.area) if average else 0
        sum_type = reciprocal_type = None
        types = [input_type, output_type]
        if average:
            growth = (pool.area - 1).bit_length()  # the sum of `area` values needs this many more
            width, integer = input_format.width + growth, input_format.integer + growth
            sum_type = cpp_type(name, "sum", exact(width, integer, input_format.signed))
            bits = max(1, reciprocal.bit_length())
            reciprocal_type = cpp_type(name, "reciprocal", exact(bits, bits - POOL_FRAC, False))
            types += [sum_type, reciprocal_type]
        return PoolView(
            **common,
            template="pool2d.h.j2",
            inputs=[Port(input_type.name, "x", pool.in_features)],
            output=Port(output_type.name, OUTPUT, pool.out_features),
            types=types,
            in_features=pool.in_features,
            out_features=pool.out_features,
            average=average,
            channels=pool.channels,
            in_height=pool.in_height,
            in_width=pool.in_width,
            kernel_height=pool.kernel[0],
            kernel_width=pool.kernel[1],
            stride_height=pool.stride[0],
            stride_width=pool.stride[1],
            out_height=pool.out_height,
            out_width=pool.out_width,
            area=pool.area,
            reciprocal_raw=reciprocal,
            input_type=input_type,
            output_type=output_type,
            sum_type=sum_type,
            reciprocal_type=reciprocal_type,
            identifiers=identifiers(common, types),
        )

    def rtl_view(self, layer: Layer) -> EngineView:
        pool = _pool(layer)
        source, output = pool.in_format(), pool.out_format()
        average = pool.mode is PoolMode.AVG
        shift = source.frac + (POOL_FRAC if average else 0) - output.frac
        check_shift(pool, shift)
        parameters = (
            ("CHANNELS", str(pool.channels)),
            ("IN_HEIGHT", str(pool.in_height)),
            ("IN_COLS", str(pool.in_width)),
            ("KERNEL_H", str(pool.kernel[0])),
            ("KERNEL_W", str(pool.kernel[1])),
            ("STRIDE_H", str(pool.stride[0])),
            ("STRIDE_W", str(pool.stride[1])),
            ("OUT_HEIGHT", str(pool.out_height)),
            ("OUT_COLS", str(pool.out_width)),
            ("IN_VALUES_PER_BEAT", str(pool.widths.input)),
            ("VALUES_PER_BEAT", str(pool.widths.output)),
            ("IN_WIDTH", str(source.width)),
            ("IN_SIGNED", bit(source.signed)),
            ("AVERAGE", bit(average)),
            ("RECIPROCAL", str(pool_reciprocal_raw(pool.area))),
            ("SHIFT", str(shift)),
            *cast_parameters(output),
        )
        summary = (
            f"{pool.name} ({pool.mode.value} pool): {pool.channels}x{pool.in_height}x"
            f"{pool.in_width}, kernel {pool.kernel[0]}x{pool.kernel[1]}, "
            f"stride {pool.stride[0]}x{pool.stride[1]}"
        )
        return EngineView(pool.name, MODULE, summary, False, parameters, ("in",))

    def report_fields(self, layer: Layer) -> dict[str, Any]:
        pool = _pool(layer)
        return {
            "shape": [pool.channels, pool.in_height, pool.in_width],
            "mode": pool.mode.value,
            "kernel": list(pool.kernel),
            "stride": list(pool.stride),
            "formats": {
                "input": pool.in_format().describe(),
                "output": pool.out_format().describe(),
            },
        }

    def to_entry(self, layer: Layer, prefix: str, arrays: Arrays) -> dict[str, Any]:
        pool = _pool(layer)
        return {
            "mode": pool.mode.value,
            "channels": pool.channels,
            "in_height": pool.in_height,
            "in_width": pool.in_width,
            "kernel": list(pool.kernel),
            "stride": list(pool.stride),
            "input_format": pool.in_format().to_dict(),
            "output_format": pool.out_format().to_dict(),
        }

    def from_entry(self, entry: dict[str, Any], prefix: str, arrays: Any) -> Layer:
        return Pool2d(
            name=entry["name"],
            source_name=entry["source_name"],
            mode=PoolMode(entry["mode"]),
            channels=int(entry["channels"]),
            in_height=int(entry["in_height"]),
            in_width=int(entry["in_width"]),
            kernel=_pair(entry["kernel"]),
            stride=_pair(entry["stride"]),
            inputs=tuple(entry["inputs"]),
            input_format=FixedPoint.from_dict(entry["input_format"]),
            output_format=FixedPoint.from_dict(entry["output_format"]),
        )

    def describe(self, layer: Layer) -> tuple[str, list[str]]:
        pool = _pool(layer)
        parts = [f"{pool.mode.value} k={pool.kernel[0]}x{pool.kernel[1]}"]
        parts.append(f"s={pool.stride[0]}x{pool.stride[1]}")
        if pool.output_format is not None:
            parts.append(f"out={pool.output_format.describe()}")
        return f" {pool.channels}x{pool.in_height}x{pool.in_width}", parts
