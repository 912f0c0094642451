"""Save a quantised, tiled Graph into a project (design.json + design.npz) and load it back.

`csim`, `simulate` and `report` work from a project folder alone; this is how they get the
graph that `generate` emitted. `graph_text` is the stable text form used in golden tests.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from codesign.ir.fixed import FixedPoint
from codesign.ir.graph import Activation, BlockCSR, Dense, Graph, LayerFormats, Tiling

SCHEMA = "codesign.design/1"
_FORMAT_KEYS = ("input", "weight", "bias", "accum", "output")


def graph_to_files(graph: Graph) -> dict[str, bytes]:
    """design.json (structure, formats) and design.npz (arrays) for a tiled graph."""
    arrays: dict[str, np.ndarray] = {}
    layers = []
    for index, layer in enumerate(graph.layers):
        formats = layer.require_formats()
        assert layer.weight_raw is not None and layer.bias_raw is not None
        csr = layer.require_csr()
        tiling = layer.require_tiling()
        prefix = f"l{index}_"
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
        layers.append(
            {
                "name": layer.name,
                "source_name": layer.source_name,
                "kind": layer.kind,
                "activation": layer.activation.value,
                "block": list(layer.block),
                "formats": {key: getattr(formats, key).to_dict() for key in _FORMAT_KEYS},
                "reuse_factor": tiling.reuse_factor,
                "values_per_beat": tiling.values_per_beat,
            }
        )
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


def load_graph(project: Path) -> Graph:
    design_path = project / "design.json"
    if not design_path.is_file():
        from codesign.errors import OutputDirError

        raise OutputDirError(f"{project}: not a codesign project (no design.json); run generate")
    design = json.loads(design_path.read_text())
    arrays = np.load(project / "design.npz")
    layers = []
    for index, entry in enumerate(design["layers"]):
        prefix = f"l{index}_"
        block = (int(entry["block"][0]), int(entry["block"][1]))
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
        layers.append(
            Dense(
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
            )
        )
    return Graph(
        name=design["name"], input_shape=tuple(design["input_shape"]), layers=tuple(layers)
    )


def graph_text(graph: Graph) -> str:
    """A stable, human-readable summary of the graph (one line per layer)."""
    lines = [f"graph {graph.name} input={list(graph.input_shape)}"]
    for layer in graph.layers:
        shape = f"{layer.out_features}x{layer.in_features}"
        parts = [f"{layer.kind} {layer.name} ({layer.source_name}) {shape}"]
        parts.append(f"act={layer.activation.value} block={layer.block[0]}x{layer.block[1]}")
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
        lines.append("  " + " ".join(parts))
    return "\n".join(lines) + "\n"
