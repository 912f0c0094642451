"""Command line: a thin layer over the library (design.md §7). Errors print one line, exit 2."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from codesign import __version__
from codesign.errors import CodesignError
from codesign.ir.fixed import MAX_WIDTH

log = logging.getLogger("codesign")


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


def _add_quant(parser: argparse.ArgumentParser) -> None:
    bits = _int_in(2, MAX_WIDTH)
    parser.add_argument("--weight-bits", type=bits, default=8, help="weight width (default 8)")
    parser.add_argument("--act-bits", type=bits, default=16, help="activation width (default 16)")


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
    prune.add_argument("--model", required=True, help="digits-mlp, mnist-cnn or file.py:function")
    prune.add_argument("--weights", type=Path, help="state_dict to start from (else: train)")
    prune.add_argument("--dataset", required=True, help="digits, mnist5k or a .npz file")
    prune.add_argument(
        "--input-shape",
        type=_input_shape,
        help="view the dataset's samples in this shape, e.g. 1,8,8 for digits (no batch)",
    )
    prune.add_argument("--board", default=DEFAULT_BOARD)
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
    prune.add_argument("--epochs", type=int, default=30, help="fine-tuning epochs (default 30)")
    prune.add_argument(
        "--lr", type=float, default=2e-3, help="fine-tuning learning rate (default 2e-3)"
    )
    prune.add_argument("--seed", type=int, default=0)
    prune.add_argument("--out", type=Path, required=True)
    prune.add_argument("--force", action="store_true", help="replace a non-empty --out")
    _add_quant(prune)

    gen = sub.add_parser("generate", help="generate the HLS C++ and RTL project for a board")
    source = gen.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="prune_dir", type=Path, help="output of `codesign prune`")
    source.add_argument("--model", help="digits-mlp, mnist-cnn or path/to/file.py:function")
    gen.add_argument("--weights", type=Path, help="state_dict file for --model")
    gen.add_argument("--dataset", help="calibration and test data: digits, mnist5k or .npz")
    gen.add_argument("--input-shape", type=_input_shape, help="e.g. 64 or 1,28,28 (no batch)")
    gen.add_argument("--board", default=DEFAULT_BOARD)
    gen.add_argument("--block", help="RxC block (default: prune.json's, else the board's)")
    gen.add_argument(
        "--reuse",
        help="RF for all layers, name=RF,... per layer, or balanced (per-layer RFs for the "
        "smallest interval that fits); default: the smallest uniform RF that fits",
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

    report = sub.add_parser("report", help="compare projects: latency, DSPs, correctness")
    report.add_argument("projects", type=Path, nargs="+")
    report.add_argument("--out", type=Path, default=Path("codesign-report"))

    demo = sub.add_parser("demo", help="dense vs 75%% block-sparse model, end to end")
    demo.add_argument("--out", type=Path, default=Path("build/demo"))
    demo.add_argument("--board", default=DEFAULT_BOARD)
    demo.add_argument("--model", default="digits-mlp", help="digits-mlp (default) or mnist-cnn")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(COMMANDS[args.command](args) or 0)
    except CodesignError as error:
        print(f"codesign {args.command}: error: {error}", file=sys.stderr)
        return 2


def cmd_boards(args: argparse.Namespace) -> int:
    from codesign.boards import DEFAULT_BOARD, available_boards, load_board

    print(
        f"{'board':18} {'part':20} {'DSP':>6} {'18x19':>6} {'M20K':>6} {'ALMs':>8} "
        f"{'MHz':>5}  -march"
    )
    for key in available_boards():
        b = load_board(key)
        mark = " (default)" if key == DEFAULT_BOARD else ""
        print(
            f"{key:18} {b.part:20} {b.dsp_blocks:6} {b.max_multipliers(18):6} "
            f"{b.m20k_blocks:6} {b.alms:8} {b.clock_mhz:5.0f}  {b.hls_target}{mark}"
        )
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from codesign.boards import load_board
    from codesign.flow import PruneRequest, prune

    outcome = prune(
        PruneRequest(
            model_spec=args.model,
            dataset_name=args.dataset,
            board=load_board(args.board),
            sparsity=args.sparsity,
            budget_cycles=args.budget_cycles,
            budget_dsp=args.budget_dsp,
            out_dir=args.out,
            weights=args.weights,
            method=args.method,
            block=args.block,
            balanced=args.balanced,
            criterion=args.criterion,
            schedule=args.schedule,
            distill=args.distill,
            allocator=args.allocator,
            epochs=args.epochs,
            learning_rate=args.lr,
            weight_bits=args.weight_bits,
            act_bits=args.act_bits,
            seed=args.seed,
            force=args.force,
            progress=sys.stderr.isatty(),
            input_shape=args.input_shape,
        )
    )
    print(prune_summary(outcome.record))
    print(f"wrote {args.out}/prune.json and model.pt")
    return 0


def prune_summary(record: dict[str, Any]) -> str:
    """The per-layer table of a prune.json: shape, sparsity, kept blocks, cycles and DSPs."""
    block = "x".join(map(str, record["block"]))
    target = record["target_sparsity"]
    mode = (
        "" if record["balanced"] is None else (" balanced" if record["balanced"] else " unbalanced")
    )
    lines = [
        f"pruned {record['model']} ({record['method']}{mode}, criterion {record['criterion']}, "
        f"{record['schedule']}{', distilled' if record['distill'] else ''}) at block {block} on "
        f"{record['board']}: sparsity {record['achieved_sparsity']:.3f}"
        + (f" (target {target})" if target is not None else ""),
        f"  {'layer':12} {'shape':>12} {'sparsity':>8} {'blocks':>6} {'RF':>4} {'cycles':>7} "
        f"{'DSP':>5}",
    ]
    for layer in record["layers"]:
        shape = "x".join(map(str, layer["shape"]))
        lines.append(
            f"  {layer['name']:12} {shape:>12} {layer['sparsity']:8.3f} {layer['nnz_blocks']:6} "
            f"{layer['reuse_factor']:4} {layer['est_cycles']:7} {layer['est_dsp']:5}"
        )
    hw = record["hardware"]
    lines.append(
        f"  {'network':12} {'':>12} {record['achieved_sparsity']:8.3f} {'':>6} "
        f"{hw['reuse_factor']:4} {hw['est_cycles']:7} {hw['est_dsp']:5}   (dense: "
        f"{hw['dense']['est_cycles']} cycles, {hw['dense']['est_dsp']} DSP; {hw['cost_model']})"
    )
    budget = record.get("budget")
    if budget:
        unit = "cycles" if budget["metric"] == "cycles" else "DSP blocks"
        lines.append(
            f"budget {budget['limit']} {unit} ({budget['allocator']}): estimate "
            f"{budget['estimate']} -> {'met' if budget['met'] else 'NOT met'}"
        )
    acc = record["accuracy"]
    lines.append(f"top-1: dense {acc['dense']:.4f}  pruned {acc['pruned']:.4f}")
    return "\n".join(lines)


def cmd_generate(args: argparse.Namespace) -> int:
    from codesign.boards import load_board
    from codesign.data import load_dataset
    from codesign.emit.plan import check_output_dir
    from codesign.flow import GenerateRequest, check_supported, generate, load_pruned
    from codesign.models import BUILTIN_MODELS, load_model, train_builtin
    from codesign.options import parse_reuse, resolve_block
    from codesign.precision import parse_precision

    check_output_dir(args.out, args.force)
    board = load_board(args.board)  # option errors before any training
    reuse = parse_reuse(args.reuse)
    precision = parse_precision(args.precision)
    if args.block is not None:
        resolve_block(args.block, board, max(args.weight_bits, args.act_bits))
    block = args.block
    dense_accuracy = None
    untrained = False
    if args.prune_dir is not None:
        pruned = load_pruned(args.prune_dir)
        model, model_name = pruned.model, pruned.model_spec
        dataset_name = args.dataset or pruned.dataset_name
        block = block or pruned.block
        dense_accuracy = pruned.dense_accuracy
        input_shape = args.input_shape or pruned.input_shape
    else:
        model, model_name = load_model(args.model, args.weights), args.model
        input_shape = args.input_shape
        dataset_name = args.dataset
        untrained = args.weights is None and model_name in BUILTIN_MODELS
        if untrained:
            dataset_name = dataset_name or BUILTIN_MODELS[model_name].dataset
    if input_shape is None and model_name in BUILTIN_MODELS:
        input_shape = BUILTIN_MODELS[model_name].input_shape
    if input_shape is not None:
        check_supported(model, model_name, input_shape)  # fail before any training
    dataset = load_dataset(dataset_name) if dataset_name else None
    if untrained and dataset is not None:
        print(f"no --weights: training {model_name} on {dataset.name} (seed 0)")
        model = train_builtin(model_name, dataset)
    report = generate(
        GenerateRequest(
            model=model,
            model_name=model_name,
            board=board,
            out_dir=args.out,
            dataset=dataset,
            input_shape=input_shape,
            block=block,
            reuse=reuse,
            weight_bits=args.weight_bits,
            act_bits=args.act_bits,
            precision=precision,
            n_vectors=args.vectors,
            force=args.force,
            dense_accuracy=dense_accuracy,
            fit=args.fit,
        )
    )
    _print_generated(report, args.out)
    return 0


_KINDS = {"dense": "linear", "conv2d": "conv", "pool2d": "pool", "add": "add"}


def _print_generated(report: dict[str, Any], out: Path) -> None:
    totals = report["totals"]
    board = f"{report['board']} ({report['part']}, {report['clock_mhz']:.0f} MHz)"
    print(f"{report['model']} on {board}")
    print(
        f"{'layer':12} {'kind':6} {'shape':>9} {'block':>5} {'sparsity':>8} {'RF':>4} "
        f"{'mults':>6} {'DSP':>5} {'cycles':>7} {'II':>5}"
    )
    for layer in report["layers"]:
        block = "x".join(map(str, layer["block"])) if "block" in layer else "-"
        sparsity = f"{layer['sparsity']:8.3f}" if "sparsity" in layer else f"{'-':>8}"
        reuse = layer["reuse_factor"] if layer["multipliers"] else "-"
        print(
            f"{layer['name']:12} {_KINDS.get(layer['kind'], layer['kind']):6} "
            f"{'x'.join(map(str, layer['shape'])):>9} {block:>5} {sparsity} "
            f"{reuse:>4} {layer['multipliers']:6} {layer['est_dsp']:5} "
            f"{layer['est_cycles']:7} {layer['est_ii']:5}"
        )
    print(
        f"{'network':12} {'':6} {'':>9} {'':>5} {totals['sparsity']:8.3f} {'':>4} "
        f"{totals['multipliers']:6} {totals['est_dsp']:5} {totals['est_cycles']:7} "
        f"{totals['est_ii']:5}   ({totals['est_dsp']}/{totals['board_dsp']} DSP blocks, "
        f"{totals['est_latency_us']} us)"
    )
    if "accuracy" in report:
        acc = report["accuracy"]
        print(
            f"top-1: dense float {acc['dense_float']:.4f}  pruned float {acc['pruned_float']:.4f}"
            f"  fixed point {acc['fixed_point']:.4f}"
        )
    _print_fit(report)
    overflowing = [
        f"{layer['name']} ({text})" for layer in report["layers"] if (text := _overflow_text(layer))
    ]
    if overflowing:
        print(f"overflow (reference, {report['n_vectors']} test vectors): {'; '.join(overflowing)}")
    print(f"wrote {out} (hls/, rtl/, vectors/, report.json)")


def _print_fit(report: dict[str, Any]) -> None:
    fit = report.get("fit")
    if not fit:
        return
    usage = ", ".join(
        f"{item['resource']} {item['needed']:,}/{item['available']:,}" for item in fit["items"]
    )
    energy = report["totals"]["energy"]
    print(f"resource estimate: {usage}{'' if fit['fits'] else '  DOES NOT FIT'}")
    print(
        f"energy estimate per inference: {energy['total_nj']} nJ "
        f"({energy['dynamic_pj']} pJ dynamic, {energy['static_pj']} pJ static)"
    )


def _overflow_text(layer: dict[str, Any]) -> str:
    """'12 outputs overflowed, 3 sums wrapped' from a layer's counts; empty when none."""
    parts = [
        f"{layer[key]} {what}"
        for key, what in (
            ("weight_overflows", "weights saturated"),
            ("overflows", "outputs overflowed"),
            ("accum_overflows", "sums wrapped"),
        )
        if layer.get(key)
    ]
    return ", ".join(parts)


