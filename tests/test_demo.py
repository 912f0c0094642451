"""`codesign demo` meets the foundation's bar: both variants bit-exact, on the model, fitting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codesign.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.csim, pytest.mark.rtlsim]


def check_variants(result: Any, out: Path) -> None:
    """Both variants bit-exact and non-trivial, on the model, fitting; sparse needs fewer DSPs
    or (the default RF being the smallest that fits) takes a shorter interval."""
    assert [v.name for v in result.variants] == ["dense", "sparse"]
    dsp, interval = {}, {}
    for variant in result.variants:
        assert variant.path == out / "arria10-gx1150" / variant.name
        report, csim, rtl = variant.report.to_json(), variant.csim, variant.rtlsim
        assert csim["outputs_match"] and all(layer["outputs_match"] for layer in csim["layers"])
        assert csim["nonzero_output_fraction"] >= 0.5 and csim["saturated_fraction"] < 0.01
        for entry in [*rtl["layers"], rtl["network"]]:
            assert entry["outputs_match"] and entry["nonzero_output_fraction"] >= 0.5
            assert abs(entry["sim_cycles"] - entry["est_cycles"]) <= 2
        acc = report["accuracy"]
        assert abs(acc["fixed_point"] - acc["pruned_float"]) <= 0.005
        assert report["totals"]["est_dsp"] <= report["totals"]["board_dsp"]
        dsp[variant.name] = report["totals"]["est_dsp"]
        interval[variant.name] = report["totals"]["est_ii"]
    assert dsp["sparse"] < dsp["dense"] or interval["sparse"] < interval["dense"]
    assert result.variants[1].report.totals.sparsity == pytest.approx(0.75, abs=0.01)


def test_demo_dense_and_sparse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from codesign.demo import MARKER, run_demo

    out = tmp_path / "demo"
    check_variants(run_demo(out), out)

    # a second run replaces the folder it made itself, through the CLI
    assert (out / MARKER).is_file()
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "codesign demo: digits-mlp on arria10-gx1150" in printed and "MISMATCH" not in printed


def test_demo_of_the_cnn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from codesign.demo import run_demo

    out = tmp_path / "demo"
    result = run_demo(out, model_name="mnist-cnn")
    check_variants(result, out)
    kinds = [layer.kind for layer in result.variants[1].report.layers]
    assert kinds == ["conv2d", "pool2d", "conv2d", "pool2d", "dense"]
    assert main(["demo", "--model", "resnet", "--out", str(tmp_path / "other")]) == 2
    error = capsys.readouterr().err
    assert "the demo runs digits-mlp, mnist-cnn, resnet8, dscnn, not 'resnet'" in error
