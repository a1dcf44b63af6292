"""Every available method, through the real workflow, against the simulated truth.

The small version of the accuracy scorecard (``benchmarks/accuracy.py --small``, dataset
``3T-axial-snr150``): the default pipeline and one variant per method of each stage. Each
variant must stay under its demeaned-NRMSE ceiling and over its correlation floor, so a
regression in any method fails here. Ceilings are the measured values plus a margin
(measured figures beside them; docs/accuracy.md has the full table).
"""

import io

import pytest

from qsmprep.cli.run import run_participant
from qsmprep.config import (Config, available_variants, build_pipeline, list_presets,
                            load_pipeline, pipeline_available)
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
    # re-measured with the native BET mask (default since the real-scans work): it keeps
    # 89% of the true brain here (the phase-quality mask kept 94%; on a real whole head
    # that mask held scalp and neck, docs/real-data.md)
    "default": (54, 0.84, 0.86),                 # 49.8 %, r 0.868, coverage 0.892
    "unwrap=romeo": (54, 0.84, 0.86),            # 49.8, 0.868, 0.892
    "echoes=nonlinear": (54, 0.84, 0.86),        # 49.7, 0.869, 0.892
    "phase_offset=mcpc3ds": (54, 0.84, 0.86),    # 49.8, 0.868, 0.892 (the fit's intercept
                                                 # already removes the smooth offset)
    "mask=phase_quality": (54, 0.84, 0.9),       # 49.8, 0.870, 0.942
    "background=vsharp": (45, 0.88, 0.6),        # 40.3, 0.915, 0.632
    "background=sharp": (39, 0.91, 0.54),        # 34.5, 0.940, 0.575
    "background=lbv": (42, 0.9, 0.66),           # 37.8, 0.926, 0.698 (1 layer peeled)
    "inversion=l2": (65, 0.77, 0.86),            # 60.8, 0.798, 0.892
    "inversion=tkd": (70, 0.73, 0.86),           # 65.9, 0.757, 0.892
    "inversion=cg": (68, 0.74, 0.86),            # 63.7, 0.774, 0.892
    "inversion=focuss": (60, 0.80, 0.86),        # 55.9, 0.829, 0.892
    "inversion=tfi": (62, 0.78, 0.86),           # 58.0, 0.815, 0.892
    "inversion=deepqsm": (71, 0.72, 0.86),       # 66.7, 0.754, 0.892
    # Known failures, pinned so that they do not get worse unnoticed:
    # the magnitude mask keeps voxels next to air whose phase is dephased noise, and PDF
    # then fits nonsense there (with V-SHARP it measured 60.7 %); docs/accuracy.md
    "mask=magnitude": (150, 0.2, 0.95),          # 130.3, 0.256, 0.999
    # Laplacian unwrapping is not congruent: next to the cavities whole regions come out a
    # turn off and no consistency check can tell (docs/fieldmap.md); not recommended
    "unwrap=laplacian": (1100, 0.02, 0.86),      # 1053.2, 0.027, 0.892
    # the seed-002 prior (R2' -> chi in compartments, air outside) models an agar
    # phantom; on a head it adds a wrong prior (docs/inversion.md)
    "inversion=preconditioned": (120, 0.5, 0.86),  # 111.1, 0.552, 0.892
    "preset:deepqsm": (63, 0.79, 0.6),           # 58.2, 0.817, 0.632 (V-SHARP + DeepQSM)
    "preset:fast": (59, 0.81, 0.6),              # 54.7, 0.841, 0.632 (V-SHARP + L2)
    "preset:fsl": (54, 0.84, 0.86),              # = default here (no FSL: native bet +
                                                 # ROMEO fall-backs)
}


def _variants():
    base = load_pipeline("default")
    rows = [("default", base)]
    rows += available_variants(base)
    rows += [(f"preset:{p}", build_pipeline(p)[0]) for p in list_presets()
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
    print(f"{label}: {s['demeaned_nrmse_percent']:.1f}% r={s['correlation']:.3f} "
          f"coverage={s['mask_coverage']:.3f}")
    assert s["mask_coverage"] > coverage
    assert s["demeaned_nrmse_percent"] < ceiling
    assert s["correlation"] > floor
