"""Where the real scans are (never part of the repository), and the skip when they are not."""

import os
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]


def real_data_root() -> Path:
    """``$QSMPREP_REAL_DATA``, else ``../shared/data/real`` beside the repository."""
    env = os.environ.get("QSMPREP_REAL_DATA")
    return Path(env) if env else _REPO.parent / "shared" / "data" / "real"


def real_dataset(name: str) -> Path:
    """The folder of one real dataset, or skip the test saying why."""
    path = real_data_root() / name
    if not path.is_dir():
        pytest.skip(f"real scan {name!r} not found at {path} (not part of the repository; set "
                    "QSMPREP_REAL_DATA to the folder holding it)")
    return path
