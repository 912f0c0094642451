"""Per-layer fixed-point formats chosen by the user: `--precision` (design.md §4).

Calibration picks every format by default; `--precision` overrides parts of it, for all
layers or by layer name (safe name or PyTorch name), as comma-separated items

    [LAYER.]FIELD=FORMAT[:ROUNDING][:OVERFLOW]

FIELD is `weight`, `accum` or `output`; FORMAT is `s` (signed) or `u` (unsigned), the width,
a dot and the fraction bits, as the formats print (`s16.10` is ac_fixed<16, 6, true>);
ROUNDING is TRN or RND and OVERFLOW SAT or WRAP (ac_fixed's AC_TRN, AC_RND, AC_SAT,
AC_WRAP). Constraints that keep every backend exact:

* `accum`: the fraction is always input.frac + weight.frac (every product bit is kept), so
  only the width may be given (`accum=24` or a format with that fraction); its overflow mode
  must be WRAP: wrapping is associative, so the C++ accumulator (wrapping after every add)
  and the reference (wrapping the exact sum once) agree. The bias takes the accumulator's
  format minus one bit, as without overrides.
* `weight`, `output`: any format; the reference counts the values that overflow
  (csim.json `overflows` per layer).

Items without a layer apply to every layer that has the field (pooling and adds only have
`output`); a layer's own items win.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from codesign.errors import CodesignError
from codesign.ir.fixed import MAX_WIDTH, FixedPoint, Overflow, Rounding

FIELDS = ("weight", "accum", "output")
_FORMAT = re.compile(r"^([su])(\d+)\.(-?\d+)$")
_WIDTH = re.compile(r"^(\d+)$")
_ROUNDING = {"TRN": Rounding.TRN, "RND": Rounding.RND}
_OVERFLOW = {"SAT": Overflow.SAT, "WRAP": Overflow.WRAP}


@dataclass(frozen=True)
class FormatSpec:
    """One override: a full format, or for `accum` possibly only a width."""

    width: int
    frac: int | None  # None: the width alone (accum)
    signed: bool = True
    rounding: Rounding | None = None
    overflow: Overflow | None = None

    def resolve(self, default: FixedPoint) -> FixedPoint:
        """The format this spec gives where `default` was calibrated."""
        frac = default.frac if self.frac is None else self.frac
        return FixedPoint(
            self.width,
            self.width - frac,
            self.signed if self.frac is not None else default.signed,
            self.rounding or default.rounding,
            self.overflow or default.overflow,
        )


Precision = dict[str, dict[str, FormatSpec]]  # layer name or "*" -> field -> spec


def parse_precision(text: str | None) -> Precision:
    """Parse `--precision`; raise CodesignError naming the bad item and what is allowed."""
    result: Precision = {}
    if not text:
        return result
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise CodesignError(f"--precision: expected [LAYER.]FIELD=FORMAT in {item!r}")
        layer, _, field = key.strip().rpartition(".")
        if field not in FIELDS:
            raise CodesignError(
                f"--precision {item!r}: field {field!r} is not one of {', '.join(FIELDS)}"
            )
        result.setdefault(layer or "*", {})[field] = _parse_spec(item, field, value.strip())
    return result


def _parse_spec(item: str, field: str, text: str) -> FormatSpec:
    head, *modes = text.split(":")
    rounding: Rounding | None = None
    overflow: Overflow | None = None
    for mode in modes:
        upper = mode.strip().upper()
        if upper in _ROUNDING:
            rounding = _ROUNDING[upper]
        elif upper in _OVERFLOW:
            overflow = _OVERFLOW[upper]
        else:
            raise CodesignError(
                f"--precision {item!r}: mode {mode!r} is not one of TRN, RND, SAT, WRAP"
            )
    width_only = _WIDTH.match(head)
    match = _FORMAT.match(head)
    if width_only and field == "accum":
        spec = FormatSpec(int(head), None, True, rounding, overflow)
    elif match:
        spec = FormatSpec(int(match[2]), int(match[3]), match[1] == "s", rounding, overflow)
    else:
        raise CodesignError(
            f"--precision {item!r}: format {head!r} must read like s16.10 (sign s/u, width, "
            "fraction bits)" + ("; accum also takes a width alone" if field == "accum" else "")
        )
    if not 1 <= spec.width <= MAX_WIDTH:
        raise CodesignError(f"--precision {item!r}: width must be in [1, {MAX_WIDTH}]")
    if field == "accum" and overflow is Overflow.SAT:
        raise CodesignError(
            f"--precision {item!r}: accumulators wrap (WRAP); a saturating accumulator "
            "depends on the order of the additions, which the kernels do not fix"
        )
    return spec


def spec_for(precision: Precision, names: tuple[str, str], field: str) -> FormatSpec | None:
    """The override of `field` for a layer known by `names` (safe, source), if any."""
    for key in names:
        if field in precision.get(key, {}):
            return precision[key][field]
    return precision.get("*", {}).get(field)


def check_layer_names(precision: Precision, names: set[str]) -> None:
    unknown = sorted(set(precision) - names - {"*"})
    if unknown:
        raise CodesignError(
            f"--precision names unknown layer(s) {unknown}; layers: {sorted(names)}"
        )
