"""Cold C-simulation build time: ours vs hls4ml 1.3's Quartus backend, same models, same formats,
same g++ `-O` level and the same reuse factor on both sides.

    python benchmarks/csim_speed.py [--reuse 8] [--opt -O2] [--vectors 32]

Models (1x4 blocks, 8-bit weights, 16-bit activations, ReLU between layers; seeded weights,
as the build time does not depend on their values):
  digits-mlp        64-64-32-10, dense (the demo model's architecture)
  mlp-256           64-256-256-10, dense
  mlp-256 sparse    64-256-256-10, 75% balanced block sparsity (a quarter of the blocks of
                    every block-row kept)

Every build is cold: our project is rebuilt from scratch (`make -B`), hls4ml's from a freshly
written project (its `build_lib.sh`, CFLAGS set to the same `-O` level; it compiles its two
sources one after the other, so ours is timed with `make -j1` too). hls4ml's kernel multiplies
every weight, so its sparse build is as large as its dense one: hls4ml has no block-sparse
path (its `Compression` path raises errors in 1.3.0). After each pair of builds the two C
simulations are run on the same raw inputs and must agree bit for bit.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codesign import reference, vectors
from codesign.baseline import hls4ml_dense
from codesign.boards import DEFAULT_BOARD, load_board
from codesign.emit.hls import emit_hls
from codesign.emit.plan import BuildPlan, write_plan
from codesign.ir import Activation, Dense, Graph
from codesign.passes import BuildOptions, build
from codesign.records.design import graph_to_files
from codesign.sim import tools
from codesign.sim.csim import csim_output_dir, run_csim

BLOCK = (1, 4)


@dataclass(frozen=True)
class Model:
    label: str
    sizes: tuple[int, ...]
    keep_fraction: float | None  # kept blocks per block-row, as a fraction; None: dense


MODELS = (
    Model("digits-mlp 64-64-32-10 dense", (64, 64, 32, 10), None),
    Model("64-256-256-10 dense", (64, 256, 256, 10), None),
    Model("64-256-256-10 75% sparse", (64, 256, 256, 10), 0.25),
)


def build_graph(model: Model, reuse: int, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    sizes = model.sizes
    layers = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        weight = rng.normal(size=(fan_out, fan_in)) / np.sqrt(fan_in)
        if model.keep_fraction is not None:
            grid_cols = fan_in // BLOCK[1]
            keep = max(1, round(model.keep_fraction * grid_cols))
            kept = np.zeros((fan_out, grid_cols), dtype=bool)
            for row in range(fan_out):
                kept[row, rng.choice(grid_cols, keep, replace=False)] = True
            weight = np.where(np.repeat(kept, BLOCK[1], axis=1), weight, 0.0)
        last = index == len(sizes) - 2
        activation = Activation.NONE if last else Activation.RELU
        bias = rng.normal(size=fan_out) * 0.1
        name = f"fc{index + 1}"
        layers.append(Dense(name, name, weight, bias, activation, BLOCK))
    graph = Graph("bench_mlp", (sizes[0],), tuple(layers))
    return build(graph, BuildOptions(rng.normal(size=(256, sizes[0])), reuse=reuse))


def ours(graph: Graph, x: np.ndarray, folder: Path, opt: str) -> tuple[float, float]:
    """Cold build seconds of our C simulation with make -j1 and -j2 (checked bit-exact)."""
    plan = emit_hls(graph, load_board(DEFAULT_BOARD)).merged(
        BuildPlan({**graph_to_files(graph), **vectors.vector_files(graph, x)})
    )
    write_plan(plan, folder)
    os.environ["CXXFLAGS"] = opt
    make = [tools.make(), "-C", str(folder / "hls"), "-B", f"CXX={tools.gxx()}"]
    make.append(f"AC_TYPES={tools.ac_types_include()}")
    start = time.perf_counter()
    subprocess.run([*make, "-j1", "csim-build"], check=True, capture_output=True)
    serial = time.perf_counter() - start
    result = run_csim(folder)  # make -B -j2, then runs and compares with the reference
    if not result["outputs_match"]:
        raise SystemExit(f"{folder}: our C simulation differs from the reference")
    return serial, float(result["build_seconds"])


def hls4ml_build(graph: Graph, folder: Path, opt: str) -> tuple[object, float, float]:
    """hls4ml's project written, then its g++ build timed; (model, write s, build s)."""
    start = time.perf_counter()
    model = hls4ml_dense.convert(graph, folder)
    model.write()  # type: ignore[attr-defined]
    written = time.perf_counter() - start
    script = folder / "build_lib.sh"
    text = re.sub(r'CFLAGS="-O\d', f'CFLAGS="{opt}', script.read_text())
    script.write_text(text)
    start = time.perf_counter()
    model._compile()  # type: ignore[attr-defined]
    return model, written, time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", type=int, default=8, help="reuse factor, every layer")
    parser.add_argument("--opt", default="-O2", help="g++ optimisation level on both sides")
    parser.add_argument("--vectors", type=int, default=32)
    parser.add_argument("--only", help="run only the models whose label contains this")
    args = parser.parse_args(argv)
    print(f"g++ {args.opt}, reuse factor {args.reuse} on both sides, {args.vectors} vectors")
    header = (
        f"{'model':<30} {'hls4ml RF':>9} {'ours j1 s':>9} {'ours j2 s':>9} "
        f"{'hls4ml s':>9} {'(+write)':>8} {'speed-up j1':>11} {'j2':>6}  outputs"
    )
    print(header)
    with tempfile.TemporaryDirectory() as scratch:
        for index, model in enumerate(MODELS):
            if args.only and args.only not in model.label:
                continue
            graph = build_graph(model, args.reuse)
            rng = np.random.default_rng(1)
            x_raw = reference.quantize_inputs(graph, rng.normal(size=(args.vectors, 64)))
            folder = Path(scratch) / f"m{index}"
            serial, parallel = ours(graph, x_raw, folder / "ours", args.opt)
            hls_model, written, built = hls4ml_build(graph, folder / "hls4ml", args.opt)
            theirs = hls4ml_dense.predict_raw(hls_model, graph, x_raw)
            mine = vectors.parse_rows(
                (csim_output_dir(folder / "ours") / "network.txt").read_text()
            )
            match = "bit-exact" if np.array_equal(theirs, mine) else "MISMATCH"
            rfs = sorted(
                {int(r["reuse_factor"]) for r in hls4ml_dense.layer_records(hls_model, graph)}
            )
            print(
                f"{model.label:<30} {','.join(map(str, rfs)):>9} {serial:>9.2f} {parallel:>9.2f} "
                f"{built:>9.2f} {written:>8.2f} {built / serial:>10.1f}x {built / parallel:>5.1f}x"
                f"  {match}",
                flush=True,
            )


if __name__ == "__main__":
    main()
