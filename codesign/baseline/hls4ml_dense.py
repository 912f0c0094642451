"""The hls4ml dense baseline: the same network and fixed-point formats through hls4ml 1.3's
Quartus backend, built with its g++ C simulation (`compile()`), fed the same raw inputs.

How the formats are made to agree, bit for bit, with `codesign.reference` (and so with our C
simulation). hls4ml's Quartus `nnet::dense_resource` computes, per output,
`acc = (accum_t) bias; acc += (accum_t)(x * w) ...; res = (res_t) acc`: every product is cast to
`accum_t` and summed there, then the sum is cast to the layer's result type. A ReLU is a layer
of its own, `res = x > 0 ? x : 0` into its result type. So, per layer of our graph:

| hls4ml precision            | our format                 | why it is exact                      |
|-----------------------------|----------------------------|--------------------------------------|
| input layer `result`        | graph input (`AC_RND/SAT`) | inputs are fed as exact doubles      |
| Dense `weight`              | weight                     | printed with `frac` decimals: exact  |
| Dense `bias`                | bias (one bit narrower)    | same fraction bits as the accumulator|
| Dense `accum`               | accum (`AC_TRN, AC_WRAP`)  | keeps every product bit, never wraps |
| Dense `result`, then ReLU   | accum                      | the ReLU sees the exact sum ...      |
| ReLU `result`               | output (`AC_RND, AC_SAT`)  | ... and rounds/saturates it as we do |
| Dense `result`, no ReLU     | output (`AC_RND, AC_SAT`)  | the cast we do                       |

hls4ml spells a format `fixed<W, I, RND, SAT>` (`ufixed` unsigned), which its Quartus backend
prints as `ac_fixed<W, I, true, AC_RND, AC_SAT>`: the same ac_fixed type our project uses. The
network handed to hls4ml is built from the IR itself (`to_torch`): float64 `nn.Linear` layers
holding exactly the quantised weights and biases (`raw * 2**-frac`), so hls4ml's own weight
quantisation changes nothing, and inputs are passed as float64 values of the raw inputs, which
ac_fixed converts exactly; outputs come back as doubles, exact for widths up to 53 bits.

Reuse factor: hls4ml's RF for a Dense layer is, as ours, the cycles each multiplier is reused
per vector; it is asked for our layer's RF and adjusts it to the nearest value its kernel
accepts (`set_closest_reuse_factor`). Its kernel multiplies every weight, zeros included, so
it instantiates `ceil(n_in·n_out / RF)` multipliers (its `block_factor`), whatever the sparsity.

The baselines cover chains of Dense layers with ReLU or no activation; `check_supported` raises
a `ModelError` naming the first other layer (Conv2d, pooling, an add, LeakyReLU) before any work.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from codesign import vectors
from codesign.engines import matrix_layers
from codesign.errors import ModelError, OutputDirError, ToolError
from codesign.ir.fixed import FixedPoint, Overflow, RawArray, Rounding
from codesign.ir.graph import Activation, Dense, Graph, ceil_div
from codesign.records.design import load_graph

log = logging.getLogger(__name__)

SCHEMA = "codesign.hls4ml/1"
FOLDER = "hls4ml"
RECORD = "hls4ml_baseline.json"
BACKEND = "Quartus"
PROJECT_NAME = "myproject"
RELU_SUFFIX = "_relu"
MAX_EXACT_WIDTH = 53  # outputs come back as doubles

_ROUNDING = {Rounding.RND: "RND", Rounding.TRN: "TRN"}
_OVERFLOW = {Overflow.SAT: "SAT", Overflow.WRAP: "WRAP"}


def hls4ml_precision(fixed: FixedPoint) -> str:
    """hls4ml's spelling of `fixed`: its Quartus backend prints the same ac_fixed type."""
    kind = "fixed" if fixed.signed else "ufixed"
    rounding, overflow = _ROUNDING[fixed.rounding], _OVERFLOW[fixed.overflow]
    return f"{kind}<{fixed.width},{fixed.integer},{rounding},{overflow}>"


SUPPORTED_KINDS = ("dense",)  # hls4ml's Dense: no conv, pooling or add baseline here


