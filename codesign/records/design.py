"""A quantised, tiled Graph in a project (design.json + design.npz), and its stable text form.

`csim`, `simulate` and `report` work from a project folder alone; this is how they get the
graph that `generate` emitted. Each layer's fields are its engine's (codesign.engines);
`graph_text` is the stable text form used in golden tests and in the pipeline's checkpoints.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from codesign.engines import engine_for, engine_of_kind
from codesign.errors import CodesignError, OutputDirError
from codesign.ir.graph import STREAM_ORDER, Graph, Layer, StreamWidths
from codesign.records.base import field, int_tuple, read_json

# 3: values in stream order, feature maps channel-last (H, W, C); a Dense's input_map
# 4: every layer's stream widths: in_values_per_beat (its inputs) and values_per_beat (output)
# 5: a Conv2d's line_values (its line buffer; convs stream through a sliding window)
# 6: an Add's buffer_values (its FIFOs; adds stream)
SCHEMA = "codesign.design/6"


def _layer_entry(layer: Layer, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": layer.name,
        "source_name": layer.source_name,
        "kind": layer.kind,
        "inputs": list(layer.inputs),
        "in_values_per_beat": layer.widths.input,
        "values_per_beat": layer.widths.output,
    }
    entry.update(engine_for(layer).to_entry(layer, prefix, arrays))
    return entry


def graph_to_files(graph: Graph) -> dict[str, bytes]:
    """design.json (structure, formats) and design.npz (arrays) for a tiled graph."""
    arrays: dict[str, np.ndarray] = {}
    layers = [_layer_entry(layer, f"l{i}_", arrays) for i, layer in enumerate(graph.layers)]
    design = {
        "schema": SCHEMA,
        "name": graph.name,
        "input_shape": list(graph.input_shape),
        "stream_order": STREAM_ORDER,
        "layers": layers,
    }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return {
        "design.json": (json.dumps(design, indent=2) + "\n").encode(),
        "design.npz": buffer.getvalue(),
    }


def _load_layer(entry: Any, prefix: str, arrays: Any, where: str) -> Layer:
    if not isinstance(entry, dict):
        raise OutputDirError(f"{where}: a layer entry must be an object, got {entry!r}")
    where = f"{where}, layer {entry.get('name', '?')!r}"
    try:
        engine = engine_of_kind(str(field(entry, "kind", str, where)))
        widths = StreamWidths(
            input=int(field(entry, "in_values_per_beat", int, where)),
            output=int(field(entry, "values_per_beat", int, where)),
        )
        return replace(engine.from_entry(entry, prefix, arrays), widths=widths)
    except CodesignError as error:
        raise OutputDirError(f"{where}: {error}") from None
    except KeyError as error:
        raise OutputDirError(f"{where}: key or array {error} is missing") from None
    except (TypeError, ValueError, IndexError) as error:
        raise OutputDirError(f"{where}: malformed ({error})") from None


def load_graph(project: Path) -> Graph:
    """The graph of a project, from design.json and design.npz, each checked."""
    design_path = project / "design.json"
    if not design_path.is_file():
        raise OutputDirError(f"{project}: not a codesign project (no design.json); run generate")
    where = str(design_path)
    design = read_json(design_path)
    if design.get("schema") != SCHEMA:
        raise OutputDirError(
            f"{design_path}: schema {design.get('schema')!r}, this codesign reads {SCHEMA!r}; "
            "generate the project again"
        )
    arrays_path = project / "design.npz"
    try:
        arrays = dict(np.load(arrays_path))
    except (OSError, ValueError, EOFError) as error:
        raise OutputDirError(f"{arrays_path}: cannot read the design's arrays ({error})") from None
    entries = field(design, "layers", list, where)
    layers = [_load_layer(entry, f"l{i}_", arrays, where) for i, entry in enumerate(entries)]
    if not layers:
        raise OutputDirError(f"{where}: no layers")
    return Graph(
        name=field(design, "name", str, where),
        input_shape=int_tuple(design, "input_shape", where),
        layers=tuple(layers),
    )


def graph_text(graph: Graph) -> str:
    """A stable, human-readable summary of the graph (one line per layer)."""
    lines = [f"graph {graph.name} input={list(graph.input_shape)}"]
    for layer in graph.layers:
        shape, details = engine_for(layer).describe(layer)
        parts = [f"{layer.kind} {layer.name} ({layer.source_name}){shape}"]
        if not graph.is_chain:
            parts.append("<- " + ",".join(graph.inputs_of(layer)))
        lines.append("  " + " ".join(parts + details))
    return "\n".join(lines) + "\n"
