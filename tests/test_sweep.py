"""codesign sweep: the spec's checks, the Pareto front, the content keys, and real sweeps of
digits-mlp on this process, on local processes and on a 2-worker Dask LocalCluster, killed
and resumed."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from codesign.cli import main
from codesign.sweep import SpecError, load_spec, pareto_front, parse_spec, run_sweep
from codesign.sweep.store import content_key

BASE = 'model = "digits-mlp"\ndataset = "digits"\n'


def spec_file(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(BASE + text)
    return path


def spec_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(SpecError) as caught:
        load_spec(spec_file(tmp_path, text))
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("colour = 1\n", ["unknown key 'colour'", "allowed: model, dataset"]),
        ("[grid]\nsparsity = [0.5]\nblok = ['1x4']\n", ["unknown option 'blok'", "sparsity"]),
        ("[grid]\nsparsity = [0.5, 1.5]\n", ["option 'sparsity'", "1.5", "a number in [0, 1)"]),
        ("[grid]\nsparsity = [0.5]\nboard = ['nope']\n", ["'board'", "'nope'", "cyclone10-gx220"]),
        ("[grid]\nsparsity = [0.5]\nblock = ['1by4']\n", ["option 'block'", "RxC"]),
        ("[grid]\nsparsity = [0.5]\nmethod = ['magic']\n", ["'magic'", "block, unstructured"]),
        ("[grid]\nsparsity = [0.5, 0.5]\n", ["lists a value twice"]),
        ("[grid]\nsparsity = 0.5\n", ["must be a non-empty list"]),
        ("[grid]\nblock = ['1x4']\n", ["exactly one of sparsity, budget_cycles, budget_dsp"]),
        ("stages = ['prune', 'fly']\n", ["unknown value 'fly'", "prune, generate, csim"]),
        ("stages = ['prune', 'csim']\n", ["need 'generate'"]),
        ("objectives = ['accuracy']\n", ["two different ones"]),
        ("objectives = ['accuracy', 'beauty']\n", ["'beauty'", "interval, latency"]),
        ("stages = ['generate']\n[grid]\nsparsity = [0.5]\n", ["read by the prune stage"]),
        ("[grid]\nsparsity = [0.5]\n[random]\nsamples = 2\n", ["not both"]),
        ("[random]\nsparsity = [0.5]\n", ["'samples'"]),
        ("[require]\nspeed = 3\n", ["unknown objective 'speed'", "accuracy, interval"]),
        ("[require]\naccuracy = 'high'\n", ["'accuracy' must be a number"]),
        ("[random]\nsamples = 2\nsparsity = { low = 0.9, high = 0.1 }\n", ["low < high"]),
        ("[random]\nsamples = 2\nepochs = { low = 1, high = 5 }\n", ["ranges are for number"]),
        ("[grid]\nsparsity = [0.5]\nmax_utilisation = [0.0]\n", ["a number in (0, 1]"]),
        ("[require]\naccuracy = 93\n", ["a top-1 in [0, 1]"]),
        ("objectives = ['dsp', 'dsp']\n", ["two different ones"]),
        ("[options]\nsparsity = 0.5\n[grid]\nsparsity = [0.5]\n", ["both in [options]"]),
        ("[grid]\nsparsity = [0.5]\nreuse = ['fold']\ntarget_ii = [4]\n", ["both 'reuse'"]),
        ("[grid]\nsparsity = [0.1, 0.2]\nseed = " + str(list(range(6000))) + "\n", ["at most"]),
    ],
)
def test_a_bad_spec_names_the_key_and_the_allowed_values(
    tmp_path: Path, text: str, words: list[str]
) -> None:
    message = spec_error(tmp_path, text)
    assert str(tmp_path / "spec.toml") in message
    for word in words:
        assert word in message, message


def test_bad_toml_and_a_missing_file_are_clear(tmp_path: Path) -> None:
    assert "not valid TOML" in spec_error(tmp_path, "[grid\n")
    with pytest.raises(SpecError, match="cannot read it"):
        load_spec(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("top", "words"),
    [
        ('model = "nope.py:build"\ndataset = "digits"\n', ["key 'model'", "nope.py is not a file"]),
        ('model = "net.py"\ndataset = "digits"\n', ["no built-in model", "file.py:function"]),
        ('model = "resnet"\ndataset = "digits"\n', ["'resnet' is no built-in model"]),
        ('model = "digits-mlp"\ndataset = "gone.npz"\n', ["key 'dataset'", "gone.npz"]),
        ('model = "digits-mlp"\ndataset = "cifar"\n', ["no built-in dataset", "mnist5k"]),
    ],
)
def test_a_model_or_dataset_that_is_not_there_is_named(
    tmp_path: Path, top: str, words: list[str]
) -> None:
    path = tmp_path / "spec.toml"
    path.write_text(top + "[grid]\nsparsity = [0.5]\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    for word in words:
        assert word in str(caught.value), str(caught.value)


def test_a_board_file_is_the_spec_folder_s_and_keyed_by_its_bytes(tmp_path: Path) -> None:
    from codesign.boards import available_boards, data_dir
    from codesign.sweep.store import board_identity

    shipped = data_dir("boards") / f"{available_boards()[0]}.toml"
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "mine.toml").write_bytes(shipped.read_bytes())
    text = "[grid]\nsparsity = [0.5]\nboard = ['boards/mine.toml']\n"
    spec = load_spec(spec_file(tmp_path, text))
    board = spec.points[0]["board"]
    assert board == str(tmp_path / "boards" / "mine.toml")
    before = board_identity(board)
    (tmp_path / "boards" / "mine.toml").write_bytes(shipped.read_bytes() + b"\n# edited\n")
    assert board_identity(board) != before


def test_a_grid_is_every_combination_with_the_defaults_filled_in(tmp_path: Path) -> None:
    spec = load_spec(
        spec_file(
            tmp_path,
            "[options]\nepochs = 3\n[grid]\nsparsity = [0.5, 0.75]\nblock = ['1x4', '2x4']\n"
            "board = ['arria10-gx1150', 'cyclone10-gx220']\n",
        )
    )
    assert len(spec.points) == 8 and spec.axes == ("sparsity", "block", "board")
    assert {(p["sparsity"], p["block"], p["board"]) for p in spec.points} == {
        (s, b, board)
        for s in (0.5, 0.75)
        for b in ("1x4", "2x4")
        for board in ("arria10-gx1150", "cyclone10-gx220")
    }
    assert all(p["epochs"] == 3 and p["weight_bits"] == 8 for p in spec.points)
    assert spec.stages == ("prune", "generate")  # the default


def test_a_random_search_is_seeded_and_draws_each_point_once(tmp_path: Path) -> None:
    text = "[random]\nsamples = 6\nrandom_seed = 3\nsparsity = { low = 0.5, high = 0.9 }\n"
    text += "seed = [0, 1]\n"  # the prune's seed is an axis like any other
    text += "block = ['1x4', '2x4']\n"
    first = load_spec(spec_file(tmp_path, text)).points
    again = load_spec(spec_file(tmp_path, text, "again.toml")).points
    assert first == again and len(first) == 6
    assert all(0.5 <= p["sparsity"] < 0.9 for p in first)
    assert all(round(p["sparsity"], 4) == p["sparsity"] for p in first)
    edge = "[random]\nsamples = 30\nsparsity = { low = 0.9999, high = 1.0 }\n"
    assert {p["sparsity"] for p in load_spec(spec_file(tmp_path, edge, "edge.toml")).points} == {
        0.9999
    }  # cut to 4 places, never the open end
    small = "[random]\nsamples = 10\nblock = ['1x4', '2x4']\nsparsity = [0.5]\n"
    assert len(load_spec(spec_file(tmp_path, small, "small.toml")).points) == 2  # the whole space


def test_relative_paths_are_the_spec_folder_s(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text("")
    (tmp_path / "data.npz").write_bytes(b"")
    spec = parse_spec(
        {"model": "net.py:build", "dataset": "data.npz", "stages": ["generate"]},
        tmp_path / "spec.toml",
    )
    assert spec.model == f"{tmp_path / 'net.py'}:build"
    assert spec.dataset == str(tmp_path / "data.npz")


def test_the_pareto_front_keeps_the_points_nothing_beats() -> None:
    def row(key: str, accuracy: float, ii: int, dsp: int, **extra: Any) -> dict[str, Any]:
        figures = {"top1_fixed[D]": accuracy, "ii[E]": ii, "dsp[E]": dsp}
        return {"key": key, "status": "done", **figures, **extra}

    rows = [
        row("a", 0.95, 16, 400),
        row("b", 0.90, 16, 200),  # fewer DSPs than a: on the front
        row("c", 0.90, 16, 300),  # b beats it
        row("d", 0.99, 64, 900),  # the most accurate: on the front
        row("e", 0.99, 8, 100, **{"csim_match[C]": False}),  # would win, but is wrong
        {"key": "f", "status": "failed", "error": "generate: does not fit"},
        row("g", 0.95, 16, 400),  # equal to a: neither beats the other
    ]
    front = pareto_front(rows, ["accuracy", "interval", "dsp"])
    assert [r["key"] for r in front.points] == ["d", "a", "g", "b"]
    assert dict(front.excluded) == {
        "e": "not bit-exact (csim_match[C])",
        "f": "failed: generate: does not fit",
    }
    # bounds: only the points within them are candidates, an objective or not
    bounded = pareto_front(rows, ["accuracy", "dsp"], {"accuracy": 0.95, "interval": 32})
    assert [r["key"] for r in bounded.points] == ["a", "g"]
    assert dict(bounded.excluded)["d"] == "outside [require]: ii[E] 64 (needs <= 32)"
    assert dict(bounded.excluded)["b"] == "outside [require]: top1_fixed[D] 0.9 (needs >= 0.95)"
    # with RTL figures on every finished point, the interval is the simulated one
    simulated = [dict(r, **{"ii[R]": 1}) for r in rows if r["status"] == "done"]
    assert pareto_front(simulated, ["accuracy", "interval"]).objectives[1][1] == "ii[R]"


def test_a_key_changes_with_any_input_and_only_then(tmp_path: Path) -> None:
    from codesign.sweep.store import dataset_identity, model_identity

    inputs = {"model": "digits-mlp", "options": {"sparsity": 0.5, "block": "1x4"}}
    assert content_key(inputs) == content_key(json.loads(json.dumps(inputs)))
    changed = {"model": "digits-mlp", "options": {"sparsity": 0.5, "block": "2x4"}}
    assert content_key(changed) != content_key(inputs)
    net, data = tmp_path / "net.py", tmp_path / "data.npz"
    net.write_text("def build(): ...\n")
    data.write_bytes(b"one")
    model, dataset = model_identity(f"{net}:build"), dataset_identity(str(data))
    moved = tmp_path / "elsewhere.py"
    moved.write_text(net.read_text())
    assert model_identity(f"{moved}:build") == model  # the bytes, not the path
    net.write_text("def build(): return 1\n")
    data.write_bytes(b"two")
    assert model_identity(f"{net}:build") != model and dataset_identity(str(data)) != dataset
    assert model_identity(f"{net}:other") != model_identity(f"{net}:build")


def read_table(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open() as stream:
        return list(csv.DictReader(stream))


def figures_of(out: Path) -> dict[tuple[str, str], dict[str, str]]:
    """(sparsity, board) -> the row's figures (no worker, no seconds)."""
    return {
        (row["sparsity"], row["board"]): {
            k: v for k, v in row.items() if k not in {"worker", "seconds"}
        }
        for row in read_table(out)
    }


