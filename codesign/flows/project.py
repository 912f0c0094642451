"""A project folder's other commands: rebuild a pruned model, C-simulate, RTL-simulate.

Library code: it logs and returns; the CLI prints.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from codesign.errors import CodesignError
from codesign.records.base import dumps
from codesign.records.prune import FILE as PRUNE_FILE
from codesign.records.prune import read_source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrunedModel:
    model: nn.Module
    model_spec: str
    dataset_name: str
    block: tuple[int, int]
    dense_accuracy: float | None
    input_shape: tuple[int, ...] | None = None  # the shape the dataset was viewed in


def load_pruned(prune_dir: Path, notify: Callable[[str], None] = log.warning) -> PrunedModel:
    """Rebuild the model a `prune` run saved (prune.json + model.pt), resized if channel
    pruning made it smaller."""
    from codesign.frontend.channel import apply_resized
    from codesign.models import load_model, load_weights

    if not (prune_dir / PRUNE_FILE).is_file():
        raise CodesignError(f"{prune_dir}: no prune.json; is it the --out of `codesign prune`?")
    source = read_source(prune_dir)
    model = load_model(_model_spec(source.model, prune_dir, notify))
    apply_resized(model, source.resized)
    load_weights(model, prune_dir / "model.pt")
    return PrunedModel(
        model,
        source.model,
        source.dataset,
        source.block,
        source.dense_accuracy,
        source.input_shape,
    )


def _model_spec(spec: str, prune_dir: Path, notify: Callable[[str], None]) -> str:
    """prune.json's model; a model file that is gone is taken from the prune folder's copy."""
    from codesign.flows.prune import MODEL_COPY
    from codesign.models import model_file

    found = model_file(spec)
    if found is None or found[0].is_file():
        return spec
    path, function = found
    copy = prune_dir / MODEL_COPY / path.name
    if copy.is_file():
        notify(f"{path} is not there; using the copy prune made, {copy}")
        return f"{copy}:{function}"
    return spec  # load_model names the missing file


def csim(project: Path) -> dict[str, Any]:
    """Build and run the project's C simulation; write and return csim.json."""
    from codesign.sim.csim import run_csim

    result = run_csim(project)
    _write_json(project / "csim.json", result)
    return result


def simulate(
    project: Path, layer: str | None = None, n_vectors: int | None = None
) -> dict[str, Any]:
    """Simulate the project's RTL in Verilator; write and return rtlsim.json.

    A single layer's result goes to rtlsim/<layer>/rtlsim.json so that it never replaces the
    network's.
    """
    from codesign.sim.rtlsim import simulate as run_rtlsim

    result = run_rtlsim(project, layer=layer, n_vectors=n_vectors)
    simulated = result["layers"][0]["name"] if layer is not None else None
    _write_json(rtlsim_json(project, simulated), result)
    return result


def rtlsim_json(project: Path, layer: str | None = None) -> Path:
    """rtlsim.json of the whole network, or of one layer simulated alone (kept apart)."""
    if layer is None:
        return project / "rtlsim.json"
    return project / "rtlsim" / layer / "rtlsim.json"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_bytes(dumps(data))
