"""The whole chain through the CLI: prune, generate --from, csim, simulate, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codesign.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.csim, pytest.mark.rtlsim]


def test_pruned_digits_mlp_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prune_dir, project = tmp_path / "pruned", tmp_path / "project"
    assert (
        main(
            [
                "prune",
                "--model",
                "digits-mlp",
                "--dataset",
                "digits",
                "--sparsity",
                "0.75",
                "--epochs",
                "20",
                "--out",
                str(prune_dir),
            ]
        )
        == 0
    )
    record = json.loads((prune_dir / "prune.json").read_text())
    assert record["schema"] == "codesign.prune/1" and record["block"] == [1, 4]
    assert abs(record["achieved_sparsity"] - 0.75) < 0.01

    assert (
        main(["generate", "--from", str(prune_dir), "--out", str(project), "--vectors", "16"]) == 0
    )
    report = json.loads((project / "report.json").read_text())
    assert report["schema"] == "codesign.report/2" and report["board"] == "arria10-gx1150"
    assert [layer["nnz_blocks"] for layer in report["layers"]] == [256, 128, 20]
    assert all(layer["reuse_factor"] == 1 for layer in report["layers"])
    assert report["totals"]["est_dsp"] <= report["totals"]["board_dsp"]
    acc = report["accuracy"]
    assert abs(acc["fixed_point"] - acc["pruned_float"]) <= 0.005

    assert main(["csim", str(project)]) == 0
    csim = json.loads((project / "csim.json").read_text())
    assert csim["outputs_match"] and csim["n_vectors"] == 16
    assert csim["nonzero_output_fraction"] >= 0.5 and csim["saturated_fraction"] < 0.01

    assert main(["simulate", str(project)]) == 0
    rtl = json.loads((project / "rtlsim.json").read_text())
    for entry in [*rtl["layers"], rtl["network"]]:
        assert entry["outputs_match"]
        assert abs(entry["sim_cycles"] - entry["est_cycles"]) <= 2
        assert abs(entry["sim_ii"] - entry["est_ii"]) <= 2

    capsys.readouterr()
    assert main(["report", str(project), "--out", str(tmp_path / "cmp")]) == 0
    printed = capsys.readouterr().out
    assert "fc1" in printed and "network" in printed and "MISMATCH" not in printed
    rows = json.loads((tmp_path / "cmp" / "report.json").read_text())["rows"]
    by_layer = {row["layer"]: row for row in rows}
    for layer, sim in zip(report["layers"], rtl["layers"], strict=True):
        row = by_layer[layer["name"]]
        assert row["est_cycles"] == layer["est_cycles"] and row["sim_cycles"] == sim["sim_cycles"]
        assert row["est_dsp"] == layer["est_dsp"] and row["rtl_match"] is True


def test_pruned_mnist_cnn_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """prune -> generate --from -> csim -> simulate on the conv-pool-conv-pool-linear model."""
    prune_dir, project = tmp_path / "pruned", tmp_path / "project"
    prune = ["prune", "--model", "mnist-cnn", "--dataset", "mnist5k", "--sparsity", "0.75"]
    prune += ["--epochs", "2", "--schedule", "oneshot", "--no-distill", "--out", str(prune_dir)]
    assert main(prune) == 0
    # time-multiplexed: every tile reused; fc at RF 49 keeps the Verilator build small
    generate = ["generate", "--from", str(prune_dir), "--out", str(project), "--vectors", "4"]
    assert main([*generate, "--reuse", "conv1=4,conv2=4,fc=49"]) == 0
    report = json.loads((project / "report.json").read_text())
    kinds = [(layer["name"], layer["kind"]) for layer in report["layers"]]
    assert kinds == [
        ("conv1", "conv2d"),
        ("pool1", "pool2d"),
        ("conv2", "conv2d"),
        ("pool2", "pool2d"),
        ("fc", "dense"),
    ]
    conv2 = report["layers"][2]
    assert conv2["positions"] == 196 and conv2["macs"] == conv2["nnz_blocks"] * 4 * 196
    acc = report["accuracy"]
    assert acc["pruned_float"] > 0.8 and abs(acc["fixed_point"] - acc["pruned_float"]) <= 0.005

    assert main(["csim", str(project)]) == 0
    csim = json.loads((project / "csim.json").read_text())
    assert csim["outputs_match"] and csim["nonzero_output_fraction"] >= 0.5
    assert csim["saturated_fraction"] < 0.01

    assert main(["simulate", str(project)]) == 0
    rtl = json.loads((project / "rtlsim.json").read_text())
    for entry in [*rtl["layers"], rtl["network"]]:
        assert entry["outputs_match"]
        # efficiency where there are multipliers (pooling has none), never above the bound
        assert (entry["efficiency"] is None) == (entry["utilisation"] is None), entry
        assert entry["efficiency"] is None or 0 < entry["efficiency"] <= 1.0
        assert (entry["sim_cycles"], entry["sim_ii"]) == (entry["est_cycles"], entry["est_ii"])
    assert rtl["network"]["est_cycles"] == report["totals"]["est_cycles"]
    printed = capsys.readouterr().out
    assert "conv1" in printed and "MISMATCH" not in printed


def test_residual_model_file_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A user's model file (conv + BatchNorm, residual add, LeakyReLU, avg pool) on digits
    viewed as 1x8x8: prune, generate --from, csim and simulate agree bit for bit."""
    model = Path(__file__).parent / "fixtures" / "models" / "resblock.py"
    prune_dir, project = tmp_path / "pruned", tmp_path / "project"
    prune = ["prune", "--model", f"{model}:resblock", "--dataset", "digits"]
    prune += ["--input-shape", "1,8,8", "--sparsity", "0.5", "--epochs", "5"]
    assert main([*prune, "--out", str(prune_dir)]) == 0
    record = json.loads((prune_dir / "prune.json").read_text())
    assert record["input_shape"] == [1, 8, 8]
    # the shape comes back from prune.json
    generate = ["generate", "--from", str(prune_dir), "--reuse", "8", "--vectors", "8"]
    assert main([*generate, "--out", str(project)]) == 0
    report = json.loads((project / "report.json").read_text())
    add = next(layer for layer in report["layers"] if layer["kind"] == "add")
    assert add["inputs"] == ["stem", "conv2"] and add["activation"] == "leaky_relu"
    assert report["accuracy"]["pruned_float"] > 0.5  # fine-tuned from scratch on digits
    assert main(["csim", str(project)]) == 0
    assert json.loads((project / "csim.json").read_text())["outputs_match"]
    assert main(["simulate", str(project)]) == 0
    rtl = json.loads((project / "rtlsim.json").read_text())
    for entry in [*rtl["layers"], rtl["network"]]:
        assert entry["outputs_match"]
        assert (entry["sim_cycles"], entry["sim_ii"]) == (entry["est_cycles"], entry["est_ii"])
    assert "add" in capsys.readouterr().out
