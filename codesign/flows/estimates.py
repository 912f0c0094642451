"""The estimates of a built graph on a board, as the report.json record.

Every figure comes from the one cost model (codesign.cost over the engines); the layer's own
fields (shape, block, formats, ...) from its engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from codesign.boards import Board
from codesign.cost import (
    check_fit,
    graph_layer_resources,
    layer_cost,
    layer_energy,
    model_description,
    network_cost,
    network_energy,
    network_resources,
)
from codesign.cost.cycles import utilisation
from codesign.engines import engine_for, matrix_layers
from codesign.ir.graph import STREAM_ORDER, Graph
from codesign.records.report import LayerReport, Report, Totals
from codesign.reference import LayerTrace

RESOURCE_MODEL = {
    "kind": "estimate",
    "source": "the engines' models (codesign/engines/, summed by codesign.cost.resources; "
    "Arria 10 M20K/MLAB/ALM rules)",
    "calibration": "Dense engines against Yosys (Cyclone V proxy): "
    "benchmarks/results/resource_model.md; conv, pooling and add engines not calibrated",
}


def build_report(
    graph: Graph,
    board: Board,
    model_name: str,
    bits: tuple[int, int],
    digest: str,
    traces: Sequence[LayerTrace],
    accuracy: Mapping[str, Any] | None = None,
) -> Report:
    """`bits`: weight and activation widths; `traces`: the reference on the test vectors."""
    estimates = graph_layer_resources(graph, board)
    layers = []
    for layer, resources, trace in zip(graph.layers, estimates, traces, strict=True):
        engine = engine_for(layer)
        c = layer_cost(layer, board)
        layers.append(
            LayerReport(
                name=layer.name,
                source_name=layer.source_name,
                kind=layer.kind,
                inputs=graph.inputs_of(layer),
                output_shape=layer.out_shape,
                engine_fields=engine.report_fields(layer),
                reuse_factor=c.reuse_factor if engine.folded else None,
                tiles=c.tiles if engine.folded else None,
                multipliers=c.multipliers,
                macs=c.macs,
                est_dsp=c.est_dsp,
                est_cycles=c.est_cycles,
                est_ii=c.est_ii,
                ideal_ii=c.ideal_ii,
                est_latency_us=round(c.est_cycles / board.clock_mhz, 4),
                resources=resources.to_json(),
                energy=layer_energy(layer, board).to_json(),
                overflows=int(trace.saturated),
                accum_overflows=int(trace.accum_overflows),
                stream_widths={"input": layer.widths.input, "output": layer.widths.output},
                est_utilisation=_rounded(utilisation(c.macs, c.multipliers, c.est_ii)),
            )
        )
    cost = network_cost(graph, board)
    resources = network_resources(graph, board)
    return Report(
        board=board.key,
        part=board.part,
        model=model_name,
        clock_mhz=board.clock_mhz,
        weight_bits=bits[0],
        act_bits=bits[1],
        layers=tuple(layers),
        totals=Totals(
            multipliers=cost.multipliers,
            est_dsp=cost.est_dsp,
            board_dsp=board.dsp_blocks,
            est_cycles=cost.est_cycles,
            est_ii=cost.est_ii,
            ideal_ii=cost.ideal_ii,
            est_latency_us=round(cost.est_cycles / board.clock_mhz, 4),
            sparsity=round(total_sparsity(graph), 6),
            resources=resources.to_json(),
            energy=network_energy(graph, board).to_json(),
            macs=cost.macs,
            est_utilisation=_rounded(utilisation(cost.macs, cost.multipliers, cost.est_ii)),
        ),
        fit=check_fit(resources, board).to_json(),
        resource_model=RESOURCE_MODEL,
        energy_model=model_description(board),
        digest=digest,
        accuracy=accuracy,
        n_vectors=int(traces[0].output.shape[0]),
        stream_order=STREAM_ORDER,
    )


def total_sparsity(graph: Graph) -> float:
    """Zero weights over all weights of the matrix layers (a grouped conv's structural zeros
    left out)."""
    layers = matrix_layers(graph)
    zeros = sum(layer.sparsity * layer.held_weights for layer in layers)
    return zeros / sum(layer.held_weights for layer in layers)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