SMALL = (
    "stages = ['prune', 'generate', 'csim']\n[options]\nepochs = 1\nvectors = 8\n"
    "[grid]\nsparsity = [0.5, 0.75]\nboard = ['arria10-gx1150', 'cyclone10-gx220']\n"
)


@pytest.mark.slow
@pytest.mark.csim
def test_local_processes_and_a_dask_cluster_give_the_same_table(
    tmp_path: Path, toolchain: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from distributed import LocalCluster

    spec = spec_file(tmp_path, SMALL)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "local"), "--jobs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "4 to run (2 local processes)" in printed and "Pareto front" in printed
    local = figures_of(tmp_path / "local")
    assert all(row["status"] == "done" and row["csim_match[C]"] == "True" for row in local.values())
    assert len({row["dsp[E]"] for row in local.values()}) > 1  # the points differ
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        out = tmp_path / "dask"
        assert main(["sweep", str(spec), "--out", str(out), "--scheduler", address]) == 0
        assert "4 to run (Dask at" in capsys.readouterr().out
        workers = {row["worker"] for row in read_table(out)}
    assert figures_of(out) == local
    assert len(workers) == 2 and len(list((out / "logs").glob("worker-*.log"))) == 2

    # a second sweep over the same store computes only its new points
    wider = spec_file(tmp_path, SMALL.replace("[0.5, 0.75]", "[0.5, 0.75, 0.875]"), "wider.toml")
    store = str(tmp_path / "local" / "points")
    argv = ["sweep", str(wider), "--out", str(tmp_path / "wider"), "--store", store]
    assert main(argv) == 0
    assert "4 already in" in capsys.readouterr().out
    assert len(read_table(tmp_path / "wider")) == 6

    # report --sweep: the table with the front marked, and the plot
    assert main(["report", "--sweep", str(out), "--out", str(tmp_path / "report")]) == 0
    front = json.loads((out / "sweep.json").read_text())["front"]
    with (tmp_path / "report" / "sweep.csv").open() as stream:
        marked = [row["key"] for row in csv.DictReader(stream) if row["front"] == "True"]
    assert sorted(marked) == sorted(front) and front
    assert (tmp_path / "report" / "sweep_front.png").stat().st_size > 10_000


