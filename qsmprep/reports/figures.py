"""The report's figures, drawn with matplotlib (Agg, no display): slice mosaics with an
optional brain-mask outline and colour bar, and the lambda-selection curve. Arrays in, a
PNG file out; nothing here reads NIfTI files or knows about runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["mosaic", "lambda_curve_figure", "slice_indices", "robust_window", "CHI_WINDOW_PPM"]

#: the fixed display window of every susceptibility map (ppm), so that reports compare
CHI_WINDOW_PPM = (-0.1, 0.1)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def slice_indices(mask, n: int = 8, axis: int = 2) -> list[int]:
    """``n`` evenly spaced slices along ``axis`` through the mask's extent (the whole volume
    when the mask is empty), leaving out its outermost tenth on either side."""
    mask = np.asarray(mask, bool)
    other = tuple(a for a in range(mask.ndim) if a != axis)
    occupied = np.flatnonzero(mask.any(axis=other))
    lo, hi = (occupied[0], occupied[-1]) if occupied.size else (0, mask.shape[axis] - 1)
    span = hi - lo
    lo, hi = lo + 0.1 * span, hi - 0.1 * span
    return sorted({int(round(v)) for v in np.linspace(lo, hi, n)})


def robust_window(volume, mask=None, percentile: float = 99.0, symmetric: bool = False):
    """``(vmin, vmax)`` from the finite values inside ``mask``: the ``100 - p`` and ``p``
    percentiles, or ``+-`` the ``p`` percentile of ``|value|`` when ``symmetric``."""
    v = np.asarray(volume, np.float64)
    sel = np.isfinite(v) & (np.asarray(mask, bool) if mask is not None else True)
    vals = v[sel] if sel.any() else np.zeros(1)
    if symmetric:
        top = float(np.percentile(np.abs(vals), percentile)) or 1.0
        return -top, top
    lo, hi = (float(x) for x in np.percentile(vals, [100 - percentile, percentile]))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _axial(img2d):
    # array (x, y) -> display with x to the right and y upwards
    return np.rot90(img2d)


def mosaic(volume, out_path, *, window, cmap="gray", mask=None, outline=None,
           voxel_size=(1.0, 1.0, 1.0), colorbar: str | None = None, title: str = "",
           n_slices: int = 8, columns: int = 8) -> Path:
    """Axial slices of ``volume`` (3-D; a 4-D one is shown as its root-sum-of-squares),
    ``window`` = (vmin, vmax); voxels outside ``mask`` are drawn black when given;
    ``outline`` (a mask) is drawn as a red contour; ``colorbar`` labels a colour bar."""
    plt = _pyplot()
    vol = np.asarray(volume, np.float64)
    if vol.ndim == 4:
        vol = np.sqrt(np.sum(vol * vol, axis=-1))
    vol = np.where(np.isfinite(vol), vol, 0.0)
    shown = np.asarray(mask, bool) if mask is not None else None
    ref = outline if outline is not None else shown
    slices = slice_indices(ref if ref is not None and np.any(ref) else vol != 0, n_slices)
    rows = int(np.ceil(len(slices) / columns))
    cols = min(columns, len(slices))
    aspect = float(voxel_size[1]) / float(voxel_size[0])
    h_in = 1.6 * vol.shape[1] * aspect / vol.shape[0]
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols + (0.9 if colorbar else 0),
                                                  h_in * rows + (0.35 if title else 0)),
                             squeeze=False, facecolor="black")
    image = None
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, k in zip(axes.ravel(), slices):
        sl = vol[:, :, k]
        if shown is not None:
            sl = np.where(shown[:, :, k], sl, np.nan)
        cm = plt.get_cmap(cmap).with_extremes(bad="black")
        image = ax.imshow(_axial(sl), cmap=cm, vmin=window[0], vmax=window[1],
                          aspect=aspect, interpolation="nearest")
        if outline is not None and np.any(outline[:, :, k]):
            ax.contour(_axial(np.asarray(outline[:, :, k], float)), levels=[0.5],
                       colors="#ff3b30", linewidths=0.8)
        ax.text(0.03, 0.03, f"z={k}", color="#bbbbbb", fontsize=6, transform=ax.transAxes)
    fig.subplots_adjust(left=0, right=(0.9 if colorbar else 1.0) if cols > 2 else 0.85,
                        bottom=0, top=0.9 if title else 1.0, wspace=0.01, hspace=0.01)
    if title:
        fig.suptitle(title, color="white", fontsize=9)
    if colorbar and image is not None:
        cax = fig.add_axes([0.92, 0.12, 0.015, 0.7])
        cb = fig.colorbar(image, cax=cax)
        cb.set_label(colorbar, color="white", fontsize=8)
        cb.ax.tick_params(colors="white", labelsize=7)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110, facecolor="black")
    plt.close(fig)
    return out_path


_CRITERION = {"upre": "UPRE (predictive risk)", "gcv": "GCV", "lcurve": "L-curve curvature"}


def lambda_curve_figure(curve: dict, out_path, *, final_lambda=None, title: str = "") -> Path:
    """Two panels from a ``LambdaCurve`` record (lambda_selection.lambda_curve): the
    selection criterion against lambda, and the L-curve (regulariser against residual),
    each marking the chosen lambda; ``final_lambda`` is noted when the method derived its
    own lambda from the chosen one (TV)."""
    plt = _pyplot()
    lam = np.asarray(curve["Lambdas"], float)
    crit = np.asarray(curve["Criterion"], float)
    res = np.asarray(curve["Residual"], float)
    reg = np.asarray(curve["Regulariser"], float)
    chosen = float(curve["Chosen"])
    rule = curve.get("Rule", "")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8.4, 3.1))
    a1.plot(lam, crit, "o-", ms=3, color="#1f5fa8")
    a1.set_xscale("log")
    if rule == "gcv" and np.all(crit > 0):
        a1.set_yscale("log")
    a1.axvline(chosen, color="#d62728", lw=1.2, label=f"chosen {chosen:.3g}")
    a1.set_xlabel("lambda")
    a1.set_ylabel(_CRITERION.get(rule, rule))
    a1.legend(fontsize=8, loc="best")
    a2.loglog(res, reg, "o-", ms=3, color="#1f5fa8")
    i = int(np.argmin(np.abs(np.log(lam) - np.log(chosen))))
    a2.plot(res[i], reg[i], "o", ms=8, mfc="none", color="#d62728",
            label=f"lambda {lam[i]:.3g} (nearest swept)")
    a2.set_xlabel("data residual ||D chi - f||^2")
    a2.set_ylabel("regulariser ||G chi||^2")
    a2.legend(fontsize=8, loc="best")
    note = title
    if final_lambda is not None:
        note += f" (the inversion's own lambda, {float(final_lambda):.3g}, is derived from it)"
    if note:
        fig.suptitle(note, fontsize=9)
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
