"""RTL simulation of a project with Verilator through cocotb: outputs bit for bit, and cycles.

`simulate(project)` reads the project's SystemVerilog and memory files (`rtl/`, as a synthesis
tool would; a file that differs from what generate writes for design.json is simulated as it
is, with a warning, and a missing one is an error), builds it with cocotb's Verilator runner
(cached under $CODESIGN_CACHE, default ~/.cache/codesign, keyed by a hash of the sources and
build settings, so a rerun or another weight pattern of the same shape reuses the build), runs
the harness on the project's test vectors and returns the `codesign.rtlsim/1` result (§7).
The whole network runs as one unit and every layer also alone (each layer's sim_cycles and
sim_ii are its own unit's; its outputs are checked in both); `layer=NAME` runs one layer
alone, fed the reference outputs of the values it reads (an Add: both operands).
The simulation's working files go to `<project>/rtlsim/<network or layer>/`.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from codesign import reference, vectors
from codesign.cost import network_cycles
from codesign.cost.cycles import utilisation
from codesign.emit import rtl
from codesign.engines import LayerCycles
from codesign.errors import CodesignError, OutputDirError, ToolError
from codesign.ir.fixed import RawArray
from codesign.ir.graph import GRAPH_INPUT, Graph
from codesign.records.design import load_graph
from codesign.records.rtlsim import RtlsimEntry, RtlsimRecord
from codesign.reference import LayerTrace
from codesign.sim import tools
from codesign.sim.verilator import (
    FAST_SIM_ABOVE_CYCLES,
    cocotb_runner,
    ensure_build,
    tail,
    verilator_environment,
)

WORK_FOLDER = "rtlsim"
BENCH_MODULE = "cocotb_bench.bench"
log = logging.getLogger(__name__)


def _dut(graph: Graph, layer: str | None) -> Graph:
    """The graph to simulate: the whole network, or one layer alone."""
    if layer is None:
        return graph
    target = graph.layer(layer)
    return replace(graph, input_shape=(target.in_features,), layers=(target,))


def _value_file(project: Path, name: str) -> Path:
    """The vectors of a value: the network input, or a layer's reference outputs."""
    folder = project / vectors.FOLDER
    return folder / (vectors.INPUT_FILE if name == GRAPH_INPUT else f"{name}.txt")


def _unit_inputs(project: Path, graph: Graph, unit: rtl.UnitView) -> list[Path]:
    """The vector files of a unit's sources: the network's input, or what its layer reads."""
    if unit.engine is None:
        return [_value_file(project, GRAPH_INPUT)]
    layer = graph.layer(unit.engine.name)
    return [_value_file(project, name) for name in graph.inputs_of(layer)]


def _bench_config(
    project: Path, graph: Graph, dut: Graph, n_vectors: int, work: Path
) -> dict[str, Any]:
    units = rtl.harness_units(dut)
    monitors = []
    for unit in units:
        for monitor in unit.monitors:
            expected = (
                str(_value_file(project, monitor.producer))
                if monitor.producer is not None
                else None
            )
            stream = monitor.stream
            monitors.append(
                {
                    "id": monitor.id,
                    "unit": monitor.unit,
                    "values_per_beat": stream.values_per_beat,
                    "width": stream.width,
                    "signed": stream.signed,
                    "features": stream.features,
                    "producer": monitor.producer,
                    "consumer": monitor.consumer,
                    "expected_file": expected,
                }
            )
    network = units[0].monitors
    entries = []
    for index, layer in enumerate(dut.layers):
        # each layer's figures come from its own unit (itself alone); its outputs are also
        # checked inside the network
        alone = units[index + 1].monitors if len(units) > 1 else network
        checks = {alone[-1].id}
        if len(units) > 1:
            checks.add(network[index + 1].id)
        entries.append(
            {
                "name": layer.name,
                "latency": [alone[0].id, alone[-1].id],
                "interval": alone[-1].id,
                "checks": sorted(checks),
            }
        )
    entries.append(
        {
            "name": "network",
            "latency": [network[0].id, network[-1].id],
            "interval": network[-1].id,
            "checks": [m["id"] for m in monitors if m["expected_file"] is not None],
        }
    )
    estimate = network_cycles(dut)
    per_vector = estimate.est_cycles + estimate.est_ii + sum(c.est_cycles for c in estimate.layers)
    return {
        "log_file": str(work / "harness.log"),
        "result_file": str(work / "result.json"),
        "n_vectors": n_vectors,
        # isolated, streaming, and stalled at about a quarter of the streaming pace
        "planned_cycles": n_vectors * (estimate.est_cycles + 5 * estimate.est_ii),
        "max_cycles": 10_000 + 8 * n_vectors * per_vector,
        "monitors": monitors,
        "entries": entries,
        "unit_inputs": {
            source.prefix: str(path)
            for unit in units
            for source, path in zip(unit.sources, _unit_inputs(project, graph, unit), strict=True)
        },
    }


