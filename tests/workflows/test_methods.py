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

# label -> (demeaned NRMSE ceiling %, correlation floor); measured values in comments
# (python benchmarks/accuracy.py --small --datasets 3T-axial-snr150)
THRESHOLDS = {
    "default": (46, 0.88),                   # 41.8 %, r 0.909 (phase-quality, V-SHARP, TV)
    "mask=magnitude": (66, 0.78),            # 60.7, 0.812: keeps the CSF rim and bad phase
    "unwrap=romeo": (46, 0.88),              # 41.8, 0.909
    # Laplacian unwrapping is not congruent: next to the cavities whole regions come out a
    # turn off and the consistency check cannot tell (docs/fieldmap.md). Pinned so that it
    # does not get worse unnoticed; not recommended.
    "unwrap=laplacian": (1150, 0.05),        # 1031.9, 0.088
    "echo=nonlinear": (46, 0.88),            # 41.8, 0.909
    "background=pdf": (53, 0.85),            # 48.6, 0.878
    "background=sharp": (46.5, 0.88),        # 42.2, 0.907
    "inversion=l2": (57, 0.82),              # 51.9, 0.855
    "inversion=tkd": (61, 0.80),             # 55.9, 0.831
    "inversion=cg": (60, 0.81),              # 54.4, 0.841
    "inversion=focuss": (52, 0.85),          # 47.5, 0.881
    "inversion=tfi": (61, 0.80),             # 55.7, 0.831
    # the seed-002 prior (R2' -> chi inside compartments, air outside) assumes an agar
    # phantom; on a head it adds a wrong prior (docs/inversion.md)
    "inversion=preconditioned": (135, 0.45),  # 125.3, 0.512
    "inversion=deepqsm": (60, 0.80),         # 54.9, 0.838
    "preset:deepqsm": (60, 0.80),            # 54.9, 0.838
    "preset:fast": (57, 0.82),               # 51.9, 0.855
    "preset:fsl": (46, 0.88),                # 41.8, 0.909 (FSL absent: phase-quality + ROMEO)
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
    ceiling, floor = THRESHOLDS[label]
    print(f"{label}: {s['demeaned_nrmse_percent']:.1f}% r={s['correlation']:.3f}")
    assert s["mask_coverage"] > 0.9
    assert s["demeaned_nrmse_percent"] < ceiling
    assert s["correlation"] > floor
