"""The same sweep on every executor, killed halfway and resumed: the figures of issue 15.

    python benchmarks/sweep_executors.py [--spec SPEC.toml] [--markdown FILE]

The default spec is the README's: digits-mlp over 4 sparsities × 3 block shapes × 2 boards
(24 points), pruned (30 epochs), generated and C-simulated. Each phase starts from an empty
store in a temporary folder:

1. `codesign sweep --jobs 2` (local processes);
2. the same on a `distributed.LocalCluster` of 2 worker processes (`--scheduler`);
3. `--jobs 2` killed (SIGKILL) once half the points have their result.json, then run again,
   then once more.

It prints wall times, the counts each run printed, and whether the tables (every column but
the worker and the seconds) are equal.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC = """\
# digits-mlp: 4 sparsities x 3 block shapes x 2 boards, estimates and C simulation
model = "digits-mlp"
dataset = "digits"
stages = ["prune", "generate", "csim"]
objectives = ["accuracy", "interval", "dsp", "energy"]

[require]                  # the designs a user would accept
accuracy = 0.93            # fixed-point top-1 at least
interval = 8               # cycles a vector at most

[options]
epochs = 30

[grid]
sparsity = [0.5, 0.75, 0.875, 0.9375]
block = ["1x4", "1x2", "2x4"]
board = ["arria10-gx1150", "cyclone10-gx220"]
"""
COUNTS = re.compile(r"(\d+) computed, (\d+) cached, (\d+) failed, (\d+) errors")


def sweep(spec: Path, out: Path, *extra: str) -> tuple[float, str]:
    """Run `codesign sweep`; its wall time and the counts line it printed."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "codesign", "sweep", str(spec), "--out", str(out), *extra]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    counts = COUNTS.search(done.stdout)
    assert counts, done.stdout
    return time.perf_counter() - started, counts.group(0)


def table(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open() as stream:
        return [
            {k: v for k, v in row.items() if k not in {"worker", "seconds"}}
            for row in csv.DictReader(stream)
        ]


def killed_halfway(spec: Path, out: Path, points: int) -> int:
    """Start the sweep, SIGKILL it once half the points are stored; the points it kept."""
    command = [sys.executable, "-m", "codesign", "sweep", str(spec), "--out", str(out)]
    running = subprocess.Popen(
        [*command, "--jobs", "2"], stdout=subprocess.DEVNULL, start_new_session=True
    )
    while len(list(out.glob("points/*/result.json"))) < points // 2:
        if running.poll() is not None:
            raise RuntimeError("the sweep finished before it was killed")
        time.sleep(0.1)
    os.killpg(running.pid, signal.SIGKILL)  # the coordinator and its workers, as a crash would
    running.wait()
    return len(list(out.glob("points/*/result.json")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, help="a sweep spec (default: the README's)")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args()
    from distributed import LocalCluster

    work = Path(tempfile.mkdtemp(prefix="codesign-sweep-bench-"))
    spec = work / "spec.toml"
    spec.write_text(args.spec.read_text() if args.spec else SPEC)
    if args.spec:  # relative paths in the spec are the spec's folder's
        spec = args.spec.resolve()
    lines = ["| run | wall | counts |", "|---|---|---|"]

    seconds, counts = sweep(spec, work / "local", "--jobs", "2")
    lines.append(f"| `--jobs 2`, empty store | {seconds:.0f} s | {counts} |")
    local = table(work / "local")
    points = len(local)

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        seconds, counts = sweep(spec, work / "dask", "--scheduler", cluster.scheduler_address)
    lines.append(f"| LocalCluster, 2 workers, empty store | {seconds:.0f} s | {counts} |")
    same_dask = table(work / "dask") == local

    kept = killed_halfway(spec, work / "killed", points)
    lines.append(f"| `--jobs 2` killed (SIGKILL) halfway | | {kept} of {points} points kept |")
    seconds, counts = sweep(spec, work / "killed", "--jobs", "2")
    lines.append(f"| the same command again | {seconds:.0f} s | {counts} |")
    seconds, counts = sweep(spec, work / "killed", "--jobs", "2")
    lines.append(f"| and once more | {seconds:.1f} s | {counts} |")
    same_killed = table(work / "killed") == local

    lines.append("")
    lines.append(
        f"{points} points. Tables equal to the `--jobs 2` one (every column but worker and "
        f"seconds): LocalCluster {same_dask}, killed and resumed {same_killed}. Folder: {work}"
    )
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(f"# Sweep executors\n\n{text}\n")


if __name__ == "__main__":
    main()
