"""The wheel ships the templates, the RTL bench and the board files (design.md §2)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_contains_data_folders(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("codesign-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("hls_templates", "rtl_sim", "boards"):
        shipped = {n for n in names if n.startswith(f"codesign/{folder}/")}
        source = {
            f"codesign/{p.relative_to(ROOT).as_posix()}"
            for p in (ROOT / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
        assert source and source <= shipped, f"{folder}: missing {sorted(source - shipped)}"
    assert "codesign/boards/arria10-gx1150.toml" in names
