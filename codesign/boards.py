"""Board descriptions: one TOML file per board in `boards/`, loaded into frozen dataclasses.

A board file states the device's resources (DSP blocks, M20K blocks, ALMs, registers), the
default clock, the value for Intel HLS `i++ -march=`, and per operand width the DSP mode: how
many multipliers one DSP block holds and the default weight block (design.md §4). Every file is
validated strictly; an error names the file and the offending key.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codesign.errors import BoardError
from codesign.package_data import data_dir

DEFAULT_BOARD = "arria10-gx1150"
# The share of each resource (DSP and M20K blocks, ALMs, registers) a design may use and still
# be expected to close timing at the board clock: 80 %. Intel publishes no single figure;
# AMD's UltraFast methodology (UG949, "utilization guidelines") gives 80 % for DSP and block
# RAM and 70 % for LUTs, and Quartus's own "ALMs needed" already counts the packing it can
# recover, so 80 % of each is the closest published rule for a Quartus user. The fit check
# and the RF search hold designs to it; `--max-utilisation` (Board.with_ceiling) changes it.
DEFAULT_MAX_UTILISATION = 0.80


@dataclass(frozen=True)
class DspMode:
    """How a DSP block is used for operands of at most `max_operand_bits` bits."""

    max_operand_bits: int
    multipliers_per_dsp: int
    default_block: tuple[int, int]


@dataclass(frozen=True)
class Board:
    """One target board; `dsp_modes` is sorted by `max_operand_bits`."""

    key: str
    name: str
    family: str
    part: str
    hls_target: str
    clock_mhz: float
    dsp_blocks: int
    m20k_blocks: int
    m20k_bits: int
    alms: int
    registers: int
    dsp_modes: tuple[DspMode, ...]
    max_utilisation: float = DEFAULT_MAX_UTILISATION  # of each resource, see above

    def with_ceiling(self, max_utilisation: float) -> Board:
        """This board with another utilisation ceiling, a fraction in (0, 1]."""
        if isinstance(max_utilisation, bool) or not 0.0 < max_utilisation <= 1.0:
            raise BoardError(
                f"the utilisation ceiling must be a fraction in (0, 1], e.g. 0.8 for 80 %; "
                f"got {max_utilisation!r}"
            )
        return dataclasses.replace(self, max_utilisation=float(max_utilisation))

    def usable(self, available: int) -> int:
        """How much of a resource of which the device has `available` a design may use."""
        return math.floor(available * self.max_utilisation + 1e-9)

    @property
    def clock_period_ns(self) -> float:
        return 1000.0 / self.clock_mhz

    def dsp_mode(self, operand_bits: int) -> DspMode:
        """The narrowest DSP mode that fits operands of `operand_bits` bits."""
        if operand_bits < 1:
            raise BoardError(f"operand width must be at least 1 bit, got {operand_bits}")
        for mode in self.dsp_modes:
            if operand_bits <= mode.max_operand_bits:
                return mode
        widest = self.dsp_modes[-1].max_operand_bits
        raise BoardError(
            f"board {self.key!r} has no DSP mode for {operand_bits}-bit operands; "
            f"the widest it supports is {widest} bits"
        )

    def default_block(self, operand_bits: int) -> tuple[int, int]:
        return self.dsp_mode(operand_bits).default_block

    def max_multipliers(self, operand_bits: int) -> int:
        return self.dsp_blocks * self.dsp_mode(operand_bits).multipliers_per_dsp

    def dsps_for(self, multipliers: int, operand_bits: int) -> int:
        """DSP blocks needed for `multipliers` multipliers at this operand width."""
        return math.ceil(multipliers / self.dsp_mode(operand_bits).multipliers_per_dsp)


def available_boards() -> list[str]:
    """Names of the shipped boards (file stems), sorted."""
    return sorted(path.stem for path in data_dir("boards").glob("*.toml"))


def load_board(name_or_path: str) -> Board:
    """Load a shipped board by name, or any board file by its `.toml` path."""
    if name_or_path.endswith(".toml") or "/" in name_or_path or "\\" in name_or_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise BoardError(f"board file not found: {path}")
    else:
        path = data_dir("boards") / f"{name_or_path}.toml"
        if not path.is_file():
            known = ", ".join(available_boards())
            raise BoardError(f"unknown board {name_or_path!r}; known boards: {known}")
    return _parse_board(path)


# --- validation -------------------------------------------------------------------------------


class _Invalid(Exception):
    """A value does not match its key's rule; the message says what was expected."""


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid("a non-empty string")
    return value


