"""What every engine's RTL view-model shares: the engine record, casts, checks, memory words.

Only structure goes into an engine view (shapes, tiling sizes, widths, modes), never the
weight pattern, so patterns of one shape share a Verilator build (design.md §4); what varies
with the pattern is in the engine's memory files ($readmemh, hex, one word a line).
"""

from __future__ import annotations

from dataclasses import dataclass

from codesign.errors import FormatError
from codesign.ir.fixed import FixedPoint, Overflow, Rounding
from codesign.ir.graph import ALPHA_BITS, Activation, Layer, alpha_fits, alpha_raw, ceil_div

SHIFT_BITS = 8  # the engines' SHIFT_WIDTH
ACTIVATION_CODES = {Activation.NONE: 0, Activation.RELU: 1, Activation.LEAKY_RELU: 2}


@dataclass(frozen=True)
class EngineView:
    """What the templates need to instantiate one layer's engine."""

    name: str
    module: str
    summary: str
    memories: bool  # reads memory files: takes NAME and MEM_DIR
    parameters: tuple[tuple[str, str], ...]
    ports: tuple[str, ...]  # input port prefixes: ("in",) or ("in_a", "in_b")


def bit(flag: bool) -> str:
    return "1'b1" if flag else "1'b0"


def cast_parameters(output: FixedPoint) -> tuple[tuple[str, str], ...]:
    """The output cast's parameters (output_cast.sv)."""
    return (
        ("OUT_WIDTH", str(output.width)),
        ("OUT_SIGNED", bit(output.signed)),
        ("ROUND", bit(output.rounding is Rounding.RND)),
        ("SATURATE", bit(output.overflow is Overflow.SAT)),
    )


def check_shift(layer: Layer, shift: int) -> None:
    limit = (1 << (SHIFT_BITS - 1)) - 1
    if abs(shift) > limit:
        raise FormatError(
            f"layer {layer.name}: its output format is {shift} fraction bits from its sum's; "
            f"the RTL engines shift by at most {limit} (check --precision)"
        )


def check_alpha(name: str, activation: Activation, alpha: float) -> None:
    if activation is Activation.LEAKY_RELU and not alpha_fits(alpha):
        raise FormatError(
            f"layer {name}: LeakyReLU slope {alpha} is outside [-2, 2), the range "
            f"the kernels store ({ALPHA_BITS} bits)"
        )


def hex_word(value: int, bits: int) -> str:
    return f"{value & ((1 << bits) - 1):0{ceil_div(bits, 4)}x}"


def alpha_words(activation: Activation, alpha: float) -> dict[str, list[str]]:
    """The `alpha` memory file of an engine with LeakyReLU: the raw slope."""
    if activation is Activation.LEAKY_RELU:
        return {"alpha": [hex_word(alpha_raw(alpha), ALPHA_BITS)]}
    return {}
