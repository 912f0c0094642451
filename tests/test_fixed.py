"""ac_fixed semantics of the NumPy reference's fixed-point arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codesign.engines.hls_common import ac_fixed
from codesign.ir.fixed import FixedPoint, Overflow, Rounding, integer_bits_for


def test_range_and_frac() -> None:
    fmt = FixedPoint(8, 3)
    assert (fmt.frac, fmt.min_raw, fmt.max_raw) == (5, -128, 127)
    unsigned = FixedPoint(8, 3, signed=False)
    assert (unsigned.min_raw, unsigned.max_raw) == (0, 255)
    assert ac_fixed(fmt) == "ac_fixed<8, 3, true, AC_RND, AC_SAT>"


def test_quantize_rounds_half_up_and_saturates() -> None:
    fmt = FixedPoint(8, 1)  # step 1/128, range [-1, 127/128]
    raw, saturated = fmt.quantize([0.5 / 128, -0.5 / 128, 1.5 / 128, 2.0, -2.0, 0.999])
    assert raw.tolist() == [1, 0, 2, 127, -128, 127]
    assert saturated == 3  # 2.0, -2.0 and 0.999 (rounds to 128)


def test_truncation_and_wrap() -> None:
    fmt = FixedPoint(4, 4, rounding=Rounding.TRN, overflow=Overflow.WRAP)
    raw, wrapped = fmt.quantize([-0.5, 7.9, 8.0, -9.0])
    assert raw.tolist() == [-1, 7, -8, 7]
    assert wrapped == 2


def test_cast_rounding_matches_exact_rational_rounding() -> None:
    source = FixedPoint(24, 8)  # frac 16
    target = FixedPoint(12, 8)  # frac 4
    raw = np.arange(-5000, 5000, 37, dtype=np.int64)
    got, _ = target.cast(raw, source)
    exact = np.floor(raw / 2**12 + 0.5).astype(np.int64)
    assert np.array_equal(got, np.clip(exact, target.min_raw, target.max_raw))


def test_cast_to_more_fraction_bits_is_exact() -> None:
    got, saturated = FixedPoint(16, 4).cast(np.array([3, -3]), FixedPoint(8, 4))
    assert got.tolist() == [3 << 8, -3 << 8] and saturated == 0


@given(st.floats(min_value=-1000, max_value=1000, allow_nan=False))
def test_quantize_error_is_at_most_half_a_step(value: float) -> None:
    fmt = FixedPoint(24, 12)
    raw, saturated = fmt.quantize([value])
    assert saturated == 0
    assert abs(fmt.to_float(raw)[0] - value) <= 2.0 ** -(fmt.frac + 1)


@pytest.mark.parametrize(("max_abs", "bits"), [(1.0, 2), (0.99, 1), (0.3, 0), (5.0, 4), (0.0, 1)])
def test_integer_bits_for(max_abs: float, bits: int) -> None:
    assert integer_bits_for(max_abs) == bits
    fmt = FixedPoint(16, bits)
    assert max_abs <= fmt.to_float(fmt.max_raw) + 2.0**-fmt.frac


def test_casts_over_shifts_wider_than_int64_are_exact() -> None:
    target = FixedPoint(8, 8 + 120, rounding=Rounding.TRN, overflow=Overflow.SAT)  # frac -120
    raw = np.array([5 << 40, -(5 << 40), 3, -3], dtype=np.int64)
    # a right shift by 150 bits: floor division, exactly as Python integers do it
    got, _ = target.cast_frac(raw, 30)
    assert got.tolist() == [v >> 150 for v in raw.tolist()] == [0, -1, 0, -1]
    wide = FixedPoint(62, 2, overflow=Overflow.WRAP)  # frac 60: a left shift by 60
    got, wrapped = wide.cast_frac(np.array([3, -3], dtype=np.int64), 0)
    assert got.tolist() == [(3 << 60) - (1 << 62), -(3 << 60) + (1 << 62)] and wrapped == 2
