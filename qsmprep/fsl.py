"""Is FSL there, and should qsmprep use it? (``--fsl auto|require|never``)

qsmprep calls two FSL programs through nipype's interfaces: ``bet`` (BET brain
extraction, Smith, Hum. Brain Mapp. 2002; the ``bet`` shell script runs ``bet2``
and FSL's image utilities) for the brain mask method ``fsl_bet`` (the mask method
``bet`` is qsmprep's own implementation of the same paper, no FSL needed), and ``prelude`` (PRELUDE phase
unwrapping, Jenkinson, MRM 2003; shipped in FSL's FUGUE package) for phase
unwrapping. Both need ``$FSLDIR`` (the ``bet`` script and nipype read it) and the
commands on ``$PATH``. The container images (Dockerfile, singularity.def) install
exactly these; a native installation can too.

Modes:

``never``
    use the native methods, even when FSL is installed;
``auto``
    use FSL for a stage whose FSL program is installed, else the native method;
``require``
    use FSL, and stop with a :class:`~qsmprep.errors.UserInputError` saying how to
    get it when it is missing (no silent fall-back).
"""

from __future__ import annotations

import os
import shutil

from .errors import UserInputError

__all__ = ["FSL_MODES", "FSL_PROGRAMS", "fsl_available", "missing_fsl", "resolve_fsl"]

FSL_MODES = ("auto", "require", "never")

# stage/method name -> the FSL command qsmprep runs for it
FSL_PROGRAMS = {"fsl_bet": "bet", "bet": "bet", "mask": "bet", "prelude": "prelude",
                "unwrap": "prelude"}


def missing_fsl(programs=("bet", "prelude")) -> list[str]:
    """What is missing for ``programs``: ``"FSLDIR"`` and/or the command names, [] if none."""
    missing = []
    fsldir = os.environ.get("FSLDIR", "")
    if not fsldir or not os.path.isdir(fsldir):
        missing.append("FSLDIR")
    missing.extend(p for p in programs if shutil.which(p) is None)
    return missing


def fsl_available(programs=("bet", "prelude")) -> bool:
    """True when ``$FSLDIR`` is an existing directory and every one of ``programs`` is on PATH."""
    return not missing_fsl(programs)


def resolve_fsl(mode: str, method: str) -> bool:
    """Whether to run the FSL program for ``method`` (``fsl_bet``/``bet``/``mask`` or
    ``prelude``/``unwrap``; ``bet`` here names FSL's program).

    ``mode`` is ``auto``, ``require`` or ``never`` (see module doc). Raises
    :class:`UserInputError` for an unknown mode or method, and for ``require`` when FSL
    (``$FSLDIR`` or the program) is missing.
    """
    if mode not in FSL_MODES:
        raise UserInputError(
            f"--fsl {mode!r} is not a valid choice: use one of {', '.join(FSL_MODES)} "
            "(auto: use FSL where installed, require: stop if it is missing, never: native "
            "methods only).")
    if method not in FSL_PROGRAMS:
        raise UserInputError(
            f"no FSL program for the method {method!r}: FSL is used for the brain mask (fsl_bet) "
            f"and phase unwrapping (prelude); choose one of {', '.join(sorted(FSL_PROGRAMS))}.")
    if mode == "never":
        return False
    program = FSL_PROGRAMS[method]
    missing = missing_fsl((program,))
    if not missing:
        return True
    if mode == "auto":
        return False
    what = []
    if "FSLDIR" in missing:
        what.append("the environment variable FSLDIR is not set to an existing directory")
    if program in missing:
        what.append(f"the command `{program}` is not on PATH")
    raise UserInputError(
        f"--fsl require asks for FSL's `{program}`, but {' and '.join(what)}. Either run "
        "qsmprep from its container image, which ships FSL's bet and prelude "
        "(`docker run ... qsmprep:<version>` or `apptainer run qsmprep.sif ...`), or install "
        "FSL (https://fsl.fmrib.ox.ac.uk/fsl/docs/#/install/index), then "
        "`export FSLDIR=/path/to/fsl; source $FSLDIR/etc/fslconf/fsl.sh` so that "
        f"`{program}` is on PATH; or use --fsl auto / never to fall back to qsmprep's native "
        "method.")
