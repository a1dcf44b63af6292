"""What the CLI tests share: running ``qsmprep`` in a subprocess, and the tiny dataset."""

import subprocess
import sys

# 40 x 48 x 40 voxels of 4 mm, three echoes: the smallest head that runs every stage
TINY = dict(shape=(40, 48, 40), voxel_size=(4.0, 4.0, 4.0), scale=0.8,
            echo_times=(0.004, 0.008, 0.012))


def run_cli(*args, timeout=300):
    """``python -m qsmprep.cli.main ARGS`` with its output captured."""
    return subprocess.run([sys.executable, "-m", "qsmprep.cli.main", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)
