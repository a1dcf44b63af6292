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

from .derivatives import (check_output_dir, derivative_path, prefixed_derivative_path,
                          write_dataset_description, write_sidecar)
from .discovery import find_runs
from .filters import load_bids_filters, normalize_bids_filters
from .runs import Run, RunGeometry, run_geometry

__all__ = ["Run", "RunGeometry", "find_runs", "load_bids_filters", "normalize_bids_filters",
           "run_geometry", "derivative_path", "prefixed_derivative_path",
           "write_dataset_description", "write_sidecar", "check_output_dir"]
