"""The screenshot of the group report in docs/group.md, made from simulated data.

    python docs/scripts/group_report_screenshot.py [--work /tmp/qsmprep-group-doc]
        [--out docs/figures/group]

Simulates 3 participants (sub-01 and sub-02 with 2 sessions, sub-03 with one; 4 mm tiny
heads), runs the participant level (``--pipeline fast``), makes for each participant a
T1w-like image and segmentation in another space (the simulator's truth labels moved by a
rigid transform onto a 2 mm grid, as tests/group/_t1w.py does), runs
``qsmprep BIDS OUT group --t1w ... --t1w-labels ...`` and renders ``group/group.html`` with
headless Chromium (Debian package ``chromium``). Writes ``group-report.png`` and the
registration figure of one run to ``--out``. About 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
RUNS = (("01", "1", 0), ("01", "2", 1), ("02", "1", 2), ("02", "2", 3), ("03", "1", 4))
TINY = dict(shape=(40, 48, 40), voxel_size=(4.0, 4.0, 4.0), scale=0.8,
            echo_times=(0.004, 0.008, 0.012))


def qsmprep(*args):
    subprocess.run([sys.executable, "-m", "qsmprep.cli.main", *map(str, args)], check=True,
                   cwd=ROOT)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/qsmprep-group-doc"))
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "figures" / "group")
    args = p.parse_args()
    sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "group")]
    from _chromium import find_chromium, render
    from _t1w import make_t1w_space

    from qsmprep.simulation.dataset import SimulationSpec, write_simulated_dataset

    if find_chromium() is None:
        sys.exit("headless Chromium is needed: apt-get install chromium")
    if args.work.exists():
        shutil.rmtree(args.work)
    bids, out, t1 = args.work / "bids", args.work / "out", args.work / "t1w"
    t1.mkdir(parents=True)
    for subject, session, seed in RUNS:
        write_simulated_dataset(bids, SimulationSpec(**TINY, subject=subject, session=session,
                                                     seed=seed))
    qsmprep(bids, out, "participant", "-w", args.work / "work", "--pipeline", "fast")
    for subject, session, seed in RUNS:
        if (t1 / f"sub-{subject}_T1w.nii.gz").exists():
            continue
        truth = (bids / "derivatives" / "qsmprep-truth" / f"sub-{subject}" / f"ses-{session}"
                 / "anat" / f"sub-{subject}_ses-{session}_dseg")
        img = nib.load(f"{truth}.nii.gz")
        image, labels, affine, _ = make_t1w_space(
            np.asarray(img.dataobj), img.affine, rotation_deg=(5.0 + seed, -3.0, 6.0 - seed),
            shift_mm=(6.0, -4.0 + seed, 3.0), seed=seed)
        nib.save(nib.Nifti1Image(image, affine), t1 / f"sub-{subject}_T1w.nii.gz")
        nib.save(nib.Nifti1Image(labels, affine), t1 / f"sub-{subject}_dseg.nii.gz")
        shutil.copy(f"{truth}.tsv", t1 / f"sub-{subject}_dseg.tsv")
    qsmprep(bids, out, "group", "--t1w", t1 / "sub-{subject}_T1w.nii.gz",
            "--t1w-labels", t1 / "sub-{subject}_dseg.nii.gz", "--simulated-labels")
    page = out / "group" / "group.html"
    args.out.mkdir(parents=True, exist_ok=True)
    shot = render(page, args.out / "group-report.png", width=1200, height=2600)
    if shot.missing or shot.remote:
        sys.exit(f"the report has missing or remote resources: {shot.missing + shot.remote}")
    shutil.copy(out / "group" / "figures" / "sub-01_ses-1_desc-registration.png",
                args.out / "registration.png")
    print(f"wrote {args.out / 'group-report.png'} and {args.out / 'registration.png'}")


if __name__ == "__main__":
    main()
