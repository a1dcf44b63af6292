"""``qsmprep BIDS_DIR OUTPUT_DIR group [options]``: region tables, whole-brain QC and a group
report from the participant outputs in OUTPUT_DIR (docs/group.md)."""

from __future__ import annotations

import sys

from ..errors import UserInputError

__all__ = ["add_group_arguments", "GROUP_FLAGS", "run_group_level"]

GROUP_FLAGS = ("group_labels", "group_t1w", "group_t1w_labels", "group_simulated_labels")


def add_group_arguments(parser):
    """The group level's options, as a group of the BIDS-App parser."""
    g = parser.add_argument_group(
        "group level (regions for the tables; default: the whole brain mask, plus the "
        "simulator's truth labels when BIDS_DIR has derivatives/qsmprep-truth)")
    g.add_argument("--labels", dest="group_labels", metavar="PATTERN",
                   help="label images on each run's GRE grid, e.g. "
                   "'/seg/sub-{subject}_ses-{session}_dseg.nii.gz' ({subject}, {session}, "
                   "{acquisition}, {reconstruction}, {run} replaced per run); region names "
                   "from the dseg.tsv beside each image (columns index, name)")
    g.add_argument("--t1w", dest="group_t1w", metavar="PATTERN",
                   help="T1w images (pattern as --labels), registered rigidly onto each run's "
                   "GRE magnitude; needs --t1w-labels")
    g.add_argument("--t1w-labels", dest="group_t1w_labels", metavar="PATTERN",
                   help="segmentations in the space of the --t1w images (e.g. another "
                   "pipeline's aseg/dseg), carried onto the GRE grid by the registration with "
                   "nearest-neighbour resampling")
    g.add_argument("--simulated-labels", dest="group_simulated_labels", action="store_true",
                   default=None, help="also use the simulator's truth labels "
                   "(BIDS_DIR/derivatives/qsmprep-truth) when --labels or --t1w-labels is "
                   "given (without them they are used wherever they exist)")
    return g


def check_participant_args(args):
    """The group-only options are refused at the participant level (not silently ignored)."""
    given = [f for f in GROUP_FLAGS if getattr(args, f, None)]
    if given:
        flag = "--" + given[0][len("group_"):].replace("_", "-")
        raise UserInputError(
            f"{flag} is an option of the group level; the participant level does not use it. "
            f"Run `qsmprep BIDS_DIR OUTPUT_DIR group {flag} ...` after the participant level.")


def run_group_level(args, out=None) -> int:
    out = out or sys.stdout
    from ..group.pipeline import GroupOptions, run_group

    bids_dir, output_dir = args.bids_dir.resolve(), args.output_dir.resolve()
    if not bids_dir.is_dir():
        raise UserInputError(f"BIDS_DIR {bids_dir} does not exist; give the input dataset the "
                             "participant level was run on.")
    opts = GroupOptions(
        bids_dir=bids_dir, output_dir=output_dir,
        participant_labels=tuple(args.participant_label),
        session_labels=tuple(args.session_label), labels=args.group_labels,
        t1w=args.group_t1w, t1w_labels=args.group_t1w_labels,
        simulated_labels=args.group_simulated_labels)
    run_group(opts, log=lambda msg: print(msg, file=out, flush=True))
    return 0