def cmd_csim(args: argparse.Namespace) -> int:
    from codesign.flow import csim

    result = csim(args.project)
    for layer in result["layers"]:
        status = "bit-exact" if layer["outputs_match"] else f"{layer['mismatches']} mismatches"
        overflow = _overflow_text(layer)
        print(f"  {layer['name']:12} {status}" + (f"  ({overflow})" if overflow else ""))
    print(
        f"C simulation of {result['n_vectors']} vectors: "
        f"{'bit-exact' if result['outputs_match'] else 'MISMATCH'} to the reference; "
        f"nonzero {result['nonzero_output_fraction']:.3f}, saturated "
        f"{result['saturated_fraction']:.4f}; build {result['build_seconds']:.1f} s, "
        f"run {result['run_seconds']:.2f} s"
    )
    _print_first_mismatch(result)
    print(f"wrote {args.project / 'csim.json'}")
    return 0 if result["outputs_match"] else 1


def cmd_baseline(args: argparse.Namespace) -> int:
    from codesign.baseline.hls4ml_dense import RECORD, write_baseline

    result = write_baseline(args.project)
    for layer in result["layers"]:
        rf, multipliers = layer["reuse_factor"], layer["multipliers"]
        print(f"  {layer['name']:12} RF {rf:>4}  {multipliers:>6} multipliers")
    print(
        f"hls4ml {result['hls4ml_version']} {result['backend']} C simulation of "
        f"{result['n_vectors']} vectors: "
        f"{'bit-exact' if result['outputs_match'] else 'MISMATCH'} to ours; "
        f"build {result['build_seconds']:.1f} s"
    )
    print(f"wrote {args.project / RECORD} and {args.project / 'hls4ml'}/")
    return 0 if result["outputs_match"] else 1


