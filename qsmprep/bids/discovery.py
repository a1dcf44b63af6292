"""Finding and validating the runs of a BIDS dataset (the one module that calls pybids)."""

from __future__ import annotations

import json
import math
import os
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..algorithms.phase import GAMMA_BAR_HZ_PER_T
from ..errors import UserInputError
from ..qc.inputs import check_field_strength
from .filters import _clean_labels, _to_query, normalize_bids_filters
from .runs import _NAMING_HELP, _SUFFIXES, LOGGER, Run, _header_channels, _natural, _sidecar_name


def _list_labels(directory: Path, prefix: str) -> list[str]:
    try:
        names = [p.name for p in directory.iterdir() if p.is_dir()]
    except OSError:
        return []
    return sorted((n[len(prefix) + 1:] for n in names if n.startswith(prefix + "-")), key=_natural)


def _check_bids_dir(bids_dir) -> Path:
    if bids_dir is None:
        raise UserInputError("No BIDS directory given. Pass the path of your BIDS dataset.")
    path = Path(bids_dir).expanduser().absolute()
    if not path.is_dir():
        raise UserInputError(
            f"The BIDS directory {path} does not exist or is not a directory. Check the path "
            "(and, in a container, that it is mounted/bound)."
        )
    desc = path / "dataset_description.json"
    if not desc.is_file():
        raise UserInputError(
            f"{path} has no dataset_description.json, so it is not a BIDS dataset root. Point "
            'qsmprep at the dataset root, or add a dataset_description.json with at least '
            '{"Name": "...", "BIDSVersion": "1.10.0"}.'
        )
    try:
        json.loads(desc.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserInputError(f"Cannot read {desc} as JSON ({err}). Fix the file's syntax.") from None
    return path


def _alt(labels) -> str:
    return r"[A-Za-z0-9]+" if labels is None else "(?:" + "|".join(map(re.escape, labels)) + ")"


def _ignore_regex(subjects, sessions) -> re.Pattern:
    """Pattern matching every path (relative, with a leading '/') pybids must skip.

    Kept: sidecar-inheritance JSONs at the root and subject/session levels, the requested
    subject/session folders and their ``anat/`` MEGRE/T2starw files. Everything else
    (derivatives, sourcedata, code, other subjects, other datatypes) is never walked.
    """
    sub, ses = "/sub-" + _alt(subjects), "/ses-" + _alt(sessions)
    sidecar = r"/(?:[^/.][^/]*_)?(?:MEGRE|T2starw)\.json"
    image = r"/(?:[^/.][^/]*_)?(?:MEGRE|T2starw)\.(?:nii|nii\.gz|json)"
    keep = [sidecar, sub, sub + sidecar,
            sub + ses, sub + ses + sidecar, sub + ses + "/anat", sub + ses + "/anat" + image]
    if sessions is None:  # session-less layout only when no session was asked for
        keep += [sub + "/anat", sub + "/anat" + image]
    keep = "|".join(keep)
    return re.compile(r"^(?!(?:" + keep + r")$)")


def _make_layout(bids_dir: Path, subjects, sessions):
    from bids.layout import BIDSLayout, BIDSLayoutIndexer

    indexer = BIDSLayoutIndexer(validate=False, ignore=[_ignore_regex(subjects, sessions)],
                                index_metadata=True)
    try:
        return BIDSLayout(str(bids_dir), validate=False, indexer=indexer, database_path=None)
    except Exception as err:  # pybids raises assorted types for a malformed root
        raise UserInputError(
            f"pybids could not index the BIDS dataset {bids_dir} ({err}). Fix the file named "
            "there (JSON sidecars and dataset_description.json must be valid JSON)."
        ) from None


def find_runs(bids_dir, participant_labels=None, session_labels=None, bids_filters=None) -> list[Run]:
    """Discover magnitude/phase runs, read their sidecars and check their grids.

    Labels are accepted with or without the ``sub-``/``ses-`` prefix. ``bids_filters``
    is a dict as described in the module docstring (e.g. from :func:`load_bids_filters`).
    Returns runs sorted by (subject, session, acquisition, reconstruction, run).
    """
    root = _check_bids_dir(bids_dir)
    filters = normalize_bids_filters(bids_filters)
    subjects = _clean_labels(participant_labels, "sub", "participant")
    sessions = _clean_labels(session_labels, "ses", "session")
    existing = _list_labels(root, "sub")
    if subjects is not None:
        missing = [s for s in subjects if s not in existing]
        if missing:
            raise UserInputError(
                f"Participant label(s) {', '.join(missing)} not found in {root}: there is no "
                f"{', '.join('sub-' + m for m in missing)} folder. Subjects present: "
                f"{', '.join(existing) or 'none'}. Fix --participant-label."
            )
    if sessions is not None:
        subs = subjects if subjects is not None else existing
        present = sorted({s for sub in subs for s in _list_labels(root / f"sub-{sub}", "ses")},
                         key=_natural)
        missing = [s for s in sessions if s not in present]
        if missing:
            have = ", ".join(present) or "none (no ses- folders; drop --session-label)"
            raise UserInputError(
                f"Session label(s) {', '.join(missing)} not found for the selected subjects in "
                f"{root}. Sessions present: {have}. Fix --session-label."
            )

    layout = _make_layout(root, subjects, sessions)
    groups: dict[tuple, list] = defaultdict(list)
    for query, suffix in _SUFFIXES.items():
        if filters[query] is False:
            continue
        extra = {k: _to_query(v) for k, v in filters[query].items()}
        files = layout.get(return_type="object", datatype="anat", suffix=suffix,
                           part=["mag", "phase"], extension=[".nii", ".nii.gz"],
                           invalid_filters="allow", **extra)
        for bf in files:
            ent = bf.get_entities()
            if subjects is not None and ent.get("subject") not in subjects:
                continue
            key = (ent["subject"], ent.get("session"), ent.get("acquisition"),
                   ent.get("reconstruction"), _run_label(bf.path), suffix)
            groups[key].append(bf)

    if not groups:
        raise UserInputError(
            f"No magnitude/phase images found in {root}"
            + (f" for sub-{', sub-'.join(subjects)}" if subjects else "")
            + (f" (sessions {', '.join(sessions)})" if sessions else "")
            + (" with the given BIDS filters" if bids_filters else "")
            + f". {_near_misses(layout)}{_NAMING_HELP}."
        )
    runs = _attach_body_coils({key: _make_run(layout, key, files) for key, files in groups.items()})
    _check_unique_names(runs)
    runs.sort(key=Run.sort_key)
    if subjects:
        for sub in subjects:
            if not any(r.subject == sub for r in runs):
                LOGGER.warning("sub-%s has no magnitude/phase MEGRE/T2starw images; skipped.", sub)
    return runs


def _body_base(key):
    """The run key a body-coil candidate (``acq-<x>body``) refers to, or None."""
    acq = key[2]
    if acq is None or not acq.endswith("body"):
        return None
    return key[:2] + ((acq[:-4] or None),) + key[3:5]


def _attach_body_coils(runs_by_key: dict) -> list:
    """Attach ``acq-<x>body`` runs to the matching uncombined runs (see module doc)."""
    from dataclasses import replace

    uncombined = {key[:5]: key for key, r in runs_by_key.items() if r.uncombined}
    out = dict(runs_by_key)
    for key, body in runs_by_key.items():
        base = _body_base(key)
        if base is None or base not in uncombined or body.uncombined:
            continue
        target = out[uncombined[base]]
        if body.n_echoes not in (1, target.n_echoes):
            raise UserInputError(
                f"The body-coil reference {body.magnitude[0]} has {body.n_echoes} echoes but "
                f"the uncombined run {target.name} has {target.n_echoes}. Give the body-coil "
                "images for every echo or for the first echo only.")
        ref_shape, ref_affine, _ = _header_channels(target.magnitude[0])
        shape, affine, _ = _header_channels(body.magnitude[0])
        if shape != ref_shape or not np.allclose(affine, ref_affine, rtol=0, atol=1e-3):
            raise UserInputError(
                f"The body-coil reference {body.magnitude[0]} (shape {shape}) is not on the "
                f"voxel grid of the channel images {target.magnitude[0]} (shape {ref_shape}). "
                "Export the body-coil images with the same matrix and field of view, or "
                "remove them (coil combination then uses MCPC-3D-S).")
        out[uncombined[base]] = replace(target, body_magnitude=body.magnitude,
                                        body_phase=body.phase)
        del out[key]
    return list(out.values())


def _near_misses(layout) -> str:
    """A hint naming MEGRE/T2starw images that lack part-mag/part-phase, if any."""
    from bids.layout import Query

    odd = layout.get(return_type="filename", suffix=list(_SUFFIXES.values()),
                     extension=[".nii", ".nii.gz"], part=Query.NONE)
    odd += layout.get(return_type="filename", suffix=list(_SUFFIXES.values()),
                      extension=[".nii", ".nii.gz"], part=["real", "imag"])
    if not odd:
        return ""
    return (f"{len(odd)} image(s) such as {sorted(odd)[0]} lack a part-mag/part-phase entity "
            "(real/imaginary or unlabelled images are not used); rename them if they are "
            "magnitude and phase. ")


def _run_label(path) -> str | None:
    """The run label exactly as written in the filename (keeps zero padding)."""
    m = re.search(r"_run-([A-Za-z0-9]+)_", os.path.basename(path))
    return m.group(1) if m else None


def _make_run(layout, key, files) -> Run:
    subject, session, acq, rec, run, suffix = key
    by_echo: dict = defaultdict(dict)
    for bf in files:
        ent = bf.get_entities()
        echo = ent.get("echo")
        if suffix == "MEGRE" and echo is None:
            raise UserInputError(
                f"{bf.path} is a MEGRE image without an echo- entity. Rename it to include "
                "echo-<n> (BIDS requires it for MEGRE), or name a single-echo image "
                "..._part-<mag|phase>_T2starw.nii.gz."
            )
        part = ent["part"]
        echo_key = None if echo is None else int(echo)
        if part in by_echo[echo_key]:
            raise UserInputError(
                f"{bf.path} and {by_echo[echo_key][part]} are both part-{part} of echo "
                f"{echo_key} for {_key_prefix(key)}. They differ only in entities qsmprep "
                "does not group by (or in extension). Remove one, or select one with "
                "--bids-filter-file."
            )
        by_echo[echo_key][part] = bf.path
    echoes = list(by_echo)
    if None in echoes and len(echoes) > 1:
        raise UserInputError(
            f"{by_echo[None].get('mag') or by_echo[None].get('phase')} has no echo- entity "
            f"but other images of {_key_prefix(key)} do. Give every echo an echo-<n> entity."
        )
    echoes.sort(key=lambda e: -1 if e is None else e)
    mags, phases = [], []
    for echo in echoes:
        parts = by_echo[echo]
        for have, lack in (("mag", "phase"), ("phase", "mag")):
            if have in parts and lack not in parts:
                src = parts[have]
                expected = os.path.basename(src).replace(f"_part-{have}_", f"_part-{lack}_")
                raise UserInputError(
                    f"{src} has no matching part-{lack} image: expected {expected} next to "
                    f"it. qsmprep needs magnitude and phase for every echo; add the missing "
                    f"file, or exclude this run with --bids-filter-file."
                )
        mags.append(os.path.abspath(parts["mag"]))
        phases.append(os.path.abspath(parts["phase"]))

    echo_times, fields = [], []
    sources = []
    for mag, phase in zip(mags, phases):
        te, b0, b0_source = _read_sidecar_values(layout, mag, required=True)
        te_p, b0_p, _ = _read_sidecar_values(layout, phase, required=False)
        if te_p is not None and not math.isclose(te, te_p, rel_tol=0, abs_tol=1e-6):
            raise UserInputError(
                f"EchoTime differs between {mag} ({te} s) and its phase image {phase} "
                f"({te_p} s). Fix the JSON sidecar that is wrong."
            )
        echo_times.append(te)
        fields.append((mag, b0))
        sources.append(b0_source)
        if b0_p is not None:
            fields.append((phase, b0_p))
    for path, b0 in fields[1:]:
        if not math.isclose(b0, fields[0][1], rel_tol=1e-4):
            raise UserInputError(
                f"The field strength is {b0:.5g} T in the sidecar of {path} but "
                f"{fields[0][1]:.5g} T for {fields[0][0]} (from MagneticFieldStrength, or "
                "ImagingFrequency where given). All echoes of a run must agree; fix the sidecars."
            )
    for i in range(1, len(echo_times)):
        if echo_times[i] <= echo_times[i - 1]:
            raise UserInputError(
                f"Echo times of {_key_prefix(key)} are not strictly increasing with the echo "
                f"number: {mags[i - 1]} has EchoTime {echo_times[i - 1]} s and {mags[i]} has "
                f"{echo_times[i]} s. Fix the echo- entities or the EchoTime sidecar values."
            )
    n_channels = _check_grids(mags, phases)
    return Run(subject=subject, session=session, acquisition=acq, reconstruction=rec, run=run,
               suffix=suffix, magnitude=tuple(mags), phase=tuple(phases),
               echo_times=tuple(echo_times), field_strength=float(fields[0][1]),
               field_strength_source=sources[0], n_channels=n_channels)


def _key_prefix(key) -> str:
    subject, session, acq, rec, run, suffix = key
    pairs = (("sub", subject), ("ses", session), ("acq", acq), ("rec", rec), ("run", run))
    return "_".join(f"{k}-{v}" for k, v in pairs if v is not None) + f"_{suffix}"


def _read_sidecar_values(layout, path, required: bool):
    """(EchoTime s, B0 T, where B0 came from) from the inherited sidecars of ``path``.

    B0 is ``ImagingFrequency`` (MHz) / 42.577478 where the sidecar has it: a scanner
    labelled 3 T may run at 2.89 T, a 3.6% error in every ppm value. It must agree with
    ``MagneticFieldStrength`` to 10% (a larger gap means one of them is wrong).
    """
    try:
        meta = layout.get_metadata(path)
    except Exception as err:
        raise UserInputError(
            f"Cannot read the JSON sidecar(s) of {path} ({err}). Fix their JSON syntax."
        ) from None
    values = []
    for key, unit in (("EchoTime", "seconds"), ("MagneticFieldStrength", "tesla")):
        value = meta.get(key)
        if value is None:
            if required:
                raise UserInputError(
                    f"{path} has no {key} in its JSON sidecar. Add \"{key}\" ({unit}) to "
                    f"{_sidecar_name(path)} (or to a sidecar it inherits from)."
                )
            values.append(None)
            continue
        if key == "EchoTime" and isinstance(value, list) and len(value) > 1:
            raise UserInputError(
                f"The sidecar of {path} lists {len(value)} echo times: the image holds all "
                "echoes in one file, which qsmprep would read as receive channels. Split it "
                "into one file per echo (sub-<label>_echo-<n>_part-mag_MEGRE.nii.gz and "
                "part-phase), each sidecar with its own EchoTime in seconds.")
        _check_positive(key, value, unit, path)
        if key == "EchoTime" and value > 1:
            raise UserInputError(
                f"EchoTime of {path} is {value}, which looks like milliseconds; BIDS requires "
                f"seconds. Change it to {value / 1000:g} in {_sidecar_name(path)}."
            )
        if key == "MagneticFieldStrength":
            check_field_strength(value, path, key, _sidecar_name(path))
        values.append(float(value))
    te, b0 = values
    freq = meta.get("ImagingFrequency")
    if freq is None or b0 is None:
        return te, b0, "MagneticFieldStrength"
    _check_positive("ImagingFrequency", freq, "MHz", path)
    b0_freq = float(freq) * 1e6 / GAMMA_BAR_HZ_PER_T
    if abs(b0_freq - b0) > 0.1 * b0:
        raise UserInputError(
            f"The sidecar of {path} gives MagneticFieldStrength {b0:g} T but ImagingFrequency "
            f"{freq:g} MHz, which is {b0_freq:.4g} T for protons: one of them is wrong. Fix "
            f"{_sidecar_name(path)} (ImagingFrequency in MHz, MagneticFieldStrength in tesla).")
    return te, b0_freq, "ImagingFrequency"


def _check_positive(key, value, unit, path):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
            or not math.isfinite(value):
        raise UserInputError(
            f"{key} of {path} is {json.dumps(value)}; it must be a positive number in "
            f"{unit}. Fix {_sidecar_name(path)}."
        )


def _check_grids(mags, phases) -> int:
    """Check one grid (and channel count) for all files; return the number of channels."""
    ref_shape, ref_affine, ref_ch = _header_channels(mags[0])
    for path in list(mags[1:]) + list(phases):
        shape, affine, n_ch = _header_channels(path)
        if shape != ref_shape or not np.allclose(affine, ref_affine, rtol=0, atol=1e-3):
            raise UserInputError(
                f"{path} (shape {shape}) is not on the same voxel grid as {mags[0]} (shape "
                f"{ref_shape}): matrix or NIfTI affine differ. Magnitude and phase of all "
                "echoes must share one grid; re-export them from the scanner/converter together."
            )
        if n_ch != ref_ch:
            raise UserInputError(
                f"{path} has {n_ch} volume(s) along the 4th axis but {mags[0]} has {ref_ch}. "
                "qsmprep reads 4D images as uncombined receive channels, so every magnitude "
                "and phase image of a run needs the same number (1 for combined images, 3D). "
                "Split multi-echo 4D files into one file per echo, or export all channels of "
                "every echo."
            )
    return ref_ch


def _check_unique_names(runs):
    seen = {}
    for r in runs:
        if r.name in seen:
            raise UserInputError(
                f"{r.magnitude[0]} ({r.suffix}) and {seen[r.name].magnitude[0]} "
                f"({seen[r.name].suffix}) would get the same output names ({r.name}). Give "
                'them different acq- labels, or skip one type with a filter file such as '
                '{"t2starw": false}.'
            )
        seen[r.name] = r


# ------------------------------------------------------------------ geometry
