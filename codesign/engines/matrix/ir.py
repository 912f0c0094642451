"""The matrix engine's part of the IR passes and records: formats, block-CSR, tiling, design.json.

Formats (design.md §4): weights `weight_bits` wide with integer bits from the largest weight;
accumulators `input + weight + ceil(log2(fan_in + 1))` bits wide, and biases quantised with
the accumulator's fraction bits and one bit less range, so no sum of products plus bias can
overflow. The block pattern comes from the zeros of the float weights (a block is kept when
any of its weights is nonzero), so a model pruned elsewhere gets sparse kernels too; a kept
block is stored whole, zeros inside it included; pruned blocks are absent.

Tiling: tiles = ceil(nnz_blocks / RF) for the requested RF; the layer's RF is then
ceil(nnz_blocks / tiles), which is at most the requested one and leaves no tile idle for a
whole cycle (so the compute stage meets ceil(MACs / multipliers)). Blocks are dealt in storage
order, RF consecutive blocks per tile, so tile `t` computes block `t·RF + c` in cycle `c`. A
layer with fewer kept blocks than the requested RF uses RF = nnz_blocks (one tile); an
all-zero layer keeps one idle tile so the datapath still produces its bias.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from codesign.engines.base import activation_fields, activation_text
from codesign.errors import CodesignError
from codesign.ir.blocks import block_mask, block_view
from codesign.ir.fixed import MAX_WIDTH, FixedPoint, Overflow, Rounding, integer_bits_for
from codesign.ir.graph import (
    Activation,
    BlockCSR,
    Conv2d,
    ConvGeometry,
    Dense,
    LayerFormats,
    Tiling,
    ceil_div,
)
from codesign.precision import Precision, spec_for

FORMAT_KEYS = ("input", "weight", "bias", "accum", "output")


def quantise(
    layer: Dense,
    input_format: FixedPoint,
    output_format: FixedPoint,
    weight_bits: int,
    precision: Precision,
) -> Dense:
    names = (layer.name, layer.source_name)
    weight_format = FixedPoint(weight_bits, integer_bits_for(float(np.abs(layer.weight).max())))
    weight_spec = spec_for(precision, names, "weight")
    if weight_spec is not None:
        weight_format = weight_spec.resolve(weight_format)
    accum_width = input_format.width + weight_format.width + math.ceil(math.log2(layer.fan_in + 1))
    accum_frac = input_format.frac + weight_format.frac
    accum_spec = spec_for(precision, names, "accum")
    if accum_spec is not None:
        if accum_spec.frac is not None and accum_spec.frac != accum_frac:
            raise CodesignError(
                f"--precision: layer {layer.source_name} accumulates with {accum_frac} fraction "
                f"bits (input {input_format.frac} + weight {weight_format.frac}), not "
                f"{accum_spec.frac}; give the accumulator's width alone"
            )
        if accum_spec.width < 2:
            raise CodesignError(f"--precision: layer {layer.source_name}: accumulator too narrow")
        accum_width = accum_spec.width
    if accum_width > MAX_WIDTH:
        raise CodesignError(
            f"layer {layer.source_name}: an exact accumulator needs {accum_width} bits (input "
            f"{input_format.width} + weight {weight_format.width} + log2 of {layer.fan_in} "
            f"products), more than the {MAX_WIDTH} the reference and kernels hold; use fewer "
            "--weight-bits/--act-bits, or narrow it with --precision accum=N (it wraps)"
        )
    accum_format = FixedPoint(
        accum_width, accum_width - accum_frac, rounding=Rounding.TRN, overflow=Overflow.WRAP
    )
    # One bit narrower than the accumulator: |bias| < 2**(W-2) and |sum of products| <= 2**(W-2),
    # so the accumulator cannot overflow whatever the data (unless --precision narrows it).
    bias_format = FixedPoint(accum_width - 1, accum_width - 1 - accum_frac)
    weight_raw, weight_overflows = weight_format.quantize(layer.weight)
    # A weight pruned to zero stays exactly zero; rounding cannot revive it.
    bias_raw, _ = bias_format.quantize(layer.bias)
    formats = LayerFormats(
        input=input_format,
        weight=weight_format,
        bias=bias_format,
        accum=accum_format,
        output=output_format,
    )
    return replace(
        layer,
        formats=formats,
        weight_raw=weight_raw,
        bias_raw=bias_raw,
        weight_overflows=weight_overflows,
    )


def compress(layer: Dense, block: tuple[int, int] | None) -> Dense:
    """Block-CSR of the quantised weights at `block` (None: the layer's own block)."""
    block = block or layer.block
    if block is None:
        raise ValueError(f"layer {layer.name}: no block shape to compress at")
    layer.require_formats()
    assert layer.weight_raw is not None
    kept = block_mask(layer.weight, block)
    blocks = block_view(layer.weight_raw, block)
    block_rows, block_cols = np.nonzero(kept)  # row-major: block-rows in order, columns ascending
    row_ptr = np.concatenate([[0], np.cumsum(kept.sum(axis=1))]).astype(np.int64)
    csr = BlockCSR(
        shape=layer.shape,
        block=block,
        row_ptr=row_ptr,
        col_idx=block_cols.astype(np.int64),
        blocks=np.ascontiguousarray(blocks[block_rows, block_cols]).astype(np.int64),
    )
    return replace(layer, block=block, csr=csr)


def tiles_and_reuse(nnz_blocks: int, requested: int) -> tuple[int, int]:
    """Tiles for `nnz_blocks` kept blocks at a requested RF, and the RF those tiles need.

    ceil(nnz / tiles) cycles suffice, so no tile idles a whole cycle and the compute stage
    meets its ideal ceil(MACs / multipliers) (at most the requested RF). At least one tile.
    """
    tiles = max(1, ceil_div(nnz_blocks, max(1, min(requested, nnz_blocks))))
    return tiles, max(1, ceil_div(nnz_blocks, tiles))


def tile(layer: Dense, reuse_factor: int) -> Dense:
    if reuse_factor < 1:
        raise ValueError(f"layer {layer.name}: reuse factor must be >= 1, got {reuse_factor}")
    nnz = layer.require_csr().nnz_blocks
    tiles, effective = tiles_and_reuse(nnz, reuse_factor)
    slots = np.full(tiles * effective, -1, dtype=np.int64)
    slots[:nnz] = np.arange(nnz)
    tiling = Tiling(reuse_factor=effective, slots=slots.reshape(tiles, effective))
    return replace(layer, tiling=tiling)


# --- design.json ------------------------------------------------------------------------------


def _pair(values: Any) -> tuple[int, int]:
    return int(values[0]), int(values[1])


def _map(values: Any) -> tuple[int, int, int]:
    channels, height, width = (int(v) for v in values)
    return channels, height, width


def to_entry(layer: Dense, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
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
        "block": list(csr.block),
        "formats": {key: getattr(formats, key).to_dict() for key in FORMAT_KEYS},
        "reuse_factor": tiling.reuse_factor,
        "weight_overflows": layer.weight_overflows,
    }
    if layer.input_map is not None:
        entry["input_map"] = list(layer.input_map)
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
        if layer.groups > 1:
            entry["groups"] = layer.groups
        entry["line_values"] = layer.line_values
    return entry


def from_entry(entry: dict[str, Any], prefix: str, arrays: Any) -> Dense:
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
        **{key: FixedPoint.from_dict(entry["formats"][key]) for key in FORMAT_KEYS}
    )
    tiling = Tiling(reuse_factor=int(entry["reuse_factor"]), slots=arrays[prefix + "slots"])
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
        input_map=_map(entry["input_map"]) if "input_map" in entry else None,
    )
    if "geometry" in entry:
        g = entry["geometry"]
        geometry = ConvGeometry(
            in_channels=int(g["in_channels"]),
            in_height=int(g["in_height"]),
            in_width=int(g["in_width"]),
            kernel=_pair(g["kernel"]),
            stride=_pair(g["stride"]),
            padding=_pair(g["padding"]),
        )
        return Conv2d(
            **common,
            geometry=geometry,
            groups=int(entry.get("groups", 1)),
            line_values=int(entry["line_values"]),
        )
    return Dense(**common)


