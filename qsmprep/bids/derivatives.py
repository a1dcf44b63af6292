"""Derivative names, sidecars, dataset_description.json and the output-folder checks."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import UserInputError
from .runs import _LABEL_RE, BIDS_VERSION, Run, _sidecar_name


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
    folder = Path(output_dir) / f"sub-{subject}"
    if session:
        folder = folder / f"ses-{session}"
    return folder / datatype / _file_name(prefix, suffix, desc, ext, space, echo, part)


def _file_name(prefix, suffix, desc=None, ext=".nii.gz", space=None, echo=None, part=None):
    name = prefix
    for key, value in (("echo", echo), ("part", part), ("space", space), ("desc", desc)):
        if value is not None:
            name += f"_{key}-{value}"
    return f"{name}_{suffix}{ext}"


#: the images a participant run writes: output key -> (suffix, desc, datatype); the one list
#: the derivative sinks, the participant report and the group level name them by
RUN_OUTPUTS = {
    "chi": ("Chimap", None, "anat"),
    "mask": ("mask", "brain", "anat"),
    "r2star": ("R2starmap", None, "anat"),
    "t2star": ("T2starmap", None, "anat"),
    "total_field": ("fieldmap", "total", "fmap"),
    "total_magnitude": ("magnitude", "total", "fmap"),
    "local_field": ("fieldmap", "local", "fmap"),
    "local_magnitude": ("magnitude", "local", "fmap"),
}


def run_output(prefix, key) -> tuple[str, str]:
    """``(datatype folder, file name)`` of the run output ``key`` (:data:`RUN_OUTPUTS`) of
    the run named ``prefix``."""
    suffix, desc, datatype = RUN_OUTPUTS[key]
    return datatype, _file_name(prefix, suffix, desc)


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


def _write_atomically(dst, write) -> Path:
    """``write(tmp)`` into a temporary file in ``dst``'s folder, then rename it onto ``dst``:
    ``dst`` is either the old file or the complete new one, never a partial one."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dst


def _write_json(path: Path, data) -> Path:
    text = json.dumps(_jsonable(data), indent=2, sort_keys=True, allow_nan=False) + "\n"
    return _write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_copy(src, dst) -> Path:
    """Copy ``src`` onto ``dst`` atomically (:func:`_write_atomically`)."""
    return _write_atomically(dst, lambda tmp: shutil.copyfile(src, tmp))


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
    code_url = _code_url()
    if code_url:
        generated["CodeURL"] = code_url
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
        "DatasetLinks": {"raw": bids_dir.as_uri()},  # what the sidecars' bids:raw: URIs mean
    }
    _update_bidsignore(Path(output_dir) / ".bidsignore")
    return _write_json(Path(output_dir) / "dataset_description.json", desc)


#: what qsmprep writes beside the BIDS derivatives: run logs and completion records, the
#: participant reports and their figures, the group level's tables and report
BIDSIGNORE = ("logs/", "sub-*.html", "sub-*/figures", "group/")


