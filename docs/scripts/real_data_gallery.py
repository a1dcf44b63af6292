"""Real-scan gallery: run each preset on a real BIDS dataset and render what it made.

    python docs/scripts/real_data_gallery.py DATA_DIR [--presets default fast ...]
        [--out docs/figures/real-data] [--work /tmp/qsmprep-gallery] [--markdown docs/real-data.md]

For every preset it runs ``qsmprep DATA_DIR OUT participant --pipeline PRESET`` (FSL is
never used: ``--fsl never``, so the ``fsl`` preset shows the native fallbacks), then draws,
per run, one PNG with four rows (magnitude with the brain-mask outline, total field,
local field, chi at a fixed ppm window) in three orthogonal slices through the mask's
centre, and writes a Markdown page with the figures, the mask volume, the run time and the
console warnings. The data is only read; nothing of it is copied beside the figures.
Needs matplotlib (``pip install matplotlib``).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np

CHI_WINDOW_PPM = 0.1
FIELD_WINDOW_HZ = {"total": 60.0, "local": 4.0}


def _run_preset(data_dir: Path, preset: str, out: Path, work: Path) -> tuple[int, float, str]:
    cmd = ["qsmprep", str(data_dir), str(out), "participant", "--pipeline", preset,
           "--fsl", "never", "-w", str(work)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return proc.returncode, time.perf_counter() - t0, proc.stdout + proc.stderr


def _load(path: Path):
    img = nib.load(str(path))
    data = np.asanyarray(img.dataobj).astype(np.float32)
    return (data[..., 0] if data.ndim == 4 else data), img.header.get_zooms()[:3]


def _slices(vol, centre):
    i, j, k = centre
    return [vol[:, :, k].T, vol[:, j, :].T, vol[i, :, :].T]


def _aspects(zooms):
    zx, zy, zz = zooms
    return [zy / zx, zz / zx, zz / zy]


def render_run(anat: Path, fmap: Path, prefix: str, png: Path, title: str) -> dict:
    """Draw the four-row figure of one run; return the mask volume (mL) and voxel count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mask, zooms = _load(anat / f"{prefix}_desc-brain_mask.nii.gz")
    mask = mask > 0
    centre = [int(round(c)) for c in np.argwhere(mask).mean(axis=0)] if mask.any() else \
        [s // 2 for s in mask.shape]
    rows = []
    mag_path = fmap / f"{prefix}_desc-total_magnitude.nii.gz"
    if mag_path.exists():
        mag, _ = _load(mag_path)
        rows.append(("magnitude + mask", mag, "gray", (0, float(np.percentile(mag, 99.5))), None))
    for desc in ("total", "local"):
        p = fmap / f"{prefix}_desc-{desc}_fieldmap.nii.gz"
        if p.exists():
            f, _ = _load(p)
            w = FIELD_WINDOW_HZ[desc]
            rows.append((f"{desc} field (Hz, +-{w:g})", f, "RdBu_r", (-w, w), "Hz"))
    chi_path = anat / f"{prefix}_Chimap.nii.gz"
    if chi_path.exists():
        chi, _ = _load(chi_path)
        rows.append((f"chi (ppm, +-{CHI_WINDOW_PPM:g})", chi, "gray",
                     (-CHI_WINDOW_PPM, CHI_WINDOW_PPM), "ppm"))
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 2.2 * len(rows) + 0.4), squeeze=False,
                             layout="constrained")
    aspects = _aspects(zooms)
    for r, (label, vol, cmap, (lo, hi), unit) in enumerate(rows):
        for c, (sl, msl) in enumerate(zip(_slices(vol, centre), _slices(mask, centre))):
            ax = axes[r][c]
            im = ax.imshow(sl, cmap=cmap, vmin=lo, vmax=hi, origin="lower", aspect=aspects[c],
                           interpolation="nearest")
            if r == 0:
                ax.contour(msl.astype(float), levels=[0.5], colors="#ff3030", linewidths=0.8)
            ax.set_axis_off()
            if c == 0:
                ax.set_title(label, loc="left", fontsize=9)
        if unit:
            fig.colorbar(im, ax=axes[r].tolist(), fraction=0.02, pad=0.01, shrink=0.9)
    fig.suptitle(title, fontsize=10)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90)
    plt.close(fig)
    voxel_ml = float(np.prod(zooms)) / 1000.0
    return {"mask_ml": float(mask.sum()) * voxel_ml, "mask_voxels": int(mask.sum())}


def _warnings(console: str) -> list[str]:
    keep = []
    for line in console.splitlines():
        if re.search(r"warn|WARNING|removed|implausible|overflow", line, re.IGNORECASE):
            keep.append(line.strip())
    return keep


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", type=Path, help="a BIDS dataset of real scans")
    ap.add_argument("--presets", nargs="+", default=["default", "fast", "fsl", "deepqsm"])
    ap.add_argument("--out", type=Path, default=Path("docs/figures/real-data"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/qsmprep-gallery"))
    ap.add_argument("--markdown", type=Path, default=Path("docs/real-data.md"))
    args = ap.parse_args(argv)
    if not (args.data_dir / "dataset_description.json").is_file():
        print(f"error: {args.data_dir} is not a BIDS dataset (no dataset_description.json); "
              "give the path of e.g. ../shared/data/real/philips-3t-dual-echo", file=sys.stderr)
        return 2
    rows, sections = [], []
    for preset in args.presets:
        out = args.work / preset / "derivatives"
        rc, seconds, console = _run_preset(args.data_dir, preset, out, args.work / preset / "work")
        if rc != 0:
            rows.append(f"| `{preset}` | failed (exit {rc}) | | {seconds:.1f} | "
                        f"{console.strip().splitlines()[-1] if console.strip() else ''} |")
            continue
        for chi in sorted(out.glob("sub-*/**/anat/*_Chimap.nii.gz")):
            prefix = chi.name[: -len("_Chimap.nii.gz")]
            png = args.out / f"{prefix}_{preset}.png"
            info = render_run(chi.parent, chi.parent.parent / "fmap", prefix, png,
                              f"{prefix}, preset {preset}")
            warn = _warnings(console)
            rows.append(f"| `{preset}` | {info['mask_ml'] / 1000:.2f} | {info['mask_voxels']} | "
                        f"{seconds:.1f} | {'<br>'.join(warn) if warn else 'none'} |")
            rel = Path(os.path.relpath(png, args.markdown.parent))
            sections.append(f"### {prefix}, `{preset}`\n\n![{prefix} {preset}]({rel.as_posix()})\n")
    cmd = "python docs/scripts/real_data_gallery.py " + " ".join(
        [str(args.data_dir)] + (["--presets", *args.presets] if argv else []))
    text = [
        "# Real-scan gallery",
        "",
        f"Made by `{cmd}` (qsmprep's presets with `--fsl never`, on 2 CPU cores).",
        "Rows: magnitude with the brain-mask outline (red), total field and local field in Hz,",
        f"chi at a fixed window of +-{CHI_WINDOW_PPM:g} ppm; slices through the mask's centre.",
        "The data are not part of the project (see `../shared/data/real/README.md`).",
        "",
        "| preset | mask (L) | mask voxels | run time (s) | console warnings |",
        "|---|---|---|---|---|",
        *rows,
        "",
        *sections,
    ]
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text("\n".join(text) + "\n")
    print("\n".join(text[7:7 + 2 + len(rows)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
