"""rtlsim.json: the Verilator simulation of a project's RTL, cycles measured against estimates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from codesign.records.base import check_schema, field, optional, read_json

SCHEMA = "codesign.rtlsim/1"
FILE = "rtlsim.json"


@dataclass(frozen=True)
class RtlsimEntry:
    """One layer (or the network): simulated and estimated cycles, correctness, triviality."""

    name: str
    sim_cycles: int | None
    est_cycles: int
    sim_ii: int | None
    est_ii: int
    ideal_ii: int
    efficiency: float | None  # ideal_ii / sim_ii
    utilisation: float | None  # MACs / (multipliers · sim_ii); None without multipliers
    outputs_match: bool
    mismatches: int
    first_mismatch: Mapping[str, Any] | None
    n_vectors: int
    nonzero_output_fraction: float
    saturated_fraction: float

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> RtlsimEntry:
        where = f"{where}, entry {data.get('name', '?')!r}"
        return cls(
            name=field(data, "name", str, where),
            sim_cycles=optional(data, "sim_cycles", int, where),
            est_cycles=field(data, "est_cycles", int, where),
            sim_ii=optional(data, "sim_ii", int, where),
            est_ii=field(data, "est_ii", int, where),
            ideal_ii=field(data, "ideal_ii", int, where),
            efficiency=optional(data, "efficiency", float, where),
            utilisation=optional(data, "utilisation", float, where),
            outputs_match=field(data, "outputs_match", bool, where),
            mismatches=field(data, "mismatches", int, where),
            first_mismatch=optional(data, "first_mismatch", dict, where),
            n_vectors=field(data, "n_vectors", int, where),
            nonzero_output_fraction=field(data, "nonzero_output_fraction", float, where),
            saturated_fraction=field(data, "saturated_fraction", float, where),
        )


@dataclass(frozen=True)
class RtlsimRecord:
    """`scope` is "network" or "layer" (one layer simulated alone)."""

    SCHEMA: ClassVar[str] = SCHEMA
    scope: str
    layers: tuple[RtlsimEntry, ...]
    network: RtlsimEntry
    outputs_match: bool
    first_mismatch: Mapping[str, Any] | None
    timed_out: bool
    n_vectors: int
    build_seconds: float
    build_cached: bool
    fast_sim_build: bool | None  # None: an older rtlsim.json
    build_dir: str
    run_seconds: float
    simulated_cycles: int
    sim_cycles_per_second: float | None
    phases: Mapping[str, Any] | None  # per harness phase: cycles, seconds, cycles/s

    def to_json(self) -> dict[str, Any]:
        data = {"schema": SCHEMA, **vars(self)}
        data["layers"] = [entry.to_json() for entry in self.layers]
        data["network"] = self.network.to_json()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> RtlsimRecord:
        check_schema(data, SCHEMA, where)
        return cls(
            scope=field(data, "scope", str, where),
            layers=tuple(
                RtlsimEntry.from_json(entry if isinstance(entry, dict) else {}, where)
                for entry in field(data, "layers", list, where)
            ),
            network=RtlsimEntry.from_json(field(data, "network", dict, where), where),
            outputs_match=field(data, "outputs_match", bool, where),
            first_mismatch=optional(data, "first_mismatch", dict, where),
            timed_out=field(data, "timed_out", bool, where),
            n_vectors=field(data, "n_vectors", int, where),
            build_seconds=field(data, "build_seconds", float, where),
            build_cached=field(data, "build_cached", bool, where),
            fast_sim_build=optional(data, "fast_sim_build", bool, where),
            build_dir=field(data, "build_dir", str, where),
            run_seconds=field(data, "run_seconds", float, where),
            simulated_cycles=field(data, "simulated_cycles", int, where),
            sim_cycles_per_second=optional(data, "sim_cycles_per_second", float, where),
            phases=optional(data, "phases", dict, where),
        )

    @classmethod
    def read(cls, project: Path) -> RtlsimRecord:
        path = project / FILE
        return cls.from_json(read_json(path), str(path))
