"""Bad inputs a user meets: each is one clear line (exit 2, no traceback), and nothing the
command reads is destroyed or overwritten (issue 14's catalogue, growing)."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from _rtl_cases import require_verilator
from torch import nn

from codesign.cli import main

SMALL = Path(__file__).parent / "fixtures" / "models" / "small.py"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file under `folder` with its content hash: what must survive a refused command."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated project of the small user model (random calibration, no training)."""
    out = tmp_path_factory.mktemp("bad") / "project"
    code = main(
        ["generate", "--model", f"{SMALL}:mlp", "--input-shape", "12", "--out", str(out)]
        + ["--vectors", "4"]
    )
    assert code == 0
    return out


@pytest.fixture
def in_folder(tmp_path: Path) -> Iterator[Path]:
    here = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(here)


def assert_refused(err: str, code: int, message: str) -> None:
    assert code == 2, err
    assert message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("where", ["same", "inside", "parent"])
def test_generate_out_may_not_overlap_its_input_project(
    capsys: pytest.CaptureFixture[str], project: Path, where: str
) -> None:
    before = fingerprint(project)
    out = {"same": project, "inside": project / "again", "parent": project.parent}[where]
    code, _, err = run(capsys, "generate", "--from", str(project), "--out", str(out), "--force")
    assert_refused(err, code, "would overlap the input")
    assert fingerprint(project) == before


def test_generate_out_may_not_hold_the_model_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model = tmp_path / "models" / "net.py"
    model.parent.mkdir()
    model.write_text(SMALL.read_text())
    code, _, err = run(
        capsys,
        *("generate", "--model", f"{model}:mlp", "--input-shape", "12"),
        *("--out", str(model.parent), "--force"),
    )
    assert_refused(err, code, "would overlap the input")
    assert model.is_file()


def test_out_may_not_be_the_current_folder(
    capsys: pytest.CaptureFixture[str], in_folder: Path
) -> None:
    (in_folder / "keep.txt").write_text("mine\n")
    for out in (".", str(in_folder.parent)):
        code, _, err = run(
            capsys,
            *("generate", "--model", f"{SMALL}:mlp", "--input-shape", "12"),
            *("--out", out, "--force"),
        )
        assert_refused(err, code, "holds the current folder")
    assert (in_folder / "keep.txt").read_text() == "mine\n"


def test_prune_out_may_not_hold_its_weights(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    weights = tmp_path / "w" / "weights.pt"
    weights.parent.mkdir()
    weights.write_bytes(b"not read: the check comes first")
    code, _, err = run(
        capsys,
        *("prune", "--model", f"{SMALL}:mlp", "--weights", str(weights), "--dataset", "digits"),
        *("--sparsity", "0.5"),
        *("--out", str(weights.parent), "--force"),
    )
    assert_refused(err, code, "would overlap the input")
    assert weights.read_bytes() == b"not read: the check comes first"


def test_report_out_may_not_be_a_project(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    before = fingerprint(project)
    for force in ((), ("--force",)):
        code, _, err = run(capsys, "report", str(project), "--out", str(project), *force)
        assert_refused(err, code, "would overlap the input")
    assert fingerprint(project) == before


def test_report_out_refuses_a_foreign_folder_and_rewrites_its_own(
    capsys: pytest.CaptureFixture[str], project: Path, tmp_path: Path
) -> None:
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("mine\n")
    code, _, err = run(capsys, "report", str(project), "--out", str(foreign))
    assert_refused(err, code, "is not empty; pass --force")
    assert sorted(p.name for p in foreign.iterdir()) == ["todo.txt"]
    own = tmp_path / "comparison"
    for _ in range(2):  # a report may write again where a report wrote
        code, out, err = run(capsys, "report", str(project), "--out", str(own))
        assert code == 0, err
    assert (own / "report.md").is_file() and (own / ".codesign-report").is_file()
    code, _, err = run(capsys, "report", str(project), "--out", str(foreign), "--force")
    assert code == 0, err
    assert (foreign / "todo.txt").read_text() == "mine\n"  # --force writes beside it


def small_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 16), nn.LeakyReLU(0.1), nn.Linear(16, 4))


def _weights(kind: str, path: Path) -> None:
    model = small_mlp()
    state = {key: value.clone() for key, value in model.state_dict().items()}
    if kind == "module":
        torch.save(model, path)
    elif kind == "list":
        torch.save([1, 2], path)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("weights: yes\n")
    elif kind == "nan":
        state["0.weight"][0, 0] = float("nan")
        torch.save(state, path)
    elif kind == "int":
        torch.save({key: value.to(torch.int32) for key, value in state.items()}, path)
    elif kind == "missing":
        state.pop("2.bias")
        torch.save(state, path)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("module", "holds a pickled model or object, which codesign does not run"),
        ("list", "holds a list, not a state_dict of tensors"),
        ("empty", "is not a torch file (EOFError"),
        ("text", "is not a torch file"),
        ("nan", "0.weight holds 1 NaN or infinite values"),
        ("int", "0.weight is torch.int32, the model's is torch.float32"),
        ("missing", 'Missing key(s) in state_dict: "2.bias"'),
    ],
)
def test_bad_weights_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str, message: str
) -> None:
    weights = tmp_path / "weights.pt"
    _weights(kind, weights)
    out = tmp_path / "out"
    code, _, err = run(
        capsys,
        *("generate", "--model", f"{SMALL}:mlp", "--weights", str(weights)),
        *("--input-shape", "12", "--out", str(out)),
    )
    assert_refused(err, code, message)
    assert not out.exists()


