"""Parse the harness log and compare it bit for bit with the expected raw outputs.

The harness writes one line per vector of every monitored stream,
`<phase> <stream> <first beat's cycle> <last beat's cycle> <beats in hex>`, then `end <cycle>`
(after `timeout <cycle>` when the harness's watchdog stopped it). The hex number holds the
vector's ceil(features / P) beats of P values of `width` bits, value 0 in the low bits; the
values past `features` are padding, and input streams (not checked) log 0. From the vectors
this module measures, per entry (a layer or the network):

- sim_cycles: isolated phase, last output beat's cycle - first input beat's cycle + 1 (the
  largest over the vectors);
- sim_ii: streaming phase, the largest interval between successive vectors' first output beats
  over the second half of the vectors (the first half is warm-up). Measured at the output:
  input frames let the first vectors enter faster than the slowest stage lets them leave, so
  intervals at the input understate the interval with few vectors;

and counts mismatching values on every checked stream in every phase (missing vectors count
too). Pure Python, no cocotb: `codesign.sim.rtlsim` and the tests may import it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PHASES = ("isolated", "streaming", "stalled")


@dataclass
class Vector:
    first_cycle: int
    last_cycle: int
    values: list[int]


def unpack_beat(beat: int, values_per_beat: int, width: int, signed: bool) -> list[int]:
    """The values of one beat, value 0 in the low bits, as signed or unsigned integers."""
    mask = (1 << width) - 1
    values = []
    for lane in range(values_per_beat):
        value = (beat >> (lane * width)) & mask
        if signed and value >> (width - 1):
            value -= 1 << width
        values.append(value)
    return values


@dataclass
class HarnessLog:
    # (phase, stream) -> list of (first cycle, last cycle, packed beats) in acceptance order
    lines: dict[tuple[int, int], list[tuple[int, int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    end_cycle: int | None = None
    timed_out: bool = False

    def vectors(self, phase: int, monitor: dict[str, Any]) -> list[Vector]:
        """The whole vectors one monitored stream carried in one phase."""
        features = monitor["features"]
        return [
            Vector(
                first,
                last,
                unpack_beat(packed, features, monitor["width"], monitor["signed"]),
            )
            for first, last, packed in self.lines.get((phase, monitor["id"]), [])
        ]


def parse_log(text: str) -> HarnessLog:
    log = HarnessLog()
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] in ("end", "timeout"):  # a timeout line comes before the end line
            log.end_cycle = int(fields[1])
            log.timed_out = log.timed_out or fields[0] == "timeout"
            continue
        phase, stream, first, last = (int(f) for f in fields[:4])
        log.lines[(phase, stream)].append((first, last, int(fields[4], 16)))
    return log


def read_rows(path: Path, count: int) -> list[list[int]]:
    """The first `count` vectors of a vectors file (one per line, decimal raw values)."""
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            rows.append([int(v) for v in line.split()])
        if len(rows) == count:
            break
    return rows


def _compare(
    log: HarnessLog, monitor: dict[str, Any], expected: list[list[int]], n_vectors: int
) -> tuple[int, dict[str, Any] | None]:
    """Mismatching values of one stream over all phases, and the first of them."""
    mismatches = 0
    first: dict[str, Any] | None = None
    features = monitor["features"]
    for phase, phase_name in enumerate(PHASES):
        got = log.vectors(phase, monitor)
        for vector in range(max(n_vectors, len(got))):
            want = expected[vector] if vector < n_vectors else [None] * features
            have = got[vector].values if vector < len(got) else [None] * features
            for index, (a, b) in enumerate(zip(want, have, strict=True)):
                if a == b:
                    continue
                mismatches += 1
                if first is None:
                    first = {
                        "layer": monitor["producer"],
                        "stream": monitor["id"],
                        "phase": phase_name,
                        "vector": vector,
                        "index": index,
                        "expected": a,
                        "got": b,
                    }
    return mismatches, first


def _latency(log: HarnessLog, source: dict[str, Any], sink: dict[str, Any]) -> int | None:
    inputs = log.vectors(0, source)
    outputs = log.vectors(0, sink)
    count = min(len(inputs), len(outputs))
    if count == 0:
        return None
    return max(outputs[v].last_cycle - inputs[v].first_cycle + 1 for v in range(count))


def _interval(log: HarnessLog, sink: dict[str, Any]) -> int | None:
    outputs = log.vectors(1, sink)
    firsts = [vector.first_cycle for vector in outputs]
    intervals = [b - a for a, b in zip(firsts, firsts[1:], strict=False)]
    if not intervals:
        return None
    return max(intervals[len(intervals) // 2 :])


def check(config: dict[str, Any]) -> dict[str, Any]:
    """Measure and compare everything the config names; return the result (JSON-ready)."""
    log = parse_log(Path(config["log_file"]).read_text())
    n_vectors = int(config["n_vectors"])
    monitors = {monitor["id"]: monitor for monitor in config["monitors"]}
    compared: dict[int, tuple[int, dict[str, Any] | None]] = {}
    for monitor in monitors.values():
        if monitor["expected_file"] is not None:
            expected = read_rows(Path(monitor["expected_file"]), n_vectors)
            compared[monitor["id"]] = _compare(log, monitor, expected, n_vectors)
    entries = {}
    first_overall = None
    for entry in config["entries"]:
        source, sink = (monitors[i] for i in entry["latency"])
        mismatches = sum(compared[i][0] for i in entry["checks"])
        firsts = [compared[i][1] for i in entry["checks"] if compared[i][1] is not None]
        first = firsts[0] if firsts else None
        first_overall = first_overall or first
        entries[entry["name"]] = {
            "sim_cycles": _latency(log, source, sink),
            "sim_ii": _interval(log, monitors[entry["interval"]]),
            "outputs_match": mismatches == 0 and not log.timed_out,
            "mismatches": mismatches,
            "first_mismatch": first,
        }
    return {
        "end_cycle": log.end_cycle,
        "timed_out": log.timed_out,
        "entries": entries,
        "first_mismatch": first_overall,
    }


def check_file(config_path: Path) -> dict[str, Any]:
    """Run `check` on a bench config file and write its result file."""
    config = json.loads(config_path.read_text())
    result = check(config)
    Path(config["result_file"]).write_text(json.dumps(result, indent=2) + "\n")
    return result