def check_supported(graph: Graph) -> None:
    """The baselines are chains of Dense layers: say which layer is not, before any work."""
    for layer in graph.layers:
        if layer.kind not in SUPPORTED_KINDS:
            raise ModelError(
                f"the hls4ml baselines support chains of Dense (Linear) layers only; layer "
                f"{layer.name!r} ({layer.source_name}) is a {layer.kind} layer"
            )
    for dense in matrix_layers(graph):
        if dense.activation not in (Activation.NONE, Activation.RELU):
            raise ModelError(
                f"the hls4ml baselines support ReLU or no activation only; layer "
                f"{dense.name!r} ({dense.source_name}) has {dense.activation.value}"
            )
        if dense.input_map is not None:
            raise ModelError(
                f"the hls4ml baselines take flat inputs; layer {dense.name!r} "
                f"({dense.source_name}) reads a flattened {dense.input_map} feature map"
            )
    if not graph.is_chain:
        raise ModelError("the hls4ml baselines support chains of Dense layers only, not a DAG")


def dense_layers(graph: Graph) -> tuple[Dense, ...]:
    """The layers of a graph the baselines support (`check_supported`), typed as such."""
    check_supported(graph)
    return matrix_layers(graph)


def to_torch(graph: Graph) -> Any:
    """A float64 torch model of `graph` holding exactly its quantised weights and biases.

    Modules are named after the layers (`<layer>` and `<layer>_relu`), which become the names
    of hls4ml's layers.
    """
    import torch
    from torch import nn

    modules: OrderedDict[str, nn.Module] = OrderedDict()
    for layer in dense_layers(graph):
        formats = layer.require_formats()
        assert layer.weight_raw is not None and layer.bias_raw is not None
        linear = nn.Linear(layer.in_features, layer.out_features, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(formats.weight.to_float(layer.weight_raw)))
            linear.bias.copy_(torch.from_numpy(formats.bias.to_float(layer.bias_raw)))
        modules[layer.name] = linear
        if layer.activation is Activation.RELU:
            modules[layer.name + RELU_SUFFIX] = nn.ReLU()
    return nn.Sequential(modules).eval()


def hls4ml_config(
    graph: Graph,
    config: dict[str, Any],
    reuse: Mapping[str, int] | None = None,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Set the per-layer precisions and reuse factors of hls4ml's name-granular `config`.

    `reuse` maps layer names to reuse factors; by default each layer's own tiling RF. `extra`
    maps a further layer config key to its value per layer name.
    """
    layer_configs: dict[str, dict[str, Any]] = config["LayerName"]
    layers = dense_layers(graph)
    ours = {layer.name for layer in layers} | {layer.name + RELU_SUFFIX for layer in layers}
    for name, layer_config in layer_configs.items():
        if name not in ours:  # the input placeholder
            layer_config["Precision"] = {"result": hls4ml_precision(graph.input_format)}
    for layer in layers:
        formats = layer.require_formats()
        relu = layer.activation is Activation.RELU
        rf = reuse[layer.name] if reuse is not None else layer.require_tiling().reuse_factor
        layer_configs[layer.name]["ReuseFactor"] = rf
        layer_configs[layer.name]["Precision"] = {
            "weight": hls4ml_precision(formats.weight),
            "bias": hls4ml_precision(formats.bias),
            "accum": hls4ml_precision(formats.accum),
            "result": hls4ml_precision(formats.accum if relu else formats.output),
        }
        if relu:
            relu_config = layer_configs[layer.name + RELU_SUFFIX]
            relu_config["Precision"] = {"result": hls4ml_precision(formats.output)}
            relu_config["ReuseFactor"] = rf
    for key, per_layer in (extra or {}).items():
        for name, value in per_layer.items():
            layer_configs[name][key] = value
    config["Model"]["Strategy"] = "Resource"  # the only one hls4ml's Quartus backend has
    return config


def convert(
    graph: Graph,
    output_dir: Path,
    reuse: Mapping[str, int] | None = None,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> Any:
    """hls4ml's Quartus io_parallel project of `graph` (written by `compile()`)."""
    check_supported(graph)
    hls4ml = _import_hls4ml()
    _check_exact(graph)
    model = to_torch(graph)
    input_shape = (graph.layers[0].in_features,)
    with _quiet():
        config = hls4ml.utils.config_from_pytorch_model(
            model, input_shape, granularity="name", backend=BACKEND
        )
        hls_model = hls4ml.converters.convert_from_pytorch_model(
            model,
            output_dir=str(output_dir),
            project_name=PROJECT_NAME,
            backend=BACKEND,
            io_type="io_parallel",
            hls_config=hls4ml_config(graph, config, reuse, extra),
        )
    return hls_model


def compile_model(hls_model: Any) -> float:
    """Write and build hls4ml's C simulation library; the seconds it took."""
    start = time.perf_counter()
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output):
            hls_model.compile()
    except Exception as error:  # hls4ml raises a bare Exception on a failed g++ build
        tail = "\n".join(output.getvalue().splitlines()[-25:])
        raise ToolError(f"hls4ml's C simulation build failed: {error}\n{tail}") from error
    return time.perf_counter() - start


