"""qsmprep.algorithms must import with numpy and scipy alone (DESIGN.md)."""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys

import qsmprep.algorithms

HEAVY = ("nipype", "torch", "nibabel", "bids", "matplotlib", "pandas")


def test_algorithms_import_without_heavy_dependencies():
    walk = pkgutil.walk_packages(qsmprep.algorithms.__path__, "qsmprep.algorithms.")
    # torch is allowed only inside the DeepQSM package, imported on its own
    modules = sorted(m.name for m in walk if ".deepqsm" not in m.name)
    stages = {"mask", "unwrap", "echoes", "background", "inversion", "coils"}
    assert {f"qsmprep.algorithms.{s}" for s in stages} <= set(modules)
    assert {"qsmprep.algorithms.inversion.direct", "qsmprep.algorithms.background.pdf"} <= set(modules)
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        f"print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in {HEAVY!r})))\n"
    )
    env = dict(os.environ, NIPYPE_NO_ET="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True, timeout=120)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == [], f"algorithms pulled in {loaded}"
