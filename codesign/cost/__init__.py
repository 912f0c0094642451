"""Cost models beside the cycle model (codesign/hardware.py): resources and energy per design."""

from codesign.cost.energy import EnergyEstimate, layer_energy, network_energy
from codesign.cost.resources import (
    FitCheck,
    ResourceEstimate,
    check_fit,
    graph_layer_resources,
    layer_resources,
    network_resources,
)

__all__ = [
    "EnergyEstimate",
    "FitCheck",
    "ResourceEstimate",
    "check_fit",
    "graph_layer_resources",
    "layer_energy",
    "layer_resources",
    "network_energy",
    "network_resources",
]
