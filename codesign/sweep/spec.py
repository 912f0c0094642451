"""A sweep's spec (TOML): the model, the stages to run, the options every point shares, the axes.

    model = "digits-mlp"          # built-in, or path/to/file.py:function (relative to the spec)
    dataset = "digits"            # built-in, or a .npz (relative to the spec)
    # weights = "dense.pt"        # a state_dict to start from (else a built-in model is
    #                             # trained once per seed and shared by every point)
    # input_shape = [1, 8, 8]     # view the dataset's samples in this shape
    stages = ["prune", "generate", "csim"]        # of prune, generate, csim, simulate, synth
    objectives = ["accuracy", "interval", "dsp", "energy"]   # the Pareto front's axes

    [require]                     # optional: only points within these bounds can be chosen
    accuracy = 0.93               # at least (fixed-point top-1)
    interval = 8                  # at most; likewise latency, dsp, energy, alms, m20k

    [options]                     # the same for every point
    epochs = 10

    [grid]                        # every combination of these values
    sparsity = [0.5, 0.75, 0.875, 0.9375]
    block = ["1x4", "1x2", "2x4"]
    board = ["arria10-gx1150", "cyclone10-gx220"]

or, instead of [grid], a seeded random search:

    [random]
    samples = 20
    random_seed = 0                         # the draws' seed (`seed` is the prune's)
    sparsity = { low = 0.5, high = 0.95 }   # uniform in [low, high), rounded to 4 places
    block = ["1x4", "2x4"]                  # one of these

Every key and value is checked here, before anything runs: an unknown key names the allowed
keys, a bad value names the key and the allowed values (design.md §7's option meanings).
"""

from __future__ import annotations

import itertools
import math
import random
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codesign.sweep.options import OPTIONS, PRUNE_TARGETS, SpecError, check_value

STAGES = ("prune", "generate", "csim", "simulate", "synth")
OBJECTIVES = ("accuracy", "interval", "latency", "dsp", "energy", "alms", "m20k")
DEFAULT_OBJECTIVES = ("accuracy", "interval", "dsp", "energy")
TOP_KEYS = ("model", "dataset", "weights", "input_shape", "stages", "objectives")
TABLES = ("options", "grid", "random", "require")
MAX_POINTS = 10_000


@dataclass(frozen=True)
class SweepSpec:
    """A checked spec: where it came from, what every point shares, and the points."""

    path: Path
    model: str  # a built-in name or an absolute path/to/file.py:function
    dataset: str  # a built-in name or an absolute .npz path
    weights: Path | None
    input_shape: tuple[int, ...] | None
    stages: tuple[str, ...]
    objectives: tuple[str, ...]
    require: Mapping[str, float]  # objective -> bound (accuracy: at least; others: at most)
    search: str  # "grid" or "random"
    axes: tuple[str, ...]  # the options that vary, in the spec's order
    points: tuple[Mapping[str, Any], ...]  # every option of each point (defaults filled in)

    def describe(self) -> str:
        axes = ", ".join(self.axes) or "none"
        return (
            f"{len(self.points)} points ({self.search} over {axes}) of {self.model} on "
            f"{self.dataset}; stages {', '.join(self.stages)}"
        )