@pytest.mark.slow
def test_a_killed_sweep_resumes_with_the_missing_points_only(tmp_path: Path) -> None:
    text = "[options]\nepochs = 150\nvectors = 4\n[grid]\nsparsity = [0.25, 0.5, 0.75, 0.875]\n"
    text += "board = ['arria10-gx1150']\n"
    spec, out = spec_file(tmp_path, text), tmp_path / "out"
    command = [sys.executable, "-m", "codesign", "sweep", str(spec), "--out", str(out)]
    environment = dict(os.environ, PYTHONUNBUFFERED="1")
    running = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(list(out.glob("points/*/result.json"))) < 2 and time.monotonic() < deadline:
        assert running.poll() is None, "the sweep ended before it could be killed"
        time.sleep(0.2)
    running.send_signal(signal.SIGKILL)
    running.wait()
    kept = {path: path.stat().st_mtime_ns for path in out.glob("points/*/result.json")}
    assert 2 <= len(kept) < 4
    assert [row["status"] for row in read_table(out)].count("pending") == 4 - len(kept)

    again = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    assert f"{len(kept)} already in" in again.stdout
    assert f"{4 - len(kept)} computed, {len(kept)} cached" in again.stdout
    assert {path: path.stat().st_mtime_ns for path in kept} == kept  # untouched
    assert [row["status"] for row in read_table(out)] == ["done"] * 4

    third = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    assert "0 computed, 4 cached" in third.stdout


