"""Argument parsing for the BIDS-App entry point and the subcommands."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from .. import __version__
from ..algorithms.phase import PHASE_UNITS
from .. import methods
from ..fsl import FSL_MODES
from .plugins import PLUGINS

DESCRIPTION = """\
qsmprep turns multi-echo (or single-echo) gradient-echo magnitude and phase images in a
BIDS dataset into quantitative susceptibility maps (ppm), with brain masks, total and
local field maps, as BIDS derivatives.

Inputs: sub-<label>[/ses-<label>]/anat/ files with part-mag/part-phase, suffix MEGRE
(with echo-<n>) or T2starw, and JSON sidecars holding EchoTime (s) and
MagneticFieldStrength (T). Nothing is ever written into BIDS_DIR.

Other commands:
  qsmprep demo OUTPUT_DIR      simulate a small phantom dataset, process it, print accuracy
  qsmprep simulate OUTPUT_BIDS simulate a head-phantom BIDS dataset with ground truth
  qsmprep evaluate CHIMAP ...  score a susceptibility map against ground truth
  qsmprep train-deepqsm ...    train the DeepQSM network on synthetic shapes
  qsmprep stage STAGE ...      run one stage's method on plain NIfTI files (mask,
                               background, invert)
"""

EPILOG = """\
examples:
  qsmprep /data/bids /data/derivatives/qsmprep participant --participant-label 01 02
  qsmprep /data/bids /out participant --pipeline fast -w /scratch/work --nprocs 4
  qsmprep demo /tmp/qsmprep-demo
"""


def _positive_int(value):
    v = int(value)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return v


def _positive_float(value):
    v = float(value)
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {value}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qsmprep", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bids_dir", type=Path, help="root of the input BIDS dataset (read-only)")
    p.add_argument("output_dir", type=Path,
                   help="derivatives folder to write (created; re-runs overwrite in place)")
    p.add_argument("analysis_level", choices=["participant", "group"],
                   help="'participant': process each selected subject's runs; 'group': region "
                   "tables, whole-brain QC and a report from the participant outputs in "
                   "OUTPUT_DIR (docs/group.md)")
    p.add_argument("--version", action="version", version=f"qsmprep {__version__}")

    sel = p.add_argument_group("selecting data")
    sel.add_argument("--participant-label", "--participant_label", nargs="+", default=[],
                     metavar="LABEL", help="subjects to process, with or without 'sub-' "
                     "(default: all)")
    sel.add_argument("--session-label", "--session_label", nargs="+", default=[], metavar="LABEL",
                     help="sessions to process, with or without 'ses-' (default: all)")
    sel.add_argument("--bids-filter-file", type=Path, metavar="FILE",
                     help="JSON of extra BIDS entities to select runs, e.g. "
                     '{"megre": {"acquisition": "highres"}} or {"run": 1}')

    pipe = p.add_argument_group("pipeline")
    pipe.add_argument("--pipeline", default="default", metavar="NAME|FILE",
                      help="preset name (default, fast, ...) or path to a pipeline TOML file")
    for st in methods.STAGES:
        choices = methods.methods_of(st.name)
        what = "; ".join(f"{m.name}: {m.summary}" for m in choices)
        pipe.add_argument(st.flag, dest=f"method_{st.name}", choices=[m.name for m in choices],
                          metavar="{" + ",".join(m.name for m in choices) + "}",
                          help=f"override the preset's {st.title} method ({what})")
    pipe.add_argument("--lambda", dest="lam", type=_positive_float, metavar="VALUE",
                      help="fixed regularisation lambda of the inversion (what it multiplies: "
                      "docs/inversion.md; default: automatic)")
    pipe.add_argument("--phase-units", choices=PHASE_UNITS, default="auto",
                      help="units of the input phase images: auto = identify radians [-pi, pi) "
                      "or [0, 2pi), degrees [-180, 180) or [0, 360), or integers filling a "
                      "power-of-two range (0..4095, -4096..4095), and stop when the range fits "
                      "none; radians / degrees / integer = take that (integer maps the smallest "
                      "power-of-two range holding the values onto [-pi, pi)) (default: auto)")
    pipe.add_argument("--mask", dest="user_mask", metavar="PATTERN",
                      help="use your own brain masks: a NIfTI path on each run's grid, where "
                      "{subject}, {session}, {acquisition} and {run} are replaced per run, "
                      "e.g. /masks/sub-{subject}_mask.nii.gz")
    pipe.add_argument("--fsl", choices=FSL_MODES, default="auto",
                      help="FSL (bet, prelude): auto = use it where the pipeline asks and it is "
                      "installed, else the native method; require = always BET and PRELUDE, stop "
                      "if FSL is missing; never = native methods only (default: auto)")
    pipe.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                      help="torch device for DeepQSM (default: cpu)")
    p.add_argument("--reports-only", action="store_true",
                   help="compute nothing: rebuild the participant reports (sub-<label>.html) and "
                   "logs/CITATION.* from the outputs in OUTPUT_DIR and the work directory of "
                   "the run that made them (-w overrides where that is)")

    perf = p.add_argument_group("performance and work directory")
    perf.add_argument("-w", "--work-dir", type=Path,
                      help="intermediate files and the nipype cache (default: ./work); re-using "
                      "it skips finished steps")
    perf.add_argument("--nprocs", "--n-cpus", type=_positive_int,
                      default=max(1, len(os.sched_getaffinity(0))),
                      help="parallel processes (default: all CPUs)")
    perf.add_argument("--omp-nthreads", type=_positive_int, default=None,
                      help="threads per process for FFTs (default: min(nprocs, 8))")
    perf.add_argument("--mem-gb", type=_positive_float, default=None,
                      help="memory limit for scheduling nodes (GB)")
    perf.add_argument("--plugin", choices=PLUGINS, default="MultiProc",
                      help="nipype execution plugin: MultiProc or Linear run here; SLURM, SGE, "
                      "PBS, LSF submit one job per step with its memory/CPU estimate and wait; "
                      "SLURMGraph submits the whole graph and exits (docs/hpc.md; default: "
                      "MultiProc)")
    perf.add_argument("--plugin-args", metavar="JSON|FILE",
                      help="nipype plugin arguments as a JSON object or a JSON file, e.g. "
                      '\'{"max_jobs": 50, "sbatch_args": "--partition=short"}\'')
    perf.add_argument("--sbatch-args", metavar="ARGS",
                      help="options added to every sbatch of --plugin SLURM/SLURMGraph, given "
                      "with '=', e.g. --sbatch-args='--partition=short --time=1:00:00'")
    from .group import add_group_arguments

    add_group_arguments(p)
    return p


def build_demo_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qsmprep demo",
        description="Simulate a small multi-echo head-phantom BIDS dataset with known "
        "susceptibility, a background field, a phase offset and noise; run the participant "
        "pipeline on it and print its accuracy against the truth.")
    p.add_argument("output_dir", type=Path,
                   help="folder for the demo: bids/ (input), derivatives/ (output), work/")
    p.add_argument("--pipeline", default="default", metavar="NAME|FILE")
    p.add_argument("--nprocs", type=_positive_int, default=max(1, len(os.sched_getaffinity(0))))
    p.add_argument("--snr", type=_positive_float, default=100.0,
                   help="magnitude SNR of the simulated data (default 100)")
    p.add_argument("--tilt", type=float, default=0.0, help="oblique tilt of B0 in degrees")
    return p
