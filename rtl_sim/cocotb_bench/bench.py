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
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout

from cocotb_bench import scoreboard

CLOCK_PERIOD_NS = 10
RESET_CYCLES = 4


@cocotb.test()
async def run_harness(dut) -> None:  # type: ignore[no-untyped-def]
    config_path = Path(os.environ["CODESIGN_BENCH_CONFIG"])
    config = json.loads(config_path.read_text())
    cocotb.start_soon(Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start())
    dut.rst.value = 1
    await ClockCycles(dut.clk, RESET_CYCLES)
    dut.rst.value = 0
    started = time.perf_counter()
    timeout_ns = (int(config["max_cycles"]) + 100) * CLOCK_PERIOD_NS
    await with_timeout(RisingEdge(dut.done), timeout_ns, "ns")
    seconds = time.perf_counter() - started
    result = scoreboard.check(config)
    cycles = result["end_cycle"] or 0
    result["sim_seconds"] = seconds
    result["sim_cycles_per_second"] = cycles / seconds if seconds > 0 else None
    Path(config["result_file"]).write_text(json.dumps(result, indent=2) + "\n")
    assert not result["timed_out"], f"harness timed out after {cycles} cycles"
    assert result["first_mismatch"] is None, f"output mismatch: {result['first_mismatch']}"
