"""Locate the data folders that ship with codesign.

In a source checkout (or an editable install) `hls_templates/`, `rtl_sim/` and `boards/` sit
at the top of the repository; in a wheel they are copied inside the package (see
pyproject.toml). Both layouts are looked up here and nowhere else.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
DATA_FOLDERS = ("hls_templates", "rtl_sim", "boards")


def data_dir(name: str) -> Path:
    """Return the folder `name` (one of DATA_FOLDERS), from the wheel or the source tree."""
    if name not in DATA_FOLDERS:
        raise ValueError(f"unknown data folder {name!r}; expected one of {DATA_FOLDERS}")
    for candidate in (_PACKAGE_DIR / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"codesign data folder {name!r} not found next to {_PACKAGE_DIR}; "
        "the installation is broken"
    )
