"""A compiler wrapper that caches Verilator's runtime objects across builds (a tiny ccache).

Every Verilator build compiles the runtime library (verilated.cpp, verilated_vpi.cpp, ...:
about 15 s of CPU here), although those objects depend only on the compiler command, not on
the design. Verilator's makefile runs every compile as `$(OBJCACHE) $(CXX) ...`; rtlsim sets
OBJCACHE to `python -m codesign.sim.objcache`, which serves those objects from
$CODESIGN_OBJCACHE_DIR when the identical command was seen before and runs the compiler
otherwise. Other objects (the design's) are always compiled.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CACHED_OBJECTS = frozenset(
    {"verilated.o", "verilated_dpi.o", "verilated_vpi.o", "verilated_threads.o"}
)
DIR_VARIABLE = "CODESIGN_OBJCACHE_DIR"


def _output(command: list[str]) -> Path | None:
    for flag, value in zip(command, command[1:], strict=False):
        if flag == "-o":
            return Path(value)
    return None


def _key(command: list[str]) -> str:
    sha = hashlib.sha256("\0".join(command).encode())
    for word in command:  # the sources themselves: a reinstalled Verilator changes the key
        if word.endswith(".cpp") and Path(word).is_file():
            stat = Path(word).stat()
            sha.update(f"{word}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return sha.hexdigest()[:32]


def main(command: list[str]) -> int:
    output = _output(command)
    folder = os.environ.get(DIR_VARIABLE)
    if output is None or output.name not in CACHED_OBJECTS or not folder:
        return subprocess.call(command)
    entry = Path(folder) / _key(command)
    depfile = output.with_suffix(".d")
    if (entry / output.name).is_file():
        shutil.copyfile(entry / output.name, output)
        if (entry / depfile.name).is_file():
            shutil.copyfile(entry / depfile.name, depfile)
        return 0
    status = subprocess.call(command)
    if status == 0 and output.is_file():
        Path(folder).mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=folder))
        shutil.copyfile(output, staging / output.name)
        if depfile.is_file():
            shutil.copyfile(depfile, staging / depfile.name)
        try:
            staging.rename(entry)
        except OSError:  # another build stored it meanwhile
            shutil.rmtree(staging, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
