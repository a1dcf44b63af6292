"""The console table of the runs to process."""

from __future__ import annotations

from ..bids import run_geometry


def format_run_summary(runs, geometries=None) -> str:
    """A readable table of the runs to process (one line per run)."""
    runs = list(runs)
    geometries = list(geometries) if geometries is not None else [run_geometry(r) for r in runs]
    header = ("subject", "session", "acq/rec/run", "type", "echoes", "TE (ms)", "B0 (T)",
              "matrix", "voxel (mm)", "B0 dir (voxel)", "B0 angle")
    rows = []
    for r, g in zip(runs, geometries):
        ids = " ".join(f"{k}-{v}" for k, v in r.entities.items() if k in ("acq", "rec", "run"))
        rows.append((
            r.subject, r.session or "-", ids or "-",
            r.suffix + (f" ({r.n_channels} channels)" if r.n_channels > 1 else ""), str(r.n_echoes),
            ", ".join(f"{te * 1000:.4g}" for te in r.echo_times),
            f"{r.field_strength:.4g}",
            "x".join(str(n) for n in g.shape),
            "x".join(f"{v:.3g}" for v in g.voxel_size),
            "(" + ", ".join(f"{v:.3f}" for v in g.b0_direction) + ")",
            f"{g.b0_angle_deg:.1f} deg",
        ))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    lines = [f"qsmprep: {len(runs)} run(s) to process", fmt(header),
             fmt(tuple("-" * w for w in widths))]
    lines += [fmt(row) for row in rows]
    lines.append("B0 angle: between B0 and the last array axis (the slice axis of an "
                 "axial acquisition).")
    return "\n".join(lines)


# ---------------------------------------------------------------- derivatives
