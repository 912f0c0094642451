"""Folding to the board: today's uniform reuse factor with 4-value streams against the folding
pass (every layer's RF and every stream's width for the smallest interval that fits).

For the jet-tagging-size MLP (16-64-32-32-5, hls4ml's jet tagger), digits-mlp's shape
(64-64-32-10), a 64-256-256-10 MLP and the MLPerf Tiny autoencoder's shape (640-128x4-8-
128x4-640), dense and at 75 % balanced 1x4 block sparsity, on the Arria 10 GX 1150 and the
Cyclone 10 GX 220, it builds each design with the `uniform` rule (before: the smallest uniform
RF that fits, 4 values a beat) and the `fold` rule (after, the default), and prints from the
engines' models

    DSP blocks, ALMs             the network's resource estimate (fits: the 80 % ceiling)
    latency, interval            est_cycles, est_ii (cycles)
    utilisation                  MACs / (multipliers · interval), the multipliers' busy share

and, with --simulate, the same latency, interval and utilisation measured by Verilator on 8
seeded vectors (bit-exact to the reference, or the row says MISMATCH). Weights are seeded
random (no jet or anomaly-detection data exists offline; the hardware figures do not depend
on training).

    python benchmarks/folding.py [--simulate [NAME ...]] [--markdown FILE] [--models NAME ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import BLOCK, mlp, seeded_model, share

from codesign import passes, reference
from codesign.boards import Board, load_board
from codesign.cost import network_cost, network_resources
from codesign.cost.cycles import utilisation
from codesign.cost.resources import check_fit
from codesign.emit.plan import BuildPlan, write_plan
from codesign.emit.rtl import emit_rtl
from codesign.frontend.lower import lower
from codesign.ir.graph import Graph
from codesign.options import FoldedReuse, Reuse, UniformFitReuse
from codesign.records.design import graph_to_files
from codesign.sim.rtlsim import simulate
from codesign.vectors import vector_files

MODELS = {
    "jet-mlp": (16, 64, 32, 32, 5),
    "digits-mlp": (64, 64, 32, 10),
    "mlp-256": (64, 256, 256, 10),
    "autoencoder": (640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640),
}
BOARDS = ("arria10-gx1150", "cyclone10-gx220")
SPARSITIES = (0.0, 0.75)
RULES: dict[str, Reuse] = {"uniform": UniformFitReuse(), "fold": FoldedReuse()}
VECTORS = 8


@dataclass(frozen=True)
class Row:
    model: str
    sparsity: float
    board: str
    rule: str
    dsp: int
    alms: int
    fits: bool
    latency: int
    interval: int
    utilisation: float | None
    sim: str = "-"  # measured latency / interval / utilisation, or why not


def build(name: str, sparsity: float, board: Board, rule: Reuse) -> tuple[Graph, np.ndarray]:
    sizes = MODELS[name]
    x = np.random.default_rng(0).normal(size=(256 + VECTORS, sizes[0]))
    options = passes.BuildOptions(calibration=x[:256], board=board, block=BLOCK, reuse=rule)
    model = seeded_model(lambda: mlp(sizes), sparsity)
    graph = passes.build(lower(model, name.replace("-", "_"), (sizes[0],)), options)
    return graph, x[256:]


def measured(graph: Graph, x: np.ndarray, folder: Path) -> str:
    files = {**graph_to_files(graph), **vector_files(graph, reference.quantize_inputs(graph, x))}
    write_plan(emit_rtl(graph).merged(BuildPlan(files)), folder)
    started = time.perf_counter()
    result = simulate(folder, n_vectors=VECTORS)
    network = result["network"]
    exact = "bit-exact" if result["outputs_match"] else "MISMATCH"
    util = network["utilisation"]
    print(f"  simulated in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return (
        f"{network['sim_cycles']} / {network['sim_ii']} / "
        f"{'-' if util is None else f'{util:.2f}'} ({exact})"
    )


def measure(name: str, sparsity: float, board: Board, rule: str, sim_dir: Path | None) -> Row:
    graph, x = build(name, sparsity, board, RULES[rule])
    resources = network_resources(graph, board)
    cost = network_cost(graph, board)
    fits = check_fit(resources, board).fits
    row = Row(
        name,
        sparsity,
        board.key,
        rule,
        dsp=resources.dsp_blocks,
        alms=resources.alms,
        fits=fits,
        latency=cost.est_cycles,
        interval=cost.est_ii,
        utilisation=utilisation(cost.macs, cost.multipliers, cost.est_ii),
    )
    if sim_dir is None:
        return row
    if not fits:
        return Row(**{**vars(row), "sim": "not simulated: does not fit"})
    folder = sim_dir / f"{name}-{sparsity:.2f}-{board.key}-{rule}"
    return Row(**{**vars(row), "sim": measured(graph, x, folder)})


def table(rows: list[Row], boards: dict[str, Board]) -> str:
    lines = [
        "| model | sparsity | board | rule | DSP blocks | ALMs | fits | latency [E] | "
        "interval [E] | utilisation [E] | latency / interval / utilisation [R] |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        board = boards[row.board]
        util = "-" if row.utilisation is None else f"{row.utilisation:.2f}"
        lines.append(
            f"| {row.model} | {row.sparsity:.0%} | {row.board} | {row.rule} "
            f"| {share(row.dsp, board.dsp_blocks)} | {share(row.alms, board.alms)} "
            f"| {'yes' if row.fits else 'no'} "
            f"| {row.latency:,} | {row.interval:,} | {util} | {row.sim} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument(
        "--simulate",
        nargs="*",
        choices=list(MODELS),
        help="also run Verilator (slow) on these models' designs (none named: all)",
    )
    args = parser.parse_args(argv)
    boards = {key: load_board(key) for key in BOARDS}
    rows = []
    with tempfile.TemporaryDirectory(prefix="codesign-folding-") as tmp:
        simulated = set(args.simulate or MODELS) if args.simulate is not None else set()
        for name in args.models:
            sim_dir = Path(tmp) if name in simulated else None
            for sparsity in SPARSITIES:
                for board in boards.values():
                    for rule in RULES:
                        started = time.perf_counter()
                        row = measure(name, sparsity, board, rule, sim_dir)
                        rows.append(row)
                        print(
                            f"{name} {sparsity:.0%} {board.key} {rule}: DSP {row.dsp} "
                            f"II {row.interval} latency {row.latency} sim {row.sim} "
                            f"({time.perf_counter() - started:.1f} s)",
                            file=sys.stderr,
                        )
    text = table(rows, boards)
    print(text)
    if args.markdown:
        args.markdown.write_text(
            "# Folding: uniform RF with 4-value streams (before) vs the folding pass (after)\n\n"
            f"`python benchmarks/folding.py {_simulate_text(args.simulate)}"
            f"--markdown {args.markdown}`: seeded random weights, balanced 1x4 blocks, "
            "estimates [E] from the engines' models (fits: within the boards' 80 % ceiling), "
            "[R] Verilator on 8 vectors. Utilisation is MACs / (multipliers x interval).\n\n"
            + text
            + "\n"
        )
    return 0


def _simulate_text(models: list[str] | None) -> str:
    if models is None:
        return ""
    return "--simulate " + "".join(f"{name} " for name in models)


if __name__ == "__main__":
    sys.exit(main())