def predict_raw(hls_model: Any, graph: Graph, x_raw: RawArray) -> RawArray:
    """hls4ml's C-simulated outputs for raw inputs, as raw integers of the output format."""
    x = np.ascontiguousarray(graph.input_format.to_float(x_raw), dtype=np.float64)
    with _quiet():
        y = np.asarray(hls_model.predict(x), dtype=np.float64).reshape(len(x_raw), -1)
    scaled = y * 2.0**graph.output_format.frac
    raw = np.rint(scaled).astype(np.int64)
    if not np.array_equal(raw, scaled):
        raise ToolError("hls4ml returned values that are not in the output format")
    return raw


def layer_records(hls_model: Any, graph: Graph) -> list[dict[str, Any]]:
    """hls4ml's reuse factor and multipliers (every weight multiplied) per Dense layer."""
    records = []
    for layer in dense_layers(graph):
        node = hls_model.graph[layer.name]
        rf = int(node.get_attr("reuse_factor"))
        records.append(
            {
                "name": layer.name,
                "source_name": layer.source_name,
                "requested_reuse_factor": layer.require_tiling().reuse_factor,
                "reuse_factor": rf,
                "multipliers": ceil_div(layer.in_features * layer.out_features, rf),
            }
        )
    return records


def run_baseline(project: Path) -> dict[str, Any]:
    """Build the hls4ml baseline of a generated project under `hls4ml/`; its record.

    The outputs are compared with our C simulation's (`hls/build/csim/out/network.txt`, built
    and run first when missing) and with the reference's.
    """
    from codesign.sim.csim import csim_output_dir, run_csim

    if not (project / "design.json").is_file():
        raise OutputDirError(f"{project}: no design.json; run generate first")
    graph = load_graph(project)
    check_supported(graph)
    x_raw = vectors.load_inputs(project)
    ours_file = csim_output_dir(project) / "network.txt"
    if not ours_file.is_file() or len(vectors.parse_rows(ours_file.read_text())) != len(x_raw):
        run_csim(project, rebuild=False)
    ours = vectors.parse_rows(ours_file.read_text())
    expected = vectors.load_expected(project, graph.layers[-1].name)

    folder = project / FOLDER
    if folder.exists():
        shutil.rmtree(folder)
    hls_model = convert(graph, folder)
    build_seconds = compile_model(hls_model)
    got = predict_raw(hls_model, graph, x_raw)
    mismatches = int(np.count_nonzero(got != ours)) if got.shape == ours.shape else int(got.size)
    records = layer_records(hls_model, graph)
    return {
        "schema": SCHEMA,
        "hls4ml_version": _import_hls4ml().__version__,
        "backend": BACKEND,
        "layers": records,
        "multipliers": sum(record["multipliers"] for record in records),
        "outputs_match": mismatches == 0,
        "mismatches": mismatches,
        "matches_reference": bool(got.shape == expected.shape and (got == expected).all()),
        "n_vectors": int(len(x_raw)),
        "build_seconds": round(build_seconds, 3),
    }


def write_baseline(project: Path) -> dict[str, Any]:
    """`run_baseline`, written to `hls4ml_baseline.json` at the project root."""
    record = run_baseline(project)
    (project / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return record


def _check_exact(graph: Graph) -> None:
    for layer in dense_layers(graph):
        formats = layer.require_formats()
        widest = max(formats.accum.width, formats.output.width, formats.input.width)
        if widest > MAX_EXACT_WIDTH:
            raise ValueError(
                f"layer {layer.name}: {widest}-bit values cannot cross hls4ml's double "
                "interface exactly"
            )


def _import_hls4ml() -> Any:
    try:
        with _quiet():
            import hls4ml
    except ImportError as error:
        raise ToolError("hls4ml not installed: `pip install 'hls4ml==1.3.*'`") from error
    return hls4ml


@contextlib.contextmanager
def _quiet() -> Any:
    """hls4ml prints its progress; the library logs instead."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        yield
    if output.getvalue().strip():
        log.debug("hls4ml: %s", output.getvalue().strip())
