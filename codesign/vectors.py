"""Test vectors of a project: raw inputs and the reference's raw outputs of every layer.

Files (one vector per line, space-separated signed decimal raw integers):
  vectors/input.txt           network input, in the first layer's input format
  vectors/<layer>.txt         expected output of <layer> (the reference), in its output format
The C testbench and the RTL bench read `input.txt`; both are checked against `<layer>.txt`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from codesign import reference
from codesign.ir.fixed import RawArray
from codesign.ir.graph import Graph

FOLDER = "vectors"
INPUT_FILE = "input.txt"


def format_rows(raw: RawArray) -> bytes:
    return "".join(" ".join(str(int(v)) for v in row) + "\n" for row in raw).encode()


def parse_rows(text: str) -> RawArray:
    rows = [[int(v) for v in line.split()] for line in text.splitlines() if line.strip()]
    return np.asarray(rows, dtype=np.int64)


def vector_files(
    graph: Graph, x_raw: RawArray, traces: list[reference.LayerTrace] | None = None
) -> dict[str, bytes]:
    """The input and every layer's expected output; `traces`: the reference's run on `x_raw`
    if the caller has it already."""
    files = {f"{FOLDER}/{INPUT_FILE}": format_rows(x_raw)}
    for trace in traces if traces is not None else reference.run(graph, x_raw):
        files[f"{FOLDER}/{trace.name}.txt"] = format_rows(trace.output)
    return files


def load_inputs(project: Path) -> RawArray:
    return parse_rows((project / FOLDER / INPUT_FILE).read_text())


def load_expected(project: Path, layer: str) -> RawArray:
    return parse_rows((project / FOLDER / f"{layer}.txt").read_text())
