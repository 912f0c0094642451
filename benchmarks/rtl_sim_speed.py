"""Verilator build seconds and simulated cycles per second of the RTL: a 64-64-32-10 MLP with
1x4 blocks and 4 values per beat, dense at RF 3 and 75% balanced block-sparse (4 of 16 blocks
per row; 2 of 8 in the last layer) at RF 1 (the two designs `codesign demo` simulates).

    python benchmarks/rtl_sim_speed.py [--repeats 3] [--vectors 32] [--long 1000]

In a fresh cache the first build also compiles Verilator's runtime library once ("cold");
later builds of new designs reuse it ("build s"); a rerun of a built design builds nothing.
Cycles per second are measured in the cocotb run (Python only waits for `done`) on `--vectors`
and on `--long` vectors. Every run is checked bit-exact and against the cycle model.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from demo_mlp import mlp

from codesign import reference
from codesign.emit.plan import BuildPlan, write_plan
from codesign.emit.rtl import emit_rtl
from codesign.ir import Graph
from codesign.records.design import graph_to_files
from codesign.sim.rtlsim import simulate
from codesign.vectors import vector_files


def write_project(graph: Graph, vectors: int, folder: Path) -> Path:
    raw_x = reference.quantize_inputs(graph, np.random.default_rng(1).normal(size=(vectors, 64)))
    files = {**graph_to_files(graph), **vector_files(graph, raw_x)}
    write_plan(emit_rtl(graph).merged(BuildPlan(files)), folder, force=True)
    return folder


def checked(result: dict[str, Any]) -> dict[str, Any]:
    for entry in [*result["layers"], result["network"]]:
        if not entry["outputs_match"] or entry["sim_cycles"] != entry["est_cycles"]:
            raise SystemExit(f"RTL simulation disagrees: {entry}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vectors", type=int, default=32)
    parser.add_argument("--long", type=int, default=1000)
    args = parser.parse_args()
    variants = {
        "75% block-sparse, RF 1": mlp((4, 4, 2), 1, np.random.default_rng(0)),
        "dense, RF 3": mlp(None, 3, np.random.default_rng(0)),
    }
    print(
        f"{'variant':<24} {'tiles':>5} {'cycles':>6} {'II':>4} {'cold s':>7} {'build s':>16} "
        f"{'cycles/s':>9} {'long cycles/s':>13}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(scratch) / "cache"
        for index, (label, graph) in enumerate(variants.items()):
            project = write_project(graph, args.vectors, Path(scratch) / f"v{index}")
            first = checked(simulate(project, cache_dir=cache))
            builds = []
            for _ in range(args.repeats):
                shutil.rmtree(first["build_dir"])  # keep the runtime objects, rebuild the design
                builds.append(checked(simulate(project, cache_dir=cache))["build_seconds"])
            long_project = write_project(graph, args.long, Path(scratch) / f"long{index}")
            long = checked(simulate(long_project, cache_dir=cache))
            tiles = sum(layer.require_tiling().tiles for layer in graph.layers)
            network = first["network"]
            cold = f"{first['build_seconds']:.1f}" if index == 0 else "-"
            spread = f"{statistics.median(builds):.1f} ({min(builds):.1f}-{max(builds):.1f})"
            print(
                f"{label:<24} {tiles:>5} {network['sim_cycles']:>6} {network['sim_ii']:>4} "
                f"{cold:>7} {spread:>16} {first['sim_cycles_per_second']:>9,.0f} "
                f"{long['sim_cycles_per_second']:>13,.0f}"
            )


if __name__ == "__main__":
    main()
