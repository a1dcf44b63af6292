"""The group level's figures (matplotlib, Agg backend, PNG files): the T1w-to-GRE
registration check, per-region distributions across runs, and the whole-brain QC."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["registration_figure", "region_figure", "qc_figure"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _slices(volume, centre):
    """Axial, coronal and sagittal slices through ``centre`` (nibabel voxel order, shown
    with the first axis across and the last axis up)."""
    i, j, k = centre
    return [volume[:, :, k].T, volume[:, j, :].T, volume[i, :, :].T]


def registration_figure(magnitude, t1w_on_gre, labels, path: Path, title: str) -> Path:
    """The GRE magnitude (top) and the registered T1w (bottom) in three planes, both with
    the borders between the registered labels: borders that follow the magnitude's anatomy
    mean the registration worked."""
    plt = _plt()
    lab = np.asarray(labels)
    inside = np.argwhere(lab > 0)
    centre = (inside.mean(0).round().astype(int) if inside.size
              else np.asarray(lab.shape) // 2)
    fig, axes = plt.subplots(2, 3, figsize=(9, 6.2), facecolor="black")
    for row, (img, name) in enumerate(((magnitude, "GRE magnitude"),
                                       (t1w_on_gre, "T1w, registered"))):
        img = np.asarray(img, float)
        hi = np.percentile(img[img > 0], 99) if np.any(img > 0) else 1.0
        for ax, sl, ls in zip(axes[row], _slices(img, centre), _slices(lab, centre)):
            ax.imshow(sl, cmap="gray", origin="lower", vmin=0, vmax=hi, interpolation="nearest")
            edges = [v for v in np.unique(ls) if v > 0]
            if len(edges) > 1:
                ax.contour(ls, levels=np.asarray(edges[:-1]) + 0.5, colors="#00e5ff",
                           linewidths=0.4)
            ax.set_axis_off()
        axes[row][0].text(0.02, 0.97, name, color="white", fontsize=9, va="top",
                          transform=axes[row][0].transAxes)
    fig.suptitle(title + " (cyan: borders between the registered labels)",
                 color="white", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90, facecolor="black")
    plt.close(fig)
    return path


def region_figure(rows: list, atlas: str, measure: str, units: str, path: Path) -> Path | None:
    """One box per region of ``atlas`` with a point per run (``measure``, e.g. chi_mean),
    coloured by session; outliers (robust z > 3, ``outlier`` in the rows) ringed in red and
    named. None when no region has a value."""
    plt = _plt()
    regions = {}
    for r in rows:
        if r["atlas"] == atlas and r.get(measure) is not None and np.isfinite(r[measure]):
            regions.setdefault((r["index"], r["region"]), []).append(r)
    if not regions:
        return None
    keys = sorted(regions)
    sessions = sorted({str(r["session_id"]) for rs in regions.values() for r in rs})
    colours = {s: plt.cm.tab10(i % 10) for i, s in enumerate(sessions)}
    fig, ax = plt.subplots(figsize=(max(5.0, 0.75 * len(keys) + 2), 4.2))
    rng = np.random.default_rng(0)
    ax.boxplot([[r[measure] for r in regions[k]] for k in keys], positions=range(len(keys)),
               widths=0.55, showfliers=False, medianprops={"color": "black"})
    for x, k in enumerate(keys):
        for r in regions[k]:
            xj = x + rng.uniform(-0.15, 0.15)
            ax.scatter(xj, r[measure], s=22, color=colours[str(r["session_id"])], zorder=3)
            if r.get("outlier"):
                ax.scatter(xj, r[measure], s=90, facecolors="none", edgecolors="red", zorder=4)
                ax.annotate(r["_prefix"], (xj, r[measure]), fontsize=7, color="red",
                            xytext=(4, 4), textcoords="offset points")
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([k[1] for k in keys], rotation=40, ha="right", fontsize=8)
    ax.set_ylabel(f"{measure.replace('_', ' ')} ({units})")
    ax.set_title(f"{atlas} regions: {measure.replace('_', ' ')} per run", fontsize=10)
    ax.axhline(0, color="0.8", lw=0.6, zorder=0)
    if len(sessions) > 1 or sessions != ["None"]:
        for s in sessions:
            ax.scatter([], [], color=colours[s], label=s if s != "None" else "no session")
        ax.legend(fontsize=7, title="session", title_fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def qc_figure(qc_rows: list, path: Path) -> Path:
    """Mask volume and residual field norm per run (outliers in red)."""
    plt = _plt()
    names = [q["_prefix"] for q in qc_rows]
    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 0.45 * len(names) + 4), 3.6))
    for ax, key, label in ((axes[0], "mask_volume_ml", "brain-mask volume (mL)"),
                           (axes[1], "residual_field_norm", "residual field norm")):
        vals = np.array([np.nan if q.get(key) is None else q[key] for q in qc_rows], float)
        z = np.array([q.get(f"{key}_robust_z", np.nan) for q in qc_rows], float)
        colours = ["red" if np.isfinite(zi) and abs(zi) > 3 else "#4477aa" for zi in z]
        ax.bar(range(len(names)), np.nan_to_num(vals), color=colours)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
        ax.set_title(label, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
