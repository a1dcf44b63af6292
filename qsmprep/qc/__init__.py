"""Quality control: checks that warn or stop, so that qsmprep is never silently wrong.

Convention (every stage): an interface's ``parameters`` output (the dict that goes into
its derivative's JSON sidecar) carries ``"QCWarnings": [str, ...]``, one sentence per
problem found, saying what was seen, how many voxels, and what to look at. The CLI prints
each one on the console as the node finishes and again at the end of the run; the
derivatives writer puts each stage's list in the sidecar of its derivative and the whole
run's list (prefixed with the stage) in the ``_Chimap.json`` sidecar, the run-level record
a report reads. Problems that make a result untrustworthy stop instead:
:class:`qsmprep.errors.UserInputError` for inputs (exit 2),
:class:`qsmprep.errors.QCError` for results (exit 1, no derivative written).

Modules hold pure functions (numpy arrays and numbers in, arrays, messages or exceptions
out), testable without nipype: :mod:`.inputs` (phase units, non-finite or empty inputs,
field strength), :mod:`.results` (echo-consistency removal, non-finite fields, NaN / empty
/ constant susceptibility maps), :mod:`.mask` (brain-mask plausibility).
"""

from __future__ import annotations

QC_KEY = "QCWarnings"

__all__ = ["QC_KEY", "warnings_of", "add_warnings", "run_warnings"]


def warnings_of(parameters) -> list[str]:
    """The ``QCWarnings`` list of a ``parameters`` dict (empty when absent or not a dict)."""
    if not isinstance(parameters, dict):
        return []
    return [str(w) for w in parameters.get(QC_KEY) or []]


def add_warnings(parameters: dict, warnings) -> dict:
    """``parameters`` with ``warnings`` (None entries skipped) appended to its QCWarnings;
    the key is always present afterwards."""
    out = dict(parameters)
    out[QC_KEY] = warnings_of(parameters) + [str(w) for w in warnings if w]
    return out


def run_warnings(stage_parameters) -> list[str]:
    """All warnings of a run, each prefixed by its stage: ``[(stage, parameters), ...]`` ->
    ``["stage: warning", ...]`` in stage order, duplicates dropped."""
    out = []
    for stage, params in stage_parameters:
        for w in warnings_of(params):
            line = f"{stage}: {w}"
            if line not in out:
                out.append(line)
    return out
