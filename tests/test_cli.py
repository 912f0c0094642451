"""Command-line errors: one clear line, exit code 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codesign.cli import main

MODELS = Path(__file__).parent / "fixtures" / "models" / "unsupported.py"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_boards_lists_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "boards")
    assert code == 0
    assert "arria10-gx1150" in out and "(default)" in out and "cyclone10-gx220" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--board", "virtex7"], "unknown board 'virtex7'; known boards: arria10-gx1150"),
        (["--model", "resnet"], "unknown model 'resnet'; use a built-in model"),
        (["--dataset", "cifar"], "unknown dataset 'cifar'"),
        (["--block", "0x4"], "block '0x4' does not fit"),
        (["--block", "64x64"], "needs 4096 multipliers"),
        (
            ["--model", f"{MODELS}:dilated_conv", "--input-shape", "2,8,8"],
            "layer 0 (Conv2d): dilation=(2, 2) is not supported",
        ),
        (
            ["--model", f"{MODELS}:sigmoid_mlp", "--dataset", "digits"],
            "layer 1 (Sigmoid) is not supported by the hardware flow",
        ),
        (["--reuse", "fc9=2"], "unknown layer 'fc9'"),
    ],
)
def test_generate_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    base = {"--model": "digits-mlp", "--board": "arria10-gx1150"}
    args = ["generate", "--out", str(tmp_path / "out")]
    for key, value in base.items():
        if key not in argv:
            args += [key, value]
    code, _, err = run(capsys, *args, *argv)
    assert code == 2
    assert message in err
    assert not (tmp_path / "out").exists()


def test_generate_refuses_non_empty_out(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    code, _, err = run(capsys, "generate", "--model", "digits-mlp", "--out", str(tmp_path))
    assert code == 2 and "not empty; pass --force" in err
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("sparsity", ["1.0", "-0.2"])
def test_prune_refuses_bad_sparsity(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sparsity: str
) -> None:
    code, _, err = run(
        capsys,
        "prune",
        "--model",
        "digits-mlp",
        "--dataset",
        "digits",
        "--sparsity",
        sparsity,
        "--out",
        str(tmp_path / "p"),
    )
    assert code == 2 and "sparsity must be in [0, 1)" in err


def test_demo_refuses_a_folder_it_did_not_create(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "thesis.tex").write_text("precious")
    code, _, err = run(capsys, "demo", "--out", str(tmp_path))
    assert code == 2 and "was not created by `codesign demo`" in err
    assert (tmp_path / "thesis.tex").read_text() == "precious"


SMALL = Path(__file__).parent / "fixtures" / "models" / "small.py"


def test_generate_with_precision_reports_overflows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["generate", "--model", f"{SMALL}:mlp", "--input-shape", "12", "--out"]
    precision = "0.output=s6.5:TRN,2.accum=8,weight=s6.5"
    code, out, err = run(capsys, *args, str(tmp_path / "p"), "--precision", precision)
    assert code == 0, err
    report = json.loads((tmp_path / "p" / "report.json").read_text())
    first, second = report["layers"]
    assert first["formats"]["output"] == "s6.5" and first["formats"]["weight"] == "s6.5"
    assert first["overflows"] > 0 and second["accum_overflows"] > 0
    assert "overflow (reference, 32 test vectors): layer_0 (" in out
    assert f"{first['overflows']} outputs overflowed" in out


def test_generate_refuses_precision_for_an_unknown_layer(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["generate", "--model", f"{SMALL}:mlp", "--input-shape", "12", "--out"]
    code, _, err = run(capsys, *args, str(tmp_path / "p"), "--precision", "fc9.output=s8.4")
    assert code == 2 and "--precision names unknown layer(s) ['fc9']" in err
    assert not (tmp_path / "p").exists()


def test_formats_the_kernels_cannot_hold_are_clear_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["generate", "--model", f"{SMALL}:mlp", "--input-shape", "12", "--out"]
    code, _, err = run(capsys, *args, str(tmp_path / "p"), "--precision", "output=s8.-120")
    assert code == 2 and "fraction bits from its sum's" in err and "Traceback" not in err
    wide = ["generate", "--model", f"{SMALL}:wide", "--input-shape", "600", "--out"]
    bits = ["--weight-bits", "27", "--act-bits", "27"]
    code, _, err = run(capsys, *wide, str(tmp_path / "q"), *bits)
    assert code == 2 and "an exact accumulator needs" in err
    assert not (tmp_path / "p").exists() and not (tmp_path / "q").exists()


def test_clipped_weights_are_counted(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = ["generate", "--model", f"{SMALL}:mlp", "--input-shape", "12", "--out"]
    code, out, _ = run(capsys, *args, str(tmp_path / "p"), "--precision", "weight=u8.7")
    assert code == 0
    report = json.loads((tmp_path / "p" / "report.json").read_text())
    assert all(layer["weight_overflows"] > 0 for layer in report["layers"])  # negatives clip
    assert "weights saturated" in out


def test_an_input_shape_of_another_size_than_the_dataset_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["generate", "--model", f"{SMALL}:mlp", "--dataset", "digits", "--input-shape", "12"]
    code, _, err = run(capsys, *args, "--out", str(tmp_path / "p"))
    assert code == 2
    assert "--input-shape (12,) disagrees with the dataset's (64,) (a different number" in err
    assert not (tmp_path / "p").exists()


def test_progress_in_a_log_is_plain_lines(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where stderr is not a terminal (a log, a pipe) a long step writes plain lines to
    stdout instead of a bar: its size, its progress, its end with the time."""
    from codesign import progress

    monkeypatch.setattr(progress, "PLAIN_EVERY", 0.0)
    with progress.Progress(3, "train", "epochs", enabled=True) as bar:
        for _ in range(3):
            bar.update()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "train: 3 epochs"
    assert lines[1].startswith("train: 1/3 epochs (33%, ")
    assert lines[-1].startswith("train: done, 3 epochs in ")
    with progress.Progress(3, "quiet", "epochs", enabled=False) as bar:
        bar.update(3)
    assert capsys.readouterr().out == ""  # the library is silent unless asked


def test_step_lines_follow_the_current_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI's step lines go to the stdout of the moment, once, however often main runs."""
    from codesign import progress

    restore = progress.enable_step_lines()
    progress.enable_step_lines()()  # on already: adds nothing, undoes nothing
    progress.STEPS.info("Verilator build done in 3 s")
    assert capsys.readouterr().out == "Verilator build done in 3 s\n"
    restore()
    progress.STEPS.info("library use: silent")
    assert capsys.readouterr().out == ""
