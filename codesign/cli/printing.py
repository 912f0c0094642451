"""What the commands print: tables of the records the flows return (design.md §7 names)."""

from __future__ import annotations

from typing import Any

from codesign.engines import kind_label
from codesign.records.prune import PruneRecord
from codesign.records.report import LayerReport, Report
from codesign.records.synth import SynthRecord


def prune_summary(record: PruneRecord) -> str:
    """The per-layer table of a prune.json: shape, sparsity, kept blocks, cycles and DSPs."""
    block = "x".join(map(str, record.block))
    target = record.target_sparsity
    mode = "" if record.balanced is None else (" balanced" if record.balanced else " unbalanced")
    lines = [
        f"pruned {record.model} ({record.method}{mode}, criterion {record.criterion}, "
        f"{record.schedule}{', distilled' if record.distill else ''}) at block {block} on "
        f"{record.board}: sparsity {record.achieved_sparsity:.3f}"
        + (f" (target {target})" if target is not None else ""),
        f"  {'layer':12} {'shape':>12} {'sparsity':>8} {'blocks':>6} {'RF':>4} {'cycles':>7} "
        f"{'DSP':>5}",
    ]
    for layer in record.layers:
        shape = "x".join(map(str, layer.shape))
        lines.append(
            f"  {layer.name:12} {shape:>12} {layer.sparsity:8.3f} {layer.nnz_blocks:6} "
            f"{layer.reuse_factor:4} {layer.est_cycles:7} {layer.est_dsp:5}"
        )
    hw = record.hardware
    lines.append(
        f"  {'network':12} {'':>12} {record.achieved_sparsity:8.3f} {'':>6} "
        f"{hw['reuse_factor']:4} {hw['est_cycles']:7} {hw['est_dsp']:5}   (dense: "
        f"{hw['dense']['est_cycles']} cycles, {hw['dense']['est_dsp']} DSP; {hw['cost_model']})"
    )
    lines.append(
        "  costed at the smallest uniform RF that fits, 4 values a beat (generate --reuse "
        "uniform); generate's default folding chooses per-layer RFs and stream widths"
    )
    budget = record.budget
    if budget:
        unit = "cycles" if budget["metric"] == "cycles" else "DSP blocks"
        lines.append(
            f"budget {budget['limit']} {unit} ({budget['allocator']}): estimate "
            f"{budget['estimate']} -> {'met' if budget['met'] else 'NOT met'}"
        )
    acc = record.accuracy
    lines.append(f"top-1: dense {acc['dense']:.4f}  pruned {acc['pruned']:.4f}")
    return "\n".join(lines)


def generated_summary(report: Report) -> str:
    """The per-layer table `generate` prints, the totals, accuracy, fit, energy, overflows."""
    totals = report.totals
    board = f"{report.board} ({report.part}, {report.clock_mhz:.0f} MHz)"
    lines = [
        f"{report.model} on {board}",
        f"{'layer':12} {'kind':6} {'shape':>9} {'block':>5} {'sparsity':>8} {'RF':>4} "
        f"{'mults':>6} {'DSP':>5} {'beat':>7} {'cycles':>7} {'II':>5} {'util':>5}",
    ]
    lines += [_layer_line(layer) for layer in report.layers]
    lines.append(
        f"{'network':12} {'':6} {'':>9} {'':>5} {totals.sparsity:8.3f} {'':>4} "
        f"{totals.multipliers:6} {totals.est_dsp:5} {'':>7} {totals.est_cycles:7} "
        f"{totals.est_ii:5} {_share(totals.est_utilisation)}   ({totals.est_dsp}/"
        f"{totals.board_dsp} DSP blocks, {totals.est_latency_us} us)"
    )
    lines.append(
        "beat: values per input/output beat; util: multiplier utilisation, "
        "MACs / (multipliers x II)"
    )
    if report.accuracy is not None:
        acc = report.accuracy
        lines.append(
            f"top-1: dense float {acc['dense_float']:.4f}  pruned float {acc['pruned_float']:.4f}"
            f"  fixed point {acc['fixed_point']:.4f}"
        )
    lines += _fit_lines(report)
    overflowing = [
        f"{layer.name} ({text})"
        for layer in report.layers
        if (text := overflow_text(layer.to_json()))
    ]
    if overflowing:
        lines.append(
            f"overflow (reference, {report.n_vectors} test vectors): {'; '.join(overflowing)}"
        )
    return "\n".join(lines)


def _layer_line(layer: LayerReport) -> str:
    block = "x".join(map(str, layer.get("block"))) if layer.get("block") else "-"
    sparsity = layer.get("sparsity")
    sparsity_text = f"{sparsity:8.3f}" if sparsity is not None else f"{'-':>8}"
    reuse = layer.reuse_factor if layer.multipliers else "-"
    widths = layer.stream_widths
    beat = f"{widths['input']}/{widths['output']}" if widths else "-"
    return (
        f"{layer.name:12} {kind_label(layer.kind):6} "
        f"{'x'.join(map(str, layer.get('shape', ()))):>9} {block:>5} {sparsity_text} "
        f"{reuse:>4} {layer.multipliers:6} {layer.est_dsp:5} {beat:>7} "
        f"{layer.est_cycles:7} {layer.est_ii:5} {_share(layer.est_utilisation)}"
    )


