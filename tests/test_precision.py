"""`--precision`: per-layer formats with rounding and overflow modes, and overflow counting."""

from __future__ import annotations

import numpy as np
import pytest

from codesign import reference
from codesign.errors import CodesignError
from codesign.ir import Graph
from codesign.ir.fixed import FixedPoint, Overflow, Rounding
from codesign.passes import BuildOptions, build
from codesign.precision import parse_precision
from tests.conftest import make_graph


def requantised(text: str) -> tuple[Graph, np.ndarray]:
    graph, x = make_graph([(10, 13), (5, 10)], block=(2, 4), keep=0.6, reuse=2)
    return build(graph, BuildOptions(x, reuse=2, precision=parse_precision(text))), x


def test_overrides_apply_per_layer_and_globally() -> None:
    graph, _ = requantised("weight=s6.4,fc2.output=u12.8:TRN:WRAP,net.fc1.accum=40")
    fc1, fc2 = graph.layers
    assert fc1.require_formats().weight == FixedPoint(6, 2)
    assert fc2.require_formats().weight == FixedPoint(6, 2)
    assert fc2.out_format() == FixedPoint(12, 4, False, Rounding.TRN, Overflow.WRAP)
    accum = fc1.require_formats().accum
    assert accum.width == 40 and accum.overflow is Overflow.WRAP
    assert accum.frac == fc1.in_format().frac + 4  # every product bit kept
    assert fc1.require_formats().bias.width == 39
    # the next layer reads what the previous one writes
    assert fc2.in_format() == fc1.out_format()


def test_narrow_formats_overflow_and_the_reference_counts_it() -> None:
    graph, x = requantised("fc1.output=s6.5")
    raw = reference.quantize_inputs(graph, x)
    traces = reference.run(graph, raw)
    fc1 = graph.layers[0]
    # a 6-bit output (range +-1) saturates (AC_SAT by default): counted and clamped
    assert traces[0].saturated > 0 and traces[0].accum_overflows == 0
    assert traces[0].output.max() == fc1.out_format().max_raw

    narrow, _ = requantised("fc1.accum=20")
    layer = narrow.layers[0]
    assert layer.weight_raw is not None and layer.bias_raw is not None
    exact = raw @ layer.weight_raw.T + layer.bias_raw
    wrapped = reference.run(narrow, raw)[0]
    # a 20-bit accumulator wraps: counted, and equal to the exact sum modulo 2**20
    assert wrapped.accum_overflows == np.count_nonzero(exact != wrapped.accum) > 0
    assert np.array_equal((exact - wrapped.accum) % (1 << 20), np.zeros_like(exact))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fc1.bias=s8.4", "field 'bias' is not one of weight, accum, output"),
        ("output=16.4", "must read like s16.10"),
        ("output=s16.4:NEAREST", "mode 'NEAREST' is not one of TRN, RND, SAT, WRAP"),
        ("accum=32:SAT", "accumulators wrap"),
        ("output=s99.4", r"width must be in \[1, 62\]"),
        ("fc1.output", r"expected \[LAYER\.\]FIELD=FORMAT"),
    ],
)
def test_bad_precision_is_named(text: str, message: str) -> None:
    with pytest.raises(CodesignError, match=message):
        parse_precision(text)


def test_unknown_layer_and_wrong_accumulator_fraction_are_refused() -> None:
    with pytest.raises(CodesignError, match=r"unknown layer\(s\) \['fc9'\]"):
        requantised("fc9.output=s16.8")
    with pytest.raises(CodesignError, match="give the accumulator's width alone"):
        requantised("fc1.accum=s30.2")
