"""`codesign prune`: option errors (fast), and `generate --from` on every method's output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from codesign.cli import main
from codesign.data import load_dataset
from codesign.models import train_builtin


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


BASE = ["prune", "--model", "digits-mlp", "--dataset", "digits"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sparsity", "1.0"], "sparsity must be in [0, 1), got 1.0"),
        (["--sparsity", "-0.2"], "sparsity must be in [0, 1)"),
        (["--sparsity", "0.5", "--method", "lottery"], "unknown method 'lottery'; use one of"),
        (["--sparsity", "0.5", "--criterion", "hessian"], "unknown criterion 'hessian'"),
        (["--sparsity", "0.5", "--schedule", "cosine"], "unknown schedule 'cosine'"),
        (
            ["--budget-cycles", "40", "--method", "channel"],
            "a hardware budget needs --method block",
        ),
        (["--budget-dsp", "0"], "a dsp budget must be a positive integer"),
        (["--budget-dsp", "100", "--allocator", "random"], "unknown allocator 'random'"),
    ],
)
def test_prune_option_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, *BASE, *argv, "--out", str(tmp_path / "p"))
    assert code == 2 and message in err
    assert not (tmp_path / "p").exists()


def test_model_without_prunable_layers(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = tmp_path / "flat.py"
    source.write_text("from torch import nn\ndef net():\n    return nn.Sequential(nn.ReLU())\n")
    code, _, err = run(
        capsys,
        "prune",
        "--model",
        f"{source}:net",
        "--dataset",
        "digits",
        "--sparsity",
        "0.5",
        "--out",
        str(tmp_path / "p"),
    )
    assert code == 2 and "no prunable layer (nn.Linear or nn.Conv2d)" in err


@pytest.fixture(scope="module")
def dense_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dense") / "digits-mlp.pt"
    torch.save(train_builtin("digits-mlp", load_dataset("digits")).state_dict(), path)
    return path


METHODS = [
    ["--method", "block", "--sparsity", "0.75"],
    ["--method", "block", "--unbalanced", "--criterion", "taylor", "--sparsity", "0.75"],
    [
        "--method",
        "block",
        "--criterion",
        "activation",
        "--schedule",
        "oneshot",
        "--sparsity",
        "0.5",
    ],
    ["--method", "unstructured", "--sparsity", "0.75", "--no-distill"],
    ["--method", "channel", "--sparsity", "0.5"],
    ["--method", "activation", "--sparsity", "0.5"],
    ["--budget-dsp", "400", "--allocator", "greedy"],
    ["--board", "cyclone10-gx220", "--budget-cycles", "60"],
]


@pytest.mark.slow
@pytest.mark.parametrize("options", METHODS, ids=lambda o: "-".join(a.lstrip("-") for a in o))
def test_generate_accepts_every_method(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, dense_weights: Path, options: list[str]
) -> None:
    prune_dir, project = tmp_path / "pruned", tmp_path / "project"
    argv = [*BASE, "--weights", str(dense_weights), "--epochs", "2", *options]
    code, out, err = run(capsys, *argv, "--out", str(prune_dir))
    assert code == 0, err
    record = json.loads((prune_dir / "prune.json").read_text())
    assert record["schema"] == "codesign.prune/1"
    for key in ("model", "dataset", "board", "method", "block", "criterion", "target_sparsity"):
        assert key in record
    assert {"dense", "pruned"} <= record["accuracy"].keys()
    assert "network" in out and "top-1" in out
    if "budget" in record:
        assert record["budget"]["met"] and "-> met" in out
        assert record["hardware"]["est_cycles"] <= record["hardware"]["dense"]["est_cycles"]
    else:
        assert abs(record["achieved_sparsity"] - record["target_sparsity"]) < 0.05
    board = options[options.index("--board") + 1] if "--board" in options else "arria10-gx1150"
    # without --board, generate --from builds for the board prune.json was costed for
    given = [] if "--board" in options else ["--board", board]
    argv = ["generate", "--from", str(prune_dir), *given, "--out", str(project)]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    report = json.loads((project / "report.json").read_text())
    assert report["board"] == record["board"] == board
    assert ("was costed for (no --board)" in out) == (not given)
    shapes = [layer["shape"] for layer in record["layers"]]
    assert [layer["shape"] for layer in report["layers"]] == shapes
    assert [layer["nnz_blocks"] for layer in report["layers"]] == [
        layer["nnz_blocks"] for layer in record["layers"]
    ]


@pytest.mark.slow
def test_unreachable_budget_names_the_best(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, dense_weights: Path
) -> None:
    argv = [*BASE, "--weights", str(dense_weights), "--budget-cycles", "20"]
    code, _, err = run(capsys, *argv, "--out", str(tmp_path / "p"))
    assert code == 2
    assert "budget of 20 cycles cannot be met on arria10-gx1150: the best reachable is 46" in err


@pytest.mark.slow
def test_prune_json_names_its_inputs_so_generate_from_works_anywhere(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model file and an .npz given relative to the folder prune ran in: prune.json holds
    their absolute paths and a copy of the model's source, used once the file is gone."""
    import numpy as np

    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    source = Path(__file__).parent / "fixtures" / "models" / "small.py"
    (work / "net.py").write_text(source.read_text())
    digits = load_dataset("digits")
    np.savez(
        work / "data.npz",
        x_train=digits.x_train[:200],
        y_train=digits.y_train[:200],
        x_test=digits.x_test[:50],
        y_test=digits.y_test[:50],
    )
    monkeypatch.chdir(work)
    argv = ["prune", "--model", "net.py:digits_linear", "--dataset", "data.npz"]
    code, _, err = run(capsys, *argv, "--sparsity", "0.5", "--epochs", "1", "--out", "pruned")
    assert code == 0, err
    record = json.loads((work / "pruned" / "prune.json").read_text())
    assert record["model"] == f"{work / 'net.py'}:digits_linear"
    assert record["dataset"] == str(work / "data.npz")
    assert (work / "pruned" / "model_source" / "net.py").read_text() == source.read_text()

    monkeypatch.chdir(elsewhere)
    generate = ["generate", "--from", str(work / "pruned"), "--vectors", "4"]
    code, _, err = run(capsys, *generate, "--out", "one")
    assert code == 0, err
    (work / "net.py").unlink()
    code, out, err = run(capsys, *generate, "--out", "two")
    assert code == 0, err
    assert "net.py is not there; using the copy prune made" in out + err
    reports = [json.loads((elsewhere / d / "report.json").read_text()) for d in ("one", "two")]
    assert reports[0]["digest"] == reports[1]["digest"]


@pytest.mark.slow
def test_prune_keeps_the_dense_model_it_trained_for_the_next_prune(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    code, out, err = run(capsys, *BASE, "--sparsity", "0.5", "--epochs", "1", "--out", str(first))
    assert code == 0, err
    assert "dense.pt (the dense model trained: --weights it to skip training)" in out
    weights = ["--weights", str(first / "dense.pt")]
    argv = [*BASE, *weights, "--sparsity", "0.75", "--epochs", "1", "--out", str(second)]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert not (second / "dense.pt").exists()  # nothing trained this time
    records = [json.loads((d / "prune.json").read_text()) for d in (first, second)]
    assert records[0]["accuracy"]["dense"] == records[1]["accuracy"]["dense"]