def _share(value: float | None) -> str:
    return f"{'-':>5}" if value is None else f"{value:5.2f}"


def _fit_lines(report: Report) -> list[str]:
    fit = report.fit
    if not fit:
        return []
    usage = ", ".join(
        f"{item['resource']} {item['needed']:,}/{item['available']:,}" for item in fit["items"]
    )
    energy = report.totals.energy
    return [
        f"resource estimate: {usage}{'' if fit['fits'] else '  DOES NOT FIT'}",
        f"energy estimate per inference: {energy['total_nj']} nJ "
        f"({energy['dynamic_pj']} pJ dynamic, {energy['static_pj']} pJ static)",
    ]


def overflow_text(layer: dict[str, Any]) -> str:
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


def first_mismatch(result: dict[str, Any]) -> str | None:
    first = result.get("first_mismatch")
    if not first:
        return None
    return (
        f"first mismatch: layer {first['layer']} vector {first['vector']} output "
        f"{first['index']}: expected {first['expected']}, got {first['got']}"
    )


def match(flag: bool) -> str:
    return "bit-exact" if flag else "MISMATCH"


def figure(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def demo_summary(result: Any) -> str:
    from codesign.report import Project, format_table, rows

    lines = [f"codesign demo: {result.model} on {result.board}"]
    for v in result.variants:
        report: Report = v.report
        acc, totals = report.accuracy or {}, report.totals
        network = v.rtlsim["network"]
        lines.append(
            f"  {v.name:6} top-1 float {acc['pruned_float']:.4f}, fixed point "
            f"{acc['fixed_point']:.4f} | {totals.est_dsp}/{totals.board_dsp} DSP blocks | "
            f"latency {network['sim_cycles']} cycles simulated, {totals.est_cycles} estimated"
        )
        lines.append(
            f"         outputs: C-sim {match(v.csim['outputs_match'])}, RTL-sim "
            f"{match(network['outputs_match'])} on {v.csim['n_vectors']} test images; "
            f"{v.csim['nonzero_output_fraction']:.1%} of pre-activations nonzero, "
            f"{v.csim['saturated_fraction']:.1%} saturated"
        )
    projects = [Project(v.path, v.report.to_json(), v.csim, v.rtlsim) for v in result.variants]
    lines.append("")
    lines.append(format_table(rows(projects), view="latency"))
    lines.append("")
    lines.append(f"compare: codesign report {' '.join(str(v.path) for v in result.variants)}")
    return "\n".join(lines)


def synth_summary(record: SynthRecord, report: Report | None) -> str:
    """Per engine, Yosys's Cyclone V cells [Y] beside the resource model's estimate [E]."""
    estimates = {layer.name: layer for layer in report.layers} if report is not None else {}
    header = (
        f"  {'layer':12} {'module':14} {'DSP[E]':>6} {'DSP[Y]':>6} {'ALM[E]*':>7} "
        f"{'ALM>=[Y]':>8} {'ALUT[Y]':>8} {'regs[E]':>8} {'FF[Y]':>7} {'RAM[Y]':>6} {'s':>7}"
    )
    lines = [f"{record.version.split(' (')[0]}, {record.target}:", header]

    def estimate(name: str, key: str) -> str:
        layer = estimates.get(name)
        value = None if layer is None else layer.resources.get(key)
        if value is not None and key == "alms":  # as Yosys builds it: DSP-block sums as logic
            value += layer.resources.get("dsp_adder_alms", 0) if layer is not None else 0
        return "n/a" if value is None else f"{value:,}"

    for entry in record.layers:
        seconds = "cached" if entry.cached else f"{entry.yosys_seconds:.1f}"
        lines.append(
            f"  {entry.name:12} {entry.module:14} {estimate(entry.name, 'dsp_blocks'):>6} "
            f"{entry.dsp_blocks:>6,} {estimate(entry.name, 'alms'):>7} "
            f"{entry.alms_lower_bound:>8,} {entry.alut_cells:>8,} "
            f"{estimate(entry.name, 'registers'):>8} {entry.flip_flops:>7,} "
            f"{entry.ram_cells:>6,} {seconds:>7}"
        )
    totals = record.totals
    lines.append(
        f"  {'total':12} {'':14} {'':>6} {totals['dsp_blocks']:>6,} {'':>7} "
        f"{totals['alms_lower_bound']:>8,} {totals['alut_cells']:>8,} {'':>8} "
        f"{totals['flip_flops']:>7,} {totals['ram_cells']:>6,} {totals['yosys_seconds']:>7.1f}"
    )
    if not record.complete:
        lines.append("  (not every layer synthesised yet: run without --layer for all)")
    lines.append(
        "  ALM>=: the fewest ALMs that can hold the cells (Yosys does not pack ALMs); ALM*: the "
        "Arria 10 estimate plus the block-row sums its DSP blocks hold, which Yosys builds as "
        "logic; DSP: Arria-10-equivalent blocks; Cyclone V is a proxy for the Arria 10 (M10K, "
        "no fitter, no timing)"
    )
    return "\n".join(lines)
