"""The argument parser of every command (design.md §7)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from codesign import __version__
from codesign.ir.fixed import MAX_WIDTH


def _input_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"input shape must look like 64 or 1,28,28: {text!r}"
        ) from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"input shape must be positive integers: {text!r}")
    return shape


def _int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high], else a clear usage error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"expected an integer in [{low}, {high}], got {text!r}"
            )
        return value

    return parse


def _positive_float(text: str) -> float:
    """An argparse type: a finite number above 0 (a learning rate), else a usage error."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


def _add_quant(parser: argparse.ArgumentParser) -> None:
    bits = _int_in(2, MAX_WIDTH)
    parser.add_argument("--weight-bits", type=bits, default=8, help="weight width (default 8)")
    parser.add_argument("--act-bits", type=bits, default=16, help="activation width (default 16)")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction such as 0.8, got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], e.g. 0.8 for 80 %; got {text!r}")
    return value


def _add_board(
    parser: argparse.ArgumentParser, default: str | None, help: str | None = None
) -> None:
    from codesign.boards import DEFAULT_MAX_UTILISATION

    parser.add_argument("--board", default=default, help=help)
    parser.add_argument(
        "--max-utilisation",
        type=_fraction,
        default=DEFAULT_MAX_UTILISATION,
        help="share of each resource (DSP, M20K, ALMs, registers) a design may use, "
        f"default {DEFAULT_MAX_UTILISATION} (see codesign/boards.py for the source)",
    )


