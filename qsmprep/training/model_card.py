"""Evaluate DeepQSM weights and write their model card (``MODEL_CARD.md``).

    python -m qsmprep.training.model_card WEIGHTS [--out MODEL_CARD.md] [--threads 2]
        [--command "the training command"] [--history RUN_DIR/history.jsonl]

Figures: the held-out validation set of synthetic shapes (fixed seed, from the training
history), the MNI-based head of ``qsmprep simulate`` (2 mm, axial), and the project's
geometric head phantom (``head_phantom((96, 112, 96), 1.8 mm)``, the
algorithm tests' case) inverted from its true local field (brain susceptibility only),
axial and with B0 tilted 20 degrees, against TKD (threshold 0.19): demeaned NRMSE (%)
inside the brain (QSM challenge 2.0) and the RMS error (ppm) in a 4-voxel shell around
the veins and the calcification (streaking).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from scipy import ndimage



def _shell_rms_fn(labels, mask, truth):
    """RMS error (ppm) in the brain voxels within 4 voxels of a vein or the calcification
    (label ids 11, 12), excluding them: the streaking region."""
    sources = np.isin(labels, (11, 12))
    shell = ndimage.binary_dilation(sources, iterations=4) & ~sources & mask

    def shell_rms(c):
        e = (c - c[mask].mean()) - (truth - truth[mask].mean())
        return float(np.sqrt(np.mean(e[shell] ** 2)))
    return shell_rms


def _score_rows(model, field, voxel_size, b0, mask, truth, labels, tilt, resolutions):
    """Rows (TKD 0.19, then DeepQSM on each network grid) of demeaned NRMSE and shell RMS
    against ``truth`` inside ``mask``, with DeepQSM's seconds."""
    from ..algorithms.deepqsm import deepqsm
    from ..algorithms.inversion.direct import tkd
    from ..algorithms.metrics import demeaned_nrmse

    shell_rms = _shell_rms_fn(labels, mask, truth)

    def row(method, resolution, chi, seconds):
        return {"method": method, "tilt": tilt, "resolution": resolution, "seconds": seconds,
                "nrmse": demeaned_nrmse(chi, truth, mask), "shell": shell_rms(chi)}

    rows = [row("TKD 0.19", "-", tkd(field, voxel_size, b0, mask=mask), None)]
    for res in resolutions:
        t0 = time.perf_counter()
        chi = deepqsm(field, voxel_size, b0, mask=mask, model=model, resolution=res)
        rows.append(row("DeepQSM", res, chi, time.perf_counter() - t0))
    return rows


def mni_head_scores(model):
    """The MNI-based head of ``qsmprep simulate`` (a different anatomy from
    :func:`head_phantom_scores`' geometric head): 2 mm, 88 x 104 x 88, axial B0, its true
    local field without noise; DeepQSM on the native grid against TKD 0.19."""
    from ..simulation.acquisition import simulate_megre

    vs, b0 = (2.0, 2.0, 2.0), (0.0, 0.0, 1.0)
    d = simulate_megre((88, 104, 88), vs, (0.004, 0.008), 3.0, b0, snr=None)
    return _score_rows(model, d.local_field, vs, b0, d.brain_mask, d.chi, d.labels, 0.0,
                       ("native",))


