"""Command line: parses the options, calls the flows (codesign.flows), prints (cli.printing).

Errors print one line and exit 2 (design.md §7); Ctrl-C prints one line and exits 130.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from codesign.cli.parser import build_parser
from codesign.cli.printing import (
    demo_summary,
    figure,
    first_mismatch,
    generated_summary,
    match,
    overflow_text,
    prune_summary,
    synth_summary,
)
from codesign.errors import CodesignError
from codesign.progress import enable_step_lines

if TYPE_CHECKING:
    from codesign.boards import Board

log = logging.getLogger("codesign")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    restore = enable_step_lines()  # the long steps (Verilator builds) say when they start, end
    try:
        return int(COMMANDS[args.command](args) or 0)
    except CodesignError as error:
        print(f"codesign {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # folders are written whole or not at all (emit.plan.write_plan)
        print(f"codesign {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        restore()


def _block(text: str | None) -> tuple[int, int] | None:
    """--block 'RxC', parsed once here; its fit to the board is checked by the flows."""
    from codesign.options import parse_block

    return None if text is None else parse_block(text)


def _board(args: argparse.Namespace) -> Board:
    """--board with its --max-utilisation. generate without --board: with --from, the board
    prune.json was costed for, else the default board."""
    from codesign.boards import DEFAULT_BOARD, load_board

    key = args.board or _pruned_board(getattr(args, "prune_dir", None)) or DEFAULT_BOARD
    return load_board(key).with_ceiling(args.max_utilisation)


def _pruned_board(prune_dir: Path | None) -> str | None:
    """The board a prune.json was costed for (said when used), if it records a shipped one."""
    from codesign.boards import available_boards
    from codesign.records.prune import FILE, read_source

    if prune_dir is None or not (prune_dir / FILE).is_file():
        return None
    board = read_source(prune_dir).board
    if board is not None and board not in available_boards():
        raise CodesignError(
            f"{prune_dir / FILE}: board {board!r} is not a shipped board (a board file's "
            "name); pass --board FILE"
        )
    if board is not None:
        print(f"board {board}: the one {prune_dir / FILE} was costed for (no --board)")
    return board


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


def _input_paths(args: argparse.Namespace) -> list[Path]:
    """The files and folders a prune or generate reads (that exist): --out must spare them."""
    paths = [getattr(args, "prune_dir", None), getattr(args, "weights", None)]
    model = getattr(args, "model", None)
    if model and ":" in model:
        paths.append(Path(model.rsplit(":", 1)[0]))
    dataset = getattr(args, "dataset", None)
    if dataset:
        paths.append(Path(dataset))
    return [Path(path) for path in paths if path is not None and Path(path).exists()]


def cmd_prune(args: argparse.Namespace) -> int:
    from codesign.emit.plan import check_output_dir
    from codesign.flows.prune import DENSE_FILE, PruneRequest, prune

    check_output_dir(args.out, args.force, _input_paths(args))
    outcome = prune(
        PruneRequest(
            model_spec=args.model,
            dataset_name=args.dataset,
            board=_board(args),
            sparsity=args.sparsity,
            budget_cycles=args.budget_cycles,
            budget_dsp=args.budget_dsp,
            out_dir=args.out,
            weights=args.weights,
            method=args.method,
            block=_block(args.block),
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
            progress=True,  # a bar on a terminal, plain lines in a log (codesign.progress)
            input_shape=args.input_shape,
        )
    )
    print(prune_summary(outcome.record))
    trained = (args.out / DENSE_FILE).is_file()
    dense = f" and {DENSE_FILE} (the dense model trained: --weights it to skip training)"
    print(f"wrote {args.out}/prune.json, model.pt" + (dense if trained else ""))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from codesign.emit.plan import check_output_dir
    from codesign.flows.generate import CHECKPOINTS, GenerateRequest, generate
    from codesign.flows.source import ModelSource, resolve_model
    from codesign.options import parse_reuse, resolve_block
    from codesign.precision import parse_precision

    check_output_dir(args.out, args.force, _input_paths(args))
    board = _board(args)  # option errors before any training
    reuse = parse_reuse(args.reuse, args.target_ii)
    precision = parse_precision(args.precision)
    block = _block(args.block)
    if block is not None:
        resolve_block(block, board, max(args.weight_bits, args.act_bits))
    source = ModelSource(
        prune_dir=args.prune_dir,
        spec=args.model,
        weights=args.weights,
        dataset=args.dataset,
        input_shape=args.input_shape,
        block=block,
    )
    resolved = resolve_model(source, notify=print, progress=True)
    report = generate(
        GenerateRequest(
            model=resolved.model,
            model_name=resolved.name,
            board=board,
            out_dir=args.out,
            dataset=resolved.dataset,
            input_shape=resolved.input_shape,
            block=resolved.block,
            reuse=reuse,
            weight_bits=args.weight_bits,
            act_bits=args.act_bits,
            precision=precision,
            n_vectors=args.vectors,
            force=args.force,
            dense_accuracy=resolved.dense_accuracy,
            fit=args.fit,
            checkpoints=args.checkpoints,
        )
    )
    print(generated_summary(report))
    extra = f", {CHECKPOINTS}/" if args.checkpoints else ""
    print(f"wrote {args.out} (hls/, rtl/, vectors/{extra}, report.json)")
    return 0


def cmd_csim(args: argparse.Namespace) -> int:
    from codesign.flows.project import csim

    result = csim(args.project)
    for layer in result["layers"]:
        status = "bit-exact" if layer["outputs_match"] else f"{layer['mismatches']} mismatches"
        overflow = overflow_text(layer)
        print(f"  {layer['name']:12} {status}" + (f"  ({overflow})" if overflow else ""))
    print(
        f"C simulation of {result['n_vectors']} vectors: "
        f"{'bit-exact' if result['outputs_match'] else 'MISMATCH'} to the reference; "
        f"nonzero {result['nonzero_output_fraction']:.3f}, saturated "
        f"{result['saturated_fraction']:.4f}; build {result['build_seconds']:.1f} s, "
        f"run {result['run_seconds']:.2f} s"
    )
    _print_if(first_mismatch(result))
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


def cmd_simulate(args: argparse.Namespace) -> int:
    from codesign.flows.project import rtlsim_json, simulate

    result = simulate(args.project, layer=args.layer, n_vectors=args.vectors)
    columns: tuple[str, ...] = ("sim_cycles", "est_cycles", "sim_ii", "est_ii", "ideal_ii")
    columns += ("efficiency", "utilisation")
    titles = ("cycles", "est", "II", "est", "ideal", "eff", "util")
    print(f"{'layer':12} " + " ".join(f"{t:>6}" for t in titles) + "  outputs")
    entries = list(result["layers"])
    if result.get("network") and args.layer is None:
        entries.append(dict(result["network"], name="network"))
    for e in entries:
        figures = " ".join(f"{figure(e.get(key)):>6}" for key in columns)
        print(f"{e['name']:12} {figures}  {match(e['outputs_match'])} ({e['n_vectors']} vectors)")
    build = "cached" if result.get("build_cached") else f"{result['build_seconds']:.1f} s"
    print(f"Verilator build {build}, {result['sim_cycles_per_second']:,.0f} simulated cycles/s")
    _print_if(first_mismatch(result))
    print(f"wrote {rtlsim_json(args.project, args.layer and result['layers'][0]['name'])}")
    return 0 if all(e["outputs_match"] for e in entries) else 1


def cmd_synth(args: argparse.Namespace) -> int:
    from codesign.records.report import FILE as REPORT_FILE
    from codesign.records.report import Report
    from codesign.synth import FILE, synthesise

    progress = sys.stderr.isatty()
    record = synthesise(args.project, layer=args.layer, jobs=args.jobs, progress=progress)
    report = Report.read(args.project) if (args.project / REPORT_FILE).is_file() else None
    print(synth_summary(record, report))
    print(f"wrote {args.project / FILE}")
    return 0


EXCLUDED_SHOWN = 5


def cmd_sweep(args: argparse.Namespace) -> int:
    from codesign.sweep import front_heading, front_table, load_spec, point_name, run_sweep

    spec = load_spec(args.spec)  # every key and value checked before anything runs
    try:
        outcome = run_sweep(
            spec,
            args.out,
            jobs=args.jobs,
            scheduler=args.scheduler,
            store_dir=args.store,
            force=args.force,
            retry_failed=args.retry_failed,
            progress=True,
            notify=lambda message: print(message, flush=True),
        )
    except KeyboardInterrupt:
        print(
            f"codesign sweep: interrupted; the points that finished are kept in "
            f"{args.store or args.out / 'points'}: run the same command to resume",
            file=sys.stderr,
        )
        return 130
    counts, front = outcome.counts, outcome.front
    print(
        f"{len(outcome.rows)} points in {outcome.seconds:.0f} s: {counts['computed']} computed, "
        f"{counts['cached']} cached, {counts['failed']} failed, {counts['error']} errors "
        f"(retried next run)"
    )
    print(front_heading(front, len(outcome.rows)))
    print(front_table(spec.axes, front) if front.points else "  (no point can be chosen)")
    names = {row["key"]: point_name(row, spec.axes) for row in outcome.rows}
    for key, why in front.excluded[:EXCLUDED_SHOWN]:
        print(f"  left out {names[key]}: {why}")
    if len(front.excluded) > EXCLUDED_SHOWN:
        print(f"  ... and {len(front.excluded) - EXCLUDED_SHOWN} more (results.csv, sweep.json)")
    print(f"wrote {args.out / 'results.csv'} and {args.out / 'sweep.json'}")
    return 0 if counts["error"] == 0 else 1


def cmd_report(args: argparse.Namespace) -> int:
    from codesign.emit.plan import check_output_dir
    from codesign.report import REPORT_MARKER, format_table, load_project, rows, write_comparison

    if bool(args.projects) == (args.sweep is not None):
        raise CodesignError("give project folders or --sweep DIR (one of them)")
    # never a project (nor a folder holding or inside one); a non-empty folder only if an
    # earlier report wrote it (its marker) or with --force
    earlier = (args.out / REPORT_MARKER).is_file()
    check_output_dir(args.out, args.force or earlier, args.projects or [args.sweep])
    if args.sweep is not None:
        return _report_sweep(args.sweep, args.out)
    projects = [load_project(path) for path in args.projects]
    print(format_table(rows(projects)))
    for path in write_comparison(projects, args.out):
        print(f"wrote {path}")
    return 0


def _report_sweep(sweep_dir: Path, out_dir: Path) -> int:
    from codesign.report import REPORT_MARKER
    from codesign.sweep import front_heading, front_table, read_sweep
    from codesign.sweep.plots import sweep_front, write_sweep_report

    data = read_sweep(sweep_dir)
    front = sweep_front(data)
    print(f"{data['model']}: " + front_heading(front, len(data["rows"])))
    print(front_table(data["axes"], front))
    paths = write_sweep_report(data, out_dir)
    (out_dir / REPORT_MARKER).write_text("written by `codesign report`, which may write again\n")
    for path in paths:
        print(f"wrote {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from codesign.demo import run_demo

    result = run_demo(
        args.out,
        args.board,
        notify=lambda message: print(message, flush=True),
        model_name=args.model,
        progress=True,
    )
    print()
    print(demo_summary(result))
    ok = all(
        v.csim["outputs_match"] and all(e["outputs_match"] for e in v.rtlsim["layers"])
        for v in result.variants
    )
    return 0 if ok else 1


def _print_if(line: str | None) -> None:
    if line:
        print(line)


COMMANDS = {
    "boards": cmd_boards,
    "prune": cmd_prune,
    "generate": cmd_generate,
    "csim": cmd_csim,
    "baseline": cmd_baseline,
    "simulate": cmd_simulate,
    "synth": cmd_synth,
    "sweep": cmd_sweep,
    "report": cmd_report,
    "demo": cmd_demo,
}
