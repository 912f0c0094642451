"""synth.json: each engine of a project mapped to Cyclone V cells by Yosys (codesign.synth)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from codesign.records.base import check_schema, field, optional, read_json

SCHEMA = "codesign.synth/1"
FILE = "synth.json"
# summed over the layers into `totals`
TOTALED = (
    "alut_cells",
    "alms_lower_bound",
    "flip_flops",
    "dsp_blocks",
    "cyclonev_dsp_blocks",
    "m10k_blocks",
    "ram_cells",
    "ram_bits",
    "yosys_seconds",
)


@dataclass(frozen=True)
class SynthEntry:
    """One engine as Yosys mapped it (the fields are documented in codesign.synth.yosys)."""

    name: str
    kind: str
    module: str
    key: str
    alut_cells: int
    alut_cells_by_kind: Mapping[str, int]
    alms_lower_bound: int
    flip_flops: int
    dsp_cells: Mapping[str, int]
    dsp_blocks: int
    cyclonev_dsp_blocks: int
    m10k_blocks: int
    ram_cells: int
    ram_bits: int
    cells_by_kind: Mapping[str, int]
    yosys_seconds: float
    cached: bool

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> SynthEntry:
        where = f"{where}, layer {data.get('name', '?')!r}"
        counts = ("alut_cells_by_kind", "dsp_cells", "cells_by_kind")
        integers = ("alut_cells", "alms_lower_bound", "flip_flops", "dsp_blocks",
                    "cyclonev_dsp_blocks", "m10k_blocks", "ram_cells", "ram_bits")  # fmt: skip
        values: dict[str, Any] = {key: field(data, key, str, where) for key in ("name", "kind")}
        values.update({key: field(data, key, str, where) for key in ("module", "key")})
        values.update({key: field(data, key, int, where) for key in integers})
        values.update({key: field(data, key, dict, where) for key in counts})
        values["yosys_seconds"] = field(data, "yosys_seconds", float, where)
        values["cached"] = field(data, "cached", bool, where)
        return cls(**values)


@dataclass(frozen=True)
class SynthRecord:
    """The engines synthesised (all of the project's when `complete`), with the tool."""

    SCHEMA: ClassVar[str] = SCHEMA
    tool: str
    version: str
    package: str | None  # the PyPI package that ran it; None: $CODESIGN_YOSYS
    target: str
    recipe: int
    complete: bool
    layers: tuple[SynthEntry, ...]
    totals: Mapping[str, Any]
    notes: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        data = {"schema": SCHEMA, **vars(self)}
        data["layers"] = [entry.to_json() for entry in self.layers]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> SynthRecord:
        check_schema(data, SCHEMA, where)
        return cls(
            tool=field(data, "tool", str, where),
            version=field(data, "version", str, where),
            package=optional(data, "package", str, where),
            target=field(data, "target", str, where),
            recipe=field(data, "recipe", int, where),
            complete=field(data, "complete", bool, where),
            layers=tuple(
                SynthEntry.from_json(entry if isinstance(entry, dict) else {}, where)
                for entry in field(data, "layers", list, where)
            ),
            totals=field(data, "totals", dict, where),
            notes=field(data, "notes", dict, where),
        )

    @classmethod
    def read(cls, project: Path) -> SynthRecord:
        path = project / FILE
        return cls.from_json(read_json(path), str(path))


def totals(layers: tuple[SynthEntry, ...]) -> dict[str, Any]:
    """The TOTALED figures summed over `layers`, and the DSP cells by kind."""
    summed: dict[str, Any] = {key: sum(getattr(entry, key) for entry in layers) for key in TOTALED}
    summed["yosys_seconds"] = round(summed["yosys_seconds"], 2)
    dsp: dict[str, int] = {}
    for entry in layers:
        for kind, count in entry.dsp_cells.items():
            dsp[kind] = dsp.get(kind, 0) + count
    summed["dsp_cells"] = dsp
    return summed
