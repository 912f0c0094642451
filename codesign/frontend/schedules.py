"""Pruning schedules: when masks tighten during fine-tuning.

  oneshot  prune to the final sparsity before fine-tuning starts;
  gradual  Zhu & Gupta (2017) cubic ramp: at pruning step k of n the sparsity is
           s_k = s_f · (1 − (1 − k/n)³), steps spread evenly over the first `ramp_fraction`
           of the fine-tuning iterations; the rest fine-tunes at the final sparsity.

A schedule yields `progress` values in (0, 1]; a masker turns progress into per-layer sparsity
by `ramp(progress) · s_layer`, so per-layer (budget) sparsities follow the same curve.
"""

from __future__ import annotations

from dataclasses import dataclass

from codesign.errors import PruneError

SCHEDULES = ("oneshot", "gradual")


def check_schedule(schedule: str) -> None:
    if schedule not in SCHEDULES:
        raise PruneError(f"unknown schedule {schedule!r}; use one of {', '.join(SCHEDULES)}")


def cubic_ramp(progress: float) -> float:
    """Fraction of the final sparsity reached at `progress` ∈ [0, 1] (Zhu & Gupta)."""
    progress = min(1.0, max(0.0, progress))
    return 1.0 - (1.0 - progress) ** 3


@dataclass(frozen=True)
class Schedule:
    kind: str = "gradual"
    steps: int = 10
    ramp_fraction: float = 0.5

    def __post_init__(self) -> None:
        check_schedule(self.kind)
        if self.steps < 1:
            raise PruneError(f"a schedule needs at least one pruning step, got {self.steps}")
        if not 0.0 <= self.ramp_fraction <= 1.0:
            raise PruneError(f"ramp_fraction must be in [0, 1], got {self.ramp_fraction}")

    def fraction(self, progress: float) -> float:
        """Fraction of the final sparsity applied at `progress` (1.0 always for oneshot)."""
        return 1.0 if self.kind == "oneshot" else cubic_ramp(progress)

    def updates(self, total_iterations: int) -> dict[int, float]:
        """Iteration index -> progress at which the masks are recomputed (the last wins)."""
        if self.kind == "oneshot" or self.steps == 1:
            return {0: 1.0}
        span = self.ramp_fraction * max(0, total_iterations - 1)
        points: dict[int, float] = {}
        for k in range(1, self.steps + 1):
            iteration = round((k - 1) / (self.steps - 1) * span)
            points[iteration] = k / self.steps
        return points
