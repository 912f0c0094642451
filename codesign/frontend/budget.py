"""Per-layer sparsity under a hardware budget (cycles or DSP blocks), HALP/NetAdapt style.

Each layer may take one of `LEVELS` sparsities. Its *sensitivity* at a level is the rise of the
calibration loss when that layer alone is pruned to it (one shot, no fine-tuning), made
monotone. The cost of a choice is the design the uniform reuse rule would generate
(`hwcost.CostModel`), which is a whole-network figure (one uniform RF), so the allocators rank
moves by the MACs they remove and check the real cost:

  greedy    from dense, repeatedly prune one layer a level further: the move that removes the
            most MACs per unit of sensitivity, until the design meets the budget;
  knapsack  minimise total sensitivity subject to kept MACs ≤ M (dynamic programme over MACs),
            with M the largest capacity whose design meets the budget (bisection).

A budget no allocation can meet is an error that states the best reachable figure.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from codesign.errors import PruneError
from codesign.frontend.criteria import importance
from codesign.frontend.hwcost import CostModel, DesignEstimate
from codesign.frontend.prune import (
    as_matrix,
    block_mask_from_scores,
    block_sum,
    prunable_layers,
)

log = logging.getLogger(__name__)

LEVELS = tuple(round(0.05 * k, 2) for k in range(20)) + (0.97, 0.98)
ALLOCATORS = ("greedy", "knapsack")
METRICS = ("cycles", "dsp")
KNAPSACK_UNITS = 2000


@dataclass(frozen=True)
class Budget:
    metric: str  # "cycles" or "dsp"
    limit: int

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise PruneError(f"unknown budget metric {self.metric!r}; use cycles or dsp")
        if self.limit < 1:
            raise PruneError(f"a {self.metric} budget must be a positive integer, got {self.limit}")

    def met(self, design: DesignEstimate) -> bool:
        return design.value(self.metric) <= self.limit

    @property
    def unit(self) -> str:
        return "cycles" if self.metric == "cycles" else "DSP blocks"


@dataclass(frozen=True)
class Allocation:
    sparsity: dict[str, float]
    design: DesignEstimate
    dense: DesignEstimate
    budget: Budget
    allocator: str

    @property
    def met(self) -> bool:
        return self.budget.met(self.design)


@torch.no_grad()
def sensitivity(
    model: nn.Module,
    criterion: str,
    block: tuple[int, int],
    balanced: bool,
    calibration: tuple[torch.Tensor, torch.Tensor],
    levels: tuple[float, ...] = LEVELS,
) -> dict[str, list[float]]:
    """Layer -> calibration-loss increase at each level, that layer alone pruned (monotone)."""
    x, y = calibration
    layers = prunable_layers(model)
    model.eval()
    with torch.enable_grad():
        scores = importance(model, layers, criterion, x, y)
    base = float(F.cross_entropy(model(x), y))
    result: dict[str, list[float]] = {}
    for name, module in layers:
        original = module.weight.detach().clone()
        shape = as_matrix(original).shape
        block_scores = block_sum(scores[name], block)
        rises, worst = [], 0.0
        for level in levels:
            mask = block_mask_from_scores(
                block_scores, (shape[0], shape[1]), block, level, balanced
            ).reshape(original.shape)
            module.weight.copy_(original * mask)
            worst = max(worst, float(F.cross_entropy(model(x), y)) - base)
            rises.append(worst)
        module.weight.copy_(original)
        result[name] = rises
    return result


def allocate(
    cost: CostModel,
    sensitivities: dict[str, list[float]],
    budget: Budget,
    allocator: str = "knapsack",
    levels: tuple[float, ...] = LEVELS,
) -> Allocation:
    """Per-layer sparsity meeting `budget` with the least total sensitivity (see module doc)."""
    if allocator not in ALLOCATORS:
        raise PruneError(f"unknown allocator {allocator!r}; use one of {', '.join(ALLOCATORS)}")
    names = [layer.name for layer in cost.layers]
    dense = cost.estimate({})
    hardest = {name: levels[-1] for name in names}
    best = cost.estimate(hardest)
    if not budget.met(best):
        raise PruneError(
            f"the budget of {budget.limit} {budget.unit} cannot be met on {cost.board.key}: "
            f"the best reachable is {best.value(budget.metric)} {budget.unit} (every layer at "
            f"{levels[-1]:.0%} sparsity; dense: {dense.value(budget.metric)})"
        )
    if allocator == "greedy":
        choice = _greedy(cost, sensitivities, budget, levels)
    else:
        choice = _knapsack(cost, sensitivities, budget, levels)
    sparsity = {name: levels[index] for name, index in zip(names, choice, strict=True)}
    return Allocation(sparsity, cost.estimate(sparsity), dense, budget, allocator)


def _as_sparsity(
    names: list[str], choice: list[int], levels: tuple[float, ...]
) -> dict[str, float]:
    return {name: levels[index] for name, index in zip(names, choice, strict=True)}


def _greedy(
    cost: CostModel,
    sensitivities: dict[str, list[float]],
    budget: Budget,
    levels: tuple[float, ...],
) -> list[int]:
    names = [layer.name for layer in cost.layers]
    choice = [0] * len(names)
    while not budget.met(cost.estimate(_as_sparsity(names, choice, levels))):
        best_index, best_ratio = -1, -math.inf
        for index, layer in enumerate(cost.layers):
            level = choice[index]
            if level + 1 >= len(levels):
                continue
            removed = cost.macs(layer, levels[level]) - cost.macs(layer, levels[level + 1])
            rise = sensitivities[layer.name][level + 1] - sensitivities[layer.name][level]
            ratio = removed / (rise + 1e-6)
            if ratio > best_ratio:
                best_index, best_ratio = index, ratio
        if best_index < 0:  # cannot happen: every-layer-hardest met the budget
            break
        choice[best_index] += 1
    return choice


def _knapsack(
    cost: CostModel,
    sensitivities: dict[str, list[float]],
    budget: Budget,
    levels: tuple[float, ...],
) -> list[int]:
    names = [layer.name for layer in cost.layers]
    dense_macs = sum(cost.macs(layer, 0.0) for layer in cost.layers)
    unit = max(1, dense_macs // KNAPSACK_UNITS)
    weights = [
        [math.ceil(cost.macs(layer, level) / unit) for level in levels] for layer in cost.layers
    ]
    values = [sensitivities[name] for name in names]
    low = sum(min(w) for w in weights)
    high = sum(max(w) for w in weights)

    def solve(capacity: int) -> list[int]:
        return _min_sensitivity(weights, values, capacity)

    def meets(capacity: int) -> bool:
        return budget.met(cost.estimate(_as_sparsity(names, solve(capacity), levels)))

    if meets(high):
        return solve(high)
    while high - low > 1:  # invariant: meets(low), not meets(high)
        middle = (low + high) // 2
        if meets(middle):
            low = middle
        else:
            high = middle
    return solve(low)


def _min_sensitivity(
    weights: list[list[int]], values: list[list[float]], capacity: int
) -> list[int]:
    """Multiple-choice knapsack: one level per layer, Σ weight ≤ capacity, least Σ value."""
    best = np.full(capacity + 1, np.inf)
    best[0] = 0.0
    picks: list[np.ndarray] = []
    for layer_weights, layer_values in zip(weights, values, strict=True):
        new = np.full(capacity + 1, np.inf)
        pick = np.full(capacity + 1, -1, dtype=np.int64)
        for level, (weight, value) in enumerate(zip(layer_weights, layer_values, strict=True)):
            if weight > capacity:
                continue
            candidate = np.full(capacity + 1, np.inf)
            candidate[weight:] = best[: capacity + 1 - weight] + value
            better = candidate < new
            new[better] = candidate[better]
            pick[better] = level
        best = new
        picks.append(pick)
    used = int(np.argmin(best))
    choice = []
    for layer_index in range(len(weights) - 1, -1, -1):
        level = int(picks[layer_index][used])
        choice.append(level)
        used -= weights[layer_index][level]
    return choice[::-1]
