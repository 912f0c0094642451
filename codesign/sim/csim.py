"""C simulation: build a project's HLS C++ with g++ through its Makefile, run it on the project's
test vectors and compare every layer's outputs bit for bit with the NumPy reference.

The result is the `csim.json` record of design.md §7; each layer's entry also gives
`overflows`, the reference's count of the layer's output values that saturated or wrapped on
the test vectors, and `accum_overflows`, of accumulator values that wrapped (only where
`--precision` narrows an accumulator). Any graph the HLS emitter takes works here (a DAG of
Dense, Conv2d, Pool2d and Add layers): the testbench writes every layer's output. A tool that
is missing or fails raises `ToolError` with the tool's last lines and the path of its full log.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from codesign import reference, vectors
from codesign.errors import OutputDirError, ToolError
from codesign.ir.fixed import RawArray
from codesign.records.csim import CsimLayer, CsimRecord
from codesign.records.design import load_graph
from codesign.sim import tools

HLS_FOLDER = "hls"
BUILD_LOG = "build/csim-build.log"
RUN_LOG = "build/csim-run.log"
OUTPUT_FOLDER = "build/csim/out"
COUNT_MACS_DEFINE = "-DCODESIGN_COUNT_MACS"
LOG_TAIL_LINES = 25
JOBS = 2  # the component and the testbench compile in parallel


def csim_output_dir(project: Path) -> Path:
    """Where the testbench writes `layers/<layer>.txt`, `network.txt` (and `macs.txt`)."""
    return project / HLS_FOLDER / OUTPUT_FOLDER


def run_csim(project: Path, *, rebuild: bool = True, count_macs: bool = False) -> dict[str, Any]:
    """Build and run the C simulation of `project`; the csim.json record.

    `rebuild` forces a full build so that `build_seconds` is the cost of one; `count_macs`
    builds the instrumented testbench, which also writes the products per layer (`macs.txt`).
    """
    make, compiler = tools.make(), tools.gxx()
    hls = project / HLS_FOLDER
    if not (hls / "Makefile").is_file():
        raise OutputDirError(f"{project}: no {HLS_FOLDER}/Makefile; run generate first")
    graph = load_graph(project)
    inputs = vectors.load_inputs(project)
    output_dir = csim_output_dir(project)

    variables = [f"CXX={compiler}", f"CSIM_OUT={output_dir.resolve()}"]
    if "AC_TYPES" not in os.environ:  # the user's own choice wins; else hls4ml's copy
        variables.append(f"AC_TYPES={tools.ac_types_include()}")
    if count_macs:
        variables.append(f"CSIM_DEFINES={COUNT_MACS_DEFINE}")
    build = [make, "-C", str(hls), f"-j{JOBS}", *(["-B"] if rebuild else []), "csim-build"]
    build_seconds = _timed(build + variables, hls / BUILD_LOG, "C simulation build")
    for stale in output_dir.glob("**/*.txt"):
        stale.unlink()
    run_seconds = _timed([make, "-C", str(hls), "csim", *variables], hls / RUN_LOG, "C simulation")

    traces = reference.run(graph, inputs)
    layers, first_mismatch = [], None
    for trace in traces:
        got = _read_output(output_dir / "layers" / f"{trace.name}.txt", hls / RUN_LOG)
        entry, mismatch = _compare(trace.name, vectors.load_expected(project, trace.name), got)
        layers.append(
            CsimLayer(
                **entry,
                overflows=int(trace.saturated),
                accum_overflows=int(trace.accum_overflows),
            )
        )
        first_mismatch = first_mismatch or mismatch
    network = _read_output(output_dir / "network.txt", hls / RUN_LOG)
    network_entry, mismatch = _compare(graph.name, traces[-1].output, network)
    first_mismatch = first_mismatch or mismatch

    triviality = reference.nontrivial(traces, graph)
    record = CsimRecord(
        outputs_match=bool(network_entry["outputs_match"])
        and all(layer.outputs_match for layer in layers),
        n_vectors=int(len(inputs)),
        layers=tuple(layers),
        nonzero_output_fraction=triviality["nonzero_output_fraction"],
        saturated_fraction=triviality["saturated_fraction"],
        build_seconds=round(build_seconds, 3),
        run_seconds=round(run_seconds, 3),
        first_mismatch=first_mismatch,
    )
    return record.to_json()


def _timed(command: list[str], log: Path, what: str) -> float:
    """Run `command`, its output to `log`; seconds taken, or ToolError with the last lines."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with log.open("wb") as stream:
        completed = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        raise ToolError(
            f"{what} failed (exit {completed.returncode}); last lines:\n"
            + "\n".join(lines)
            + f"\nfull log: {log}"
        )
    return seconds


def _read_output(path: Path, log: Path) -> RawArray:
    if not path.is_file():
        raise ToolError(f"the C simulation wrote no {path}; see {log}")
    return vectors.parse_rows(path.read_text())


def _compare(
    name: str, expected: RawArray, got: RawArray
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Per-layer entry and the first differing value (vector, index), if any.

    A shape difference counts every expected value as mismatched; `first_mismatch` then gives
    the two shapes instead of two values.
    """
    if expected.shape != got.shape:
        entry = {"name": name, "outputs_match": False, "mismatches": int(expected.size)}
        shapes = {"expected": list(expected.shape), "got": list(got.shape)}
        return entry, {"layer": name, "vector": None, "index": None, **shapes}
    differs = expected != got
    mismatches = int(np.count_nonzero(differs))
    entry = {"name": name, "outputs_match": mismatches == 0, "mismatches": mismatches}
    if mismatches == 0:
        return entry, None
    vector, index = (int(i) for i in np.argwhere(differs)[0])
    return entry, {
        "layer": name,
        "vector": vector,
        "index": index,
        "expected": int(expected[vector, index]),
        "got": int(got[vector, index]),
    }
