"""g++ build and run seconds of the C simulation: a 64-64-32-10 MLP with 1x4 blocks, dense at
RF 3 and 75% balanced block-sparse (4 of 16 blocks per row; 2 of 8 in the last layer) at RF 1.

    python benchmarks/hls_csim_speed.py [--repeats 3] [--vectors 32]

Each variant is generated once and built `repeats` times from scratch (`make -B`); the table
gives the median and the range. Every run is also checked bit-exact against the reference.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
from demo_mlp import BLOCK, SIZES, mlp

from codesign import reference
from codesign.boards import DEFAULT_BOARD, load_board
from codesign.emit.hls import emit_hls
from codesign.emit.plan import BuildPlan, write_plan
from codesign.ir import Graph
from codesign.records.design import graph_to_files
from codesign.sim.csim import run_csim
from codesign.vectors import vector_files


def measure(graph: Graph, vectors: int, repeats: int, folder: Path) -> dict[str, list[float]]:
    rng = np.random.default_rng(1)
    raw_x = reference.quantize_inputs(graph, rng.normal(size=(vectors, SIZES[0])))
    files = {**graph_to_files(graph), **vector_files(graph, raw_x)}
    plan = emit_hls(graph, load_board(DEFAULT_BOARD)).merged(BuildPlan(files))
    write_plan(plan, folder)
    times: dict[str, list[float]] = {"build": [], "run": []}
    for _ in range(repeats):
        result = run_csim(folder)
        if not result["outputs_match"]:
            raise SystemExit(f"{folder}: C simulation differs from the reference: {result}")
        times["build"].append(result["build_seconds"])
        times["run"].append(result["run_seconds"])
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vectors", type=int, default=32)
    args = parser.parse_args()
    variants = {
        "dense, RF 3": mlp(None, 3, np.random.default_rng(0)),
        "75% block-sparse, RF 1": mlp((4, 4, 2), 1, np.random.default_rng(0)),
    }
    print(f"{'variant':<24} {'kept blocks':>11} {'multipliers':>11} {'build s':>18} {'run s':>18}")
    with tempfile.TemporaryDirectory() as scratch:
        for index, (label, graph) in enumerate(variants.items()):
            times = measure(graph, args.vectors, args.repeats, Path(scratch) / f"v{index}")
            kept = sum(layer.csr.nnz_blocks for layer in graph.layers if layer.csr)
            multipliers = sum(
                layer.tiling.tiles * BLOCK[0] * BLOCK[1] for layer in graph.layers if layer.tiling
            )
            cells = [
                f"{statistics.median(t):.3f} [{min(t):.3f}-{max(t):.3f}]"
                for t in (times["build"], times["run"])
            ]
            print(f"{label:<24} {kept:>11} {multipliers:>11} {cells[0]:>18} {cells[1]:>18}")


if __name__ == "__main__":
    main()
