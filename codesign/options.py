"""Parsing and checking of the options shared by the commands (block shape, reuse factor)."""

from __future__ import annotations

import re

from codesign.boards import Board
from codesign.errors import CodesignError, PruneError

_BLOCK = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


def parse_block(text: str) -> tuple[int, int]:
    """'RxC' (rows × columns of a weight block) to a pair of positive integers."""
    match = _BLOCK.match(text)
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise PruneError(
            f"block {text!r} does not fit: give two positive integers as RxC, e.g. 1x4"
        )
    return int(match.group(1)), int(match.group(2))


def check_block(block: tuple[int, int], board: Board, operand_bits: int) -> tuple[int, int]:
    """A block fits when it needs no more multipliers than the board has (design.md §4)."""
    rows, cols = block
    available = board.max_multipliers(operand_bits)
    if rows < 1 or cols < 1:
        raise PruneError(f"block {rows}x{cols} does not fit: both sides must be positive")
    if rows * cols > available:
        raise PruneError(
            f"block {rows}x{cols} does not fit: one tile needs {rows * cols} multipliers, "
            f"{board.key} has {available} at {operand_bits}-bit operands"
        )
    return block


def resolve_block(
    block: str | tuple[int, int] | None, board: Board, operand_bits: int
) -> tuple[int, int]:
    """The block from an option (text or pair), else the board's default for the width."""
    if block is None:
        return board.default_block(operand_bits)
    pair = parse_block(block) if isinstance(block, str) else block
    return check_block(pair, board, operand_bits)


BALANCED = "balanced"


def parse_reuse(text: str | None) -> int | dict[str, int] | str | None:
    """'--reuse 4' (all layers), '--reuse fc1=1,fc2=4' (per layer) or '--reuse balanced'
    (per-layer RFs for the smallest interval that fits, codesign.hardware); None = default."""
    if text is None:
        return None
    text = text.strip()
    if text == BALANCED:
        return BALANCED
    if "=" not in text:
        return _positive_reuse(text, "--reuse")
    per_layer: dict[str, int] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise CodesignError(f"--reuse: expected name=RF in {item!r}")
        per_layer[name.strip()] = _positive_reuse(value, f"--reuse {name.strip()}")
    return per_layer


def _positive_reuse(text: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise CodesignError(
            f"{where}: reuse factor must be a positive integer, got {text!r}"
        ) from None
    if value < 1:
        raise CodesignError(f"{where}: reuse factor must be a positive integer, got {value}")
    return value
