"""The hardware cost of a pruned model: the design the default reuse rule would generate.

For a model the hardware flow can lower (codesign.frontend.lower) this is exactly what
`generate` builds: the masked model is lowered, quantised, compressed to block-CSR, tiled at the
default reuse factor (the smallest RF, uniform over the network, whose design fits the board:
DSP blocks, then the resource estimate) and costed by `codesign.hardware.network_cost`.

Models the flow cannot lower are costed with the same closed forms per prunable layer, taking a
conv as its (Cout, Cin·Kh·Kw) matrix applied at each output position:
`tiles = ceil(nnz_blocks / RF)`, RF then `ceil(nnz_blocks / tiles)`,
`multipliers = tiles·Br·Bc`, DSP blocks from the board's mode;
`in_beats = ceil(input values / P)`, `out_beats = ceil(output values / P)`, compute
`RF × output positions` cycles (MACs likewise × positions); network latency
`Σ(in_beats + compute) + out_beats(last)`. Pooling, flattening and activations cost nothing
there (the hardware IR counts their engines). For a Linear layer (one output position) these
are the formulas of `codesign.hardware`.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from codesign.boards import Board
from codesign.errors import ModelError
from codesign.frontend.prune import (
    as_matrix,
    block_grid,
    block_mask_from_scores,
    block_scores,
    kept_block_count,
    prunable_layers,
)
from codesign.passes.tile import DEFAULT_VALUES_PER_BEAT, tiles_and_reuse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerGeometry:
    name: str
    matrix: tuple[int, int]  # (Cout, Cin·Kh·Kw) or (out, in)
    positions: int  # output positions (1 for Linear)
    in_values: int
    out_values: int


@dataclass(frozen=True)
class LayerEstimate:
    name: str
    nnz_blocks: int
    reuse_factor: int
    multipliers: int
    est_dsp: int
    macs: int
    est_cycles: int


@dataclass(frozen=True)
class DesignEstimate:
    layers: tuple[LayerEstimate, ...]
    reuse_factor: int
    est_cycles: int
    est_dsp: int
    source: str  # "hardware IR" or "per-layer formulas"

    def value(self, metric: str) -> int:
        return self.est_cycles if metric == "cycles" else self.est_dsp


def geometry(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerGeometry]:
    """Matrix shape, output positions and I/O sizes of every prunable layer (one forward pass)."""
    layers = prunable_layers(model)
    seen: dict[str, tuple[int, int]] = {}
    handles = []
    for name, module in layers:

        def hook(
            _: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor, name: str = name
        ) -> None:
            seen[name] = (args[0][0].numel(), out[0].numel())

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
    result = []
    for name, module in layers:
        rows, cols = as_matrix(module.weight.detach()).shape
        in_values, out_values = seen[name]
        result.append(LayerGeometry(name, (rows, cols), out_values // rows, in_values, out_values))
    return result


class CostModel:
    """Cost of per-layer sparsities (or of a pruned model) on `board` at `block`."""

    def __init__(
        self,
        model: nn.Module,
        board: Board,
        block: tuple[int, int],
        input_shape: tuple[int, ...],
        calibration: np.ndarray,
        weight_bits: int = 8,
        act_bits: int = 16,
        balanced: bool = True,
    ) -> None:
        self.model = model
        self.board = board
        self.block = block
        self.input_shape = input_shape
        self.calibration = calibration
        self.weight_bits = weight_bits
        self.act_bits = act_bits
        self.balanced = balanced
        self.layers = geometry(model, input_shape)
        self.lowerable = self._lowers()
        self._cache: dict[tuple[int, ...], DesignEstimate] = {}

    def _lowers(self) -> bool:
        from codesign.frontend.lower import lower

        try:
            lower(self.model, "model", self.input_shape, self.block)
        except ModelError:
            return False
        return True

    def nnz_blocks(self, sparsities: dict[str, float]) -> tuple[int, ...]:
        return tuple(
            kept_block_count(g.matrix, self.block, sparsities.get(g.name, 0.0), self.balanced)
            for g in self.layers
        )

    def macs(self, layer: LayerGeometry, sparsity: float) -> int:
        nnz = kept_block_count(layer.matrix, self.block, sparsity, self.balanced)
        return nnz * self.block[0] * self.block[1] * layer.positions

    def estimate(self, sparsities: dict[str, float]) -> DesignEstimate:
        """The default-rule design with each layer pruned to `sparsities[name]`."""
        nnz = self.nnz_blocks(sparsities)
        if nnz not in self._cache:
            if self.lowerable:
                self._cache[nnz] = self._from_ir(self._masked_copy(sparsities))
            else:
                self._cache[nnz] = self._from_formulas(nnz)
        return self._cache[nnz]

    def estimate_model(self, model: nn.Module) -> DesignEstimate:
        """The default-rule design of an already pruned model (zeros read at `block`)."""
        if self.lowerable:
            return self._from_ir(model)
        counts = []
        for _, module in prunable_layers(model):
            grid = block_scores(as_matrix(module.weight.detach()), self.block)
            counts.append(int((grid > 0).sum()))
        return self._from_formulas(tuple(counts))

    def _masked_copy(self, sparsities: dict[str, float]) -> nn.Module:
        model = copy.deepcopy(self.model)
        with torch.no_grad():
            for name, module in prunable_layers(model):
                matrix = as_matrix(module.weight)
                shape = (matrix.shape[0], matrix.shape[1])
                # The pattern does not change the cost, only the count; random scores keep
                # blocks that are all zero in the dense weights from skewing it.
                scores = torch.rand(block_grid(shape, self.block)) + 1.0
                mask = block_mask_from_scores(
                    scores, shape, self.block, sparsities.get(name, 0.0), self.balanced
                )
                module.weight.copy_(torch.where(mask.reshape(module.weight.shape), 1.0, 0.0))
        return model

    def _from_ir(self, model: nn.Module) -> DesignEstimate:
        from codesign.frontend.lower import lower
        from codesign.hardware import default_reuse_factor, layer_cost, network_cost
        from codesign.passes import compress, quantise, tile

        graph = lower(model, "model", self.input_shape, self.block)
        graph = compress(quantise(graph, self.calibration, self.weight_bits, self.act_bits))
        reuse = default_reuse_factor(graph, self.board)
        graph = tile(graph, reuse)
        cost = network_cost(graph, self.board)
        layers = []
        for layer, geo in zip(graph.matrix_layers, self.layers, strict=True):
            c = layer_cost(layer, self.board)
            layers.append(
                LayerEstimate(
                    geo.name,
                    layer.require_csr().nnz_blocks,
                    c.reuse_factor,
                    c.multipliers,
                    c.est_dsp,
                    c.macs,
                    c.est_cycles,
                )
            )
        return DesignEstimate(tuple(layers), reuse, cost.est_cycles, cost.est_dsp, "hardware IR")

    def _from_formulas(self, nnz: tuple[int, ...]) -> DesignEstimate:
        largest = max(1, max(nnz))
        for reuse in range(1, largest + 1):
            design = self._at_reuse(nnz, reuse)
            if design.est_dsp <= self.board.dsp_blocks:
                return design
        return self._at_reuse(nnz, largest)

    def _at_reuse(self, nnz: tuple[int, ...], reuse: int) -> DesignEstimate:
        bits = max(self.weight_bits, self.act_bits)
        block_size = self.block[0] * self.block[1]
        layers = []
        latency = 0
        for geo, count in zip(self.layers, nnz, strict=True):
            tiles, effective = tiles_and_reuse(count, reuse)
            multipliers = tiles * block_size
            in_beats = math.ceil(geo.in_values / DEFAULT_VALUES_PER_BEAT)
            out_beats = math.ceil(geo.out_values / DEFAULT_VALUES_PER_BEAT)
            compute = effective * geo.positions
            latency += in_beats + compute
            layers.append(
                LayerEstimate(
                    geo.name,
                    count,
                    effective,
                    multipliers,
                    self.board.dsps_for(multipliers, bits),
                    count * block_size * geo.positions,
                    in_beats + compute + out_beats,
                )
            )
        latency += math.ceil(self.layers[-1].out_values / DEFAULT_VALUES_PER_BEAT)
        return DesignEstimate(
            tuple(layers),
            reuse,
            latency,
            sum(layer.est_dsp for layer in layers),
            "per-layer formulas",
        )