def head_phantom_scores(model, resolutions=("native", "training")):
    from ..algorithms.dipole import forward_field
    from ..simulation.phantom import head_phantom

    vs = (1.8, 1.8, 1.8)
    ph = head_phantom((96, 112, 96), vs)
    rows = []
    for tilt in (0.0, 20.0):
        t = np.deg2rad(tilt)
        b0 = (0.0, float(np.sin(t)), float(np.cos(t)))
        field = forward_field(ph.chi_brain, vs, b0)
        rows += _score_rows(model, field, vs, b0, ph.brain_mask, ph.chi_brain, ph.labels, tilt,
                            resolutions)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights", type=Path)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--command", default="")
    p.add_argument("--history", type=Path, default=None)
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    import torch

    from ..algorithms.deepqsm import load_model
    from .deepqsm import validation_scores, validation_set

    torch.set_num_threads(args.threads)
    model = load_model(args.weights)
    meta = model.meta
    cfg = meta.get("config", {})
    hist = []
    if args.history and args.history.exists():
        hist = [json.loads(x) for x in args.history.read_text().splitlines() if x.strip()]
    rows = head_phantom_scores(model)
    mni_rows = mni_head_scores(model)
    tkd_val = (validation_scores(torch, lambda x: x[:, 1:2], validation_set(cfg)) if cfg
               else None)
    lines = ["# DeepQSM model card", "",
             "3-D U-Net dipole inversion (Bollmann et al., NeuroImage 2019) trained by "
             "`qsmprep train-deepqsm` on synthetic shapes only; weights "
             f"`{args.weights.name}` ({args.weights.stat().st_size / 1e6:.1f} MB).", ""]
    if args.note:
        lines += [args.note, ""]
    lines += ["## Training", "",
              f"- command: `{args.command}`" if args.command else "- command: (not given)",
              f"- steps: {meta.get('steps')}; wall time: "
              f"{(meta.get('wall_seconds') or 0) / 60:.1f} min; hardware: {meta.get('hardware')}",
              f"- network: base {meta['arch']['base']} channels, depth {meta['arch']['depth']} "
              f"(input padded to multiples of {2 ** meta['arch']['depth']}), dropout "
              f"{meta['arch']['dropout']}, residual on TKD: {meta['arch'].get('residual')}",
              "- config: " + ", ".join(f"{k}={v}" for k, v in sorted(cfg.items())),
              "- grid: 1 mm isotropic, B0 along array axis 2; input field x scale, output chi x "
              f"scale (scale {meta.get('scale')}) in ppm", ""]
    if hist:
        lines += ["## Held-out validation (synthetic shapes, fixed seed "
                  f"{cfg.get('val_seed')}, {cfg.get('val_size')} patches)", "",
                  "| step | val MSE (ppm^2) | val demeaned NRMSE % | val relative error "
                  "(demeaned) | lr |", "|---|---|---|---|---|"]
        if tkd_val is not None:
            lines.append(f"| TKD alone | {tkd_val[0]:.3e} | {tkd_val[1]:.1f} | {tkd_val[2]:.4f} "
                         "| - |")
        for h in hist:
            rel = f"{h['val_rel']:.4f}" if "val_rel" in h else "-"
            lines.append(f"| {h['step']} | {h['val_mse']:.3e} | {h['val_nrmse']:.1f} | {rel} "
                         f"| {h['lr']:.1e} |")
        lines.append("")
    lines += ["## Head phantom (96x112x96, 1.8 mm, true local field, no noise)", "",
              f"Evaluated with `python -m qsmprep.training.model_card {args.weights}` "
              f"({args.threads} torch threads, {platform.machine()}, load "
              f"{os.getloadavg()[0]:.1f}).", "",
              "| method | B0 tilt (deg) | network grid | demeaned NRMSE % | shell RMS (ppm) "
              "| seconds |", "|---|---|---|---|---|---|"]
    for r in rows:
        sec = "-" if r["seconds"] is None else f"{r['seconds']:.1f}"
        lines.append(f"| {r['method']} | {r['tilt']:g} | {r['resolution']} | {r['nrmse']:.1f} "
                     f"| {r['shell']:.4f} | {sec} |")
    lines += ["", "Shell RMS: error in the brain voxels within 4 voxels of a vein or the "
              "calcification (excluding them), the streaking region. Network grid: `native` = "
              "the 1.8 mm input grid (rotated for the tilt), `training` = resampled to 1 mm.", ""]
    lines += ["## MNI-based head (`qsmprep simulate` anatomy, 88x104x88, 2 mm, true local "
              "field, no noise)", "",
              "| method | demeaned NRMSE % | shell RMS (ppm) | seconds |", "|---|---|---|---|"]
    for r in mni_rows:
        sec = "-" if r["seconds"] is None else f"{r['seconds']:.1f}"
        lines.append(f"| {r['method']} | {r['nrmse']:.1f} | {r['shell']:.4f} | {sec} |")
    lines.append("")
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
