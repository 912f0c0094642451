"""prune.json: how `codesign prune` pruned a model, and what the design would cost.

Written beside model.pt (the state_dict); `generate --from` reads it back (with a check of
the schema and of every key's type) to rebuild the model, resized where channel pruning made
it smaller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from codesign.errors import CodesignError
from codesign.records.base import check_schema, dumps, field, int_tuple, optional, read_json

SCHEMA = "codesign.prune/1"
FILE = "prune.json"


@dataclass(frozen=True)
class PruneLayer:
    name: str
    shape: tuple[int, ...]
    sparsity: float
    block_sparsity: float
    nnz_blocks: int
    est_cycles: int
    est_dsp: int
    reuse_factor: int
    target_sparsity: float | None = None  # budget mode: the allocated sparsity
    original_shape: tuple[int, ...] | None = None  # channel pruning made it smaller

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "shape": list(self.shape),
            "sparsity": self.sparsity,
            "block_sparsity": self.block_sparsity,
            "nnz_blocks": self.nnz_blocks,
            "est_cycles": self.est_cycles,
            "est_dsp": self.est_dsp,
            "reuse_factor": self.reuse_factor,
        }
        if self.target_sparsity is not None:
            data["target_sparsity"] = self.target_sparsity
        if self.original_shape is not None:
            data["original_shape"] = list(self.original_shape)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> PruneLayer:
        where = f"{where}, layer {data.get('name', '?')!r}"
        original = optional(data, "original_shape", list, where)
        return cls(
            name=field(data, "name", str, where),
            shape=int_tuple(data, "shape", where),
            sparsity=field(data, "sparsity", float, where),
            block_sparsity=field(data, "block_sparsity", float, where),
            nnz_blocks=field(data, "nnz_blocks", int, where),
            est_cycles=field(data, "est_cycles", int, where),
            est_dsp=field(data, "est_dsp", int, where),
            reuse_factor=field(data, "reuse_factor", int, where),
            target_sparsity=optional(data, "target_sparsity", float, where),
            original_shape=tuple(int(v) for v in original) if original is not None else None,
        )


@dataclass(frozen=True)
class PruneRecord:
    """prune.json. `balanced` is None for methods without blocks; `budget`, `resized` and
    `notes` only when they apply."""

    SCHEMA: ClassVar[str] = SCHEMA
    model: str
    dataset: str
    input_shape: tuple[int, ...] | None
    board: str
    method: str
    balanced: bool | None
    block: tuple[int, int]
    criterion: str
    schedule: str
    distill: bool
    target_sparsity: float | None
    achieved_sparsity: float
    epochs: int
    learning_rate: float
    seed: int
    weight_bits: int
    act_bits: int
    layers: tuple[PruneLayer, ...]
    hardware: Mapping[str, Any]
    accuracy: Mapping[str, float]
    budget: Mapping[str, Any] | None = None
    resized: Mapping[str, Mapping[str, int]] | None = None
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema": SCHEMA,
            "model": self.model,
            "dataset": self.dataset,
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "board": self.board,
            "method": self.method,
            "balanced": self.balanced,
            "block": list(self.block),
            "criterion": self.criterion,
            "schedule": self.schedule,
            "distill": self.distill,
            "target_sparsity": self.target_sparsity,
            "achieved_sparsity": self.achieved_sparsity,
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "seed": self.seed,
            "weight_bits": self.weight_bits,
            "act_bits": self.act_bits,
            "layers": [layer.to_json() for layer in self.layers],
            "hardware": dict(self.hardware),
        }
        if self.budget is not None:
            data["budget"] = dict(self.budget)
        if self.resized is not None:
            data["resized"] = {name: dict(sizes) for name, sizes in self.resized.items()}
        if self.notes:
            data["notes"] = list(self.notes)
        data["accuracy"] = dict(self.accuracy)
        return data

    def to_bytes(self) -> bytes:
        return dumps(self.to_json())

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> PruneRecord:
        check_schema(data, SCHEMA, where)
        block = field(data, "block", list, where)
        shape = optional(data, "input_shape", list, where)
        resized = optional(data, "resized", dict, where)
        try:
            pair = (int(block[0]), int(block[1]))
            sizes = (
                {str(n): {str(k): int(v) for k, v in s.items()} for n, s in resized.items()}
                if resized is not None
                else None
            )
            input_shape = tuple(int(d) for d in shape) if shape else None
        except (TypeError, ValueError, IndexError, AttributeError) as error:
            raise CodesignError(
                f"{where}: malformed block, input_shape or resized ({error})"
            ) from None
        return cls(
            model=field(data, "model", str, where),
            dataset=field(data, "dataset", str, where),
            input_shape=input_shape,
            board=field(data, "board", str, where),
            method=field(data, "method", str, where),
            balanced=optional(data, "balanced", bool, where),
            block=pair,
            criterion=field(data, "criterion", str, where),
            schedule=field(data, "schedule", str, where),
            distill=field(data, "distill", bool, where),
            target_sparsity=optional(data, "target_sparsity", float, where),
            achieved_sparsity=field(data, "achieved_sparsity", float, where),
            epochs=field(data, "epochs", int, where),
            learning_rate=field(data, "learning_rate", float, where),
            seed=field(data, "seed", int, where),
            weight_bits=field(data, "weight_bits", int, where),
            act_bits=field(data, "act_bits", int, where),
            layers=tuple(
                PruneLayer.from_json(layer if isinstance(layer, dict) else {}, where)
                for layer in field(data, "layers", list, where)
            ),
            hardware=field(data, "hardware", dict, where),
            accuracy=field(data, "accuracy", dict, where),
            budget=optional(data, "budget", dict, where),
            resized=sizes,
            notes=tuple(str(n) for n in data.get("notes") or ()),
        )

    @classmethod
    def read(cls, folder: Path) -> PruneRecord:
        path = folder / FILE
        return cls.from_json(read_json(path), str(path))


@dataclass(frozen=True)
class PrunedSource:
    """What `generate --from` needs of a prune.json (older files of the schema hold no more)."""

    model: str
    dataset: str
    block: tuple[int, int]
    dense_accuracy: float | None
    input_shape: tuple[int, ...] | None
    resized: dict[str, dict[str, int]]
    board: str | None = None  # the board the pruning was costed for


def read_source(folder: Path) -> PrunedSource:
    """The model spec, dataset, block, dense accuracy, input shape and resized layers of the
    prune.json in `folder`, each checked, with the schema."""
    path = folder / FILE
    where = str(path)
    data = read_json(path)
    check_schema(data, SCHEMA, where)
    block = int_tuple(data, "block", where)
    if len(block) != 2:
        raise CodesignError(f"{where}: key 'block' must be two integers, got {list(block)}")
    shape = int_tuple(data, "input_shape", where) if data.get("input_shape") else None
    accuracy = optional(data, "accuracy", dict, where) or {}
    dense = optional(accuracy, "dense", float, f"{where}, accuracy")
    resized: dict[str, dict[str, int]] = {}
    for name, sizes in (optional(data, "resized", dict, where) or {}).items():
        if not isinstance(sizes, dict):
            raise CodesignError(f"{where}: resized layer {name!r} must be an object")
        resized[str(name)] = {
            str(key): field(sizes, key, int, f"{where}, resized {name!r}") for key in sizes
        }
    return PrunedSource(
        model=field(data, "model", str, where),
        dataset=field(data, "dataset", str, where),
        block=(block[0], block[1]),
        dense_accuracy=dense,
        input_shape=shape,
        resized=resized,
        board=optional(data, "board", str, where),
    )
