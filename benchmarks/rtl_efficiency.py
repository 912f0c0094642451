"""Efficiency of the block-sparse RTL engine: one 256x256 Dense layer at 0/50/75/90% balanced
block sparsity on one fixed engine of 64 multipliers (16 tiles of 1x4 blocks, RF =
nnz_blocks / 16) with streams of 4 values per beat, simulated in Verilator through cocotb.

    python benchmarks/rtl_efficiency.py [--cycles 1000000] [--seed 0] [--properties N]

Every pattern is seeded and balanced (every block-row keeps the same number of blocks). Each
row is one simulation of `--cycles` / est_ii vectors (at least `--cycles` cycles of vectors
streamed back to back, after as many in isolation and with random stalls), every output
checked bit for bit against the reference. Printed: sim_cycles (one vector alone), sim_ii
(back to back), ideal_ii = ceil(MACs / multipliers) (the compute bound),
efficiency = ideal_ii / sim_ii, speed-up = dense sim_ii / sim_ii, simulated cycles per
wall-second in the streaming phase (and per CPU-second of the simulator, which other load on
the machine does not change) and over the whole run, and Verilator build seconds.
`--properties N` then runs the RTL property tests (tests/test_rtl_properties.py) with N
hypothesis examples per fixed engine instead of the few CI runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from codesign import reference
from codesign.cost import layer_cycles
from codesign.emit.plan import BuildPlan, write_plan
from codesign.emit.rtl import emit_rtl
from codesign.ir import Activation, Dense, Graph
from codesign.ir.graph import ceil_div
from codesign.passes import BuildOptions, build, tile
from codesign.records.design import graph_to_files
from codesign.sim.rtlsim import simulate
from codesign.vectors import vector_files

FEATURES = 256
BLOCK = (1, 4)
TILES = 16  # 16 tiles x 1x4 blocks = 64 multipliers
VALUES_PER_BEAT = 4
SPARSITIES = (0.0, 0.5, 0.75, 0.9)


def balanced_layer(sparsity: float, rng: np.random.Generator) -> Graph:
    """The 256x256 layer with `sparsity` of its 1x4 blocks pruned, equally in every block-row,
    tiled onto TILES tiles."""
    grid_cols = FEATURES // BLOCK[1]
    keep = max(1, round((1.0 - sparsity) * grid_cols))
    kept = np.zeros((FEATURES, grid_cols), dtype=bool)
    for row in range(FEATURES):
        kept[row, rng.choice(grid_cols, keep, replace=False)] = True
    # scaled so that about a quarter of the outputs saturate at most (non-trivial values)
    weight = rng.normal(size=(FEATURES, FEATURES)) / np.sqrt(keep * BLOCK[1])
    weight = np.where(np.repeat(kept, BLOCK[1], axis=1), weight, 0.0)
    bias = rng.normal(size=FEATURES) * 0.1
    layer = Dense("fc", "fc", weight, bias, Activation.RELU, BLOCK)
    graph = Graph("sparse256", (FEATURES,), (layer,))
    calibration = rng.normal(size=(512, FEATURES))
    compressed = build(graph, BuildOptions(calibration), until="compress")
    reuse = ceil_div(compressed.layers[0].require_csr().nnz_blocks, TILES)
    tiled = tile(compressed, reuse, values_per_beat=VALUES_PER_BEAT)
    assert tiled.layers[0].require_tiling().tiles == TILES
    return tiled


def write_project(graph: Graph, count: int, seed: int, folder: Path) -> Path:
    x = np.random.default_rng(seed).normal(size=(count, FEATURES))
    raw_x = reference.quantize_inputs(graph, x)
    files = {**graph_to_files(graph), **vector_files(graph, raw_x)}
    write_plan(emit_rtl(graph).merged(BuildPlan(files)), folder, force=True)
    return folder


def run(sparsity: float, cycles: int, seed: int, scratch: Path) -> dict[str, Any]:
    graph = balanced_layer(sparsity, np.random.default_rng(seed))
    estimate = layer_cycles(graph.layers[0])
    count = ceil_div(cycles, estimate.est_ii) + 1
    project = write_project(graph, count, seed + 1, scratch / f"s{round(sparsity * 100)}")
    # a build for simulation speed, as simulate makes for long runs (FAST_SIM_ARGS)
    result = simulate(project, cache_dir=scratch / "cache", fast_sim=True)
    entry = result["network"]
    if not result["outputs_match"] or result["timed_out"]:
        raise SystemExit(f"RTL simulation disagrees at sparsity {sparsity}: {entry}")
    return {
        "sparsity": sparsity,
        "block_sparsity": graph.layers[0].require_csr().block_sparsity,
        "reuse": estimate.reuse_factor,
        "multipliers": estimate.multipliers,
        "vectors": count,
        **entry,
        "streaming_cycles": result["phases"]["streaming"]["cycles"],
        "streaming_cps": result["phases"]["streaming"]["cycles_per_second"],
        "streaming_cpu_cps": result["phases"]["streaming"]["cycles_per_cpu_second"],
        "run_cps": result["sim_cycles_per_second"],
        "build_seconds": result["build_seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--properties", type=int, default=0, metavar="N")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        rows = [run(s, args.cycles, args.seed, Path(scratch)) for s in SPARSITIES]
    dense_ii = rows[0]["sim_ii"]
    print(
        f"{'sparsity':>8} {'RF':>4} {'mults':>5} {'vectors':>7} {'sim_cycles':>10} {'est':>5} "
        f"{'sim_ii':>6} {'est_ii':>6} {'ideal_ii':>8} {'effic.':>6} {'speed-up':>8} "
        f"{'stream cyc':>10} {'stream cyc/s':>12} {'(per CPU s)':>11} {'run cyc/s':>10} "
        f"{'build s':>7}"
    )
    for row in rows:
        print(
            f"{row['block_sparsity']:>8.1%} {row['reuse']:>4} {row['multipliers']:>5} "
            f"{row['vectors']:>7} {row['sim_cycles']:>10} {row['est_cycles']:>5} "
            f"{row['sim_ii']:>6} {row['est_ii']:>6} {row['ideal_ii']:>8} "
            f"{row['efficiency']:>6.1%} {dense_ii / row['sim_ii']:>7.2f}x "
            f"{row['streaming_cycles']:>10,} {row['streaming_cps']:>12,.0f} "
            f"{row['streaming_cpu_cps']:>11,.0f} {row['run_cps']:>10,.0f} "
            f"{row['build_seconds']:>7.1f}"
        )
    ratio = rows[SPARSITIES.index(0.75)]["sim_ii"] / dense_ii
    print(f"sim_ii at 75% / dense sim_ii = {ratio:.3f}; all outputs bit-exact")
    if args.properties:
        run_property_tests(args.properties)


def run_property_tests(examples: int) -> None:
    tests = Path(__file__).resolve().parent.parent / "tests" / "test_rtl_properties.py"
    environment = {**os.environ, "CODESIGN_PROPERTY_EXAMPLES": str(examples)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)]
    print(f"property tests, {examples} examples per engine:", flush=True)
    status = subprocess.call(command, env=environment)
    if status:
        raise SystemExit(status)


if __name__ == "__main__":
    main()
