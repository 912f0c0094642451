"""CNN dataflow figures: the published CNNs through today's engines, dense and block-pruned.

For mnist-cnn, MLPerf Tiny's ResNet-8 and DS-CNN (codesign.models: seeded random weights,
BatchNorm statistics randomised so the folds are not identities; no CIFAR or speech data
exists offline) at 0 % and 75 % balanced 1x4 block sparsity, on the Arria 10 GX 1150 and
the Cyclone 10 GX 220, it builds each design as `codesign generate` would with the folding
(the default: one interval for all layers, the smallest that fits) and with `--reuse uniform`
(the smallest uniform RF that fits, 4-value streams: the rule the "before" figures were taken
with; calibration on seeded normal inputs) and prints, from the engines' models:

    DSP blocks, M20K blocks, ALMs        the network's resource estimate, and whether it fits
                                         (the board's 80 % utilisation ceiling)
    latency, interval (cycles)           est_cycles and est_ii of one vector / back to back
    utilisation                          MACs / (multipliers · est_ii): the multipliers' busy
                                         fraction at the estimated interval

A model the flow refuses prints the error. The "before" figures of the streaming rework
(issue 12: whole-frame input buffers copied per tile input, one layer starting after the
previous one had delivered its whole output) are kept in benchmarks/results/cnn_dataflow.md
as measured at commit e0fe7a7; this script measures today's engines (convs on line buffers,
each position started on its window, each pixel sent when done).

With `--simulate MODEL ...` it also runs the 75 % design on the GX 1150 under the folding
through Verilator (8 seeded normal input vectors, the whole network and every layer alone):
latency and interval simulated and estimated, bit-exactness against the reference and the
network unit's simulated cycles per second.

    python benchmarks/cnn_dataflow.py [--markdown FILE] [--simulate MODEL ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import BLOCK, seeded_model, share
from torch import nn

from codesign import passes, reference
from codesign.boards import Board, load_board
from codesign.cost import network_resources
from codesign.cost.cycles import network_cycles
from codesign.cost.resources import check_fit
from codesign.emit.plan import BuildPlan, write_plan
from codesign.emit.rtl import emit_rtl
from codesign.errors import CodesignError
from codesign.frontend.lower import lower
from codesign.ir.graph import Graph
from codesign.models import dscnn, mnist_cnn, resnet8
from codesign.options import FoldedReuse, Reuse, UniformFitReuse
from codesign.records.design import graph_to_files
from codesign.sim.rtlsim import simulate
from codesign.vectors import vector_files

MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "mnist-cnn": (mnist_cnn, (1, 28, 28)),
    "resnet8": (resnet8, (3, 32, 32)),
    "dscnn": (dscnn, (1, 49, 10)),
}
BOARDS = ("arria10-gx1150", "cyclone10-gx220")
SPARSITIES = (0.0, 0.75)
RULES: dict[str, Reuse] = {"fold": FoldedReuse(), "uniform": UniformFitReuse()}


@dataclass(frozen=True)
class Row:
    model: str
    sparsity: float
    board: str
    rule: str
    dsp: int = 0
    m20k: int = 0
    alms: int = 0
    fits: bool = False
    latency: int = 0
    interval: int = 0
    utilisation: float = 0.0
    seconds: float = 0.0
    error: str = ""


def design(name: str, sparsity: float, board: Board, rule: str) -> Graph:
    build, shape = MODELS[name]
    model = seeded_model(build, sparsity)
    calibration = np.random.default_rng(0).normal(size=(64, *shape)).astype(np.float32)
    graph = lower(model, name.replace("-", "_"), shape)
    options = passes.BuildOptions(
        calibration=calibration, board=board, block=BLOCK, reuse=RULES[rule]
    )
    return passes.build(graph, options)


def measure(name: str, sparsity: float, board: Board, rule: str) -> Row:
    start = time.perf_counter()
    try:
        graph = design(name, sparsity, board, rule)
    except CodesignError as error:
        return Row(name, sparsity, board.key, rule, error=str(error))
    resources = network_resources(graph, board)
    cycles = network_cycles(graph)
    macs = sum(c.macs for c in cycles.layers)
    multipliers = sum(c.multipliers for c in cycles.layers)
    return Row(
        name,
        sparsity,
        board.key,
        rule,
        dsp=resources.dsp_blocks,
        m20k=resources.m20k_blocks,
        alms=resources.alms,
        fits=check_fit(resources, board).fits,
        latency=cycles.est_cycles,
        interval=cycles.est_ii,
        utilisation=macs / (multipliers * cycles.est_ii) if multipliers else 0.0,
        seconds=time.perf_counter() - start,
    )


def table(rows: list[Row], boards: dict[str, Board]) -> str:
    lines = [
        "| model | sparsity | board | reuse | DSP blocks | M20K | ALMs | fits | latency "
        "| interval | utilisation |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        head = f"| {row.model} | {row.sparsity:.0%} | {row.board} | {row.rule} |"
        if row.error:
            lines.append(f"{head} refused: {row.error} ||||||||")
            continue
        board = boards[row.board]
        lines.append(
            f"{head} {share(row.dsp, board.dsp_blocks)} | {share(row.m20k, board.m20k_blocks)} "
            f"| {share(row.alms, board.alms)} | {'yes' if row.fits else 'no'} "
            f"| {row.latency:,} | {row.interval:,} | {row.utilisation:.3f} |"
        )
    return "\n".join(lines)


BEFORE = "\n## Before"  # the first heading of the kept earlier measurements


def simulated(name: str, board: Board) -> str:
    """One table row: the 75 % folded design of `name` through Verilator, 8 vectors."""
    graph = design(name, 0.75, board, "fold")
    x = np.random.default_rng(1).normal(size=(8, graph.layers[0].in_features))
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder) / "project"
        files = dict(graph_to_files(graph))
        files.update(vector_files(graph, reference.quantize_inputs(graph, x)))
        write_plan(emit_rtl(graph).merged(BuildPlan(files)), project)
        result = simulate(project, n_vectors=8, cache_dir=Path(folder) / "cache")
    net = result["network"]
    exact = bool(result["outputs_match"])  # the network's outputs and every layer's
    return (
        f"| {name} | 75% | {board.key} | fold | {net['sim_cycles']:,} / {net['est_cycles']:,} "
        f"| {net['sim_ii']:,} / {net['est_ii']:,} | {'yes' if exact else 'NO'} "
        f"| {result['sim_cycles_per_second']:,.0f} | {result['build_seconds']:.0f} s |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--simulate", nargs="*", default=[], choices=list(MODELS))
    args = parser.parse_args(argv)
    boards = {key: load_board(key) for key in BOARDS}
    rows = []
    for name in args.models:
        for sparsity in SPARSITIES:
            for board in boards.values():
                for rule in RULES:
                    row = measure(name, sparsity, board, rule)
                    rows.append(row)
                    status = row.error or (
                        f"DSP {row.dsp} M20K {row.m20k} ALMs {row.alms} II {row.interval} "
                        f"latency {row.latency} ({row.seconds:.1f} s)"
                    )
                    print(f"{name} {sparsity:.0%} {board.key} {rule}: {status}", file=sys.stderr)
    text = table(rows, boards)
    if args.simulate:
        text += (
            "\n\nVerilator, 8 vectors (seeded normal inputs), whole network and every layer "
            "alone; cycles/s of the network unit:\n\n"
            "| model | sparsity | board | reuse | latency sim / est | interval sim / est "
            "| bit-exact | cycles/s | build |\n|---|---|---|---|---|---|---|---|---|\n"
            + "\n".join(simulated(name, boards[BOARDS[0]]) for name in args.simulate)
        )
    print(text)
    if args.markdown:
        # the "before" sections of an earlier file are kept as they were measured
        earlier = args.markdown.read_text() if args.markdown.is_file() else ""
        before = earlier[earlier.index(BEFORE) :] if BEFORE in earlier else ""
        args.markdown.write_text(
            "# CNN dataflow: convolutions on line buffers, streaming adds (issue 12)\n\n"
            "`python benchmarks/cnn_dataflow.py --markdown benchmarks/results/cnn_dataflow.md "
            "--simulate mnist-cnn resnet8 dscnn`: "
            "seeded random weights, balanced 1x4 blocks, the folding (`fold`, the default) "
            "and the uniform reuse rule, estimates from the engines' models (fits: within the "
            "boards' 80 % ceiling). Utilisation is MACs / (multipliers x interval), MACs "
            "counting every product of a kept block.\n\n" + text + "\n" + before
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
