"""codesign's block-sparse dense kernel inside hls4ml, through hls4ml's extension API.

`register()` adds to hls4ml 1.3 (Quartus backend):
- a layer type `BlockSparseDense` (`register_layer`): the kept blocks of a weight matrix in
  block-CSR order, their block-columns, and the tiling (which block each tile computes in each
  cycle), as in our IR;
- its config and function-call templates (`register_template`; the config struct is rendered
  from `hls_templates/hls4ml/block_sparse_dense_config.h.j2`) and its C++ kernel,
  `hls_templates/hls4ml/nnet_block_sparse_dense.h` (`register_source`: the Quartus writer copies
  it to `firmware/nnet_utils/`); the kernel is the arithmetic of our own layers, so
  `compile()`/`predict()` give our project's outputs bit for bit;
- an optimizer pass in the `quartus:optimize` flow (`register_pass`) that replaces every Dense
  layer whose configuration sets `CodesignBlock` (e.g. `[1, 4]`) and that has pruned blocks at
  that block shape by a `BlockSparseDense` with the layer's reuse factor (`CodesignReuse` if
  set, else hls4ml's). It runs before the
  Quartus type and resource-strategy passes, so it reads the weights in hls4ml's own layout
  (n_in x n_out, as Keras stores them; the PyTorch converter has transposed them by then).

`convert_sparse(graph, folder)` does it for a graph of ours: the dense baseline's conversion
(`hls4ml_dense`) with `CodesignBlock` set on every layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hls4ml
import numpy as np
from hls4ml.backends.template import (
    FunctionCallTemplate,
    LayerConfigTemplate,
)
from hls4ml.model.attributes import (
    Attribute,
    TypeAttribute,
    WeightAttribute,
)
from hls4ml.model.layers import Layer
from hls4ml.model.optimizer import OptimizerPass

from codesign.baseline import hls4ml_dense
from codesign.emit.plan import template_environment
from codesign.ir.blocks import block_mask, block_view
from codesign.ir.graph import Graph, ceil_div
from codesign.package_data import data_dir

LAYER_KIND = "BlockSparseDense"
PASS_NAME = "codesign_block_sparse_dense"
FLOW = "quartus:optimize"
HEADER = "nnet_block_sparse_dense.h"
# hls4ml layer config keys (the layer attributes are codesign_block and codesign_reuse): the
# block shape, and optionally our reuse factor, which hls4ml's Dense would round to one its
# own kernel accepts.
BLOCK_KEY = "CodesignBlock"
REUSE_KEY = "CodesignReuse"
_registered = False


class BlockSparseDense(Layer):  # type: ignore[misc]
    """y = W x + b with W stored as its kept blocks only (block-CSR) and tiled over time."""

    _expected_attributes = [
        Attribute("n_in"),
        Attribute("n_out"),
        Attribute("block_rows"),
        Attribute("block_cols"),
        Attribute("nnz_blocks"),
        Attribute("tiles"),
        WeightAttribute("weight"),
        WeightAttribute("bias"),
        TypeAttribute("weight"),
        TypeAttribute("bias"),
        TypeAttribute("accum"),
    ]

    def initialize(self) -> None:
        shape = list(self.get_input_variable().shape)
        shape[-1] = self.attributes["n_out"]
        self.add_output_variable(shape)
        # Precisions come from the layer's configuration, as for the Dense layer it replaces.
        self.add_weights_variable(name="weight", var_name="w{index}", data="weight")
        self.add_weights_variable(name="bias", var_name="b{index}", data="bias")


CONFIG_TEMPLATE = "hls4ml/block_sparse_dense_config.h.j2"
_CALL = "nnet::block_sparse_dense<{input_t}, {output_t}, {config}>({input}, {output}, {w}, {b});"


class BlockSparseDenseConfigTemplate(LayerConfigTemplate):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(BlockSparseDense)
        self.template = template_environment("hls_templates").get_template(CONFIG_TEMPLATE)

    def format(self, node: Any) -> str:
        view = {
            key: node.get_attr(key)
            for key in (
                "n_in",
                "n_out",
                "block_rows",
                "block_cols",
                "padded_inputs",
                "padded_outputs",
                "nnz_blocks",
                "tiles",
                "cycles",
                "block_col",
                "slot_block",
                "slot_row",
            )
        }
        view.update(
            index=node.index,
            accum_t=node.get_attr("accum_t").name,
            bias_t=node.get_weights("bias").type.name,
            weight_t=node.get_weights("weight").type.name,
        )
        return str(self.template.render(**view))


class BlockSparseDenseFunctionTemplate(FunctionCallTemplate):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(BlockSparseDense, include_header=[f"nnet_utils/{HEADER}"])
        self.template = _CALL

    def format(self, node: Any) -> str:
        params = self._default_function_params(node)
        params["w"] = node.get_weights("weight").name
        params["b"] = node.get_weights("bias").name
        return str(self.template.format(**params))


class UseBlockSparseDense(OptimizerPass):  # type: ignore[misc]
    """Dense layers with `CodesignBlock` set and pruned blocks become BlockSparseDense."""

    def match(self, node: Any) -> bool:
        if node.class_name != "Dense" or node.get_attr("codesign_block") is None:
            return False
        block = _block(node.get_attr("codesign_block"))
        kept = block_mask(_weight(node), block)
        return bool(kept.any() and not kept.all())

    def transform(self, model: Any, node: Any) -> bool:
        block = _block(node.get_attr("codesign_block"))
        attributes = block_sparse_attributes(
            _weight(node),
            np.asarray(node.get_weights("bias").data, dtype=np.float64),
            block,
            int(node.get_attr("codesign_reuse") or node.get_attr("reuse_factor")),
        )
        replacement = model.make_node(
            LAYER_KIND, node.name, attributes, list(node.inputs), list(node.outputs)
        )
        model.replace_node(node, replacement)
        return True


def block_sparse_attributes(
    weight: np.ndarray, bias: np.ndarray, block: tuple[int, int], reuse_factor: int
) -> dict[str, Any]:
    """Block-CSR and tiling of `weight` (out x in) as BlockSparseDense attributes.

    The same rules as codesign.passes.compress and codesign.passes.fold.tile: kept blocks in
    row-major order, RF capped at the kept blocks, RF consecutive blocks per tile.
    """
    rows, cols = weight.shape
    br, bc = block
    kept = block_mask(weight, block)
    block_rows, block_cols = np.nonzero(kept)
    nnz = int(block_rows.size)
    rf = max(1, min(reuse_factor, nnz))
    tiles = max(1, ceil_div(nnz, rf))
    flat_slots = np.full(tiles * rf, -1, dtype=np.int64)
    flat_slots[:nnz] = np.arange(nnz)
    slots: list[list[int]] = flat_slots.reshape(tiles, rf).tolist()
    padded_outputs = ceil_div(rows, br) * br
    padded_bias = np.zeros(padded_outputs)
    padded_bias[:rows] = bias
    return {
        "n_in": cols,
        "n_out": rows,
        "block_rows": br,
        "block_cols": bc,
        "padded_inputs": ceil_div(cols, bc) * bc,
        "padded_outputs": padded_outputs,
        "nnz_blocks": nnz,
        "tiles": tiles,
        "cycles": rf,  # the reuse factor, capped at the kept blocks as the tile pass does
        "block_col": [int(c) for c in block_cols],
        "slot_block": slots,
        "slot_row": [[int(block_rows[k]) if k >= 0 else -1 for k in row] for row in slots],
        "weight_data": block_view(weight, block)[block_rows, block_cols].reshape(-1),
        "bias_data": padded_bias,
    }


def register() -> None:
    """Register the layer, its templates, its kernel and the pass with hls4ml (once)."""
    global _registered
    if _registered:
        return
    hls4ml.model.layers.register_layer(LAYER_KIND, BlockSparseDense)
    backend = hls4ml.backends.get_backend(hls4ml_dense.BACKEND)
    backend.register_template(BlockSparseDenseConfigTemplate)
    backend.register_template(BlockSparseDenseFunctionTemplate)
    backend.register_source(data_dir("hls_templates") / "hls4ml" / HEADER)
    backend.register_pass(PASS_NAME, UseBlockSparseDense, flow=FLOW)
    _registered = True


def convert_sparse(graph: Graph, output_dir: Path, reuse: Mapping[str, int] | None = None) -> Any:
    """hls4ml's Quartus project of `graph` with our kernel for every layer with pruned blocks.

    Formats as in the dense baseline; each layer's block shape and reuse factor are ours.
    """
    register()
    layers = hls4ml_dense.dense_layers(graph)
    blocks = {layer.name: list(layer.require_csr().block) for layer in layers}
    reuse = reuse or {layer.name: layer.require_tiling().reuse_factor for layer in layers}
    extra: dict[str, Mapping[str, Any]] = {BLOCK_KEY: blocks, REUSE_KEY: dict(reuse)}
    return hls4ml_dense.convert(graph, output_dir, reuse, extra=extra)


def sparse_layers(hls_model: Any) -> list[str]:
    """Names of the layers that use our kernel."""
    return [node.name for node in hls_model.get_layers() if node.class_name == LAYER_KIND]


def _weight(node: Any) -> np.ndarray:
    """The Dense layer's weights as out x in (ours and PyTorch's layout)."""
    weight = np.asarray(node.get_weights("weight").data, dtype=np.float64)
    n_in, n_out = int(node.get_attr("n_in")), int(node.get_attr("n_out"))
    if weight.shape != (n_in, n_out) or node.get_attr("_weights_transposed", False):
        raise ValueError(
            f"{node.name}: expected hls4ml's n_in x n_out weights ({n_in}, {n_out}) before its "
            f"resource strategy, got {weight.shape}"
        )
    return weight.T


def _block(value: Any) -> tuple[int, int]:
    rows, cols = (int(v) for v in (value.split("x") if isinstance(value, str) else value))
    return rows, cols