@pytest.mark.slow
def test_a_failing_point_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    text = "stages = ['generate']\n[options]\nvectors = 4\n"
    text += "[grid]\nmax_utilisation = [0.8, 0.001]\n"  # the second fits no design
    spec = load_spec(spec_file(tmp_path, text))
    outcome = run_sweep(spec, tmp_path / "out")
    statuses = {row["max_utilisation"]: row for row in outcome.rows}
    assert statuses[0.8]["status"] == "done" and statuses[0.8]["ii[E]"] >= 1
    assert statuses[0.001]["status"] == "failed"
    assert "generate:" in statuses[0.001]["error"] and "does not fit" in statuses[0.001]["error"]
    assert [row["key"] for row in outcome.front.points] == [statuses[0.8]["key"]]
    again = run_sweep(spec, tmp_path / "out")  # a design's failure is not retried
    assert again.counts == {"computed": 0, "cached": 2, "failed": 0, "error": 0}


def test_an_unreachable_scheduler_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import codesign.sweep.executors as executors

    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 1)
    spec = spec_file(tmp_path, "[grid]\nsparsity = [0.5]\n")
    argv = ["sweep", str(spec), "--out", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9"]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in error
    assert "Traceback" not in error
    assert not (tmp_path / "out" / "points").exists()  # nothing ran


def test_a_folder_that_is_no_sweep_is_not_written_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = spec_file(tmp_path, "[grid]\nsparsity = [0.5]\n")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert main(["sweep", str(spec), "--out", str(mine)]) == 2
    assert "is no sweep's --out" in capsys.readouterr().err
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert main(["sweep", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "cannot read it" in capsys.readouterr().err
    assert main(["report", "--sweep", str(mine), "--out", str(tmp_path / "r")]) == 2
    assert "no sweep.json" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.rtlsim
def test_later_stages_reuse_the_point_and_bring_rtl_and_yosys_figures(tmp_path: Path) -> None:
    """A model file on an .npz, generated first; a second spec adds Verilator and Yosys to
    the same point (same options, same key), which runs only those stages."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 12)).astype(np.float32)
    y = x[:, :4].argmax(axis=1).astype(np.int64)
    split = {"x_train": x[:100], "y_train": y[:100], "x_test": x[100:], "y_test": y[100:]}
    np.savez(tmp_path / "data.npz", **split)
    small = Path(__file__).parent / "fixtures" / "models" / "small.py"
    head = f'model = "{small}:mlp"\ndataset = "data.npz"\n'
    options = "[options]\nvectors = 4\nreuse = '16'\n"
    first, later = tmp_path / "first.toml", tmp_path / "later.toml"
    first.write_text(head + "stages = ['generate']\n" + options)
    later.write_text(head + "stages = ['generate', 'simulate', 'synth']\n" + options)
    out = tmp_path / "out"
    assert run_sweep(load_spec(first), out).rows[0]["ii[R]"] is None
    (report,) = list((out / "points").glob("*/project/report.json"))
    generated = report.stat().st_mtime_ns

    outcome = run_sweep(load_spec(later), out)
    (row,) = outcome.rows
    assert outcome.counts["computed"] == 1
    assert row["status"] == "done" and row["stages"] == "generate+simulate+synth"
    assert report.stat().st_mtime_ns == generated  # generate did not run again
    assert row["ii[R]"] == row["ii[E]"] == 16
    assert row["latency_cycles[R]"] == row["latency_cycles[E]"]
    assert row["rtl_match[R]"] is True and row["dsp[Y]"] > 0 and row["ffs[Y]"] > 0
    assert outcome.front.objectives[1][1] == "ii[R]"  # simulated where every point has one
    assert run_sweep(load_spec(later), out).counts["cached"] == 1


@dataclass(frozen=True)
class _Task:
    key: str
    figures: dict[str, Any]


def _crash_on_bad(task: _Task) -> dict[str, Any]:
    """A stand-in for run_point: the task 'bad' kills its process."""
    if task.key == "bad":
        os._exit(3)
    time.sleep(0.2)
    return {"key": task.key, "status": "done", "error": None}


def test_a_worker_that_dies_costs_its_own_point_only() -> None:
    from codesign.sweep.executors import ProcessExecutor

    tasks = [_Task(key, {}) for key in ("a", "b", "bad", "c", "d")]
    results = dict(
        (task.key, result["status"])
        for task, result in ProcessExecutor(_crash_on_bad, 2).completed(tasks)
    )
    assert results == {"a": "done", "b": "done", "bad": "error", "c": "done", "d": "done"}


def test_a_store_holds_one_sweep_at_a_time_and_is_not_the_out_folder(tmp_path: Path) -> None:
    from codesign.errors import CodesignError
    from codesign.sweep.store import Store

    with Store(tmp_path / "store").locked():
        with pytest.raises(CodesignError, match="in use by another sweep"):
            with Store(tmp_path / "store").locked():
                pass
    with Store(tmp_path / "store").locked():  # released
        pass
    spec = load_spec(spec_file(tmp_path, "stages = ['generate']\n"))
    with pytest.raises(CodesignError, match="is or holds --out"):
        run_sweep(spec, tmp_path / "out", store_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything was written


@pytest.mark.slow
def test_a_run_that_breaks_keeps_its_stages_and_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import codesign.sweep.point as point

    spec = load_spec(spec_file(tmp_path, "stages = ['generate', 'csim']\n[options]\nvectors = 4\n"))

    def broken(task: Any) -> dict[str, Any]:
        raise RuntimeError("the disk is full")

    monkeypatch.setitem(point.STAGE_RUNNERS, "csim", broken)
    first = run_sweep(spec, tmp_path / "out")
    (entry,) = first.rows
    assert entry["status"] == "error" and "RuntimeError: the disk is full" in entry["error"]
    assert first.counts["error"] == 1 and not first.front.points
    (report,) = list((tmp_path / "out" / "points").glob("*/project/report.json"))
    generated = report.stat().st_mtime_ns

    monkeypatch.setitem(point.STAGE_RUNNERS, "csim", lambda task: {"csim_match[C]": True})
    again = run_sweep(spec, tmp_path / "out")
    assert again.counts["computed"] == 1 and again.rows[0]["status"] == "done"
    assert again.rows[0]["stages"] == "generate+csim"
    assert report.stat().st_mtime_ns == generated  # only the broken stage ran again
