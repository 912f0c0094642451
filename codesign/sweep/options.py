"""The options a sweep point can set, each with the stage that reads it, its default and its
check (design.md §7 gives their meanings; they are `codesign prune` and `generate`'s options,
plus `sim_vectors` for `simulate`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from codesign.errors import CodesignError


class SpecError(CodesignError):
    """A sweep spec that cannot run; the message names the file and the key."""


@dataclass(frozen=True)
class Option:
    """One option a point can set: the stage that reads it, its default, its check (which
    returns the value normalised or raises ValueError with the allowed values)."""

    stage: str
    default: Any
    check: Callable[[Any], Any]
    allowed: str


def _one_of(*values: Any) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value not in values or isinstance(value, bool) != isinstance(values[0], bool):
            raise ValueError
        return value

    return check


def _integer(low: int, high: int | None = None) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError
        if high is not None and value > high:
            raise ValueError
        return value

    return check


def _number(low: float, high: float, open_at: str = "") -> Callable[[Any], Any]:
    """A number in [low, high]; `open_at` "low" or "high" leaves that end out."""

    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError
        value = float(value)
        if not low <= value <= high or value == {"low": low, "high": high}.get(open_at):
            raise ValueError
        return value

    return check


def _positive(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e9:
        raise ValueError
    return float(value)


def _boolean(value: Any) -> Any:
    if not isinstance(value, bool):
        raise ValueError
    return value


def _block(value: Any) -> Any:
    from codesign.options import parse_block

    if not isinstance(value, str):
        raise ValueError
    rows, columns = parse_block(value)  # a PruneError: caught as a bad value
    return f"{rows}x{columns}"


def _board(value: Any) -> Any:
    """A shipped board's name or a board file (the spec made its path absolute)."""
    from codesign.boards import load_board

    if not isinstance(value, str):
        raise ValueError
    load_board(value)
    return value


def _reuse(value: Any) -> Any:
    from codesign.options import parse_reuse

    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError
    parse_reuse(str(value))
    return str(value)


def _options() -> dict[str, Option]:
    from codesign.boards import DEFAULT_BOARD, DEFAULT_MAX_UTILISATION, available_boards
    from codesign.frontend.budget import ALLOCATORS
    from codesign.frontend.criteria import CRITERIA
    from codesign.frontend.pipeline import METHODS
    from codesign.frontend.schedules import SCHEDULES
    from codesign.ir.fixed import MAX_WIDTH

    bits = f"an integer in [2, {MAX_WIDTH}]"
    return {
        # prune (design.md §7: codesign prune)
        "sparsity": Option("prune", None, _number(0.0, 1.0, "high"), "a number in [0, 1)"),
        "budget_cycles": Option("prune", None, _integer(1), "an integer >= 1"),
        "budget_dsp": Option("prune", None, _integer(1), "an integer >= 1"),
        "method": Option("prune", "block", _one_of(*METHODS), ", ".join(METHODS)),
        "pattern": Option(
            "prune", "balanced", _one_of("balanced", "unbalanced"), "balanced, unbalanced"
        ),
        "criterion": Option("prune", "l1", _one_of(*CRITERIA), ", ".join(CRITERIA)),
        "schedule": Option("prune", "gradual", _one_of(*SCHEDULES), ", ".join(SCHEDULES)),
        "allocator": Option("prune", "knapsack", _one_of(*ALLOCATORS), ", ".join(ALLOCATORS)),
        "distill": Option("prune", True, _boolean, "true, false"),
        "epochs": Option("prune", 30, _integer(0, 100_000), "an integer in [0, 100000]"),
        "learning_rate": Option("prune", 2e-3, _positive, "a number above 0"),
        "seed": Option("prune", 0, _integer(0), "an integer >= 0"),
        # generate (and the prune's costing)
        "board": Option(
            "generate", DEFAULT_BOARD, _board, f"{', '.join(available_boards())} or a .toml file"
        ),
        "max_utilisation": Option(
            "generate", DEFAULT_MAX_UTILISATION, _number(0.0, 1.0, "low"), "a number in (0, 1]"
        ),
        "block": Option("generate", None, _block, "RxC, e.g. 1x4"),
        "weight_bits": Option("generate", 8, _integer(2, MAX_WIDTH), bits),
        "act_bits": Option("generate", 16, _integer(2, MAX_WIDTH), bits),
        "reuse": Option(
            "generate", None, _reuse, "fold, uniform, balanced, an RF or name=RF,... (--reuse)"
        ),
        "target_ii": Option("generate", None, _integer(1), "an integer >= 1"),
        "vectors": Option("generate", 32, _integer(1, 1_000_000), "an integer in [1, 1000000]"),
        # simulate
        "sim_vectors": Option("simulate", 8, _integer(1, 1_000_000), "an integer in [1, 1000000]"),
    }


OPTIONS = _options()
PRUNE_TARGETS = ("sparsity", "budget_cycles", "budget_dsp")


def check_value(key: str, value: Any, where: str) -> Any:
    """`value` for option `key`, normalised, or a SpecError naming the allowed values."""
    option = OPTIONS[key]
    try:
        return option.check(value)
    except (ValueError, CodesignError) as error:
        detail = f" ({error})" if str(error) else ""
        raise SpecError(
            f"{where}: option {key!r}: bad value {value!r}{detail}; allowed: {option.allowed}"
        ) from error
