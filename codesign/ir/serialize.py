"""Save a quantised, tiled Graph into a project (design.json + design.npz) and load it back.

`csim`, `simulate` and `report` work from a project folder alone; this is how they get the
graph that `generate` emitted. `graph_text` is the stable text form used in golden tests.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from codesign.errors import OutputDirError
from codesign.ir.fixed import FixedPoint
from codesign.ir.graph import (
    Activation,
    Add,
    BlockCSR,
    Conv2d,
    ConvGeometry,
    Dense,
    Graph,
    Layer,
    LayerFormats,
    Pool2d,
    PoolMode,
    Tiling,
)

SCHEMA = "codesign.design/2"
_FORMAT_KEYS = ("input", "weight", "bias", "accum", "output")


def _pair(values: Any) -> tuple[int, int]:
    return int(values[0]), int(values[1])


def _matrix_entry(layer: Dense, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    formats = layer.require_formats()
    assert layer.weight_raw is not None and layer.bias_raw is not None
    csr = layer.require_csr()
    tiling = layer.require_tiling()
    arrays.update(
        {
            prefix + "weight": layer.weight,
            prefix + "bias": layer.bias,
            prefix + "weight_raw": layer.weight_raw,
            prefix + "bias_raw": layer.bias_raw,
            prefix + "row_ptr": csr.row_ptr,
            prefix + "col_idx": csr.col_idx,
            prefix + "blocks": csr.blocks,
            prefix + "slots": tiling.slots,
        }
    )
    entry: dict[str, Any] = {
        "activation": layer.activation.value,
        "alpha": layer.alpha,
        "block": list(layer.block),
        "formats": {key: getattr(formats, key).to_dict() for key in _FORMAT_KEYS},
        "reuse_factor": tiling.reuse_factor,
        "values_per_beat": tiling.values_per_beat,
        "weight_overflows": layer.weight_overflows,
    }
    if isinstance(layer, Conv2d):
        g = layer.conv
        entry["geometry"] = {
            "in_channels": g.in_channels,
            "in_height": g.in_height,
            "in_width": g.in_width,
            "kernel": list(g.kernel),
            "stride": list(g.stride),
            "padding": list(g.padding),
        }
    return entry


def _layer_entry(layer: Layer, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": layer.name,
        "source_name": layer.source_name,
        "kind": layer.kind,
        "inputs": list(layer.inputs),
    }
    if isinstance(layer, Dense):
        entry.update(_matrix_entry(layer, prefix, arrays))
    elif isinstance(layer, Pool2d):
        entry.update(
            mode=layer.mode.value,
            channels=layer.channels,
            in_height=layer.in_height,
            in_width=layer.in_width,
            kernel=list(layer.kernel),
            stride=list(layer.stride),
            input_format=layer.in_format().to_dict(),
            output_format=layer.out_format().to_dict(),
            values_per_beat=layer.values_per_beat,
        )
    else:
        entry.update(
            features=layer.features,
            shape=list(layer.out_shape),
            activation=layer.activation.value,
            alpha=layer.alpha,
            input_formats=[f.to_dict() for f in layer.require_input_formats()],
            output_format=layer.out_format().to_dict(),
            values_per_beat=layer.values_per_beat,
        )
    return entry


def graph_to_files(graph: Graph) -> dict[str, bytes]:
    """design.json (structure, formats) and design.npz (arrays) for a tiled graph."""
    arrays: dict[str, np.ndarray] = {}
    layers = [_layer_entry(layer, f"l{i}_", arrays) for i, layer in enumerate(graph.layers)]
    design = {
        "schema": SCHEMA,
        "name": graph.name,
        "input_shape": list(graph.input_shape),
        "layers": layers,
    }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return {
        "design.json": (json.dumps(design, indent=2) + "\n").encode(),
        "design.npz": buffer.getvalue(),
    }


def _load_matrix(entry: dict[str, Any], prefix: str, arrays: Any) -> Dense:
    block = _pair(entry["block"])
    weight = arrays[prefix + "weight"]
    csr = BlockCSR(
        shape=(int(weight.shape[0]), int(weight.shape[1])),
        block=block,
        row_ptr=arrays[prefix + "row_ptr"],
        col_idx=arrays[prefix + "col_idx"],
        blocks=arrays[prefix + "blocks"],
    )
    formats = LayerFormats(
        **{key: FixedPoint.from_dict(entry["formats"][key]) for key in _FORMAT_KEYS}
    )
    tiling = Tiling(
        reuse_factor=int(entry["reuse_factor"]),
        values_per_beat=int(entry["values_per_beat"]),
        slots=arrays[prefix + "slots"],
    )
    common: dict[str, Any] = dict(
        name=entry["name"],
        source_name=entry["source_name"],
        weight=weight,
        bias=arrays[prefix + "bias"],
        activation=Activation(entry["activation"]),
        block=block,
        formats=formats,
        weight_raw=arrays[prefix + "weight_raw"],
        bias_raw=arrays[prefix + "bias_raw"],
        csr=csr,
        tiling=tiling,
        inputs=tuple(entry["inputs"]),
        alpha=float(entry["alpha"]),
        weight_overflows=int(entry.get("weight_overflows", 0)),
    )
    if entry["kind"] == "conv2d":
        g = entry["geometry"]
        geometry = ConvGeometry(
            in_channels=int(g["in_channels"]),
            in_height=int(g["in_height"]),
            in_width=int(g["in_width"]),
            kernel=_pair(g["kernel"]),
            stride=_pair(g["stride"]),
            padding=_pair(g["padding"]),
        )
        return Conv2d(**common, geometry=geometry)
    return Dense(**common)


def _load_layer(entry: dict[str, Any], prefix: str, arrays: Any) -> Layer:
    kind = entry["kind"]
    if kind in ("dense", "conv2d"):
        return _load_matrix(entry, prefix, arrays)
    if kind == "pool2d":
        return Pool2d(
            name=entry["name"],
            source_name=entry["source_name"],
            mode=PoolMode(entry["mode"]),
            channels=int(entry["channels"]),
            in_height=int(entry["in_height"]),
            in_width=int(entry["in_width"]),
            kernel=_pair(entry["kernel"]),
            stride=_pair(entry["stride"]),
            inputs=tuple(entry["inputs"]),
            input_format=FixedPoint.from_dict(entry["input_format"]),
            output_format=FixedPoint.from_dict(entry["output_format"]),
            values_per_beat=int(entry["values_per_beat"]),
        )
    if kind == "add":
        return Add(
            name=entry["name"],
            source_name=entry["source_name"],
            features=int(entry["features"]),
            inputs=tuple(entry["inputs"]),
            shape_of_output=tuple(int(v) for v in entry["shape"]),
            activation=Activation(entry["activation"]),
            alpha=float(entry["alpha"]),
            input_formats=tuple(FixedPoint.from_dict(f) for f in entry["input_formats"]),
            output_format=FixedPoint.from_dict(entry["output_format"]),
            values_per_beat=int(entry["values_per_beat"]),
        )
    raise OutputDirError(f"design.json: layer {entry['name']!r} has unknown kind {kind!r}")


def load_graph(project: Path) -> Graph:
    design_path = project / "design.json"
    if not design_path.is_file():
        raise OutputDirError(f"{project}: not a codesign project (no design.json); run generate")
    design = json.loads(design_path.read_text())
    if design.get("schema") != SCHEMA:
        raise OutputDirError(
            f"{design_path}: schema {design.get('schema')!r}, this codesign reads {SCHEMA!r}; "
            "generate the project again"
        )
    arrays = np.load(project / "design.npz")
    layers = [_load_layer(entry, f"l{i}_", arrays) for i, entry in enumerate(design["layers"])]
    return Graph(
        name=design["name"], input_shape=tuple(design["input_shape"]), layers=tuple(layers)
    )


def graph_text(graph: Graph) -> str:
    """A stable, human-readable summary of the graph (one line per layer)."""
    lines = [f"graph {graph.name} input={list(graph.input_shape)}"]
    for layer in graph.layers:
        parts = [f"{layer.kind} {layer.name} ({layer.source_name})"]
        if not graph.is_chain:
            parts.append("<- " + ",".join(graph.inputs_of(layer)))
        if isinstance(layer, Dense):
            parts[0] += f" {layer.shape[0]}x{layer.shape[1]}"
            if isinstance(layer, Conv2d):
                g = layer.conv
                parts.append(
                    f"in={g.in_channels}x{g.in_height}x{g.in_width} k={g.kernel[0]}x{g.kernel[1]} "
                    f"s={g.stride[0]}x{g.stride[1]} p={g.padding[0]}x{g.padding[1]}"
                )
            parts.append(f"act={_activation_text(layer.activation, layer.alpha)}")
            parts.append(f"block={layer.block[0]}x{layer.block[1]}")
            if layer.formats is not None:
                f = layer.formats
                parts.append(
                    f"in={f.input.describe()} w={f.weight.describe()} acc={f.accum.describe()} "
                    f"out={f.output.describe()}"
                )
            if layer.csr is not None:
                parts.append(f"nnz_blocks={layer.csr.nnz_blocks}")
            if layer.tiling is not None:
                parts.append(f"rf={layer.tiling.reuse_factor} tiles={layer.tiling.tiles}")
        elif isinstance(layer, Pool2d):
            parts[0] += f" {layer.channels}x{layer.in_height}x{layer.in_width}"
            parts.append(f"{layer.mode.value} k={layer.kernel[0]}x{layer.kernel[1]}")
            parts.append(f"s={layer.stride[0]}x{layer.stride[1]}")
            if layer.output_format is not None:
                parts.append(f"out={layer.output_format.describe()}")
        else:
            parts[0] += f" {layer.features}"
            parts.append(f"act={_activation_text(layer.activation, layer.alpha)}")
            if layer.output_format is not None and layer.input_formats is not None:
                ins = ",".join(f.describe() for f in layer.input_formats)
                parts.append(f"in={ins} out={layer.output_format.describe()}")
        lines.append("  " + " ".join(parts))
    return "\n".join(lines) + "\n"


def _activation_text(activation: Activation, alpha: float) -> str:
    if activation is Activation.LEAKY_RELU:
        return f"{activation.value}({alpha:g})"
    return activation.value
