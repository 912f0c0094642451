"""Design-space sweeps: many design points through the flows, resumable, on local processes or
a Dask cluster, ending in a results table and a Pareto front.

spec    the TOML spec: model, stages, shared options, grid or random axes (checked up front)
store   a folder per point, named by the content hash of its inputs (resume, share, re-run)
point   one point's stages through the library functions (prune, generate, csim, simulate,
        synth), with the source of every figure in its column name
run     the coordinator: executors (in-process, local processes, Dask), results.csv, sweep.json
pareto  the front over the spec's objectives
plots   `codesign report --sweep`: the table in Markdown and CSV, the front plotted
"""

from codesign.sweep.pareto import Front, pareto_front
from codesign.sweep.run import (
    SweepOutcome,
    front_heading,
    front_table,
    point_name,
    read_sweep,
    run_sweep,
)
from codesign.sweep.spec import SpecError, SweepSpec, load_spec, parse_spec

__all__ = [
    "Front",
    "SpecError",
    "SweepOutcome",
    "SweepSpec",
    "front_heading",
    "front_table",
    "load_spec",
    "parse_spec",
    "point_name",
    "pareto_front",
    "read_sweep",
    "run_sweep",
]
