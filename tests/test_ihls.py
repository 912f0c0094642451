"""The i++ flavour of a generated project compiles with g++ against the Intel HLS header shim
(`make check-ihls`), for an MLP and for graphs with Conv2d, pooling, residual adds and
LeakyReLU, and deliberately wrong uses of the Intel HLS API fail to compile.

This is a syntax and type check, not synthesis (no Intel tool exists here).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from _graphs import mixed_graph, residual_graph
from _hls_cases import mlp, write_project

from codesign.boards import load_board
from codesign.ir import Graph
from codesign.sim import tools

pytestmark = pytest.mark.csim

# (file under hls/, text, replacement, expected error): one wrong use of the Intel HLS API each.
WRONG_USES = {
    "misspelt component attribute": (
        "ihls_net.h",
        "hls_component_ii(",
        "hls_component_i(",
        "error: expected constructor",
    ),
    "stream member that does not exist": (
        "ihls_net.cpp",
        "input_stream.read()",
        "input_stream.read_nb()",
        "has no member named 'read_nb'",
    ),
    "stream_out parameter on a stream_in": (
        "tb_ihls_net.cpp",
        "ihc::stream_in<ihls_net_input_t> input_stream;",
        "ihc::stream_in<ihls_net_input_t, ihc::usesReady<true>> input_stream;",
        "a template parameter that stream_in does not take",
    ),
    "packet write without usesPackets": (
        "ihls_net.cpp",
        "output_stream.write(output);",
        "output_stream.write(output, true, true);",
        "needs ihc::usesPackets<true>",
    ),
    "unknown loop pragma": (
        "layers/fc1.h",
        "#pragma ii 1",
        "#pragma pipeline II=1",
        "#pragma pipeline is not an Intel HLS loop pragma",
    ),
}


@pytest.fixture
def project(tmp_path: Path, toolchain: None) -> Path:
    graph, x = mlp(7, [12, 8, 4], 2, keep_per_row=[2, None], name="ihls_net")
    return write_project(graph, x, load_board("arria10-gx1150"), tmp_path / "project")


def check_ihls(project: Path) -> subprocess.CompletedProcess[str]:
    # the Python that runs the tests has hls4ml: the Makefile finds ac_types through it
    command = [tools.make(), "-C", str(project / "hls"), f"CXX={tools.gxx()}", "check-ihls"]
    command.append(f"PYTHON={sys.executable}")
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_generated_component_passes_check_ihls(project: Path) -> None:
    result = check_ihls(project)
    assert result.returncode == 0, result.stderr
    assert "not synthesis" in result.stdout
    assert "-D__INTELFPGA_COMPILER__" in result.stdout


@pytest.mark.parametrize("build", [residual_graph, mixed_graph], ids=["resblock", "mixed"])
def test_conv_and_residual_projects_pass_check_ihls(
    build: Callable[..., tuple[Graph, np.ndarray]], tmp_path: Path, toolchain: None
) -> None:
    graph, x = build(reuse=2)
    project = write_project(graph, x, load_board("arria10-gx1150"), tmp_path / "project")
    result = check_ihls(project)
    assert result.returncode == 0, result.stderr
    assert "not synthesis" in result.stdout


@pytest.mark.parametrize("wrong_use", sorted(WRONG_USES))
def test_wrong_use_of_the_intel_api_fails(project: Path, wrong_use: str) -> None:
    relative, text, replacement, expected = WRONG_USES[wrong_use]
    path = project / "hls" / relative
    source = path.read_text()
    assert text in source
    path.write_text(source.replace(text, replacement))

    result = check_ihls(project)

    assert result.returncode != 0, f"{wrong_use} compiled"
    # g++ quotes names with typographic quotes in a UTF-8 locale.
    assert expected in result.stderr.replace("\u2018", "'").replace("\u2019", "'")
