"""cocotb test module: clock, reset, wait for the harness's `done`, then score in bulk.

No Python runs per cycle: stimulus, stalls and recording are in the SystemVerilog harness. The
bench config (JSON, path in $CODESIGN_BENCH_CONFIG) names the log, the expected vector files
and the result file this test writes for `codesign.sim.rtlsim`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout

from cocotb_bench import scoreboard

CLOCK_PERIOD_NS = 10
RESET_CYCLES = 4
FINISHED = 3  # the harness's last phase


def _mark() -> tuple[float, float, float]:
    return time.perf_counter(), time.process_time(), get_sim_time("ns") / CLOCK_PERIOD_NS


@cocotb.test()
async def run_harness(dut) -> None:  # type: ignore[no-untyped-def]
    config_path = Path(os.environ["CODESIGN_BENCH_CONFIG"])
    config = json.loads(config_path.read_text())
    cocotb.start_soon(Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start())
    dut.rst.value = 1
    await ClockCycles(dut.clk, RESET_CYCLES)
    dut.rst.value = 0
    timeout_ns = (int(config["max_cycles"]) + 100) * CLOCK_PERIOD_NS
    # wall time, CPU time of this process (the simulator runs in it) and simulated cycles at
    # each of the harness's phase changes: three events a run, no per-cycle Python
    marks = [_mark()]
    phase = 0
    while phase < FINISHED:
        await with_timeout(dut.phase.value_change, timeout_ns, "ns")
        phase = int(dut.phase.value)
        marks.append(_mark())
    await with_timeout(RisingEdge(dut.done), timeout_ns, "ns")
    seconds = time.perf_counter() - marks[0][0]
    result = scoreboard.check(config)
    cycles = result["end_cycle"] or 0
    result["sim_seconds"] = seconds
    result["sim_cycles_per_second"] = cycles / seconds if seconds > 0 else None
    phases = {}
    spans = zip(marks, marks[1:], strict=False)
    for name, (begin, end) in zip(scoreboard.PHASES, spans, strict=False):
        phase_seconds, cpu_seconds = end[0] - begin[0], end[1] - begin[1]
        phase_cycles = round(end[2] - begin[2])
        phases[name] = {
            "cycles": phase_cycles,
            "seconds": phase_seconds,
            "cpu_seconds": cpu_seconds,
            "cycles_per_second": phase_cycles / phase_seconds if phase_seconds > 0 else None,
            "cycles_per_cpu_second": phase_cycles / cpu_seconds if cpu_seconds > 0 else None,
        }
    result["phases"] = phases
    Path(config["result_file"]).write_text(json.dumps(result, indent=2) + "\n")
    assert not result["timed_out"], f"harness timed out after {cycles} cycles"
    assert result["first_mismatch"] is None, f"output mismatch: {result['first_mismatch']}"
