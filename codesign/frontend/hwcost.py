"""The hardware cost of a pruned model: the design the uniform reuse rule would generate.

One cost model: whatever the model, its matrix layers become IR layers, are compressed at the
block, folded by the uniform rule (codesign.passes.fold: the smallest uniform RF whose design
fits the board's DSP blocks, M20K, ALMs and registers, 4-value streams; `generate --reuse
uniform`) and costed by the engines (codesign.cost). For a model the hardware flow can lower
(codesign.frontend.lower) this is exactly what `generate --reuse uniform` builds, pooling and
adds included ("hardware IR"); the default folding of `generate` differs (per-layer RFs and
stream widths: benchmarks/results/folding.md). A model it cannot
lower is costed as the chain of its prunable layers alone ("prunable layers"), with the widths
of `--weight-bits`/`--act-bits` (the cost depends on widths, not on calibrated ranges): a
Linear applied once is a Dense and a plain Conv2d (no groups or dilation, integer padding)
a Conv2d, as lowering would make them; any other (a Linear applied at several positions, a
grouped, dilated or "same"-padded conv) is its matrix applied to each of its measured output
positions' patches streamed in whole (im2col), the nearest design the matrix engine can
build. What lies between them (activations, pooling, unsupported layers) costs nothing there.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from codesign.boards import Board
from codesign.cost import layer_cost, network_cost
from codesign.engines import engine_for, matrix_layers
from codesign.errors import ModelError
from codesign.frontend.prune import (
    as_matrix,
    block_grid,
    block_mask_from_scores,
    kept_block_count,
    prunable_layers,
)
from codesign.ir.fixed import FixedPoint
from codesign.ir.graph import Conv2d, ConvGeometry, Dense, Graph, Layer
from codesign.passes import BuildOptions, build, compress, tile
from codesign.passes.fold import default_reuse_factor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerGeometry:
    name: str
    matrix: tuple[int, int]  # (Cout, Cin·Kh·Kw) or (out, in)
    positions: int  # output positions (1 for a Linear applied once)
    conv: ConvGeometry | None = None  # where the matrix is applied (None: once, a Dense)


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
    source: str  # "hardware IR" or "prunable layers"

    def value(self, metric: str) -> int:
        return self.est_cycles if metric == "cycles" else self.est_dsp


def geometry(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerGeometry]:
    """Matrix shape, output positions and placement of every prunable layer (one forward
    pass)."""
    layers = prunable_layers(model)
    seen: dict[str, tuple[tuple[int, ...], int]] = {}
    handles = []
    for name, module in layers:

        def hook(
            _: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor, name: str = name
        ) -> None:
            seen[name] = tuple(args[0][0].shape), out[0].numel()

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
        in_shape, out_values = seen[name]
        positions = out_values // rows
        conv = _placement(module, in_shape, cols, positions)
        result.append(LayerGeometry(name, (rows, cols), positions, conv))
    return result


def _placement(
    module: nn.Module, in_shape: tuple[int, ...], cols: int, positions: int
) -> ConvGeometry | None:
    """Where a layer's matrix is applied: once (None), as a plain Conv2d, or to `positions`
    patches of `cols` values streamed in whole (see the module docstring)."""
    if positions == 1 and isinstance(module, nn.Linear):
        return None
    if (
        isinstance(module, nn.Conv2d)
        and module.groups == 1
        and tuple(module.dilation) == (1, 1)
        and not isinstance(module.padding, str)
        and len(in_shape) == 3
    ):
        plain = ConvGeometry(
            in_channels=int(in_shape[0]),
            in_height=int(in_shape[1]),
            in_width=int(in_shape[2]),
            kernel=(int(module.kernel_size[0]), int(module.kernel_size[1])),
            stride=(int(module.stride[0]), int(module.stride[1])),
            padding=(int(module.padding[0]), int(module.padding[1])),
        )
        if plain.patch == cols and plain.positions == positions:
            return plain
    return ConvGeometry(in_channels=cols, in_height=1, in_width=positions, kernel=(1, 1))


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
        # random block scores for the masked copies: the global generator where the model
        # lowers (as before), a seeded one of its own otherwise, so that costing a model never
        # changes the randomness of its training
        self._scores = None if self.lowerable else torch.Generator().manual_seed(0)

    def _lowers(self) -> bool:
        from codesign.frontend.lower import lower

        try:
            lower(self.model, "model", self.input_shape)
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
            self._cache[nnz] = self.estimate_model(self._masked_copy(sparsities))
        return self._cache[nnz]

    def estimate_model(self, model: nn.Module) -> DesignEstimate:
        """The default-rule design of an already pruned model (zeros read at `block`)."""
        if self.lowerable:
            return self._from_ir(model)
        return self._from_layers(model)

    def _masked_copy(self, sparsities: dict[str, float]) -> nn.Module:
        model = copy.deepcopy(self.model)
        with torch.no_grad():
            for name, module in prunable_layers(model):
                matrix = as_matrix(module.weight)
                shape = (matrix.shape[0], matrix.shape[1])
                # The pattern does not change the cost, only the count; random scores keep
                # blocks that are all zero in the dense weights from skewing it. The kept
                # weights are random too (0.5 to 1 in size, either sign): at RF 1 the weights
                # are constants, and equal or tiny ones would share or skip multipliers
                # (engines/matrix/cost.py), which the trained weights need not do.
                scores = torch.rand(block_grid(shape, self.block), generator=self._scores) + 1.0
                mask = block_mask_from_scores(
                    scores, shape, self.block, sparsities.get(name, 0.0), self.balanced
                )
                size = torch.rand(module.weight.shape, generator=self._scores) * 0.5 + 0.5
                sign = torch.randint(0, 2, module.weight.shape, generator=self._scores) * 2 - 1
                values = (size * sign).to(module.weight.dtype)
                module.weight.copy_(torch.where(mask.reshape(module.weight.shape), values, 0.0))
        return model

    def _from_ir(self, model: nn.Module) -> DesignEstimate:
        from codesign.frontend.lower import lower

        options = BuildOptions(
            calibration=self.calibration,
            board=self.board,
            block=self.block,
            weight_bits=self.weight_bits,
            act_bits=self.act_bits,
        )
        graph = build(lower(model, "model", self.input_shape), options, until="compress")
        return self._design(graph, "hardware IR")

    def _from_layers(self, model: nn.Module) -> DesignEstimate:
        """The prunable layers as a chain of matrix layers at the configured widths."""
        activation = FixedPoint(self.act_bits, 1)
        layers: list[Layer] = []
        for geo, (_, module) in zip(self.layers, prunable_layers(model), strict=True):
            weight = as_matrix(module.weight.detach()).double().numpy()
            layer: Dense = (
                Conv2d(geo.name, geo.name, weight, np.zeros(weight.shape[0]), geometry=geo.conv)
                if geo.conv is not None
                else Dense(geo.name, geo.name, weight, np.zeros(weight.shape[0]))
            )
            engine = engine_for(layer)
            layers.append(engine.quantise(layer, (activation,), activation, self.weight_bits, {}))
        graph = compress(Graph("model", self.input_shape, tuple(layers)), self.block)
        return self._design(graph, "prunable layers")

    def _design(self, compressed: Graph, source: str) -> DesignEstimate:
        reuse = default_reuse_factor(compressed, self.board)
        graph = tile(compressed, reuse)
        cost = network_cost(graph, self.board)
        layers = []
        for layer, geo in zip(matrix_layers(graph), self.layers, strict=True):
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
        return DesignEstimate(tuple(layers), reuse, cost.est_cycles, cost.est_dsp, source)
