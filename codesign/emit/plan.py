"""Build plans: the files an emitter produces, held in memory, with a deterministic digest.

Writing is one function that never leaves a half-written project behind: files go to a hidden
sibling folder first, which replaces the target only when everything is written.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import jinja2

from codesign.errors import OutputDirError
from codesign.package_data import data_dir


@dataclass(frozen=True)
class BuildPlan:
    """Relative POSIX path -> file content."""

    files: Mapping[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.files:
            path = PurePosixPath(name)
            if path.is_absolute() or ".." in path.parts:
                raise ValueError(f"build plan path must be relative and inside the project: {name}")

    def merged(self, *others: BuildPlan) -> BuildPlan:
        files = dict(self.files)
        for other in others:
            clash = files.keys() & other.files.keys()
            if clash:
                raise ValueError(f"build plans both write {sorted(clash)}")
            files.update(other.files)
        return BuildPlan(files)

    def digest(self) -> str:
        sha = hashlib.sha256()
        for name in sorted(self.files):
            sha.update(name.encode() + b"\0")
            sha.update(hashlib.sha256(self.files[name]).digest())
        return sha.hexdigest()


def template_environment(folder: str) -> jinja2.Environment:
    """Jinja2 environment over one of the shipped template folders (strict, whitespace-tidy)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir(folder))),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def check_output_dir(out_dir: Path, force: bool, inputs: Sequence[Path] = ()) -> None:
    """Refuse a non-empty folder unless `force`, and (even with it) a folder that is, holds or
    lies inside one of the command's `inputs` or holds the current folder, since replacing
    it would destroy what the command reads; call before doing any work."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputDirError(f"{out_dir} exists and is not a folder")
    out = out_dir.resolve()
    for path in inputs:
        source = path.resolve()
        if out == source or out in source.parents or source in out.parents:
            raise OutputDirError(
                f"--out {out_dir} would overlap the input {path} (it is, holds or lies inside "
                "it); choose an --out outside every input"
            )
    here = Path.cwd().resolve()
    if out == here or out in here.parents:
        raise OutputDirError(
            f"--out {out_dir} is or holds the current folder; choose a folder inside it"
        )
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise OutputDirError(
            f"{out_dir} is not empty; pass --force to replace it, or choose another --out"
        )


def write_plan(plan: BuildPlan, out_dir: Path, force: bool = False) -> None:
    """Write every file of `plan` under `out_dir`, replacing it whole or not at all."""
    check_output_dir(out_dir, force)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, content in plan.files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        if out_dir.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
            out_dir.rename(retired / "old")
            staging.rename(out_dir)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
