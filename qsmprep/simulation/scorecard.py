"""The fixed simulated datasets of the accuracy scorecard (``benchmarks/accuracy.py``).

Eight head-phantom acquisitions: 3 T and 7 T, axial and oblique (B0 tilted 20 degrees in
voxel coordinates), SNR 40 and 150, four echoes. ``small=True`` gives the same set on a
coarse grid; the method tests (``tests/workflows/test_methods.py``) pin thresholds on it.
The phantom is the simple (piecewise-constant) head the published numbers were measured on.
"""

from __future__ import annotations

import itertools

from .dataset import SimulationSpec

__all__ = ["FULL_GRID", "SMALL_GRID", "scorecard_datasets"]

FULL_GRID = dict(shape=(96, 112, 96), voxel_size=(1.5, 1.5, 1.5), scale=0.75)
SMALL_GRID = dict(shape=(72, 84, 72), voxel_size=(2.0, 2.0, 2.0), scale=0.75)

# echo times (s) per field strength: first echo and spacing shrink with B0
ECHO_TIMES = {3.0: (0.004, 0.008, 0.012, 0.016), 7.0: (0.003, 0.006, 0.009, 0.012)}


def scorecard_datasets(small=False, seed=7):
    """``[(name, SimulationSpec)]`` in a fixed order, e.g. ``3T-axial-snr40``."""
    grid = SMALL_GRID if small else FULL_GRID
    out = []
    for b0, tilt, snr in itertools.product((3.0, 7.0), (0.0, 20.0), (40.0, 150.0)):
        name = f"{b0:g}T-{'oblique' if tilt else 'axial'}-snr{snr:g}"
        out.append((name, SimulationSpec(field_strength=b0, tilt_deg=tilt, snr=snr,
                                          echo_times=ECHO_TIMES[b0], seed=seed,
                                          phantom="simple", **grid)))
    return out
