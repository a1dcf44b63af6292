"""Make docs/figures/participant-report.png: simulate the tiny head, run the default
pipeline, and screenshot the participant report with headless Chromium.

    python docs/scripts/report_screenshot.py [WORK_FOLDER]
"""

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from _chromium import render  # noqa: E402
from cli._support import TINY  # noqa: E402

from qsmprep.simulation.dataset import SimulationSpec, write_simulated_dataset  # noqa: E402


def main(folder=None):
    tmp = Path(folder or tempfile.mkdtemp(prefix="qsmprep-report-"))
    bids = tmp / "bids"
    if not bids.exists():
        write_simulated_dataset(bids, SimulationSpec(**TINY))
    subprocess.run([sys.executable, "-m", "qsmprep.cli.main", str(bids), str(tmp / "out"),
                    "participant", "-w", str(tmp / "work"), "--nprocs", "2"], check=True,
                   cwd=ROOT)
    out = ROOT / "docs" / "figures" / "participant-report.png"
    shot = render(tmp / "out" / "sub-01.html", out, width=1200, height=2600)
    if shot.missing:
        raise SystemExit(f"missing resources: {shot.missing}")
    print(f"wrote {out} ({len(shot.requested)} figures loaded)")


if __name__ == "__main__":
    main(*sys.argv[1:])
