"""csim.json: the g++ C simulation of a project's HLS C++ against the NumPy reference."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from codesign.records.base import check_schema, field, optional, read_json

SCHEMA = "codesign.csim/1"
FILE = "csim.json"


@dataclass(frozen=True)
class CsimLayer:
    name: str
    outputs_match: bool
    mismatches: int
    overflows: int | None  # outputs the reference saturated (None: an older csim.json)
    accum_overflows: int | None  # sums that wrapped

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> CsimLayer:
        where = f"{where}, layer {data.get('name', '?')!r}"
        return cls(
            name=field(data, "name", str, where),
            outputs_match=field(data, "outputs_match", bool, where),
            mismatches=field(data, "mismatches", int, where),
            overflows=optional(data, "overflows", int, where),
            accum_overflows=optional(data, "accum_overflows", int, where),
        )


@dataclass(frozen=True)
class CsimRecord:
    """`outputs_match` is the whole network's; `first_mismatch` only when one differs."""

    SCHEMA: ClassVar[str] = SCHEMA
    outputs_match: bool
    n_vectors: int
    layers: tuple[CsimLayer, ...]
    nonzero_output_fraction: float
    saturated_fraction: float
    build_seconds: float
    run_seconds: float
    first_mismatch: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema": SCHEMA,
            "outputs_match": self.outputs_match,
            "n_vectors": self.n_vectors,
            "layers": [layer.to_json() for layer in self.layers],
            "nonzero_output_fraction": self.nonzero_output_fraction,
            "saturated_fraction": self.saturated_fraction,
            "build_seconds": self.build_seconds,
            "run_seconds": self.run_seconds,
        }
        if self.first_mismatch is not None:
            data["first_mismatch"] = dict(self.first_mismatch)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> CsimRecord:
        check_schema(data, SCHEMA, where)
        return cls(
            outputs_match=field(data, "outputs_match", bool, where),
            n_vectors=field(data, "n_vectors", int, where),
            layers=tuple(
                CsimLayer.from_json(layer if isinstance(layer, dict) else {}, where)
                for layer in field(data, "layers", list, where)
            ),
            nonzero_output_fraction=field(data, "nonzero_output_fraction", float, where),
            saturated_fraction=field(data, "saturated_fraction", float, where),
            build_seconds=field(data, "build_seconds", float, where),
            run_seconds=field(data, "run_seconds", float, where),
            first_mismatch=optional(data, "first_mismatch", dict, where),
        )

    @classmethod
    def read(cls, project: Path) -> CsimRecord:
        path = project / FILE
        return cls.from_json(read_json(path), str(path))
