"""A network's costs from its engines' closed forms: cycles, DSP blocks, resources, energy.

One cost model: the engines (codesign.engines) own the per-layer formulas; the functions here
add them up over a graph. The flow, the pruning budgets, the folding pass, the tests and the
benchmarks all call these.
"""

from codesign.cost.cycles import NetworkCycles, layer_cycles, network_cycles
from codesign.cost.energy import layer_energy, model_description, network_energy
from codesign.cost.resources import (
    FitCheck,
    LayerCost,
    NetworkCost,
    check_fit,
    fits_board,
    graph_layer_resources,
    layer_cost,
    layer_resources,
    network_cost,
    network_resources,
)
from codesign.engines.energy import EnergyEstimate
from codesign.engines.stream import ResourceEstimate

__all__ = [
    "EnergyEstimate",
    "FitCheck",
    "LayerCost",
    "NetworkCost",
    "NetworkCycles",
    "ResourceEstimate",
    "check_fit",
    "fits_board",
    "graph_layer_resources",
    "layer_cost",
    "layer_cycles",
    "layer_energy",
    "layer_resources",
    "model_description",
    "network_cost",
    "network_cycles",
    "network_energy",
    "network_resources",
]