def build_parser() -> argparse.ArgumentParser:
    from codesign.boards import DEFAULT_BOARD

    parser = argparse.ArgumentParser(
        prog="codesign",
        description="Block-sparse neural networks co-designed with Intel Arria 10-class FPGAs.",
    )
    parser.add_argument("--version", action="version", version=f"codesign {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("boards", help="list the known boards")

    prune = sub.add_parser("prune", help="prune a model to the board's DSP tiling")
    prune.add_argument(
        "--model", required=True, help="digits-mlp, mnist-cnn, resnet8, dscnn or file.py:function"
    )
    prune.add_argument("--weights", type=Path, help="state_dict to start from (else: train)")
    prune.add_argument(
        "--dataset",
        required=True,
        help="digits, mnist5k, synthetic-cifar, synthetic-kws or a .npz file",
    )
    prune.add_argument(
        "--input-shape",
        type=_input_shape,
        help="view the dataset's samples in this shape, e.g. 1,8,8 for digits (no batch)",
    )
    _add_board(prune, DEFAULT_BOARD)
    target = prune.add_mutually_exclusive_group(required=True)
    target.add_argument("--sparsity", type=float, help="fraction of zero weights, in [0, 1)")
    target.add_argument(
        "--budget-cycles", type=int, help="latency budget: per-layer sparsity from the cost model"
    )
    target.add_argument("--budget-dsp", type=int, help="DSP-block budget, likewise")
    prune.add_argument(
        "--method", default="block", help="block (default), unstructured, channel or activation"
    )
    prune.add_argument("--block", help="RxC weight block (default: the board's, e.g. 1x4)")
    balance = prune.add_mutually_exclusive_group()
    balance.add_argument(
        "--balanced",
        dest="balanced",
        action="store_true",
        default=True,
        help="every block-row keeps the same number of blocks (default)",
    )
    balance.add_argument("--unbalanced", dest="balanced", action="store_false")
    prune.add_argument(
        "--criterion", default="l1", help="block importance: l1 (default), l2, taylor, activation"
    )
    prune.add_argument("--schedule", default="gradual", help="gradual (default) or oneshot")
    prune.add_argument(
        "--distill",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="distil from the dense model while fine-tuning (default: on)",
    )
    prune.add_argument(
        "--allocator", default="knapsack", help="budget mode: knapsack (default) or greedy"
    )
    prune.add_argument(
        "--epochs", type=_int_in(0, 100_000), default=30, help="fine-tuning epochs (default 30)"
    )
    prune.add_argument(
        "--lr", type=_positive_float, default=2e-3, help="fine-tuning learning rate (default 2e-3)"
    )
    prune.add_argument("--seed", type=int, default=0)
    prune.add_argument("--out", type=Path, required=True)
    prune.add_argument("--force", action="store_true", help="replace a non-empty --out")
    _add_quant(prune)

    gen = sub.add_parser("generate", help="generate the HLS C++ and RTL project for a board")
    source = gen.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="prune_dir", type=Path, help="output of `codesign prune`")
    source.add_argument(
        "--model", help="digits-mlp, mnist-cnn, resnet8, dscnn or path/to/file.py:function"
    )
    gen.add_argument("--weights", type=Path, help="state_dict file for --model")
    gen.add_argument(
        "--dataset",
        help="calibration and test data: digits, mnist5k, synthetic-cifar, synthetic-kws or .npz",
    )
    gen.add_argument("--input-shape", type=_input_shape, help="e.g. 64 or 1,28,28 (no batch)")
    _add_board(
        gen,
        None,
        f"default: with --from, the board prune.json was costed for; else {DEFAULT_BOARD}",
    )
    gen.add_argument("--block", help="RxC block (default: prune.json's, else the board's)")
    gen.add_argument(
        "--reuse",
        help="fold (default: every layer's RF and stream widths for the smallest interval "
        "that fits), an RF for all layers, name=RF,... per layer, uniform (the smallest "
        "uniform RF that fits) or balanced (per-layer RFs, streams of 4 values)",
    )
    gen.add_argument(
        "--target-ii",
        type=_int_in(1, 1 << 30),
        help="fold every layer to this interval (cycles a vector) with the fewest DSP blocks",
    )
    gen.add_argument(
        "--precision",
        help="per-layer formats, e.g. fc1.output=s16.10:TRN:WRAP,weight=s6.5,conv2.accum=24 "
        "(default: calibrated; see codesign/precision.py)",
    )
    gen.add_argument(
        "--vectors", type=_int_in(1, 1_000_000), default=32, help="test vectors (default 32)"
    )
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--force", action="store_true", help="replace a non-empty --out")
    gen.add_argument(
        "--fit",
        choices=("error", "warn"),
        default="error",
        help="a design too large for the board: refuse it (default) or warn and generate",
    )
    gen.add_argument(
        "--checkpoints",
        action="store_true",
        help="also write the IR's text after lowering and after every build step into checkpoints/",
    )
    _add_quant(gen)

    csim = sub.add_parser("csim", help="build and run the C simulation with g++")
    csim.add_argument("project", type=Path)

    baseline = sub.add_parser(
        "baseline", help="build hls4ml's Quartus C simulation of a project and compare it"
    )
    baseline.add_argument("project", type=Path)

    simulate = sub.add_parser("simulate", help="simulate the RTL in Verilator through cocotb")
    simulate.add_argument("project", type=Path)
    simulate.add_argument("--layer", help="simulate only this layer")
    simulate.add_argument(
        "--vectors", type=_int_in(1, 1_000_000), help="use only the first N test vectors"
    )

    synth = sub.add_parser(
        "synth", help="synthesise each engine with Yosys (Cyclone V proxy) into synth.json"
    )
    synth.add_argument("project", type=Path)
    synth.add_argument("--layer", help="synthesise only this layer")
    synth.add_argument(
        "--jobs", type=_int_in(1, 64), default=1, help="Yosys processes at once (default 1)"
    )

    sweep = sub.add_parser(
        "sweep", help="run a design-space sweep (TOML spec) and print its Pareto front"
    )
    sweep.add_argument("spec", type=Path, help="the sweep's TOML spec (codesign/sweep/spec.py)")
    sweep.add_argument("--out", type=Path, required=True, help="results.csv, sweep.json, logs/")
    sweep.add_argument(
        "--jobs", type=_int_in(1, 256), default=1, help="local worker processes (default 1)"
    )
    sweep.add_argument(
        "--scheduler", help="run on the Dask cluster whose scheduler is at tcp://HOST:PORT"
    )
    sweep.add_argument(
        "--store",
        type=Path,
        help="the point folders (default OUT/points); sweeps that share one share their points",
    )
    sweep.add_argument(
        "--force", action="store_true", help="write into a non-empty --out that is no sweep's"
    )
    sweep.add_argument(
        "--retry-failed",
        action="store_true",
        help="run again the points whose design failed (kept and not retried by default)",
    )

    report = sub.add_parser("report", help="compare projects: latency, DSPs, correctness")
    report.add_argument("projects", type=Path, nargs="*")
    report.add_argument(
        "--sweep", type=Path, help="the --out of `codesign sweep`: its table and Pareto plots"
    )
    report.add_argument("--out", type=Path, default=Path("codesign-report"))
    report.add_argument(
        "--force", action="store_true", help="write into a non-empty --out of another origin"
    )

    demo = sub.add_parser("demo", help="dense vs 75%% block-sparse model, end to end")
    demo.add_argument("--out", type=Path, default=Path("build/demo"))
    demo.add_argument("--board", default=DEFAULT_BOARD)
    demo.add_argument(
        "--model", default="digits-mlp", help="digits-mlp (default), mnist-cnn, resnet8 or dscnn"
    )
    return parser