def _run(build_dir: Path, config: dict[str, Any], work: Path) -> dict[str, Any]:
    config_path = work / "bench.json"
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    result_path = Path(config["result_file"])
    result_path.unlink(missing_ok=True)
    # the engines read their memory files from mem/ in the working folder (MEM_DIR)
    plusargs = [
        f"+log_file={config['log_file']}",
        f"+n_vectors={config['n_vectors']}",
        f"+max_cycles={config['max_cycles']}",
    ] + [f"+{prefix}={path}" for prefix, path in config["unit_inputs"].items()]
    sim_log = work / "sim.log"
    with verilator_environment():
        runner = cocotb_runner()
        try:
            runner.test(
                test_module=BENCH_MODULE,
                hdl_toplevel=rtl.HARNESS_TOP,
                hdl_toplevel_lang="verilog",
                build_dir=build_dir / "obj",
                test_dir=work,
                plusargs=plusargs,
                extra_env={"CODESIGN_BENCH_CONFIG": str(config_path)},
                results_xml=str(work / "results.xml"),
                log_file=sim_log,
            )
        except (RuntimeError, SystemExit) as error:
            # the runner exits when the bench fails; a mismatch still leaves the result file
            log.info("cocotb reported a failure (%s); see %s", error, sim_log)
    if not result_path.is_file():
        raise ToolError(f"RTL simulation did not finish; log {sim_log}:\n{tail(sim_log)}")
    result: dict[str, Any] = json.loads(result_path.read_text())
    return result


def _entry(
    name: str,
    measured: dict[str, Any],
    est_cycles: int,
    est_ii: int,
    ideal_ii: int,
    work: tuple[int, int],
    n_vectors: int,
    accum: list[RawArray],
    outputs: list[RawArray],
    saturated: int,
) -> RtlsimEntry:
    """An rtlsim.json entry: nonzero fraction over the pre-activation (pre-cast) values,
    saturated fraction over the output values; `work`: MACs a vector and multipliers."""
    values = sum(a.size for a in accum)
    nonzero = sum(int(np.count_nonzero(a)) for a in accum)
    output_values = sum(o.size for o in outputs)
    sim_ii = measured["sim_ii"]
    return RtlsimEntry(
        name=name,
        sim_cycles=measured["sim_cycles"],
        est_cycles=est_cycles,
        sim_ii=sim_ii,
        est_ii=est_ii,
        ideal_ii=ideal_ii,
        # a layer without multipliers has nothing to idle but its streams, whose bound moves
        # with the widths chosen for it: no efficiency rather than a flattering 1.0
        efficiency=ideal_ii / sim_ii if sim_ii and work[1] else None,
        utilisation=utilisation(*work, sim_ii),
        outputs_match=measured["outputs_match"],
        mismatches=measured["mismatches"],
        first_mismatch=measured["first_mismatch"],
        n_vectors=n_vectors,
        nonzero_output_fraction=nonzero / values if values else 0.0,
        saturated_fraction=saturated / output_values if output_values else 0.0,
    )


def _project_files(project: Path, expected: dict[str, str]) -> dict[str, str]:
    """The project's copies (under rtl/) of the files `expected` names, in its order. A
    missing file is an error; one that differs from what generate writes for design.json is
    simulated as it is, with a warning (an edited design is the user's)."""
    files = {}
    for name, wanted in expected.items():
        path = project / rtl.RTL_FOLDER / name
        if not path.is_file():
            raise OutputDirError(f"{project}: {rtl.RTL_FOLDER}/{name} is missing; run generate")
        files[name] = path.read_text()
        if files[name] != wanted:
            log.warning(
                "%s differs from what generate writes for design.json; simulating it as it is",
                path,
            )
    return files


def _vector_count(available: int, requested: int | None, path: Path) -> int:
    """How many vectors to simulate: all, or the first `requested`; at least two when there
    are two, as the initiation interval is measured between successive vectors."""
    if requested is not None and requested < 1:
        raise CodesignError(f"the number of vectors must be at least 1, got {requested}")
    if available < 1:
        raise OutputDirError(f"{path} holds no test vectors; run generate")
    count = available if requested is None else min(requested, available)
    if requested is not None and requested > available:
        log.warning("only %d test vectors in %s; simulating those", available, path)
    if count == 1 and available > 1:
        log.info("simulating 2 vectors: the initiation interval needs two")
        count = 2
    return count


