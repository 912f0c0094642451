"""What every engine's HLS view-model shares: C++ types, ports, activations, kernel names.

Every kernel computes the exact value `codesign.reference` defines before the cast to its
output type, so the ac_fixed conversion (rounding, overflow) gives the reference's bits.
Weights and biases are stored as tables of their raw integers in the narrowest <cstdint>
type that holds the format. The IR knows formats, not C++: the spelling is made here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from codesign.ir.fixed import FixedPoint, Overflow, Rounding
from codesign.ir.graph import ALPHA_FRAC, Activation, Layer, alpha_raw

OUTPUT = "y"  # every kernel's output parameter
_T = TypeVar("_T")


@dataclass(frozen=True)
class CppType:
    name: str  # the typedef: <layer>_<role>_t
    role: str  # input, weight, accum, output, ...
    spelling: str  # ac_fixed<...>
    describe: str  # s16.10
    rounding: str
    overflow: str


@dataclass(frozen=True)
class Port:
    """One array parameter of a kernel: `type name[size]`."""

    type: str
    name: str
    size: int


@dataclass(frozen=True)
class ActivationView:
    kind: str  # "none", "relu" or "leaky_relu"
    label: str  # for comments and the README: "none", "ReLU", "LeakyReLU(0.125)"
    alpha_raw: int = 0  # LeakyReLU: round(alpha * 2^ALPHA_FRAC)
    alpha_type: CppType | None = None


@dataclass(frozen=True)
class KernelView:
    """What every layer's kernel template needs: names, ports, types and vector sizes."""

    kind: str
    template: str
    name: str
    source_name: str
    header: str
    inputs: list[Port]
    output: Port
    buffer: str  # the layer's output buffer in the component and the testbench
    tb_stream: str  # the testbench's output file of the layer
    types: list[CppType]
    in_features: int
    out_features: int
    identifiers: list[str]  # every C++ name the layer defines (checked for clashes)


def ac_fixed(fixed: FixedPoint) -> str:
    """The ac_fixed spelling of a format."""
    sign = "true" if fixed.signed else "false"
    return (
        f"ac_fixed<{fixed.width}, {fixed.integer}, {sign}, "
        f"{fixed.rounding.value}, {fixed.overflow.value}>"
    )


def cpp_type(layer: str, role: str, fixed: FixedPoint) -> CppType:
    return CppType(
        name=f"{layer}_{role}_t",
        role=role,
        spelling=ac_fixed(fixed),
        describe=fixed.describe(),
        rounding=fixed.rounding.value,
        overflow=fixed.overflow.value,
    )


def exact(width: int, integer: int, signed: bool) -> FixedPoint:
    """An intermediate format that holds its values exactly (its modes are never exercised)."""
    return FixedPoint(width, integer, signed, Rounding.TRN, Overflow.WRAP)


def activation_view(name: str, activation: Activation, alpha: float) -> ActivationView:
    if activation is Activation.RELU:
        return ActivationView("relu", "ReLU")
    if activation is Activation.LEAKY_RELU:
        raw = alpha_raw(alpha)
        bits = abs(raw).bit_length() + 1
        alpha_type = cpp_type(name, "alpha", exact(bits, bits - ALPHA_FRAC, True))
        return ActivationView("leaky_relu", f"LeakyReLU({alpha:g})", raw, alpha_type)
    return ActivationView("none", "none")


def common_fields(layer: Layer) -> dict[str, str]:
    """The names every kernel view has."""
    return {
        "kind": layer.kind,
        "name": layer.name,
        "source_name": layer.source_name,
        "header": f"layers/{layer.name}.h",
        "buffer": f"{layer.name}_out",
        "tb_stream": f"{layer.name}_txt",
    }


def identifiers(common: dict[str, str], types: Sequence[CppType], *more: str) -> list[str]:
    """Every name a layer's C++ defines at file scope or in the component and testbench."""
    return [common["name"], common["buffer"], common["tb_stream"], *(t.name for t in types), *more]


def raw_table_type(fixed: FixedPoint) -> str:
    """The narrowest <cstdint> type that holds every raw value of `fixed`."""
    for bits in (8, 16, 32, 64):
        if fixed.width <= bits:
            return f"{'' if fixed.signed else 'u'}int{bits}_t"
    raise ValueError(f"{fixed.describe()} is wider than 64 bits")


def raw_literal(raw: int, table: str) -> str:
    """A C++ integer literal of `raw`; 64-bit values beyond int's range get a suffix."""
    wide = table.endswith("64_t") and not -(1 << 31) <= raw < 1 << 31
    return f"{raw}LL" if wide else str(raw)


def lines(values: Sequence[_T], per_line: int) -> list[list[_T]]:
    return [list(values[start : start + per_line]) for start in range(0, len(values), per_line)]
