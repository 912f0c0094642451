"""Test graphs for the RTL: chosen block patterns, beats and reuse factors; projects from them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from codesign import reference
from codesign.emit.plan import BuildPlan, write_plan
from codesign.emit.rtl import emit_rtl
from codesign.errors import ToolError
from codesign.ir import Dense, Graph
from codesign.ir.serialize import graph_to_files
from codesign.passes import compress, quantise, tile
from codesign.sim import tools
from codesign.vectors import vector_files

FloatArray = npt.NDArray[np.float64]


def require_verilator() -> None:
    """Verilator, make and g++, or a skip that says why (CI installs them: there it fails)."""
    try:
        tools.verilator_bin_dir()
        tools.make()
        tools.gxx()
    except ToolError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"RTL simulation needs Verilator, make and g++: {error}")


def tiled(
    name: str,
    layers: list[Dense],
    reuse: int | Mapping[str, int],
    values_per_beat: int,
    calibration: FloatArray,
) -> Graph:
    graph = Graph(name, (layers[0].in_features,), tuple(layers))
    return tile(compress(quantise(graph, calibration)), reuse, values_per_beat=values_per_beat)


def write_project(graph: Graph, x: FloatArray, folder: Path) -> Path:
    """design.json/npz, vectors and rtl/ of `graph` with test inputs `x`: what simulate needs."""
    raw_x = reference.quantize_inputs(graph, x)
    files = dict(graph_to_files(graph))
    files.update(vector_files(graph, raw_x))
    write_plan(emit_rtl(graph).merged(BuildPlan(files)), folder)
    return folder


def with_formats(layer: Dense, **formats: Any) -> Dense:
    """`layer` with some of its formats replaced (the raw weights and biases stay)."""
    return replace(layer, formats=replace(layer.require_formats(), **formats))


def assert_rtlsim_ok(result: dict[str, Any], saturation_limit: float = 0.01) -> None:
    """Bit-exact, cycles and II within 2 of the model, and the outputs not trivial (§7)."""
    assert result["schema"] == "codesign.rtlsim/1"
    assert result["first_mismatch"] is None, result["first_mismatch"]
    for entry in [*result["layers"], result["network"]]:
        name = entry["name"]
        assert entry["outputs_match"], (name, entry["first_mismatch"])
        assert entry["mismatches"] == 0
        assert abs(entry["sim_cycles"] - entry["est_cycles"]) <= 2, entry
        assert abs(entry["sim_ii"] - entry["est_ii"]) <= 2, entry
        assert entry["efficiency"] == pytest.approx(entry["ideal_ii"] / entry["sim_ii"])
        assert entry["nonzero_output_fraction"] >= 0.5, (name, "trivial pre-activations")
        assert entry["saturated_fraction"] < saturation_limit, (name, "saturated outputs")
