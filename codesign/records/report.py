"""report.json: what `codesign generate` estimated for a design, per layer and in total.

Built by codesign.flows.estimates from the tiled graph; read back by `codesign report`, the
notebooks and other tools with a check of the schema and of every key's type. Keys that
schema 2 gained later (a layer's inputs, output_shape, macs and overflow counts; n_vectors;
stream widths `stream_widths` {input, output} and `est_utilisation`, also in the totals with
`macs`) may be absent from older files: they read as None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from codesign.records.base import (
    check_schema,
    dumps,
    field,
    int_tuple,
    optional,
    read_json,
    str_tuple,
)

SCHEMA = "codesign.report/2"
FILE = "report.json"


@dataclass(frozen=True)
class LayerReport:
    """One layer: its identity, its engine's own fields, the estimates, the reference's
    overflow counts on the test vectors. Pooling and adds have no tiles (reuse_factor and
    tiles are None)."""

    name: str
    source_name: str
    kind: str
    inputs: tuple[str, ...] | None
    output_shape: tuple[int, ...] | None
    engine_fields: Mapping[str, Any]  # shape, block, formats, sparsity, ... (the engine's)
    reuse_factor: int | None
    tiles: int | None
    multipliers: int
    macs: int | None
    est_dsp: int
    est_cycles: int
    est_ii: int
    ideal_ii: int
    est_latency_us: float
    resources: Mapping[str, Any]
    energy: Mapping[str, Any]
    overflows: int | None
    accum_overflows: int | None
    stream_widths: Mapping[str, int] | None = None  # values per beat {"input", "output"}
    est_utilisation: float | None = None  # MACs / (multipliers · est_ii)

    def get(self, key: str, default: Any = None) -> Any:
        """An engine field (`block`, `sparsity`, ...), or `default` when the engine has none."""
        return self.engine_fields.get(key, default)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source_name": self.source_name,
            "kind": self.kind,
            "inputs": list(self.inputs) if self.inputs is not None else None,
            "output_shape": list(self.output_shape) if self.output_shape is not None else None,
            **self.engine_fields,
            "reuse_factor": self.reuse_factor,
            "tiles": self.tiles,
            "multipliers": self.multipliers,
            "macs": self.macs,
            "est_dsp": self.est_dsp,
            "est_cycles": self.est_cycles,
            "est_ii": self.est_ii,
            "ideal_ii": self.ideal_ii,
            "est_latency_us": self.est_latency_us,
            "resources": dict(self.resources),
            "energy": dict(self.energy),
            "overflows": self.overflows,
            "accum_overflows": self.accum_overflows,
            "stream_widths": dict(self.stream_widths) if self.stream_widths else None,
            "est_utilisation": self.est_utilisation,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> LayerReport:
        where = f"{where}, layer {data.get('name', '?')!r}"
        own = set(cls.__dataclass_fields__) - {"engine_fields"}
        return cls(
            name=field(data, "name", str, where),
            source_name=field(data, "source_name", str, where),
            kind=field(data, "kind", str, where),
            inputs=str_tuple(data, "inputs", where) if "inputs" in data else None,
            output_shape=int_tuple(data, "output_shape", where) if "output_shape" in data else None,
            engine_fields={k: v for k, v in data.items() if k not in own},
            reuse_factor=optional(data, "reuse_factor", int, where),
            tiles=optional(data, "tiles", int, where),
            multipliers=field(data, "multipliers", int, where),
            macs=optional(data, "macs", int, where),
            est_dsp=field(data, "est_dsp", int, where),
            est_cycles=field(data, "est_cycles", int, where),
            est_ii=field(data, "est_ii", int, where),
            ideal_ii=field(data, "ideal_ii", int, where),
            est_latency_us=field(data, "est_latency_us", float, where),
            resources=field(data, "resources", dict, where),
            energy=field(data, "energy", dict, where),
            overflows=optional(data, "overflows", int, where),
            accum_overflows=optional(data, "accum_overflows", int, where),
            stream_widths=optional(data, "stream_widths", dict, where),
            est_utilisation=optional(data, "est_utilisation", float, where),
        )


@dataclass(frozen=True)
class Totals:
    multipliers: int
    est_dsp: int
    board_dsp: int
    est_cycles: int
    est_ii: int
    ideal_ii: int
    est_latency_us: float
    sparsity: float
    resources: Mapping[str, Any]
    energy: Mapping[str, Any]
    macs: int | None = None
    est_utilisation: float | None = None
    OPTIONAL: ClassVar[tuple[str, ...]] = ("macs", "est_utilisation")

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)} | {
            "resources": dict(self.resources),
            "energy": dict(self.energy),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> Totals:
        where = f"{where}, totals"
        kinds: dict[str, type] = {"est_latency_us": float, "sparsity": float}
        kinds |= {"resources": dict, "energy": dict, "est_utilisation": float}
        values: dict[str, Any] = {
            f.name: (optional if f.name in cls.OPTIONAL else field)(
                data, f.name, kinds.get(f.name, int), where
            )
            for f in fields(cls)
        }
        return cls(**values)


@dataclass(frozen=True)
class Report:
    """report.json. `accuracy` only when a dataset was given."""

    SCHEMA: ClassVar[str] = SCHEMA
    board: str
    part: str
    model: str
    clock_mhz: float
    weight_bits: int
    act_bits: int
    layers: tuple[LayerReport, ...]
    totals: Totals
    fit: Mapping[str, Any]
    resource_model: Mapping[str, Any]
    energy_model: Mapping[str, Any]
    digest: str
    accuracy: Mapping[str, Any] | None
    n_vectors: int | None
    # the order of the network's input and output values (maps channel-last); absent in
    # reports written before codesign streamed maps channel-last
    stream_order: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema": SCHEMA,
            "board": self.board,
            "part": self.part,
            "model": self.model,
            "clock_mhz": self.clock_mhz,
            "weight_bits": self.weight_bits,
            "act_bits": self.act_bits,
            "layers": [layer.to_json() for layer in self.layers],
            "totals": self.totals.to_json(),
            "fit": dict(self.fit),
            "resource_model": dict(self.resource_model),
            "energy_model": dict(self.energy_model),
            "digest": self.digest,
        }
        if self.stream_order is not None:
            data["stream_order"] = self.stream_order
        if self.accuracy is not None:
            data["accuracy"] = dict(self.accuracy)
        data["n_vectors"] = self.n_vectors  # the test vectors the overflow counts are over
        return data

    def to_bytes(self) -> bytes:
        return dumps(self.to_json())

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> Report:
        check_schema(data, SCHEMA, where)
        return cls(
            board=field(data, "board", str, where),
            part=field(data, "part", str, where),
            model=field(data, "model", str, where),
            clock_mhz=field(data, "clock_mhz", float, where),
            weight_bits=field(data, "weight_bits", int, where),
            act_bits=field(data, "act_bits", int, where),
            layers=tuple(
                LayerReport.from_json(layer if isinstance(layer, dict) else {}, where)
                for layer in field(data, "layers", list, where)
            ),
            totals=Totals.from_json(field(data, "totals", dict, where), where),
            fit=field(data, "fit", dict, where),
            resource_model=field(data, "resource_model", dict, where),
            energy_model=field(data, "energy_model", dict, where),
            digest=field(data, "digest", str, where),
            accuracy=optional(data, "accuracy", dict, where),
            n_vectors=optional(data, "n_vectors", int, where),
            stream_order=optional(data, "stream_order", str, where),
        )

    @classmethod
    def read(cls, project: Path) -> Report:
        path = project / FILE
        return cls.from_json(read_json(path), str(path))
