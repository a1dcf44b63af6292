"""``qsmprep evaluate CHIMAP``: score a susceptibility map against ground truth.

    qsmprep evaluate CHIMAP --truth TRUTH_CHIMAP --mask MASK [--labels DSEG --label-names TSV]
                     [--json OUT.json]
    qsmprep evaluate out/sub-01/anat/sub-01_Chimap.nii.gz --truth-dir bids/derivatives/qsmprep-truth

Prints a table of the QSM reconstruction challenge 2.0 metrics (qsmprep.evaluation) and
optionally writes them as JSON. ``--truth-dir`` points at a truth derivatives folder as
``qsmprep simulate`` writes it (``sub-<s>[/ses-<t>]/anat/<prefix>_Chimap.nii.gz``,
``_desc-brain_mask.nii.gz``, ``_dseg.nii.gz``, ``_dseg.tsv``); the subject and session are
read from the CHIMAP file name. Explicit ``--truth``/``--mask``/``--labels``/``--label-names``
override what is found there.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ..errors import UserInputError

__all__ = ["build_evaluate_parser", "find_truth_files", "main"]

_NII = re.compile(r"\.nii(\.gz)?$")


def build_evaluate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qsmprep evaluate",
        description="Score a susceptibility map (ppm) against a ground-truth map with the QSM "
                    "reconstruction challenge 2.0 metrics: demeaned and detrended NRMSE, HFEN, "
                    "XSIM, correlation, and per-region means with their regression on the truth.")
    p.add_argument("chimap", type=Path, metavar="CHIMAP", help="the susceptibility map to score")
    p.add_argument("--truth-dir", type=Path, metavar="DERIV_DIR",
                   help="truth derivatives folder (e.g. BIDS_DIR/derivatives/qsmprep-truth); "
                        "the truth map, brain mask, dseg and its TSV are found there")
    p.add_argument("--truth", type=Path, metavar="TRUTH_CHIMAP", help="ground-truth map (ppm)")
    p.add_argument("--mask", type=Path, metavar="MASK", help="brain mask of the truth")
    p.add_argument("--labels", type=Path, metavar="DSEG", help="label image for region means")
    p.add_argument("--label-names", type=Path, metavar="TSV",
                   help="BIDS dseg TSV (columns index, name); default: the .tsv beside DSEG")
    p.add_argument("--regression-labels", nargs="+", metavar="NAME",
                   help="regions used for the slope of recon vs truth region means "
                        "(default: all reported regions)")
    p.add_argument("--min-label-voxels", type=int, default=5, metavar="N",
                   help="regions with fewer evaluated voxels are not reported (default 5)")
    p.add_argument("--json", type=Path, metavar="OUT.json",
                   help="also write the scores as JSON ('-' for standard output)")
    return p


def _entities(name: str) -> dict[str, str]:
    return dict(re.findall(r"(?:^|_)([a-zA-Z0-9]+)-([a-zA-Z0-9]+)", name))


def find_truth_files(truth_dir, chimap) -> dict:
    """Truth files in a ``qsmprep-truth``-style derivatives folder for the map ``chimap``.

    Returns ``{"truth", "mask", "labels", "label_names"}`` paths (the last two None when
    absent). Raises :class:`UserInputError` naming the folder when something is missing.
    """
    truth_dir = Path(truth_dir)
    if not truth_dir.is_dir():
        raise UserInputError(
            f"The truth folder {truth_dir} does not exist. Pass the truth derivatives folder, "
            "e.g. --truth-dir BIDS_DIR/derivatives/qsmprep-truth.")
    ents = _entities(Path(chimap).name)
    if "sub" in ents:
        sub = ents["sub"]
    else:
        subs = sorted(p.name[4:] for p in truth_dir.glob("sub-*") if p.is_dir())
        if len(subs) != 1:
            raise UserInputError(
                f"{chimap} has no sub-<label> in its name and {truth_dir} holds "
                f"{len(subs)} subjects ({', '.join(subs) or 'none'}). Name the map like "
                "sub-01_Chimap.nii.gz or pass --truth and --mask.")
        sub = subs[0]
    anat = truth_dir / f"sub-{sub}"
    if "ses" in ents:
        anat = anat / f"ses-{ents['ses']}"
    anat = anat / "anat"
    candidates = sorted(anat.glob("*_Chimap.nii*"))
    exact = anat / Path(chimap).name
    if exact in candidates:
        truth = exact
    elif len(candidates) == 1:
        truth = candidates[0]
    else:
        found = ", ".join(p.name for p in candidates) or "none"
        raise UserInputError(
            f"Could not pick the truth map for {chimap} in {anat} (found: {found}). Pass "
            "--truth and --mask explicitly, or name the map as the truth file is named.")
    stem = _NII.sub("", truth.name)[: -len("_Chimap")]
    mask = anat / f"{stem}_desc-brain_mask.nii.gz"
    if not mask.is_file():
        raise UserInputError(
            f"{truth_dir} has the truth map {truth.name} but no brain mask {mask.name} beside it. "
            "Pass the mask with --mask.")
    labels = anat / f"{stem}_dseg.nii.gz"
    names = anat / f"{stem}_dseg.tsv"
    return {"truth": truth, "mask": mask, "labels": labels if labels.is_file() else None,
            "label_names": names if names.is_file() else None}


def main(argv, out=None) -> int:
    from ..evaluation import evaluate_chimap, format_scores, scores_to_json

    out = sys.stdout if out is None else out
    args = build_evaluate_parser().parse_args(argv)
    files = {"truth": None, "mask": None, "labels": None, "label_names": None}
    if args.truth_dir is not None:
        files.update(find_truth_files(args.truth_dir, args.chimap))
    for key in files:
        if getattr(args, key) is not None:
            files[key] = getattr(args, key)
    if files["truth"] is None or files["mask"] is None:
        raise UserInputError(
            f"No ground truth given for {args.chimap}: pass --truth TRUTH_CHIMAP and --mask MASK, "
            "or --truth-dir pointing at a truth derivatives folder (e.g. "
            "BIDS_DIR/derivatives/qsmprep-truth).")
    if files["label_names"] is not None and files["labels"] is None:
        raise UserInputError(
            f"--label-names {files['label_names']} was given without a label image. Add "
            "--labels DSEG (the dseg image the TSV describes).")
    scores = evaluate_chimap(args.chimap, files["truth"], files["mask"], files["labels"],
                             files["label_names"], min_label_voxels=args.min_label_voxels,
                             regression_labels=args.regression_labels)
    if args.json is not None and str(args.json) == "-":
        out.write(scores_to_json(scores))
        return 0
    print(f"qsmprep evaluate: {args.chimap} against {files['truth']}", file=out)
    print(format_scores(scores), file=out, flush=True)
    if args.json is not None:
        scores_to_json(scores, args.json)
        print(f"scores written to {args.json}", file=out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