def _dataset(kind: str, path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.normal(size=(32, 12)).astype(np.float32),
        "y_train": rng.integers(0, 4, 32),
        "x_test": rng.normal(size=(8, 12)).astype(np.float32),
        "y_test": rng.integers(0, 4, 8),
    }
    if kind == "nan":
        arrays["x_train"][3, 5] = np.nan
    elif kind == "negative":
        arrays["y_test"][0] = -1
    elif kind == "empty":
        arrays["x_test"], arrays["y_test"] = arrays["x_test"][:0], arrays["y_test"][:0]
    elif kind == "features":
        arrays["x_train"], arrays["x_test"] = arrays["x_train"][:, :10], arrays["x_test"][:, :10]
    elif kind == "classes":
        arrays["y_train"][0] = 6
    elif kind == "strings":
        arrays["x_train"] = arrays["x_train"].astype(str)
    np.savez(path, **arrays)
    if kind == "truncated":
        path.write_bytes(path.read_bytes()[:100])


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("nan", "x_train holds 1 NaN or infinite values"),
        ("negative", "y_test has negative labels"),
        ("empty", "x_test has no samples"),
        ("features", "cannot take data's samples of shape (10,)"),
        ("classes", "gives 4 scores per sample, data has 7 classes"),
        ("strings", "x_train must hold real numbers"),
        ("truncated", "not a readable .npz file"),
    ],
)
def test_bad_datasets_fail_before_any_training(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str, message: str
) -> None:
    dataset = tmp_path / "data.npz"
    _dataset(kind, dataset)
    out = tmp_path / "out"
    code, _, err = run(
        capsys,
        *("prune", "--model", f"{SMALL}:mlp", "--dataset", str(dataset), "--sparsity", "0.5"),
        *("--out", str(out)),
    )
    assert_refused(err, code, message)
    assert not out.exists()


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("needs_argument", "calling needs_argument() failed: TypeError"),
        ("raises", "calling raises() failed: RuntimeError: no GPU here"),
        ("five_scores", "gives 5 scores per sample, digits has 10 classes"),
    ],
)
def test_bad_model_factories(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, function: str, message: str
) -> None:
    out = tmp_path / "out"
    code, _, err = run(
        capsys,
        *("prune", "--model", f"{SMALL}:{function}", "--dataset", "digits", "--sparsity", "0.5"),
        *("--out", str(out)),
    )
    assert_refused(err, code, message)
    assert not out.exists()


@pytest.mark.parametrize("lr", ["-1", "0", "nan", "inf", "fast"])
def test_learning_rate_must_be_a_positive_number(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, lr: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["prune", "--model", f"{SMALL}:mlp", "--dataset", "digits", "--sparsity", "0.5"]
            + [f"--lr={lr}", "--out", str(tmp_path / "out")]
        )
    assert exit_info.value.code == 2
    assert f"argument --lr: expected a number above 0, got {lr!r}" in capsys.readouterr().err


def test_diverged_fine_tuning_is_an_error_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, _, err = run(
        capsys,
        *("prune", "--model", f"{SMALL}:digits_linear", "--dataset", "digits"),
        *("--sparsity", "0.5", "--lr", "1e30", "--epochs", "2", "--out", str(out)),
    )
    assert_refused(err, code, "fine-tuning diverged")
    assert "lower --lr (now 1e+30)" in err
    assert not out.exists()


@pytest.mark.rtlsim
def test_simulate_reads_the_projects_rtl_and_refuses_a_missing_file(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    project: Path,
    tmp_path: Path,
) -> None:
    """simulate runs the RTL the project holds (as a synthesis tool would read it), not a
    fresh rendering of design.json: a deleted file is an error, an edited one is simulated
    as it is, with a warning, and its wrong result shows as a mismatch."""
    require_verilator()
    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    weights = sorted((copy / "rtl" / "mem").glob("*_weights.mem"))[0]
    saved = weights.read_text()
    weights.unlink()
    code, _, err = run(capsys, "simulate", str(copy))
    assert_refused(err, code, f"rtl/mem/{weights.name} is missing; run generate")
    lines = saved.splitlines()
    flipped = f"{int(lines[1], 16) ^ 0x1:0{len(lines[1])}x}"  # one weight bit changed
    weights.write_text("\n".join([lines[0], flipped, *lines[2:]]) + "\n")
    with caplog.at_level(logging.WARNING):
        code, out, _ = run(capsys, "simulate", str(copy))
    assert code == 1, out
    assert "MISMATCH" in out, out
    assert any("differs from what generate writes" in message for message in caplog.messages)


def test_ctrl_c_is_one_line_and_exit_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import codesign.cli as cli

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "boards", interrupted)
    assert main(["boards"]) == 130
    captured = capsys.readouterr()
    assert captured.err == "codesign boards: interrupted\n"


def test_an_interrupted_verilator_build_leaves_nothing_in_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither a half build nor a `.failed` entry (which is for builds that failed)."""
    from codesign.sim import verilator

    class Interrupted:
        def build(self, **_: object) -> None:
            raise KeyboardInterrupt

    monkeypatch.setattr(verilator, "cocotb_runner", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        verilator.ensure_build({"top.sv": "module top; endmodule\n"}, cache_dir=tmp_path)
    assert [p.name for p in (tmp_path / "rtlsim").iterdir()] == []
