"""Design-space sweeps: many design points through the flows, resumable, on local processes or
a Dask cluster, ending in a results table and a Pareto front.

spec       the TOML spec: model, stages, shared options, grid or random axes, bounds
options    the options a point can set, each with its stage, default and check
store      a folder per point, named by the content hash of its inputs (resume, share)
point      one point's stages through the library functions (prune, generate, csim,
           simulate, synth), with the source of every figure in its column name
executors  in this process, local processes (a crashed worker isolated), or Dask
run        the coordinator: starting weights, the plan, each result kept as it arrives
table      results.csv and sweep.json, and the text of the front
pareto     the front over the spec's objectives, within its bounds
plots      `codesign report --sweep`: the table in Markdown and CSV, the front plotted
"""

from codesign.sweep.options import SpecError
from codesign.sweep.pareto import Front, pareto_front
from codesign.sweep.run import SweepOutcome, run_sweep
from codesign.sweep.spec import SweepSpec, load_spec, parse_spec
from codesign.sweep.table import front_heading, front_table, point_name, read_sweep

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