def load_spec(path: Path) -> SweepSpec:
    """Read and check a spec file; every error names the file and the key."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as error:
        raise SpecError(f"{path}: cannot read it ({error.strerror})") from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SpecError(f"{path}: not valid TOML ({error})") from error
    return parse_spec(data, Path(path))


def parse_spec(data: Mapping[str, Any], path: Path) -> SweepSpec:
    """A spec from its parsed TOML; `path` names it in errors and anchors relative paths."""
    where = str(path)
    _known(data, TOP_KEYS + TABLES, where, "key")
    if "grid" in data and "random" in data:
        raise SpecError(f"{where}: give [grid] or [random], not both")
    base = path.resolve().parent
    model = _model(_text(data, "model", where), base, where)
    dataset = _dataset(_text(data, "dataset", where), base, where)
    weights = (base / _text(data, "weights", where)).resolve() if "weights" in data else None
    if weights is not None and not weights.is_file():
        raise SpecError(f"{where}: key 'weights': {weights} is not a file")
    input_shape = _input_shape(data, where)
    stages = _choices(data, "stages", STAGES, ("prune", "generate"), where)
    if any(stage in stages for stage in STAGES[2:]) and "generate" not in stages:
        raise SpecError(f"{where}: key 'stages': csim, simulate and synth need 'generate'")
    objectives = _choices(data, "objectives", OBJECTIVES, DEFAULT_OBJECTIVES, where)
    if len(objectives) < 2:
        raise SpecError(f"{where}: key 'objectives': a Pareto front needs two different ones")
    require = _require(data, where)
    shared = _anchor_boards(_table(data, "options", where), base)
    _known(shared, tuple(OPTIONS), f"{where} [options]", "option")
    fixed = {key: check_value(key, value, f"{where} [options]") for key, value in shared.items()}
    search = "random" if "random" in data else "grid"
    axes, combinations = _combinations(data, search, base, where)
    clash = set(fixed) & set(axes)
    if clash:
        raise SpecError(f"{where}: {', '.join(sorted(clash))} both in [options] and [{search}]")
    points = []
    for combination in combinations:
        point = {key: option.default for key, option in OPTIONS.items()}
        point.update(fixed)
        point.update(combination)
        points.append(point)
    spec = SweepSpec(
        path=path,
        model=model,
        dataset=dataset,
        weights=weights,
        input_shape=input_shape,
        stages=stages,
        objectives=objectives,
        require=require,
        search=search,
        axes=tuple(axes),
        points=tuple(points),
    )
    _check_points(spec, set(fixed) | set(axes), where)
    return spec


def _model(model: str, base: Path, where: str) -> str:
    """A built-in model's name, or file.py:function with the file's path made absolute."""
    from codesign.models import BUILTIN_MODELS, model_file

    if model in BUILTIN_MODELS:
        return model
    found = model_file(model)
    if found is None:
        raise SpecError(
            f"{where}: key 'model': {model!r} is no built-in model "
            f"({', '.join(sorted(BUILTIN_MODELS))}) and not path/to/file.py:function"
        )
    file, function = (base / found[0]).resolve(), found[1]
    if not file.is_file():
        raise SpecError(f"{where}: key 'model': {file} is not a file")
    return f"{file}:{function}"


def _dataset(dataset: str, base: Path, where: str) -> str:
    """A built-in dataset's name, or an .npz made absolute."""
    from codesign.data import BUILTIN_DATASETS

    if dataset in BUILTIN_DATASETS:
        return dataset
    path = (base / dataset).resolve()
    if dataset.endswith(".npz") and path.is_file():
        return str(path)
    raise SpecError(
        f"{where}: key 'dataset': {dataset!r} is no built-in dataset "
        f"({', '.join(sorted(BUILTIN_DATASETS))}) and no .npz file ({path})"
    )


def _anchor_boards(table: dict[str, Any], base: Path) -> dict[str, Any]:
    """Board files named relative to the spec, made absolute (shipped boards stay names)."""
    from codesign.boards import available_boards

    def anchored(board: Any) -> Any:
        if not isinstance(board, str) or board in available_boards():
            return board
        if not (board.endswith(".toml") or "/" in board):
            return board  # no path: an unknown board's name, refused with the known ones
        return str((base / board).resolve())

    if "board" in table:
        given = table["board"]
        many = isinstance(given, list)
        table["board"] = [anchored(board) for board in given] if many else anchored(given)
    return table


def _known(data: Mapping[str, Any], allowed: tuple[str, ...], where: str, what: str) -> None:
    for key in data:
        if key not in allowed:
            raise SpecError(f"{where}: unknown {what} {key!r}; allowed: {', '.join(allowed)}")


def _text(data: Mapping[str, Any], key: str, where: str) -> str:
    if key not in data:
        raise SpecError(f"{where}: key {key!r} is missing")
    value = data[key]
    if not isinstance(value, str) or not value:
        raise SpecError(f"{where}: key {key!r} must be a non-empty string, got {value!r}")
    return value


def _input_shape(data: Mapping[str, Any], where: str) -> tuple[int, ...] | None:
    if "input_shape" not in data:
        return None
    shape = data["input_shape"]
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape)
    ):
        raise SpecError(f"{where}: key 'input_shape' must be a list of positive integers")
    return tuple(shape)


def _choices(
    data: Mapping[str, Any],
    key: str,
    allowed: tuple[str, ...],
    default: tuple[str, ...],
    where: str,
) -> tuple[str, ...]:
    values = data.get(key, list(default))
    if not isinstance(values, list) or not values:
        raise SpecError(f"{where}: key {key!r} must be a list of {', '.join(allowed)}")
    for value in values:
        if value not in allowed:
            raise SpecError(
                f"{where}: key {key!r}: unknown value {value!r}; allowed: {', '.join(allowed)}"
            )
    return tuple(name for name in allowed if name in values)  # in pipeline order