def describe(layer: Dense) -> tuple[str, list[str]]:
    parts = []
    if isinstance(layer, Conv2d):
        g = layer.conv
        parts.append(
            f"in={g.in_channels}x{g.in_height}x{g.in_width} k={g.kernel[0]}x{g.kernel[1]} "
            f"s={g.stride[0]}x{g.stride[1]} p={g.padding[0]}x{g.padding[1]}"
            + (f" groups={layer.groups}" if layer.groups > 1 else "")
        )
    if layer.input_map is not None:
        parts.append("flattened={}x{}x{}".format(*layer.input_map))
    parts.append(f"act={activation_text(layer.activation, layer.alpha)}")
    if layer.block is not None:
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
    return f" {layer.shape[0]}x{layer.shape[1]}", parts


def report_fields(layer: Dense) -> dict[str, object]:
    csr = layer.require_csr()
    formats = layer.require_formats()
    window = {}
    if isinstance(layer, Conv2d):
        # the input values the conv's line buffer holds (not its copies: see resources)
        window["line_buffer_values"] = layer.line_values
    return {
        "shape": list(layer.shape),
        "block": list(csr.block),
        "formats": {
            k: getattr(formats, k).describe() for k in ("input", "weight", "accum", "output")
        },
        "sparsity": round(layer.sparsity, 6),
        "block_sparsity": round(csr.block_sparsity, 6),
        "nnz_blocks": csr.nnz_blocks,
        "positions": layer.positions,
        # weights that saturated when quantised (a --precision weight format too narrow)
        "weight_overflows": layer.weight_overflows,
        **activation_fields(layer.activation, layer.alpha),
        **window,
    }
