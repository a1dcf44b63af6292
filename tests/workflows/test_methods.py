"""Every available method, through the real workflow, against the simulated truth.

The small version of the accuracy scorecard (``benchmarks/accuracy.py --small``, dataset
``3T-axial-snr150``): the default pipeline and one variant per method of each stage. Each
variant must stay under its demeaned-NRMSE ceiling and over its correlation floor, so a
regression in any method fails here. Ceilings are the measured values plus a margin
(measured figures beside them; docs/accuracy.md has the full table).
"""

import io
from dataclasses import replace

import pytest

from qsmprep.cli.run import run_participant
from qsmprep.config import (Config, available_variants, list_presets, load_pipeline,
                            pipeline_available)
from qsmprep.evaluation import evaluate_chimap
from qsmprep.simulation.dataset import write_simulated_dataset
from qsmprep.simulation.scorecard import scorecard_datasets

DATASET = "3T-axial-snr150"

# label -> (demeaned NRMSE ceiling %, correlation floor, coverage floor); measured by
# `python benchmarks/accuracy.py --small --datasets 3T-axial-snr150` in the comments.
# Coverage is the fraction of the true brain where chi is defined: V-SHARP/SHARP drop a
# shell of their smallest radius (2 voxels = 4 mm here), so they are scored on an easier,
# smaller region.
THRESHOLDS = {
    "default": (53, 0.85, 0.9),                  # 48.6 %, r 0.878, coverage 0.94
    "unwrap=romeo": (53, 0.85, 0.9),             # 48.6, 0.878, 0.94
    "echo=nonlinear": (53, 0.85, 0.9),           # 48.6, 0.878, 0.94
    "phase=mcpc3ds": (53, 0.85, 0.9),            # 48.6, 0.878, 0.94 (the fit's intercept
                                                 # already removes the smooth offset)
    "background=vsharp": (46, 0.88, 0.68),       # 41.8, 0.909, 0.72
    "background=sharp": (46.5, 0.88, 0.62),      # 42.2, 0.907, 0.67
    "inversion=l2": (63, 0.79, 0.9),             # 58.0, 0.818, 0.94
    "inversion=tkd": (74, 0.72, 0.9),            # 67.7, 0.753, 0.94
    "inversion=cg": (67, 0.76, 0.9),             # 61.4, 0.794, 0.94
    "inversion=focuss": (66, 0.77, 0.9),         # 60.4, 0.798, 0.94
    "inversion=tfi": (61, 0.80, 0.9),            # 55.7, 0.831, 0.94
    "inversion=deepqsm": (75, 0.71, 0.9),        # 69.0, 0.747, 0.94
    # Known failures, pinned so that they do not get worse unnoticed:
    # the magnitude mask keeps voxels next to air whose phase is dephased noise, and PDF
    # then fits nonsense there (with V-SHARP it measured 60.7 %); docs/accuracy.md
    "mask=magnitude": (150, 0.2, 0.95),          # 136.3, 0.246, 1.00
    # Laplacian unwrapping is not congruent: next to the cavities whole regions come out a
    # turn off and no consistency check can tell (docs/fieldmap.md); not recommended
    "unwrap=laplacian": (1100, 0.02, 0.9),       # 971.4, 0.050, 0.94
    # the seed-002 prior (R2' -> chi in compartments, air outside) models an agar
    # phantom; on a head it adds a wrong prior (docs/inversion.md)
    "inversion=preconditioned": (130, 0.45, 0.9),  # 120.1, 0.515, 0.94
    "preset:deepqsm": (62, 0.79, 0.68),          # 57.5, 0.823, 0.72 (V-SHARP + DeepQSM)
    "preset:fast": (57, 0.82, 0.68),             # 51.9, 0.855, 0.72 (V-SHARP + L2)
    "preset:fsl": (53, 0.85, 0.9),               # = default here (no FSL: phase-quality +
                                                 # ROMEO fall-backs)
}


def _variants():
    base = load_pipeline("default")
    rows = [("default", base)]
    rows += [(label, replace(base, **changes)) for label, changes in available_variants(base)]
    rows += [(f"preset:{p}", load_pipeline(p)) for p in list_presets()
             if p != "default" and pipeline_available(load_pipeline(p))]
    return rows


@pytest.fixture(scope="module")
def scorecard_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("methods")
    spec = dict(scorecard_datasets(small=True))[DATASET]
    truth = write_simulated_dataset(root / "bids", spec)
    return root, truth


@pytest.mark.parametrize("label,pipeline", _variants(), ids=lambda v: v if isinstance(v, str) else "")
def test_method_accuracy(scorecard_data, label, pipeline):
    root, truth = scorecard_data
    out = root / "out" / label.replace(":", "_").replace("=", "-")
    # one work dir for all variants: stages a variant shares with another are cached
    cfg = Config(bids_dir=root / "bids", output_dir=out, work_dir=root / "work",
                 pipeline=pipeline, nprocs=1, omp_nthreads=2, plugin="Linear")
    log = io.StringIO()
    assert run_participant(cfg, out=log) == 0, log.getvalue()
    s = evaluate_chimap(out / "sub-01" / "anat" / "sub-01_Chimap.nii.gz", truth["chi"],
                        truth["mask"], truth["labels"])
    ceiling, floor, coverage = THRESHOLDS[label]
    print(f"{label}: {s['demeaned_nrmse_percent']:.1f}% r={s['correlation']:.3f}")
    assert s["mask_coverage"] > coverage
    assert s["demeaned_nrmse_percent"] < ceiling
    assert s["correlation"] > floor
