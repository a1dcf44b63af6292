"""Finding the participant-level outputs that the group level summarises.

One :class:`ParticipantRun` per ``*_Chimap.nii.gz`` under ``OUTPUT_DIR/sub-*/[ses-*/]anat/``,
with the files written beside it (brain mask, R2*, local field, magnitude) and the JSON
sidecar of the susceptibility map. Only files are read; nothing here writes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..bids.derivatives import run_output
from ..errors import UserInputError

__all__ = ["ParticipantRun", "find_participant_runs", "strip_prefix"]

_ENTITY_RE = re.compile(r"(?:^|_)(sub|ses|acq|rec|run)-([A-Za-z0-9]+)")


def strip_prefix(label: str, prefix: str) -> str:
    """``'sub-01'`` -> ``'01'`` (a label given with or without its BIDS prefix)."""
    label = str(label)
    return label[len(prefix) + 1:] if label.startswith(prefix + "-") else label


@dataclass(frozen=True)
class ParticipantRun:
    """The derivatives of one participant run (paths are None where not written)."""

    prefix: str                 # e.g. sub-01_ses-1_run-1
    subject: str
    session: str | None
    acquisition: str | None
    reconstruction: str | None
    run: str | None
    chi: Path
    mask: Path | None
    r2star: Path | None
    local_field: Path | None
    magnitude: Path | None
    sidecar: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def entities(self) -> dict:
        """BIDS entities by long name (``subject``, ``session``, ...), None where absent."""
        return {"subject": self.subject, "session": self.session,
                "acquisition": self.acquisition, "reconstruction": self.reconstruction,
                "run": self.run}


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def _read_sidecar(nifti: Path) -> dict:
    side = nifti.with_name(nifti.name.replace(".nii.gz", ".json"))
    if not side.is_file():
        return {}
    try:
        return json.loads(side.read_text())
    except (OSError, ValueError) as exc:
        raise UserInputError(
            f"The sidecar {side} cannot be read as JSON ({exc}). Re-run the participant level "
            "for this run to rewrite it, or delete the run's outputs to leave it out.") from exc


def _parse(chi: Path) -> ParticipantRun:
    prefix = chi.name[: -len("_Chimap.nii.gz")]
    ents = dict(_ENTITY_RE.findall(prefix))
    run_folder = chi.parent.parent  # sub-<l>[/ses-<l>], holding anat/ and fmap/

    def output(key):
        datatype, name = run_output(prefix, key)
        return _existing(run_folder / datatype / name)

    return ParticipantRun(
        prefix=prefix, subject=ents["sub"], session=ents.get("ses"),
        acquisition=ents.get("acq"), reconstruction=ents.get("rec"), run=ents.get("run"),
        chi=chi, mask=output("mask"), r2star=output("r2star"),
        local_field=output("local_field"),
        magnitude=output("total_magnitude") or output("local_magnitude"),
        sidecar=_read_sidecar(chi))


def find_participant_runs(output_dir, participant_labels=(), session_labels=()) -> list:
    """The participant runs in ``output_dir``, sorted by name, restricted to the given
    subjects/sessions (labels with or without ``sub-``/``ses-``). Stops with one paragraph
    when there are none or a selected subject has none."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        raise UserInputError(
            f"The output folder {output_dir} does not exist. The group level reads the "
            "participant outputs: run `qsmprep BIDS_DIR OUTPUT_DIR participant` first, then the "
            "group level with the same OUTPUT_DIR.")
    subjects = {strip_prefix(s, "sub") for s in participant_labels}
    sessions = {strip_prefix(s, "ses") for s in session_labels}
    runs = []
    for chi in sorted(output_dir.glob("sub-*/**/anat/*_Chimap.nii.gz")):
        r = _parse(chi)
        if subjects and r.subject not in subjects:
            continue
        if sessions and r.session not in sessions:
            continue
        runs.append(r)
    what = ""
    if subjects:
        what += " for sub-" + ", sub-".join(sorted(subjects))
    if sessions:
        what += " in ses-" + ", ses-".join(sorted(sessions))
    if not runs:
        raise UserInputError(
            f"No participant outputs (sub-*/[ses-*/]anat/*_Chimap.nii.gz) found in {output_dir}"
            f"{what}. Run `qsmprep BIDS_DIR {output_dir} participant` first (the group level "
            "reads its outputs), or give the OUTPUT_DIR the participant level wrote to"
            + (" and check the --participant-label/--session-label values." if what else "."))
    missing = sorted(subjects - {r.subject for r in runs})
    if missing:
        raise UserInputError(
            f"No participant outputs found in {output_dir} for sub-" + ", sub-".join(missing)
            + ". Run the participant level for them first, or leave them out of "
            "--participant-label.")
    return runs
