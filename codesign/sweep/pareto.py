"""The Pareto front of a sweep: the points no other point matches or beats on every objective.

Each objective reads one column of the results table; interval and latency read the RTL
simulation's figure when every point has one, else the estimate. Only points that ran to the
end count, never one whose simulation disagreed with the reference (that is a fault to fix,
not a design to choose), and none outside the spec's [require] bounds (accuracy at least its
bound, every other objective at most its bound; a bound may name an objective that is not on
the front).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# objective -> (columns in order of preference, "max" or "min")
OBJECTIVE_COLUMNS: dict[str, tuple[tuple[str, ...], str]] = {
    "accuracy": (("top1_fixed[D]",), "max"),
    "interval": (("ii[R]", "ii[E]"), "min"),
    "latency": (("latency_cycles[R]", "latency_cycles[E]"), "min"),
    "dsp": (("dsp[E]",), "min"),
    "energy": (("energy_nj[E]",), "min"),
    "alms": (("alms[E]",), "min"),
    "m20k": (("m20k[E]",), "min"),
}
CHECKS = ("csim_match[C]", "rtl_match[R]")


@dataclass(frozen=True)
class Front:
    objectives: tuple[tuple[str, str, str], ...]  # (objective, column, "max"/"min")
    require: Mapping[str, float]
    candidates: tuple[Mapping[str, Any], ...]  # the rows that could be chosen
    points: tuple[Mapping[str, Any], ...]  # the front, best accuracy (first objective) first
    excluded: tuple[tuple[str, str], ...]  # (key, why) of the rows that were left out


def pareto_front(
    rows: Sequence[Mapping[str, Any]],
    objectives: Sequence[str],
    require: Mapping[str, float] | None = None,
) -> Front:
    require = dict(require or {})
    finished = [row for row in rows if row.get("status") == "done"]

    def column_of(objective: str) -> tuple[str, str, str]:
        columns, sense = OBJECTIVE_COLUMNS[objective]
        column = next(
            (c for c in columns if finished and all(r.get(c) is not None for r in finished)),
            columns[-1],
        )
        return (objective, column, sense)

    chosen = [column_of(objective) for objective in objectives]
    bounds = [(*column_of(objective), bound) for objective, bound in require.items()]
    excluded, candidates = [], []
    for row in rows:
        if row.get("status") != "done":
            excluded.append((row["key"], f"{row.get('status')}: {row.get('error')}"))
        elif any(row.get(check) is False for check in CHECKS):
            wrong = [check for check in CHECKS if row.get(check) is False]
            excluded.append((row["key"], f"not bit-exact ({', '.join(wrong)})"))
        elif any(row.get(column) is None for _, column, _ in chosen):
            missing = [column for _, column, _ in chosen if row.get(column) is None]
            excluded.append((row["key"], f"no {', '.join(missing)}"))
        elif missed := _missed(row, bounds):
            excluded.append((row["key"], f"outside [require]: {missed}"))
        else:
            candidates.append(row)

    def value(row: Mapping[str, Any], column: str, sense: str) -> float:
        figure = float(row[column])
        return -figure if sense == "max" else figure  # smaller is better

    def beats(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
        pairs = [(value(a, c, s), value(b, c, s)) for _, c, s in chosen]
        return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)

    front = [row for row in candidates if not any(beats(other, row) for other in candidates)]
    front.sort(key=lambda row: tuple(value(row, c, s) for _, c, s in chosen))
    return Front(tuple(chosen), require, tuple(candidates), tuple(front), tuple(excluded))


def bound_text(objective: str, bound: float) -> str:
    """'accuracy >= 0.93', 'interval <= 8'."""
    return f"{objective} {'>=' if OBJECTIVE_COLUMNS[objective][1] == 'max' else '<='} {bound:g}"


def _missed(row: Mapping[str, Any], bounds: Sequence[tuple[str, str, str, float]]) -> str:
    """The bounds `row` misses, as text ('' when it meets them all)."""
    missed = []
    for _, column, sense, bound in bounds:
        value = row.get(column)
        if value is None:
            missed.append(f"no {column}")
        elif (sense == "max" and float(value) < bound) or (sense == "min" and float(value) > bound):
            relation = ">=" if sense == "max" else "<="
            missed.append(f"{column} {value:.4g} (needs {relation} {bound:g})")
    return ", ".join(missed)