def _require(data: Mapping[str, Any], where: str) -> dict[str, float]:
    bounds = _table(data, "require", where)
    _known(bounds, OBJECTIVES, f"{where} [require]", "objective")
    for key, bound in bounds.items():
        if isinstance(bound, bool) or not isinstance(bound, int | float) or bound < 0:
            raise SpecError(f"{where} [require]: {key!r} must be a number >= 0, got {bound!r}")
        if key == "accuracy" and bound > 1:
            raise SpecError(f"{where} [require]: 'accuracy' is a top-1 in [0, 1], got {bound!r}")
    return {key: float(bound) for key, bound in bounds.items()}


def _table(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise SpecError(f"{where}: [{key}] must be a table")
    return dict(table)


def _combinations(
    data: Mapping[str, Any], search: str, base: Path, where: str
) -> tuple[list[str], list[dict[str, Any]]]:
    table = _anchor_boards(_table(data, search, where), base)
    where = f"{where} [{search}]"
    if search == "random":
        samples, seed = table.pop("samples", None), table.pop("random_seed", 0)
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise SpecError(f"{where}: key 'samples' (points to draw) must be an integer >= 1")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise SpecError(f"{where}: key 'random_seed' must be an integer")
    extra = " (or samples, random_seed)" if search == "random" else ""
    _known(table, tuple(OPTIONS), where, "option" + extra)
    values: dict[str, list[Any] | tuple[float, float]] = {}
    for key, given in table.items():
        if search == "random" and isinstance(given, dict):
            values[key] = _range(key, given, where)
        elif isinstance(given, list) and given:
            checked = [check_value(key, value, where) for value in given]
            if len(set(map(repr, checked))) != len(checked):
                raise SpecError(f"{where}: option {key!r} lists a value twice: {given!r}")
            values[key] = checked
        else:
            shape = "a non-empty list" + (" or {low, high}" if search == "random" else "")
            raise SpecError(f"{where}: option {key!r} must be {shape}, got {given!r}")
    axes = list(values)
    if search == "grid":
        lists = [values[key] for key in axes]
        count = 1
        for value_list in lists:
            count *= len(value_list)
        if count > MAX_POINTS:
            raise SpecError(f"{where}: {count:,} points; at most {MAX_POINTS:,} in one sweep")
        combinations = [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*lists)]
        return axes, combinations
    rng = random.Random(seed)
    drawn: dict[str, dict[str, Any]] = {}
    for _ in range(samples * 20):  # duplicates of a small space are drawn once
        point = {key: check_value(key, _draw(rng, values[key]), where) for key in axes}
        drawn.setdefault(repr(sorted(point.items())), point)
        if len(drawn) == samples:
            break
    return axes, list(drawn.values())


def _range(key: str, given: Mapping[str, Any], where: str) -> tuple[float, float]:
    if set(given) != {"low", "high"}:
        raise SpecError(f"{where}: option {key!r}: a range is {{ low = A, high = B }}")
    low, high = check_value(key, given["low"], where), given["high"]  # high is left out
    if isinstance(high, bool) or not isinstance(high, int | float):
        raise SpecError(f"{where}: option {key!r}: a range's high must be a number")
    high = float(high)
    if not isinstance(low, float):
        raise SpecError(f"{where}: option {key!r}: ranges are for number options; give a list")
    if not low < high:
        raise SpecError(f"{where}: option {key!r}: a range needs low < high")
    return (low, high)


def _draw(rng: random.Random, values: list[Any] | tuple[float, float]) -> Any:
    """One of the values, or a number in [low, high) cut to 4 places (never above high)."""
    if isinstance(values, tuple):
        low, high = values
        cut = min(math.floor(rng.uniform(low, high) * 1e4) / 1e4, round(high - 1e-4, 4))
        return max(low, cut)
    return values[rng.randrange(len(values))]


def _check_points(spec: SweepSpec, given: set[str], where: str) -> None:
    """What no single option check sees: the prune target, options of a stage not run."""
    for key in sorted(given):
        stage = OPTIONS[key].stage
        if stage not in spec.stages and not (stage == "generate" and "prune" in spec.stages):
            raise SpecError(
                f"{where}: option {key!r} is read by the {stage} stage, which 'stages' "
                f"does not run ({', '.join(spec.stages)})"
            )
    for point in spec.points:
        if point["reuse"] is not None and point["target_ii"] is not None:
            raise SpecError(f"{where}: a point sets both 'reuse' and 'target_ii'; give one")
        if "prune" not in spec.stages:
            continue
        targets = [key for key in PRUNE_TARGETS if point[key] is not None]
        if len(targets) != 1:
            raise SpecError(
                f"{where}: the prune stage needs exactly one of {', '.join(PRUNE_TARGETS)} "
                f"per point; a point has {', '.join(targets) or 'none'}"
            )
