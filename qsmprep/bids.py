"""The one place that talks to pybids: find runs, read sidecars, name and write derivatives.

Inputs (read-only, nothing is ever written under ``bids_dir``)::

    sub-<l>/[ses-<l>/]anat/sub-<l>_[ses-<l>_][acq-<l>_][rec-<l>_][run-<i>_]echo-<n>_part-<mag|phase>_MEGRE.nii[.gz]
    sub-<l>/[ses-<l>/]anat/sub-<l>_[ses-<l>_][acq-<l>_][rec-<l>_][run-<i>_][echo-<n>_]part-<mag|phase>_T2starw.nii[.gz]

with JSON sidecars (BIDS inheritance applies) giving ``EchoTime`` (s) and
``MagneticFieldStrength`` (T).

Uncombined receive channels (docs/coil-combination.md): the same names, each file 4-D
with one volume per channel (``Run.n_channels > 1``). An optional body-coil reference
for them is the run's files with ``acq-<acq>body`` (``acq-body`` when the run has no
``acq``): 3-D magnitude/phase, one per echo or the first echo only, same grid. It is
attached to the uncombined run (``Run.body_magnitude``/``body_phase``) and not processed
on its own; without a matching uncombined run it stays an ordinary run. Files are grouped into :class:`Run` objects by
(subject, session, acquisition, reconstruction, run, suffix).

pybids indexes only the requested subjects' ``anat/`` folders (and the JSON
sidecars above them that can be inherited), with an in-memory database.

Filter files (``--bids-filter-file``) are JSON objects in one of two forms:

* per query, like fMRIPrep: ``{"megre": {"acquisition": "highres"}, "t2starw": false}``;
  the keys are ``megre`` and ``t2starw``; ``false`` switches that query off;
* flat: ``{"acquisition": "highres", "run": [1, 2]}``, applied to both queries.

Entity values may be a string or integer, a list of them, ``null`` (the entity
must be absent) or ``"*"`` (the entity must be present). Allowed entities:
``session``, ``acquisition``, ``reconstruction``, ``run``, ``echo``, ``ceagent``,
``chunk`` (short forms ``ses``, ``acq``, ``rec``, ``ce`` are accepted).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import nibabel as nb
import numpy as np

from . import __version__
from .algorithms.dipole import b0_direction_from_affine, voxel_size_from_affine
from .errors import UserInputError
from .algorithms.phase import GAMMA_BAR_HZ_PER_T
from .qc.inputs import check_field_strength

__all__ = [
    "Run",
    "RunGeometry",
    "find_runs",
    "load_bids_filters",
    "normalize_bids_filters",
    "run_geometry",
    "format_run_summary",
    "derivative_path",
    "report_path",
    "write_dataset_description",
    "write_sidecar",
    "check_output_dir",
]

LOGGER = logging.getLogger("qsmprep.bids")

BIDS_VERSION = "1.10.0"
_LABEL_RE = re.compile(r"^[A-Za-z0-9]+$")
_SUFFIXES = {"megre": "MEGRE", "t2starw": "T2starw"}
_ENTITY_ALIASES = {
    "session": "session", "ses": "session",
    "acquisition": "acquisition", "acq": "acquisition",
    "reconstruction": "reconstruction", "rec": "reconstruction",
    "run": "run",
    "echo": "echo",
    "ceagent": "ceagent", "ce": "ceagent",
    "chunk": "chunk",
}
_FIXED_ENTITIES = {"subject", "sub", "suffix", "part", "extension", "datatype"}
_NAMING_HELP = (
    "qsmprep expects sub-<label>/[ses-<label>/]anat/sub-<label>_[ses-<label>_]"
    "echo-<n>_part-<mag|phase>_MEGRE.nii.gz (or a single-echo "
    "..._part-<mag|phase>_T2starw.nii.gz), each with a JSON sidecar giving EchoTime "
    "(seconds) and MagneticFieldStrength (tesla)"
)


# --------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class Run:
    """One magnitude/phase acquisition (all its echoes) to be processed together."""

    subject: str
    session: str | None
    acquisition: str | None
    reconstruction: str | None
    run: str | None
    suffix: str
    magnitude: tuple[str, ...]
    phase: tuple[str, ...]
    echo_times: tuple[float, ...]
    field_strength: float
    field_strength_source: str = "MagneticFieldStrength"  # or "ImagingFrequency" (see below)
    n_channels: int = 1                      # > 1: uncombined, channels on the 4th axis
    body_magnitude: tuple[str, ...] = ()     # body-coil reference (acq-<acq>body), if any
    body_phase: tuple[str, ...] = ()

    @property
    def uncombined(self) -> bool:
        """True for uncombined receive-channel images (4-D, channels on the 4th axis)."""
        return self.n_channels > 1

    @property
    def entities(self) -> dict[str, str]:
        """Identifying entities in BIDS order (absent ones left out)."""
        pairs = (("sub", self.subject), ("ses", self.session), ("acq", self.acquisition),
                 ("rec", self.reconstruction), ("run", self.run))
        return {k: v for k, v in pairs if v is not None}

    @property
    def prefix(self) -> str:
        """BIDS entity prefix for derivatives, e.g. ``sub-01_ses-1_acq-x_run-1``."""
        return "_".join(f"{k}-{v}" for k, v in self.entities.items())

    @property
    def name(self) -> str:
        """Unique identifier of the run (the same as :attr:`prefix`)."""
        return self.prefix

    @property
    def node_id(self) -> str:
        """:attr:`name` with only ``[A-Za-z0-9_]``, safe for nipype node names."""
        return re.sub(r"[^A-Za-z0-9_]", "_", self.prefix)

    @property
    def n_echoes(self) -> int:
        return len(self.echo_times)

    def sort_key(self):
        return (_natural(self.subject), _natural(self.session), _natural(self.acquisition),
                _natural(self.reconstruction), _natural(self.run), self.suffix)


@dataclass(frozen=True)
class RunGeometry:
    """Voxel grid of a run (from its first magnitude image's header)."""

    shape: tuple[int, int, int]
    voxel_size: tuple[float, float, float]
    b0_direction: tuple[float, float, float]
    affine: tuple[tuple[float, ...], ...]

    @property
    def b0_angle_deg(self) -> float:
        """Angle (degrees, 0-90) between B0 and the last array axis, sign ignored."""
        return math.degrees(math.acos(min(1.0, abs(self.b0_direction[2]))))


def _natural(value):
    """Sort key putting None first and numbers in numeric order ('2' < '10')."""
    if value is None:
        return (0, 0, "")
    if str(value).isdigit():
        return (1, int(value), str(value))
    return (2, 0, str(value))


# ---------------------------------------------------------------------- filters
def load_bids_filters(path) -> dict:
    """Read and validate a ``--bids-filter-file`` (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise UserInputError(
            f"Cannot read the BIDS filter file {path} ({err.strerror or err}). "
            "Give the path of an existing, readable JSON file to --bids-filter-file."
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserInputError(
            f"The BIDS filter file {path} is not valid JSON ({err.msg} at line {err.lineno}, "
            f"column {err.colno}). Fix the syntax, e.g. "
            '{"megre": {"acquisition": "highres"}}.'
        ) from None
    return normalize_bids_filters(data, source=str(path))


def normalize_bids_filters(filters, source: str = "the BIDS filters") -> dict:
    """Validate filters and return ``{"megre": dict | False, "t2starw": dict | False}``.

    Entity names are expanded to pybids names (``acq`` -> ``acquisition``). Idempotent.
    """
    if filters is None:
        return {q: {} for q in _SUFFIXES}
    if not isinstance(filters, dict):
        raise UserInputError(
            f"{source} must be a JSON object, got {type(filters).__name__}. Use e.g. "
            '{"megre": {"acquisition": "highres"}} or the flat form {"acquisition": "highres"}.'
        )
    keys = {str(k).lower() for k in filters}
    queries = keys & set(_SUFFIXES)
    if queries and queries != keys:
        raise UserInputError(
            f"{source} mixes query keys ({', '.join(sorted(queries))}) with other keys "
            f"({', '.join(sorted(keys - queries))}). Use either the per-query form "
            '{"megre": {...}, "t2starw": {...}} or a flat entity object, not both.'
        )
    if not queries:
        flat = _normalize_entities(filters, source)
        return {q: dict(flat) for q in _SUFFIXES}
    out = {q: {} for q in _SUFFIXES}
    for key, value in filters.items():
        query = str(key).lower()
        if value is False:
            out[query] = False
        elif isinstance(value, dict):
            out[query] = _normalize_entities(value, f"{source} ({key})")
        else:
            raise UserInputError(
                f'In {source}, "{key}" must be an object of entity filters or false '
                f"(to skip {_SUFFIXES[query]} files), got {json.dumps(value)}."
            )
    return out


def _normalize_entities(entities: dict, source: str) -> dict:
    out = {}
    for key, value in entities.items():
        name = _ENTITY_ALIASES.get(str(key).lower())
        if name is None:
            if str(key).lower() in _FIXED_ENTITIES:
                hint = ("select subjects with --participant-label"
                        if str(key).lower() in ("subject", "sub")
                        else "qsmprep sets it itself")
            else:
                hint = "allowed: " + ", ".join(sorted(set(_ENTITY_ALIASES.values())))
            raise UserInputError(f'{source} cannot filter on "{key}" ({hint}). Remove that key.')
        values = value if isinstance(value, list) else [value]
        for v in values:
            ok = v is None or (isinstance(v, int) and not isinstance(v, bool)) or (
                isinstance(v, str) and (v == "*" or _LABEL_RE.match(v)))
            if not ok or (isinstance(value, list) and (v is None or v == "*" or not value)):
                raise UserInputError(
                    f'{source} has an invalid value {json.dumps(value)} for "{key}". Use an '
                    'alphanumeric label, an integer, a list of those, null (entity absent) '
                    'or "*" (entity present).'
                )
        out[name] = list(value) if isinstance(value, list) else value
    return out


def _to_query(value):
    from bids.layout import Query

    if value is None:
        return Query.NONE
    if value == "*":
        return Query.ANY
    return value


# -------------------------------------------------------------------- discovery
def _clean_labels(labels, prefix: str, what: str) -> list[str] | None:
    if labels is None or (not isinstance(labels, str) and len(labels) == 0):
        return None  # nothing given: all of them
    if isinstance(labels, str):
        labels = [labels]
    out = []
    for raw in labels:
        lab = str(raw).strip()
        if lab.startswith(prefix + "-"):
            lab = lab[len(prefix) + 1:]
        if not _LABEL_RE.match(lab):
            raise UserInputError(
                f'"{raw}" is not a valid {what} label: BIDS labels contain only letters and '
                f"digits. Give it as e.g. 01 or {prefix}-01."
            )
        if lab not in out:
            out.append(lab)
    return out


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


def _sidecar_name(path) -> str:
    p = str(path)
    for ext in (".nii.gz", ".nii"):
        if p.endswith(ext):
            return p[: -len(ext)] + ".json"
    return p + ".json"


def _header_channels(path):
    """``(shape[:3], affine, n_channels)``; a 4th axis holds receive channels."""
    try:
        img = nb.load(path)
    except Exception as err:
        raise UserInputError(
            f"Cannot read {path} as a NIfTI image ({err}). Replace the file with a valid "
            ".nii/.nii.gz image."
        ) from None
    shape = tuple(int(n) for n in img.shape)
    if len(shape) < 3 or any(n != 1 for n in shape[4:]):
        raise UserInputError(
            f"{path} has shape {shape}; qsmprep needs one 3D volume per file (BIDS stores "
            "each echo and part in its own file), or 4D with uncombined receive channels on "
            "the 4th axis. Split the file per echo."
        )
    n_channels = shape[3] if len(shape) > 3 else 1
    return shape[:3], np.asarray(img.affine, dtype=float), n_channels


def _header(path):
    shape, affine, _ = _header_channels(path)
    return shape, affine


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
def run_geometry(run: Run) -> RunGeometry:
    """Grid, voxel size (mm) and B0 direction (voxel coordinates) of a run."""
    shape, affine = _header(run.magnitude[0])
    try:
        b0 = b0_direction_from_affine(affine)
    except ValueError as err:
        raise UserInputError(
            f"{run.magnitude[0]}: {err}. qsmprep needs orthogonal voxel axes; fix the NIfTI "
            "header (sform/qform) or re-convert the DICOMs."
        ) from None
    return RunGeometry(
        shape=shape,
        voxel_size=tuple(float(v) for v in voxel_size_from_affine(affine)),
        b0_direction=tuple(float(v) for v in b0),
        affine=tuple(tuple(float(v) for v in row) for row in affine),
    )


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
            r.subject, r.session or "-", ids or "-", r.suffix, str(r.n_echoes),
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
def _check_label(value, what):
    if value is not None and not _LABEL_RE.match(str(value)):
        raise ValueError(f"{what} label {value!r} must be alphanumeric")


def derivative_path(output_dir, run: Run, suffix: str, desc=None, ext=".nii.gz", space=None,
                    *, echo=None, part=None, datatype: str = "anat") -> Path:
    """``output_dir/sub-X[/ses-Y]/<datatype>/<prefix>[_echo-][_part-][_space-][_desc-]_<suffix><ext>``.

    Field maps go to ``datatype="fmap"`` (suffix ``fieldmap``, Hz), as BIDS requires.
    """
    if datatype not in ("anat", "fmap"):
        raise ValueError(f"datatype {datatype!r} must be 'anat' or 'fmap'")
    for value, what in ((suffix, "suffix"), (desc, "desc"), (space, "space"), (echo, "echo"),
                        (part, "part")):
        _check_label(value, what)
    if not suffix:
        raise ValueError("suffix is required")
    if not str(ext).startswith("."):
        raise ValueError(f"extension {ext!r} must start with '.'")
    return prefixed_derivative_path(output_dir, run.subject, run.session, run.prefix, suffix,
                                    desc=desc, ext=ext, space=space, echo=echo, part=part,
                                    datatype=datatype)


def prefixed_derivative_path(output_dir, subject, session, prefix, suffix, desc=None,
                             ext=".nii.gz", space=None, *, echo=None, part=None,
                             datatype: str = "anat") -> Path:
    """:func:`derivative_path` from a run's ``subject``/``session``/``prefix`` strings
    (what a nipype node receives)."""
    name = prefix
    for key, value in (("echo", echo), ("part", part), ("space", space), ("desc", desc)):
        if value is not None:
            name += f"_{key}-{value}"
    folder = Path(output_dir) / f"sub-{subject}"
    if session:
        folder = folder / f"ses-{session}"
    return folder / datatype / f"{name}_{suffix}{ext}"


def report_path(output_dir, subject: str) -> Path:
    """The per-subject HTML report at the root of the derivatives: ``sub-<l>.html``."""
    return Path(output_dir) / f"sub-{_clean_labels([subject], 'sub', 'participant')[0]}.html"


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        items = sorted(obj, key=str) if isinstance(obj, set) else obj
        return [_jsonable(v) for v in items]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def _write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(_jsonable(data), indent=2, sort_keys=True, allow_nan=False) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_sidecar(nifti_path, metadata: dict) -> Path:
    """Write ``metadata`` as the JSON sidecar of ``nifti_path`` (same stem, .json)."""
    return _write_json(Path(_sidecar_name(nifti_path)), metadata)


def write_dataset_description(output_dir, bids_dir, container=None) -> Path:
    """Write ``output_dir/dataset_description.json`` for the qsmprep derivatives.

    ``container`` is a type string (``"docker"``, ``"singularity"``) or a dict with
    at least ``Type`` (and e.g. ``Tag``/``URI``); left out when None.
    """
    generated = {"Name": "qsmprep", "Version": __version__,
                 "Description": "Quantitative susceptibility mapping"}
    if container:
        if isinstance(container, str):
            container = {"Type": container}
        if not isinstance(container, dict) or "Type" not in container:
            raise ValueError("container must be a type string or a dict with 'Type'")
        generated["Container"] = dict(container)
    bids_dir = Path(bids_dir).expanduser().absolute()
    source = {"URL": bids_dir.as_uri()}
    try:
        src_desc = json.loads((bids_dir / "dataset_description.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        src_desc = {}
    doi = src_desc.get("DatasetDOI") if isinstance(src_desc, dict) else None
    if doi:
        source["DOI"] = doi
    desc = {
        "Name": "qsmprep: quantitative susceptibility maps"
        + (f" of {src_desc['Name']}" if isinstance(src_desc.get("Name"), str) else ""),
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [generated],
        "SourceDatasets": [source],
    }
    return _write_json(Path(output_dir) / "dataset_description.json", desc)


def _is_within(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def check_output_dir(bids_dir, output_dir, work_dir=None) -> None:
    """Refuse output/work directories inside (or equal to) the BIDS dataset, or unwritable.

    Symbolic links are resolved first. Nothing is created here.
    """
    bids_real = Path(bids_dir).expanduser().resolve()
    for path, option in ((output_dir, "OUTPUT_DIR"), (work_dir, "--work-dir")):
        if path is None:
            continue
        real = Path(path).expanduser().resolve()
        if _is_within(real, bids_real):
            raise UserInputError(
                f"The {option} {path} is inside the input BIDS dataset {bids_dir}, but qsmprep "
                "never writes into the input dataset. Choose a directory outside it, e.g. "
                f"{bids_real.parent / (bids_real.name + '-derivatives') / 'qsmprep'}."
            )
        if real.exists() and not real.is_dir():
            raise UserInputError(
                f"The {option} {path} exists but is not a directory. Remove it or choose "
                "another path."
            )
        ancestor = real
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise UserInputError(
                f"The {option} {path} is not writable ({ancestor} does not allow writing for "
                "this user). Choose a writable directory, or fix its permissions (in a "
                "container, mount it read-write)."
            )
