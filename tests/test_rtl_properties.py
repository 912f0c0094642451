"""Property tests of the RTL engine: random block patterns and values on a few fixed builds.

The builds are four Dense layers and a Conv2d (stride, padding, a patch not divisible by the
block), all of the one matrix engine.

Each engine below is one Verilator build (shape, block, tile count, reuse factor, beat and
formats fixed); hypothesis varies only what goes into the memory files and the vectors: the
block pattern (random density, balanced, fully dense, all zero, empty block-rows), the raw
weights, biases and inputs (extremes included) and which tile computes which block in which
cycle. So the examples reuse one build per engine (and per blocks-per-row of the balanced
patterns, the one structural parameter a pattern sets). Every example is bit-exact to the reference
in all three harness phases, and its latency and initiation interval are within 2 cycles of
the model (the engine meets it exactly). Examples per engine: $CODESIGN_PROPERTY_EXAMPLES,
else 3 under CI and 6 locally (`benchmarks/rtl_efficiency.py --properties N` runs more).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from _rtl_cases import (
    ENGINES,
    PATTERNS,
    Engine,
    engine_graph,
    kept_blocks,
    random_raw,
    require_verilator,
    write_raw_project,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesign.engines.matrix.rtl import row_blocks
from codesign.sim.rtlsim import simulate

pytestmark = pytest.mark.rtlsim

EXAMPLES = int(os.environ.get("CODESIGN_PROPERTY_EXAMPLES", "3" if os.environ.get("CI") else "6"))
N_VECTORS = 4


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_verilator()
    return tmp_path_factory.mktemp("codesign-cache")


BUILDS: dict[str, str] = {}


@pytest.mark.parametrize("engine", ENGINES, ids=[engine.name for engine in ENGINES])
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    pattern=st.sampled_from(PATTERNS),
    density=st.floats(0.0, 1.0),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_patterns_and_values_are_bit_exact_on_a_fixed_build(
    engine: Engine,
    cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
    pattern: str,
    density: float,
    shuffle: bool,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    graph = engine_graph(engine, kept_blocks(engine, pattern, density, rng), rng, shuffle)
    raw_x = random_raw(graph.input_format, (N_VECTORS, engine.vector_in), rng)
    project = write_raw_project(graph, raw_x, tmp_path_factory.mktemp(engine.name))
    result = simulate(project, cache_dir=cache)
    # one build per engine and structure, whatever the pattern: the only structure a pattern
    # brings is ROW_BLOCKS (the blocks per row of a balanced pattern dealt in order, else 0)
    key = f"{engine.name}/{row_blocks(graph.layers[0])}"
    assert BUILDS.setdefault(key, result["build_dir"]) == result["build_dir"]
    assert result["outputs_match"], result["first_mismatch"]
    assert not result["timed_out"]
    for entry in [*result["layers"], result["network"]]:
        assert entry["n_vectors"] == N_VECTORS
        assert abs(entry["sim_cycles"] - entry["est_cycles"]) <= 2, entry
        assert abs(entry["sim_ii"] - entry["est_ii"]) <= 2, entry
