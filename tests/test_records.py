"""The project's records (codesign.records): round trips, schema and key checks, older files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from codesign import reference
from codesign.boards import load_board
from codesign.errors import CodesignError
from codesign.flows.estimates import build_report
from codesign.ir import Graph
from codesign.records.base import dumps
from codesign.records.design import graph_to_files, load_graph
from codesign.records.prune import PruneLayer, PruneRecord, read_source
from codesign.records.report import Report
from tests.conftest import make_graph

BOARD = load_board("arria10-gx1150")


def _report(graph: Graph, x: np.ndarray) -> Report:
    traces = reference.run(graph, reference.quantize_inputs(graph, x[:4]))
    return build_report(graph, BOARD, "net", (8, 16), "0" * 64, traces)


def test_report_round_trips_and_keeps_key_order() -> None:
    graph, x = make_graph([(10, 13), (5, 10)], block=(2, 4), keep=0.6, reuse=2)
    report = _report(graph, x)
    data = json.loads(report.to_bytes())
    assert list(data)[:3] == ["schema", "board", "part"] and list(data)[-1] == "n_vectors"
    assert Report.from_json(data, "report.json") == report
    layer = data["layers"][0]
    assert list(layer)[:6] == ["name", "source_name", "kind", "inputs", "output_shape", "shape"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schema="codesign.report/1"), "schema 'codesign.report/1'"),
        (lambda d: d.pop("board"), "key 'board' is missing"),
        (lambda d: d["totals"].update(est_cycles="52"), "'est_cycles' must be int"),
        (lambda d: d["layers"][0].update(est_ii=True), "'est_ii' must be int"),
        (lambda d: d["layers"][0].update(output_shape=["a"]), "list of integers"),
        (lambda d: d["layers"][1].update(inputs=[1]), "list of strings"),
    ],
)
def test_report_refuses_what_it_cannot_read(
    change: Callable[[dict[str, Any]], object], message: str
) -> None:
    graph, x = make_graph([(10, 13), (5, 10)], block=(2, 4), keep=0.6, reuse=2)
    data = json.loads(_report(graph, x).to_bytes())
    change(data)
    with pytest.raises(CodesignError, match=message):
        Report.from_json(data, "report.json")


def test_an_older_report_of_the_same_schema_still_reads() -> None:
    graph, x = make_graph([(10, 13)], block=(2, 4), keep=0.6, reuse=2)
    data = json.loads(_report(graph, x).to_bytes())
    for key in ("inputs", "output_shape", "macs", "overflows", "accum_overflows"):
        del data["layers"][0][key]
    del data["n_vectors"]
    report = Report.from_json(data, "report.json")
    assert report.layers[0].macs is None and report.n_vectors is None


def _prune_record() -> PruneRecord:
    layer = PruneLayer("fc1", (64, 64), 0.75, 0.75, 256, 33, 512, 1, target_sparsity=0.7)
    return PruneRecord(
        model="digits-mlp",
        dataset="digits",
        input_shape=None,
        board="arria10-gx1150",
        method="block",
        balanced=True,
        block=(1, 4),
        criterion="l1",
        schedule="gradual",
        distill=True,
        target_sparsity=0.75,
        achieved_sparsity=0.75,
        epochs=3,
        learning_rate=2e-3,
        seed=0,
        weight_bits=8,
        act_bits=16,
        layers=(layer,),
        hardware={"reuse_factor": 1, "est_cycles": 46, "est_dsp": 808},
        accuracy={"dense": 0.96, "pruned": 0.95},
        resized={"fc1": {"out_features": 32}},
    )


def test_prune_record_round_trips_and_generate_reads_only_what_it_needs(tmp_path: Path) -> None:
    record = _prune_record()
    assert PruneRecord.from_json(record.to_json(), "prune.json") == record
    # an older prune.json: no layers' estimates, no accuracy; generate --from needs neither
    data = record.to_json()
    for key in ("layers", "hardware", "accuracy", "epochs"):
        del data[key]
    (tmp_path / "prune.json").write_bytes(dumps(data))
    source = read_source(tmp_path)
    assert (source.model, source.block, source.dense_accuracy) == ("digits-mlp", (1, 4), None)
    assert source.resized == {"fc1": {"out_features": 32}}
    data["block"] = [1]
    (tmp_path / "prune.json").write_bytes(dumps(data))
    with pytest.raises(CodesignError, match="'block' must be two integers"):
        read_source(tmp_path)


def test_a_broken_design_is_a_clear_error(tmp_path: Path) -> None:
    graph, _ = make_graph([(10, 13)], block=(2, 4), keep=0.6, reuse=2)
    for name, content in graph_to_files(graph).items():
        (tmp_path / name).write_bytes(content)
    assert load_graph(tmp_path).layers[0].name == "fc1"
    design = json.loads((tmp_path / "design.json").read_text())
    del design["layers"][0]["formats"]
    (tmp_path / "design.json").write_text(json.dumps(design))
    with pytest.raises(CodesignError, match="layer 'fc1': key or array 'formats' is missing"):
        load_graph(tmp_path)
    (tmp_path / "design.npz").write_bytes(b"truncated")
    with pytest.raises(CodesignError, match="cannot read the design's arrays"):
        load_graph(tmp_path)