def _positive_int(value: Any) -> int:
    # bool is a subclass of int; `true` is not a count.
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _Invalid("a positive integer")
    return value


def _positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise _Invalid("a positive number")
    if not math.isfinite(value):
        raise _Invalid("a finite positive number")
    return float(value)


def _block(value: Any) -> tuple[int, int]:
    rule = "an array of two positive integers [rows, cols]"
    if not isinstance(value, list) or len(value) != 2:
        raise _Invalid(rule)
    try:
        rows, cols = (_positive_int(item) for item in value)
    except _Invalid:
        raise _Invalid(rule) from None
    return rows, cols


def _nested(value: Any) -> Any:
    return value


_Rule = Callable[[Any], Any]

_BOARD_RULES: dict[str, _Rule] = {
    "name": _text,
    "family": _text,
    "part": _text,
    "hls_target": _text,
    "clock_mhz": _positive_number,
    "dsp_blocks": _positive_int,
    "m20k_blocks": _positive_int,
    "m20k_bits": _positive_int,
    "alms": _positive_int,
    "registers": _positive_int,
    "dsp_modes": _nested,  # checked by _check_dsp_modes, which names the nested keys
}

_DSP_MODE_RULES: dict[str, _Rule] = {
    "max_operand_bits": _positive_int,
    "multipliers_per_dsp": _positive_int,
    "default_block": _block,
}


def _check_table(
    path: Path, table: Mapping[str, Any], rules: Mapping[str, _Rule], prefix: str = ""
) -> dict[str, Any]:
    """Apply `rules` to every key of `table`: all keys required, none unknown."""
    unknown = sorted(set(table) - set(rules))
    if unknown:
        expected = ", ".join(rules)
        raise BoardError(f"{path}: unknown key {prefix + unknown[0]!r} (expected: {expected})")
    values: dict[str, Any] = {}
    for key, rule in rules.items():
        if key not in table:
            raise BoardError(f"{path}: missing key {prefix + key!r}")
        try:
            values[key] = rule(table[key])
        except _Invalid as invalid:
            raise BoardError(
                f"{path}: key {prefix + key!r} must be {invalid}, got {table[key]!r}"
            ) from None
    return values


def _check_dsp_modes(path: Path, raw: Any) -> tuple[DspMode, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(m, dict) for m in raw):
        raise BoardError(
            f"{path}: key 'dsp_modes' must be a non-empty array of tables ([[dsp_modes]]), "
            f"got {raw!r}"
        )
    modes = [
        DspMode(**_check_table(path, table, _DSP_MODE_RULES, prefix=f"dsp_modes[{index}]."))
        for index, table in enumerate(raw)
    ]
    modes.sort(key=lambda mode: mode.max_operand_bits)
    widths = [mode.max_operand_bits for mode in modes]
    if len(set(widths)) != len(widths):
        raise BoardError(
            f"{path}: key 'dsp_modes' has two modes with the same max_operand_bits: {widths}"
        )
    return tuple(modes)


def _parse_board(path: Path) -> Board:
    try:
        with path.open("rb") as stream:
            document = tomllib.load(stream)
    except tomllib.TOMLDecodeError as error:
        raise BoardError(f"{path}: not valid TOML: {error}") from None
    except OSError as error:
        raise BoardError(f"{path}: cannot read board file: {error.strerror}") from None

    fields = _check_table(path, document, _BOARD_RULES)
    fields["dsp_modes"] = _check_dsp_modes(path, fields["dsp_modes"])
    return Board(key=path.stem, **fields)
