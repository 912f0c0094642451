"""The resource model against Yosys: a panel of engine configurations synthesised for Cyclone V.

Every configuration is a small seeded model, block-pruned, lowered, calibrated on random
inputs and tiled through the build pipeline, then written as a project and synthesised engine
by engine with `codesign.synth` (Yosys, read_slang + synth_intel_alm -family cyclonev, cached
under $CODESIGN_CACHE/synth). Per engine it prints the estimate [E] of report.json's resource
model beside Yosys's figure [Y] and their ratio E/Y:

    DSP blocks  est_dsp vs Arria-10-equivalent blocks of the MISTRAL_MUL cells (must be equal)
    ALMs        est alms + dsp_adder_alms vs alms_lower_bound, the fewest ALMs that hold the
                mapped cells: Yosys does not use the DSP blocks' adders, so the sums the
                model puts inside the DSP blocks on Arria 10 (dsp_adder_alms) are logic here
    registers   est registers vs MISTRAL_FF cells

and the median and extreme ratios per resource.

    python benchmarks/resource_model.py [--jobs 2] [--only NAME ...] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from codesign import passes, reference
from codesign.boards import load_board
from codesign.cost import graph_layer_resources
from codesign.emit.plan import BuildPlan, write_plan
from codesign.emit.rtl import emit_rtl
from codesign.frontend.lower import lower
from codesign.frontend.prune import as_matrix, balanced_block_mask
from codesign.ir import Graph
from codesign.records.design import graph_to_files
from codesign.synth import synthesise

BOARD = load_board("arria10-gx1150")


@dataclass(frozen=True)
class Config:
    name: str
    build: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    reuse: int | dict[str, int]
    sparsity: float = 0.5
    block: tuple[int, int] = (1, 4)
    bits: tuple[int, int] = (8, 16)  # weights, activations


def mlp(*sizes: int, act: type[nn.Module] = nn.ReLU) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for index, (n_in, n_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
            layers[f"fc{index + 1}"] = nn.Linear(n_in, n_out)
            layers[f"act{index + 1}"] = act()
        return nn.Sequential(layers)

    return build


def conv(
    c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0, pool: str | None = None
) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv=nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding), relu=nn.ReLU()
        )
        if pool == "max":
            layers["pool"] = nn.MaxPool2d(2)
        elif pool == "avg":
            layers["pool"] = nn.AvgPool2d(2)
        return nn.Sequential(layers)

    return build


class Residual(nn.Module):
    """fc then a residual add of the input: the add engine with its skip buffer."""

    def __init__(self, features: int = 16) -> None:
        super().__init__()
        self.fc = nn.Linear(features, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x)) + x


PANEL = (
    Config("dense16x32-s50-rf1", mlp(32, 16), (32,), 1),
    Config("dense16x32-s50-rf2", mlp(32, 16), (32,), 2),
    Config("dense16x32-s50-rf4", mlp(32, 16), (32,), 4),
    Config("dense16x32-s50-rf16", mlp(32, 16), (32,), 16),
    Config("dense16x32-s0-rf4", mlp(32, 16), (32,), 4, sparsity=0.0),
    Config("dense16x32-s0-rf32", mlp(32, 16), (32,), 32, sparsity=0.0),
    Config("dense32x64-s75-rf8", mlp(64, 32), (64,), 8, sparsity=0.75),
    Config("dense32x64-s75-rf32", mlp(64, 32), (64,), 32, sparsity=0.75),
    Config("dense16x32-b2x2-rf2", mlp(32, 16), (32,), 2, block=(2, 2)),
    Config("dense16x32-b1x8-rf2", mlp(32, 16), (32,), 2, block=(1, 8)),
    Config("dense16x32-b4x1-rf4", mlp(32, 16), (32,), 4, block=(4, 1)),
    Config("dense10x32-w4a8-rf2", mlp(32, 10), (32,), 2, bits=(4, 8)),
    Config("dense10x32-w12a12-rf2", mlp(32, 10), (32,), 2, bits=(12, 12)),
    Config("dense10x32-w16a16-rf4", mlp(32, 10), (32,), 4, bits=(16, 16)),
    Config("dense16x16-leaky-rf2", mlp(16, 16, act=nn.LeakyReLU), (16,), 2),
    Config("dense8x16-s0-rf1", mlp(16, 8), (16,), 1, sparsity=0.0),
    Config("conv1to4-k3-rf1", conv(1, 4, 3), (1, 8, 8), 1, sparsity=0.0),
    Config("conv4to8-k3-rf4", conv(4, 8, 3), (4, 6, 6), 4),
    Config("conv4to8-k3-s75-rf9", conv(4, 8, 3), (4, 6, 6), 9, sparsity=0.75),
    Config("conv2to4-k3-s2p1-rf2", conv(2, 4, 3, stride=2, padding=1), (2, 8, 8), 2),
    Config("conv+maxpool", conv(4, 4, 1, pool="max"), (4, 8, 8), 1, sparsity=0.0),
    Config("conv+avgpool", conv(4, 4, 1, pool="avg"), (4, 8, 8), 1, sparsity=0.0),
    Config("residual16-rf2", Residual, (16,), 2),
)


def build_graph(config: Config, seed: int = 0) -> Graph:
    torch.manual_seed(seed)
    model = config.build().eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d | nn.Linear) and config.sparsity > 0:
                matrix = as_matrix(module.weight)
                mask = balanced_block_mask(matrix, config.block, config.sparsity)
                module.weight.mul_(mask.reshape(module.weight.shape).to(module.weight.dtype))
    calibration = np.random.default_rng(seed).normal(size=(256, *config.input_shape))
    graph = lower(model, config.name.replace("-", "_").replace("+", "_"), config.input_shape)
    options = passes.BuildOptions(
        calibration=calibration.astype(np.float32),
        block=config.block,
        reuse=config.reuse,
        weight_bits=config.bits[0],
        act_bits=config.bits[1],
    )
    return passes.build(graph, options)


def write_project(graph: Graph, folder: Path) -> Path:
    x = np.random.default_rng(1).normal(size=(2, *graph.input_shape))
    reference.run(graph, reference.quantize_inputs(graph, x))  # the formats hold
    write_plan(emit_rtl(graph).merged(BuildPlan(dict(graph_to_files(graph)))), folder)
    return folder


@dataclass(frozen=True)
class Row:
    config: str
    layer: str
    module: str
    rf: int | None
    est: tuple[int, int, int]  # DSP blocks, ALMs, registers
    yosys: tuple[int, int, int]
    seconds: float

    def ratios(self) -> tuple[float | None, ...]:
        return tuple(e / y if y else None for e, y in zip(self.est, self.yosys, strict=True))


def run(config: Config, jobs: int, work: Path) -> list[Row]:
    graph = build_graph(config)
    project = write_project(graph, work / config.name)
    record = synthesise(project, jobs=jobs)
    estimates = graph_layer_resources(graph, BOARD)
    rows = []
    for layer, estimate, entry in zip(graph.layers, estimates, record.layers, strict=True):
        tiling = getattr(layer, "tiling", None)
        rows.append(
            Row(
                config=config.name,
                layer=layer.name,
                module=entry.module,
                rf=tiling.reuse_factor if tiling is not None else None,
                est=(
                    estimate.dsp_blocks,
                    estimate.alms + estimate.dsp_adder_alms,
                    estimate.registers,
                ),
                yosys=(entry.dsp_blocks, entry.alms_lower_bound, entry.flip_flops),
                seconds=entry.yosys_seconds,
            )
        )
    return rows


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def table(rows: list[Row]) -> str:
    lines = [
        "| configuration | layer | engine | RF | DSP E/Y | ALM E/Y | ratio | regs E/Y | ratio "
        "| Yosys s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        dsp, alm, reg = row.ratios()
        lines.append(
            f"| {row.config} | {row.layer} | {row.module} | {row.rf or '-'} "
            f"| {row.est[0]}/{row.yosys[0]} | {row.est[1]:,}/{row.yosys[1]:,} | {_ratio(alm)} "
            f"| {row.est[2]:,}/{row.yosys[2]:,} | {_ratio(reg)} | {row.seconds:.1f} |"
        )
    return "\n".join(lines)


def summary(rows: list[Row]) -> str:
    groups: dict[str, list[Row]] = {}
    for row in rows:
        kind = "conv" if row.module == "matrix_engine" and row.layer == "conv" else row.module
        groups.setdefault("Dense" if kind == "matrix_engine" else kind, []).append(row)
    parts = [_summary(rows, "all engines")]
    parts += [_summary(group, name) for name, group in groups.items()]
    return "\n\n".join(parts)


def _summary(rows: list[Row], title: str) -> str:
    lines = [f"{title} ({len(rows)}):"]
    dsp_equal = sum(row.est[0] == row.yosys[0] for row in rows)
    lines.append(f"DSP blocks equal in {dsp_equal} of {len(rows)} engines")
    for index, name in ((1, "ALMs"), (2, "registers")):
        ratios = [r for r in (row.ratios()[index] for row in rows) if r is not None]
        if not ratios:
            continue
        off = [row for row in rows if (row.ratios()[index] or 1.0) > 2 or
               (row.ratios()[index] or 1.0) < 0.5]  # fmt: skip
        lines.append(
            f"{name}: median E/Y {statistics.median(ratios):.2f}, range "
            f"{min(ratios):.2f}-{max(ratios):.2f}, off by more than 2x: "
            + (", ".join(f"{row.config}/{row.layer}" for row in off) or "none")
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="Yosys processes at once")
    parser.add_argument("--only", nargs="*", help="configurations to run (default: all)")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args()
    panel = [c for c in PANEL if not args.only or c.name in args.only]
    rows: list[Row] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="codesign-resource-model-") as work:
        for config in panel:
            print(f"{config.name} ...", file=sys.stderr, flush=True)
            rows += run(config, args.jobs, Path(work))
    elapsed = time.perf_counter() - started
    text = table(rows)
    tail = summary(rows)
    print(text)
    print()
    print(tail)
    print(f"({len(panel)} configurations, {len(rows)} engines, {elapsed:.0f} s wall)")
    if args.markdown:
        args.markdown.write_text(
            "# Resource model against Yosys (Cyclone V proxy)\n\n"
            "Produced by `python benchmarks/resource_model.py --markdown "
            f"{args.markdown}` (E: codesign's estimate for the Arria 10 GX 1150, Y: Yosys "
            "0.70 synth_intel_alm -family cyclonev; ALM Y is the packing lower bound).\n\n"
            f"{text}\n\n{tail}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