def simulate(
    project: Path,
    layer: str | None = None,
    n_vectors: int | None = None,
    cache_dir: Path | None = None,
    fast_sim: bool | None = None,
) -> dict[str, Any]:
    """Build (or reuse) and run the RTL of `project`, or of one `layer` of it, in Verilator.

    A single layer is fed the reference outputs of the layer before it. `fast_sim` builds for
    simulation speed (FAST_SIM_ARGS); by default only runs planned to last more than
    FAST_SIM_ABOVE_CYCLES cycles do. Returns the
    `codesign.rtlsim/1` dict (§7 keys, plus `first_mismatch` with layer, phase, vector, index,
    expected and got, and the build/run figures); the caller writes it as rtlsim.json.
    Raises ToolError when Verilator, make or g++ is missing or the simulation breaks down.
    """
    project = Path(project).resolve()
    tools.verilator_bin_dir()  # fail before any work when Verilator is missing
    graph = load_graph(project)
    dut = _dut(graph, layer)
    operand_files = [
        _value_file(project, name)
        for name in (graph.inputs_of(dut.layers[0]) if layer is not None else (GRAPH_INPUT,))
    ]
    for path in operand_files:
        if not path.is_file():
            raise OutputDirError(f"{project}: no test vectors ({path}); run generate")
    operands = [vectors.parse_rows(path.read_text()) for path in operand_files]
    count = _vector_count(min(len(rows) for rows in operands), n_vectors, operand_files[0])

    # the project's own RTL (rtl/*.sv, rtl/mem/*.mem), as a synthesis tool would read it; a
    # layer alone gets a harness of its own
    rendered = rtl.sources(dut, network=len(dut.layers) > 1)
    own_harness = layer is not None
    design = {k: v for k, v in rendered.items() if not (own_harness and k == rtl.HARNESS_FILE)}
    sources = _project_files(project, design)
    if own_harness:  # last, as in the compilation order
        sources[rtl.HARNESS_FILE] = rendered[rtl.HARNESS_FILE]
    memories = {
        f"{rtl.MEM_FOLDER}/{name}": content.decode()
        for item in dut.layers
        for name, content in rtl.memory_files(item).items()
    }
    memory_files = _project_files(project, memories)

    work = project / WORK_FOLDER / ("network" if layer is None else dut.layers[0].name)
    if work.exists():
        shutil.rmtree(work)
    (work / rtl.MEM_FOLDER).mkdir(parents=True)
    for name, text in memory_files.items():
        (work / name).write_text(text)

    config = _bench_config(project, graph, dut, count, work)
    if fast_sim is None:
        fast_sim = config["planned_cycles"] > FAST_SIM_ABOVE_CYCLES
    try:
        build_dir, build_seconds = ensure_build(sources, cache_dir, fast_sim)
        started = time.perf_counter()
        measured = _run(build_dir, config, work)
    except KeyboardInterrupt:  # an interrupted run leaves no half-written working folder
        shutil.rmtree(work, ignore_errors=True)
        raise
    run_seconds = time.perf_counter() - started

    if layer is None:
        traces = reference.run(graph, operands[0][:count])
    else:
        traces = [reference.layer_forward(dut.layers[0], [rows[:count] for rows in operands])]
    estimate = network_cycles(dut)
    layers = []
    for item, trace, cycles in zip(dut.layers, traces, estimate.layers, strict=True):
        layers.append(_layer_entry(item.name, measured, cycles, count, trace))
    names = reference.computing_layers(dut)
    computing = [t for t in traces if t.name in names]
    network = _entry(
        "network" if layer is None else dut.layers[0].name,
        measured["entries"]["network"],
        estimate.est_cycles,
        estimate.est_ii,
        estimate.ideal_ii,
        (estimate.macs, estimate.multipliers),
        count,
        [t.accum for t in computing or traces],
        [t.output for t in traces],
        sum(t.saturated for t in traces),
    )
    record = RtlsimRecord(
        scope="network" if layer is None else "layer",
        layers=tuple(layers),
        network=network,
        outputs_match=network.outputs_match,
        first_mismatch=measured["first_mismatch"],
        timed_out=measured["timed_out"],
        n_vectors=count,
        build_seconds=build_seconds,
        build_cached=build_seconds == 0.0,
        fast_sim_build=fast_sim,
        build_dir=str(build_dir),
        run_seconds=run_seconds,
        simulated_cycles=measured["end_cycle"],
        sim_cycles_per_second=measured.get("sim_cycles_per_second"),
        # per harness phase (isolated, streaming, stalled): cycles, seconds, cycles_per_second
        phases=measured.get("phases", {}),
    )
    return record.to_json()


def _layer_entry(
    name: str, measured: dict[str, Any], cycles: LayerCycles, count: int, trace: LayerTrace
) -> RtlsimEntry:
    return _entry(
        name,
        measured["entries"][name],
        cycles.est_cycles,
        cycles.est_ii,
        cycles.ideal_ii,
        (cycles.macs, cycles.multipliers),
        count,
        [trace.accum],
        [trace.output],
        trace.saturated,
    )