def _print_first_mismatch(result: dict[str, Any]) -> None:
    first = result.get("first_mismatch")
    if first:
        print(
            f"first mismatch: layer {first['layer']} vector {first['vector']} output "
            f"{first['index']}: expected {first['expected']}, got {first['got']}"
        )


def cmd_simulate(args: argparse.Namespace) -> int:
    from codesign.flow import rtlsim_json, simulate

    result = simulate(args.project, layer=args.layer, n_vectors=args.vectors)
    columns = ("sim_cycles", "est_cycles", "sim_ii", "est_ii", "ideal_ii", "efficiency")
    titles = ("cycles", "est", "II", "est", "ideal", "eff")
    print(f"{'layer':12} " + " ".join(f"{t:>6}" for t in titles) + "  outputs")
    entries = list(result["layers"])
    if result.get("network") and args.layer is None:
        entries.append(dict(result["network"], name="network"))
    for e in entries:
        figures = " ".join(f"{_figure(e.get(key)):>6}" for key in columns)
        match = "bit-exact" if e["outputs_match"] else "MISMATCH"
        print(f"{e['name']:12} {figures}  {match} ({e['n_vectors']} vectors)")
    build = "cached" if result.get("build_cached") else f"{result['build_seconds']:.1f} s"
    print(f"Verilator build {build}, {result['sim_cycles_per_second']:,.0f} simulated cycles/s")
    _print_first_mismatch(result)
    print(f"wrote {rtlsim_json(args.project, args.layer and result['layers'][0]['name'])}")
    return 0 if all(e["outputs_match"] for e in entries) else 1


