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
    # measured with the native BET mask (default since the real-scans work; the
    # phase-quality mask held scalp and neck on a real whole head, docs/real-data.md)
    "default": (52, 0.86, 0.91),                 # 47.3 %, r 0.885, coverage 0.941
    "unwrap=romeo": (52, 0.86, 0.91),            # 47.3, 0.884, 0.941
    "echoes=nonlinear": (52, 0.86, 0.91),        # 47.3, 0.885, 0.941
    "phase_offset=mcpc3ds": (52, 0.86, 0.91),    # 47.3, 0.884, 0.941 (the fit's intercept
                                                 # already removes the smooth offset)
    "mask=phase_quality": (56, 0.84, 0.91),      # 51.2, 0.864, 0.942
    "background=vsharp": (44, 0.89, 0.67),       # 39.4, 0.919, 0.708
    "background=sharp": (41, 0.90, 0.61),        # 36.7, 0.932, 0.652
    "background=lbv": (39, 0.91, 0.73),          # 34.5, 0.939, 0.774 (1 layer peeled)
    "inversion=l2": (62, 0.79, 0.91),            # 57.5, 0.823, 0.941
    "inversion=tkd": (69, 0.74, 0.91),           # 64.3, 0.773, 0.941
    "inversion=cg": (66, 0.77, 0.91),            # 61.0, 0.797, 0.941
    "inversion=focuss": (58, 0.82, 0.91),        # 53.3, 0.846, 0.941
    "inversion=tfi": (60, 0.80, 0.91),           # 55.3, 0.834, 0.941
    "inversion=deepqsm": (70, 0.74, 0.91),       # 65.6, 0.767, 0.941
    # Known failures, pinned so that they do not get worse unnoticed:
    # the magnitude mask keeps voxels next to air whose phase is dephased noise, and PDF
    # then fits nonsense there (with V-SHARP it measured 60.7 %); docs/accuracy.md
    "mask=magnitude": (160, 0.15, 0.95),         # 149.4, 0.203, 0.999
    # Laplacian unwrapping is not congruent: next to the cavities whole regions come out a
    # turn off and no consistency check can tell (docs/fieldmap.md); not recommended
    "unwrap=laplacian": (1150, 0.015, 0.91),     # 1073.1, 0.024, 0.941
    # the seed-002 prior (R2' -> chi in compartments, air outside) models an agar
    # phantom; on a head it adds a wrong prior (docs/inversion.md)
    "inversion=preconditioned": (125, 0.5, 0.91),  # 117.4, 0.531, 0.941
    "preset:deepqsm": (62, 0.79, 0.67),          # 57.7, 0.822, 0.708 (V-SHARP + DeepQSM)
    "preset:fast": (58, 0.82, 0.67),             # 53.3, 0.849, 0.708 (V-SHARP + L2)
    "preset:fsl": (52, 0.86, 0.91),              # = default here (no FSL: native bet +
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