def _update_bidsignore(path: Path) -> None:
    """Add the lines of :data:`BIDSIGNORE` that ``path`` lacks (the user's lines are kept)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    missing = [line for line in BIDSIGNORE if line not in lines]
    if missing:
        text = "\n".join(lines + missing) + "\n"
        _write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _code_url() -> str | None:
    """The project URL of the installed qsmprep (setup.cfg ``url`` / ``project_urls``)."""
    from importlib import metadata

    try:
        meta = metadata.metadata("qsmprep")
    except metadata.PackageNotFoundError:
        return None
    urls = [meta.get("Home-page")] + [u.split(",", 1)[-1].strip()
                                      for u in meta.get_all("Project-URL") or []]
    return next((u for u in urls if u and u.startswith(("http://", "https://"))), None)


def _is_within(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def refuse_inside_input(path, bids_dir) -> None:
    """Stop before writing ``path`` when its real location (symbolic links resolved) lies
    in the input dataset (outside its ``derivatives/`` folder)."""
    real = Path(path).expanduser().resolve()
    bids_real = Path(bids_dir).expanduser().resolve()
    if _is_within(real, bids_real) and not _is_within(real, bids_real / "derivatives"):
        raise UserInputError(
            f"qsmprep would write {path}, which leads into the input dataset {bids_dir} "
            f"(its real location is {real}; a symbolic link in the output folder points "
            "there). qsmprep never writes into the input dataset: remove the link or choose "
            "another OUTPUT_DIR.")


#: the file names qsmprep writes for a run, after the run's prefix and "_" (another run's
#: files carry more entities there and never match)
_OUTPUT_NAME = re.compile(r"^(?:Chimap|R2starmap|T2starmap|desc-brain_mask|desc-[a-z]+_fieldmap|"
                          r"desc-[a-z]+_magnitude)\.(?:nii\.gz|json)$")


def remove_stale_outputs(subject_folder, prefix, written) -> list[Path]:
    """Delete the run's qsmprep outputs under ``subject_folder``/{anat,fmap} that are not in
    ``written``; return them."""
    keep = {os.path.abspath(f) for f in written}
    removed = []
    for datatype in ("anat", "fmap"):
        for f in (Path(subject_folder) / datatype).glob(f"{prefix}_*"):
            rest = f.name[len(prefix) + 1:]
            if os.path.abspath(f) not in keep and _OUTPUT_NAME.match(rest):
                f.unlink()
                removed.append(f)
    return removed


def completion_record_path(output_dir, prefix) -> Path:
    """``OUTPUT_DIR/logs/complete/<prefix>.json``: present only when every output of the
    run was written by the last run (see :func:`write_completion_record`)."""
    return Path(output_dir) / "logs" / "complete" / f"{prefix}.json"


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_completion_record(output_dir, prefix, files, pipeline: str) -> Path:
    """Record that the run's outputs are complete: every file (relative to ``output_dir``)
    with its size and SHA-256, the pipeline and the time. Written last and atomically; the
    sinks delete it before they write, so a run cut short leaves none."""
    root = Path(output_dir)
    entries = {}
    for f in sorted({os.path.abspath(f) for f in files}):
        rel = Path(f).resolve().relative_to(root.resolve()).as_posix()
        entries[rel] = {"Bytes": os.path.getsize(f), "SHA256": _sha256(f)}
    record = {"Status": "complete", "Pipeline": pipeline, "Version": __version__,
              "Finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "Files": entries}
    return _write_json(completion_record_path(root, prefix), record)


def verify_completion_record(output_dir, prefix) -> list[str]:
    """Problems with a run's outputs against its completion record ([] when complete and
    unchanged): a missing record, a missing file, or a file whose size or hash differs."""
    path = completion_record_path(output_dir, prefix)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [f"no completion record {path}: the run did not finish writing its outputs"]
    problems = []
    for rel, entry in record.get("Files", {}).items():
        f = Path(output_dir) / rel
        if not f.is_file():
            problems.append(f"{f} is missing")
        elif os.path.getsize(f) != entry.get("Bytes") or _sha256(f) != entry.get("SHA256"):
            problems.append(f"{f} differs from what the run wrote")
    return problems


def check_output_dir(bids_dir, output_dir, work_dir=None) -> None:
    """Refuse output/work directories inside (or equal to) the BIDS dataset, or unwritable.

    Symbolic links are resolved first. Nothing is created here.
    """
    bids_real = Path(bids_dir).expanduser().resolve()
    for path, option in ((output_dir, "OUTPUT_DIR"), (work_dir, "--work-dir")):
        if path is None:
            continue
        real = Path(path).expanduser().resolve()
        # BIDS_DIR/derivatives/<pipeline> is where BIDS recommends derivatives: allowed (it is
        # not part of the raw dataset, and discovery never indexes it)
        if _is_within(real, bids_real) and not (
                real != bids_real / "derivatives" and _is_within(real, bids_real / "derivatives")):
            raise UserInputError(
                f"The {option} {path} is inside the input BIDS dataset {bids_dir}, but qsmprep "
                "never writes into the input dataset. Choose a directory outside it, or its "
                f"derivatives folder: e.g. {bids_real / 'derivatives' / 'qsmprep'}."
            )
        if real.exists() and not real.is_dir():
            raise UserInputError(
                f"The {option} {path} exists but is not a directory. Remove it or choose "
                "another path."
            )
        if option == "OUTPUT_DIR":
            _check_not_foreign(real / "dataset_description.json")
        ancestor = real
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise UserInputError(
                f"The {option} {path} is not writable ({ancestor} does not allow writing for "
                "this user). Choose a writable directory, or fix its permissions (in a "
                "container, mount it read-write)."
            )


def _check_not_foreign(description: Path) -> None:
    """Refuse an OUTPUT_DIR whose dataset_description.json another program wrote (qsmprep
    would overwrite it and mix its files into that dataset)."""
    if not description.is_file():
        return
    try:
        desc = json.loads(description.read_text(encoding="utf-8"))
        names = [g.get("Name") for g in desc.get("GeneratedBy", []) if isinstance(g, dict)]
    except (OSError, ValueError, AttributeError):
        names = None
    if names is not None and "qsmprep" in names:
        return
    who = (f"was generated by {', '.join(str(n) for n in names)}" if names
           else "is not a qsmprep derivatives description")
    raise UserInputError(
        f"The OUTPUT_DIR {description.parent} already holds a dataset_description.json that "
        f"{who}. qsmprep would overwrite it and mix its outputs into that dataset: give qsmprep "
        "its own folder (e.g. derivatives/qsmprep beside the other pipeline's).")
