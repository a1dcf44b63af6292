"""``qsmprep simulate OUTPUT_BIDS [options]``: write a simulated multi-echo GRE BIDS dataset
of the MNI152-based head phantom with its ground truth (see docs/simulation.md)."""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from ..errors import UserInputError
from .parser import _positive_float

__all__ = ["build_simulate_parser", "main"]


def build_simulate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qsmprep simulate",
        description="Simulate a multi-echo gradient-echo BIDS dataset of a head phantom built "
        "from the MNI152 grey/white-matter templates (deep grey nuclei, veins, calcification, "
        "skull, scalp, air cavities) with ground truth under derivatives/qsmprep-truth.")
    p.add_argument("output_bids", type=Path,
                   help="folder to create (empty or absent), or an existing BIDS dataset to add "
                   "a subject/session to (the other subjects' files are left untouched)")
    p.add_argument("--subject", default="01", help="subject label (default 01)")
    p.add_argument("--session", default=None,
                   help="session label: writes sub-<subject>/ses-<session>/anat/")
    p.add_argument("--phantom", choices=["realistic", "simple"], default="realistic",
                   help="realistic (default): textured susceptibility with small vessels, "
                   "scalp with skin and fat (chemical-shift phase), muscle, skull with "
                   "marrow, neck, orbits; simple: piecewise-constant tissue, uniform skull "
                   "and scalp (docs/simulation.md)")
    p.add_argument("--field-strength", type=_positive_float, default=3.0, help="B0 in tesla (3)")
    p.add_argument("--echo-times", type=_positive_float, nargs="+",
                   default=[0.004, 0.012, 0.020, 0.028], help="echo times in s")
    p.add_argument("--tr", type=_positive_float, default=0.035, help="repetition time in s")
    p.add_argument("--flip-angle", type=_positive_float, default=15.0, help="degrees")
    p.add_argument("--voxel-size", type=_positive_float, nargs="+", default=[1.0],
                   help="mm, one value (isotropic) or three")
    p.add_argument("--matrix", type=int, nargs=3, default=[180, 216, 180])
    p.add_argument("--b0-tilt", type=float, default=0.0,
                   help="oblique acquisition: rotate the slices by this many degrees about "
                   "the first array axis")
    p.add_argument("--b0-direction", type=float, nargs=3, default=None,
                   help="B0 direction in voxel coordinates (overrides --b0-tilt)")
    p.add_argument("--snr", type=float, default=100.0,
                   help="mean brain magnitude at TE=0 over the noise SD (0: noiseless)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=_positive_float, default=1.0, help="scale the anatomy")
    p.add_argument("--supersample", type=int, default=2,
                   help="fine-grid factor per axis for the forward model (default 2)")
    p.add_argument("--coils", type=int, default=0,
                   help="write N uncombined receive channels (4-D images)")
    p.add_argument("--body-coil", action="store_true", help="also write acq-body images")
    p.add_argument("--no-calcification", action="store_true")
    p.add_argument("--phase-scaling", choices=["radians", "int12"], default="radians",
                   help="write phase in radians or as integers 0..4095")
    p.add_argument("--overwrite", action="store_true",
                   help="allow writing into a non-empty folder that is not a BIDS dataset, or "
                   "replacing a subject/session that is already there")
    return p


def _check_target(root: Path, args):
    """Refuse what would overwrite data: a non-empty folder that is not a BIDS dataset,
    or a subject/session the dataset already has (both unless --overwrite)."""
    for what, label in (("--subject", args.subject), ("--session", args.session)):
        if label is not None and not re.fullmatch(r"[A-Za-z0-9]+", label):
            raise UserInputError(f"{what} {label!r} is not a BIDS label (letters and digits "
                                 f"only, without the 'sub-'/'ses-' prefix); fix it and run again.")
    if root.exists() and not root.is_dir():
        raise UserInputError(f"{root} exists and is not a folder; give a new folder name.")
    if not root.is_dir() or not any(root.iterdir()) or args.overwrite:
        return
    if not (root / "dataset_description.json").is_file():
        raise UserInputError(
            f"The output folder {root} already exists, is not empty and is not a BIDS dataset "
            "(no dataset_description.json), and `qsmprep simulate` does not write into it by "
            "default. Give a new or empty folder, or add --overwrite to write the simulated "
            "files into it.")
    run = root / f"sub-{args.subject}"
    if args.session:
        run = run / f"ses-{args.session}"
    if args.session and (root / f"sub-{args.subject}" / "anat").exists():
        raise UserInputError(
            f"sub-{args.subject} in {root} has data without sessions; BIDS does not allow adding "
            "a session to it. Leave --session out (with --overwrite) or pick another --subject.")
    if run.exists():
        raise UserInputError(
            f"The dataset {root} already has {run.relative_to(root)}. Choose another "
            "--subject/--session to add one, or add --overwrite to replace its simulated files.")


def main(argv, out=None) -> int:
    out = out or sys.stdout
    args = build_simulate_parser().parse_args(argv)
    from ..simulation.dataset import SimulationSpec, write_simulated_dataset

    root = args.output_bids
    _check_target(root, args)
    vs = args.voxel_size
    if len(vs) not in (1, 3):
        raise UserInputError("--voxel-size takes one value (isotropic) or three values in mm; "
                             f"got {len(vs)}. Fix the command line and run again.")
    if min(args.matrix) < 8 or args.supersample < 1 or args.coils < 0:
        raise UserInputError("--matrix needs at least 8 voxels per axis, --supersample >= 1 "
                             "and --coils >= 0; fix the command line and run again.")
    spec = SimulationSpec(
        subject=args.subject, session=args.session, phantom=args.phantom,
        shape=tuple(args.matrix),
        voxel_size=tuple(vs * 3 if len(vs) == 1 else vs), scale=args.scale,
        echo_times=tuple(sorted(args.echo_times)), field_strength=args.field_strength,
        tilt_deg=args.b0_tilt, b0_direction=tuple(args.b0_direction) if args.b0_direction else None,
        snr=args.snr or None, phase_scaling=args.phase_scaling, seed=args.seed,
        repetition_time=args.tr, flip_angle=args.flip_angle, supersample=args.supersample,
        calcification=not args.no_calcification, coils=args.coils, body_coil=args.body_coil)
    if spec.repetition_time <= max(spec.echo_times):
        raise UserInputError(f"--tr {spec.repetition_time} s must exceed the last echo time "
                             f"({max(spec.echo_times)} s); fix the command line and run again.")
    if args.coils or args.body_coil:
        try:
            from ..simulation import coils  # noqa: F401
        except ImportError as exc:
            raise UserInputError("--coils/--body-coil need qsmprep.simulation.coils, which this "
                                 "installation lacks; leave the options out.") from exc
    t0 = time.monotonic()
    truth = write_simulated_dataset(root, spec)
    print(f"simulate: {spec.phantom} head, "
          f"{spec.shape[0]}x{spec.shape[1]}x{spec.shape[2]} voxels of "
          f"{'x'.join(f'{h:g}' for h in spec.voxel_size)} mm, {len(spec.echo_times)} echoes at "
          f"{spec.field_strength:g} T in {time.monotonic() - t0:.1f} s -> {root}; truth in "
          f"{truth['chi'].parent}", file=out, flush=True)
    return 0
