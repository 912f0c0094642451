"""The sliding-window conv engine's timing, beat by beat (rtl_sim/conv_engine.sv.j2's rules).

A conv reads its input as it streams in, so when it computes depends on when its input beats
arrive, and a network's latency on how the layers overlap: the model follows one vector
through the engine and says, for input beats offered at given cycles, when each is accepted
and when each output beat leaves (the output is always taken: a conv's readers never stall
it, see `cost.cycles.network_timing`). With R the reuse factor, P_in the input values per
beat, B = Cout / P_out the beats of an output pixel and positions p in raster order:

  beat b       accepted at max(offered_b, accepted_{b-1} + 1) once the ring has room: the
               values before it plus P_in within LINE_VALUES of the first line position
               q still needs, i.e. after the last ring read of position q - 1's window;
  window p     read from the ring into window frame p mod 2, WINDOW_LANES values a cycle, in
               the L = ceil(K / lanes) cycles after d_p = max(accepted(the beat with its
               window's last value), d_{p-1} + L, e_{p-2}) (K = Cin·Kh·Kw; one read at a
               time; the frame is free once position p - 2 has computed);
  position p   starts the cycle after s_p = max(d_p + L, take_{p-1}) and computes R cycles
               on its frame, ending at e_p = s_p + R;
  take_p       max(e_p, drained_{p-2}): its sums move into an output bank when the bank of
               position p - 2 has sent its last beat (two banks);
  beats of p   from max(take_p + 1, drained_{p-1} + 1), B in a row; drained_p is the last.

The lanes are chosen so that L <= R (`window_lanes`): a position takes R cycles in steady
state. Verilator meets it exactly (tests/test_rtl_conv.py). The ring holds at least Kh + Sh input
lines (the next output row's lines load while a row computes) and the values held through the
last output row plus the next vector's first window (vectors back to back), plus a beat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from codesign.ir.graph import Conv2d, ceil_div

Cycles = npt.NDArray[np.int64]
UNBOUNDED = 1 << 60  # a ring that never fills


@dataclass(frozen=True)
class ConvTiming:
    accepted: Cycles  # the cycle each input beat is accepted
    outputs: Cycles  # the cycle of each output beat
    ends: Cycles  # each position's last compute cycle
    loaded: Cycles  # each position's last ring read (the ring frees its lines after it)


def first_lines(layer: Conv2d) -> npt.NDArray[np.int64]:
    """Per position (raster order), the first input line its window reads (0 in padding)."""
    g = layer.conv
    rows = np.repeat(np.arange(g.out_height), g.out_width)
    return np.maximum(rows * g.stride[0] - g.padding[0], 0)


def needed_values(layer: Conv2d) -> npt.NDArray[np.int64]:
    """Per position, the values of the vector that must be in before it starts: through the
    last input pixel its window reads (its bottom right one inside the map); the last
    position waits for the whole vector (a strided window may skip the last lines)."""
    g = layer.conv
    oy, ox = np.divmod(np.arange(g.positions), g.out_width)
    last_y = np.clip(oy * g.stride[0] - g.padding[0] + g.kernel[0] - 1, 0, g.in_height - 1)
    last_x = np.clip(ox * g.stride[1] - g.padding[1] + g.kernel[1] - 1, 0, g.in_width - 1)
    needed = np.asarray((last_y * g.in_width + last_x + 1) * g.in_channels, dtype=np.int64)
    needed[-1] = layer.in_features
    return needed


def minimum_line_values(layer: Conv2d) -> int:
    """The smallest ring that keeps the engine at its interval: Kh + Sh input lines, and
    what the last output row holds plus the next vector's first window; plus one beat."""
    g = layer.conv
    line = g.in_width * g.in_channels
    last_row_holds = layer.in_features - int(first_lines(layer)[-1]) * line
    next_window = int(needed_values(layer)[0])
    lines = (g.kernel[0] + g.stride[0]) * line
    return max(lines, last_row_holds + next_window) + layer.widths.input


