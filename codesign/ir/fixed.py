"""Fixed-point formats with ac_fixed semantics, and the integer arithmetic on their raw values.

A value of format `FixedPoint(width, integer, signed)` is stored as an integer `raw` and means
`raw * 2**-frac` with `frac = width - integer` (ac_fixed<W, I, S>). Everything here works on raw
integers held in int64 arrays, so results are exact: this is the arithmetic the NumPy reference,
the C simulation (ac_fixed) and the RTL must agree on bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

RawArray = npt.NDArray[np.int64]

# int64 holds every raw value we produce; the widest is an accumulator of
# 8 + 16 + log2(fan-in) + 1 bits, far below 62.
MAX_WIDTH = 62


class Rounding(StrEnum):
    """ac_fixed quantisation modes used by codesign (ac_q_mode)."""

    TRN = "AC_TRN"  # truncate toward minus infinity (drop bits)
    RND = "AC_RND"  # round to nearest, ties toward plus infinity


class Overflow(StrEnum):
    """ac_fixed overflow modes used by codesign (ac_o_mode)."""

    WRAP = "AC_WRAP"
    SAT = "AC_SAT"


@dataclass(frozen=True)
class FixedPoint:
    """ac_fixed<width, integer, signed, rounding, overflow>."""

    width: int
    integer: int
    signed: bool = True
    rounding: Rounding = Rounding.RND
    overflow: Overflow = Overflow.SAT

    def __post_init__(self) -> None:
        if not 1 <= self.width <= MAX_WIDTH:
            raise ValueError(f"fixed-point width must be in [1, {MAX_WIDTH}], got {self.width}")

    @property
    def frac(self) -> int:
        return self.width - self.integer

    @property
    def min_raw(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_raw(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    def describe(self) -> str:
        kind = "s" if self.signed else "u"
        return f"{kind}{self.width}.{self.frac}"

    def to_float(self, raw: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return np.asarray(raw, dtype=np.float64) * 2.0 ** (-self.frac)

    def quantize(self, values: npt.ArrayLike) -> tuple[RawArray, int]:
        """Float values to raw integers as ac_fixed's constructor from double does.

        Returns the raw values and how many of them saturated (or wrapped).
        """
        scaled = np.asarray(values, dtype=np.float64) * 2.0**self.frac
        if self.rounding is Rounding.RND:
            scaled = scaled + 0.5
        return self._fit(np.floor(scaled).astype(np.int64))

    def cast(self, raw: npt.ArrayLike, source: FixedPoint) -> tuple[RawArray, int]:
        """Convert raw values of format `source` into this format (ac_fixed assignment)."""
        return self.cast_frac(raw, source.frac)

    def cast_frac(self, raw: npt.ArrayLike, source_frac: int) -> tuple[RawArray, int]:
        """Convert raw values with `source_frac` fraction bits into this format.

        Only the source's fraction matters to the conversion, so intermediate values (a
        LeakyReLU product, an average's scaled sum) need no format of their own. `raw` may be
        an object array of Python integers (values wider than int64); the result fits this
        format and is int64.
        """
        values = np.asarray(raw)
        shift = source_frac - self.frac
        if values.dtype != object:
            values = values.astype(np.int64)
            largest = int(np.abs(values).max()) if values.size else 0
            if shift > MAX_WIDTH or largest.bit_length() - shift > MAX_WIDTH:
                values = values.astype(object)  # shifts beyond int64: Python integers
        if shift > 0:
            if self.rounding is Rounding.RND:
                values = values + (1 << (shift - 1))
            values = values >> shift  # arithmetic shift: floor division by 2**shift
        elif shift < 0:
            values = values << (-shift)
        return self._fit(values)

    def _fit(self, values: RawArray) -> tuple[RawArray, int]:
        out_of_range = (values < self.min_raw) | (values > self.max_raw)
        count = int(np.count_nonzero(out_of_range))
        if self.overflow is Overflow.SAT:
            clipped = np.where(values < self.min_raw, self.min_raw, values)
            clipped = np.where(clipped > self.max_raw, self.max_raw, clipped)
            return np.asarray(clipped).astype(np.int64), count
        span = 1 << self.width
        wrapped = (values - self.min_raw) % span + self.min_raw
        return wrapped.astype(np.int64), count

    def to_dict(self) -> dict[str, object]:
        return {
            "width": self.width,
            "integer": self.integer,
            "signed": self.signed,
            "rounding": self.rounding.value,
            "overflow": self.overflow.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FixedPoint:
        return cls(
            width=int(data["width"]),
            integer=int(data["integer"]),
            signed=bool(data["signed"]),
            rounding=Rounding(str(data["rounding"])),
            overflow=Overflow(str(data["overflow"])),
        )


def integer_bits_for(max_abs: float, signed: bool = True, headroom: int = 0) -> int:
    """Smallest ac_fixed integer-bit count whose range holds `max_abs`, plus `headroom` bits.

    May be zero or negative for small ranges (ac_fixed allows it: more fraction bits).
    """
    if max_abs <= 0.0 or not np.isfinite(max_abs):
        return 1 + headroom
    bits = int(np.floor(np.log2(max_abs))) + 1  # max_abs < 2**bits
    return bits + (1 if signed else 0) + headroom


# LeakyReLU's slope is the raw integer round(alpha * 2**ALPHA_FRAC): negative values are
# multiplied by it, positive ones shifted left by ALPHA_FRAC, so both keep every bit.
ALPHA_FRAC = 16
ALPHA_BITS = 18  # signed: slopes in [-2, 2), the range the kernels store
# Average pooling multiplies the window sum by round(2**POOL_FRAC / window area).
POOL_FRAC = 16


def alpha_raw(alpha: float) -> int:
    """LeakyReLU's negative slope as the raw integer the reference and both kernels use."""
    return int(np.floor(alpha * 2.0**ALPHA_FRAC + 0.5))


def alpha_fits(alpha: float) -> bool:
    """Whether a LeakyReLU slope fits the ALPHA_BITS the kernels store: [-2, 2)."""
    return -(1 << (ALPHA_BITS - 1)) <= alpha_raw(alpha) < 1 << (ALPHA_BITS - 1)


def pool_reciprocal_raw(area: int) -> int:
    """1 / window area as a raw integer with POOL_FRAC fraction bits (exact for powers of 2)."""
    return int(np.floor(2.0**POOL_FRAC / area + 0.5))