def _match(flag: bool) -> str:
    return "bit-exact" if flag else "MISMATCH"


def _figure(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def cmd_report(args: argparse.Namespace) -> int:
    from codesign.report import format_table, load_project, rows, write_comparison

    projects = [load_project(path) for path in args.projects]
    print(format_table(rows(projects)))
    for path in write_comparison(projects, args.out):
        print(f"wrote {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from codesign.demo import run_demo

    result = run_demo(
        args.out,
        args.board,
        notify=lambda message: print(message, flush=True),
        model_name=args.model,
    )
    print()
    print(demo_summary(result))
    ok = all(
        v.csim["outputs_match"] and all(e["outputs_match"] for e in v.rtlsim["layers"])
        for v in result.variants
    )
    return 0 if ok else 1


def demo_summary(result: Any) -> str:
    from codesign.report import Project, format_table, rows

    lines = [f"codesign demo: {result.model} on {result.board}"]
    for v in result.variants:
        acc, totals = v.report["accuracy"], v.report["totals"]
        network = v.rtlsim["network"]
        lines.append(
            f"  {v.name:6} top-1 float {acc['pruned_float']:.4f}, fixed point "
            f"{acc['fixed_point']:.4f} | {totals['est_dsp']}/{totals['board_dsp']} DSP blocks | "
            f"latency {network['sim_cycles']} cycles simulated, {totals['est_cycles']} estimated"
        )
        lines.append(
            f"         outputs: C-sim {_match(v.csim['outputs_match'])}, RTL-sim "
            f"{_match(network['outputs_match'])} on {v.csim['n_vectors']} test images; "
            f"{v.csim['nonzero_output_fraction']:.1%} of pre-activations nonzero, "
            f"{v.csim['saturated_fraction']:.1%} saturated"
        )
    projects = [Project(v.path, v.report, v.csim, v.rtlsim) for v in result.variants]
    lines.append("")
    lines.append(format_table(rows(projects), view="latency"))
    lines.append("")
    lines.append(f"compare: codesign report {' '.join(str(v.path) for v in result.variants)}")
    return "\n".join(lines)


COMMANDS = {
    "boards": cmd_boards,
    "prune": cmd_prune,
    "generate": cmd_generate,
    "csim": cmd_csim,
    "baseline": cmd_baseline,
    "simulate": cmd_simulate,
    "report": cmd_report,
    "demo": cmd_demo,
}