def window_lanes(layer: Conv2d) -> int:
    """Values read from the ring a cycle (its read ports), one word of a window frame: enough
    that a window (K values) is read in the R cycles of a position, rounded up to a multiple
    of Bc (a tile reads its Bc values from one word)."""
    bc = layer.require_csr().block[1]
    return bc * ceil_div(ceil_div(layer.shape[1], layer.require_tiling().reuse_factor), bc)


def load_cycles(layer: Conv2d) -> int:
    """Cycles to read a window from the ring, `window_lanes` values a cycle."""
    return ceil_div(layer.shape[1], window_lanes(layer))


def ring_values(layer: Conv2d) -> int:
    """The layer's ring: as the buffer pass sized it, else the smallest."""
    return layer.line_values or minimum_line_values(layer)


def conv_timing(layer: Conv2d, offered: Cycles, line_values: int) -> ConvTiming:
    """One vector through the engine: input beat b offered from cycle offered[b] on (the
    ring `line_values` deep), the output always taken."""
    tiling = layer.require_tiling()
    reuse = tiling.reuse_factor
    pixel_beats = layer.shape[0] // layer.widths.output
    p_in = layer.widths.input
    line = layer.conv.in_width * layer.conv.in_channels
    released = first_lines(layer) * line
    beat_of = np.asarray([ceil_div(int(n), p_in) - 1 for n in needed_values(layer)])
    positions = layer.positions
    n_beats = len(offered)
    load = load_cycles(layer)
    accepted = np.zeros(n_beats, dtype=np.int64)
    loaded = np.zeros(positions, dtype=np.int64)
    ends = np.zeros(positions, dtype=np.int64)
    takes = np.zeros(positions, dtype=np.int64)
    drained = np.zeros(positions, dtype=np.int64)
    outputs = np.zeros(positions * pixel_beats, dtype=np.int64)
    # for each beat, the first position whose first line frees enough room for it
    room = np.searchsorted(released, np.arange(n_beats) * p_in + p_in - line_values, "left")
    done = 0  # positions modelled so far

    def compute(p: int) -> None:
        read = int(accepted[beat_of[p]])  # the window's reads are decided (then L cycles)
        if p > 0:
            read = max(read, int(loaded[p - 1]))  # one read at a time
        if p > 1:
            read = max(read, int(ends[p - 2]))  # its frame is free
        loaded[p] = read + load
        start = read + load
        if p > 0:
            start = max(start, int(takes[p - 1]))
        ends[p] = start + reuse
        takes[p] = max(int(ends[p]), int(drained[p - 2]) if p >= 2 else 0)
        first = int(takes[p]) + 1
        if p > 0:
            first = max(first, int(drained[p - 1]) + 1)
        drained[p] = first + pixel_beats - 1
        outputs[p * pixel_beats : (p + 1) * pixel_beats] = np.arange(first, drained[p] + 1)

    for b in range(n_beats):
        at = int(offered[b]) if b == 0 else max(int(offered[b]), int(accepted[b - 1]) + 1)
        q = int(room[b])
        if q > 0:
            while done < q:  # those positions need only earlier beats (the ring holds a window)
                compute(done)
                done += 1
            at = max(at, int(loaded[q - 1]) + 1)
        accepted[b] = at
    while done < positions:
        compute(done)
        done += 1
    return ConvTiming(accepted, outputs, ends, loaded)


def line_values_for(layer: Conv2d, offered: Cycles) -> int:
    """The ring that never stalls input beats offered at `offered` (at least the minimum)."""
    timing = conv_timing(layer, offered, UNBOUNDED)
    line = layer.conv.in_width * layer.conv.in_channels
    # at cycle t the ring frees below the first line of the first position not yet read
    unfinished = np.searchsorted(timing.loaded, timing.accepted, "left")
    unfinished = np.minimum(unfinished, layer.positions - 1)
    held_from = first_lines(layer)[unfinished] * line
    p_in = layer.widths.input
    needed = np.arange(len(offered)) * p_in + p_in - held_from
    return max(minimum_line_values(layer), int(needed.max()))
