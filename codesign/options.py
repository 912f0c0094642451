"""The options shared by the commands, parsed once into types: block shape, reuse factor."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
    block: tuple[int, int] | None, board: Board, operand_bits: int
) -> tuple[int, int]:
    """The block given (checked against the board), else the board's default for the width."""
    if block is None:
        return board.default_block(operand_bits)
    return check_block(block, board, operand_bits)


BALANCED = "balanced"
FOLD = "fold"
UNIFORM = "uniform"


@dataclass(frozen=True)
class UniformFitReuse:
    """The smallest RF, uniform over the network, whose design fits the board (`--reuse
    uniform`)."""


@dataclass(frozen=True)
class FoldedReuse:
    """Every layer folded to one interval: per-layer RFs and stream widths (`--reuse fold`,
    the default, for the smallest interval that fits; `--target-ii N` for N cycles)."""

    target_ii: int | None = None


@dataclass(frozen=True)
class BalancedReuse:
    """Per-layer RFs for the smallest interval that fits (`--reuse balanced`)."""


@dataclass(frozen=True)
class UniformReuse:
    """One RF for every layer (`--reuse 4`)."""

    reuse_factor: int


@dataclass(frozen=True)
class PerLayerReuse:
    """One RF per matrix layer, by IR or PyTorch name (`--reuse fc1=1,fc2=4`)."""

    factors: tuple[tuple[str, int], ...]


Reuse = FoldedReuse | UniformFitReuse | BalancedReuse | UniformReuse | PerLayerReuse
DEFAULT_REUSE = FoldedReuse()


def parse_reuse(text: str | None, target_ii: int | None = None) -> Reuse:
    """'--reuse 4' (all layers), '--reuse fc1=1,fc2=4' (per layer), '--reuse fold',
    'uniform' or 'balanced' (codesign.passes.fold), or '--target-ii N'; None: the default."""
    if target_ii is not None:
        if text is not None and text.strip() != FOLD:
            raise CodesignError("--target-ii folds every layer: give it alone or with --reuse fold")
        if target_ii < 1:
            raise CodesignError(f"--target-ii must be a positive integer, got {target_ii}")
        return FoldedReuse(target_ii)
    if text is None:
        return DEFAULT_REUSE
    text = text.strip()
    if text == BALANCED:
        return BalancedReuse()
    if text == FOLD:
        return FoldedReuse()
    if text == UNIFORM:
        return UniformFitReuse()
    if "=" not in text:
        return UniformReuse(_positive_reuse(text, "--reuse"))
    per_layer: dict[str, int] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CodesignError(f"--reuse: expected name=RF in {item!r}")
        if name in per_layer:
            raise CodesignError(f"--reuse names layer {name!r} twice")
        per_layer[name] = _positive_reuse(value, f"--reuse {name}")
    return PerLayerReuse(tuple(per_layer.items()))


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
