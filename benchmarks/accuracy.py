"""Accuracy scorecard: every available method, on a fixed set of simulated head datasets.

Datasets (qsmprep's MNI152-based head simulator, 4 echoes): 3 T and 7 T, axial and oblique
(B0 tilted 20 degrees in voxel coordinates), SNR 40 and 150 -- eight datasets. On each, the
``default`` pipeline runs, then one variant per available method of every stage (mask,
unwrapping, echo fit, background removal, inversion) with the other stages at their
defaults, then every preset. Each run is a cold participant run (fresh work directory)
through the real nipype workflow; its Chimap is scored against the truth with
``qsmprep.evaluation`` (QSM challenge 2.0 metrics).

    python benchmarks/accuracy.py                 # full table (about 30 min on 2 cores)
    python benchmarks/accuracy.py --small         # the small grid the tests pin
    python benchmarks/accuracy.py --only default inversion=tkd
    python benchmarks/accuracy.py --from-table full.md   # re-print the summary of a saved table

Times are wall seconds of the whole run and, in brackets, ratios to the default pipeline's
run on the same dataset measured in the same invocation.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

from qsmprep.config import (Config, available_variants, build_pipeline, list_presets,
                            load_pipeline, pipeline_available)
from qsmprep.evaluation import evaluate_chimap
from qsmprep.simulation.dataset import write_simulated_dataset
from qsmprep.simulation.scorecard import scorecard_datasets

def variants():
    """(label, PipelineSettings): default, one method swapped per stage, then the presets."""
    base = load_pipeline("default")
    rows = [("default", base)]
    rows += available_variants(base)
    rows += [(f"preset:{p}", build_pipeline(p)[0]) for p in list_presets()
             if p != "default" and pipeline_available(load_pipeline(p))]
    return rows


def run_one(bids, truth, pipeline, root, nprocs=2):
    from qsmprep.cli.run import run_participant

    out, work = root / "out", root / "work"
    cfg = Config(bids_dir=bids, output_dir=out, work_dir=work, pipeline=pipeline,
                 nprocs=nprocs, omp_nthreads=nprocs)
    t = time.perf_counter()
    status = run_participant(cfg, out=io.StringIO())
    took = time.perf_counter() - t
    if status:
        return None, took
    chi = out / "sub-01" / "anat" / "sub-01_Chimap.nii.gz"
    return evaluate_chimap(chi, truth["chi"], truth["mask"], truth["labels"]), took


def summarise(rows):
    """Mean over datasets per pipeline: ``rows`` are (dataset, label, nrmse, r, coverage,
    time ratio); prints a markdown table sorted by mean NRMSE."""
    by = {}
    for _, label, nrmse, r, cov, ratio in rows:
        by.setdefault(label, []).append((nrmse, r, cov, ratio))
    print("\n| pipeline | datasets | mean dNRMSE % | worst dNRMSE % | mean r | mean coverage | "
          "mean time (x default) |")
    print("|---|---|---|---|---|---|---|")
    for label, v in sorted(by.items(), key=lambda kv: sum(x[0] for x in kv[1]) / len(kv[1])):
        n = len(v)
        print(f"| {label} | {n} | {sum(x[0] for x in v) / n:.1f} | {max(x[0] for x in v):.1f} | "
              f"{sum(x[1] for x in v) / n:.3f} | {sum(x[2] for x in v) / n:.2f} | "
              f"{sum(x[3] for x in v) / n:.2f} |")


def _rows_from_table(path):
    rows = []
    for line in Path(path).read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 10 and cells[2] not in ("dNRMSE %", "---", "failed"):
            ratio = float(cells[9].split("(")[1].rstrip(")"))
            rows.append((cells[0], cells[1], float(cells[2]), float(cells[6]), float(cells[8]),
                         ratio))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="the small grid the tests use")
    ap.add_argument("--datasets", nargs="*", help="only these dataset names")
    ap.add_argument("--only", nargs="*", help="only these variant labels")
    ap.add_argument("--nprocs", type=int, default=2)
    ap.add_argument("--from-table", type=Path, help="only summarise a table this script printed")
    a = ap.parse_args(argv)
    if a.from_table:
        summarise(_rows_from_table(a.from_table))
        return 0
    summary = []
    rows = variants()
    if a.only:
        rows = [r for r in rows if r[0] in a.only]
    print("| dataset | pipeline | dNRMSE % | detrended % | HFEN % | XSIM | r | slope | coverage | "
          "time s (x default) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in scorecard_datasets(a.small):
            if a.datasets and name not in a.datasets:
                continue
            bids = Path(tmp) / name / "bids"
            truth = write_simulated_dataset(bids, spec)
            base_time = None
            for label, pipeline in rows:
                scores, took = run_one(bids, truth, pipeline, Path(tmp) / name / label.replace(":", "_"),
                                       a.nprocs)
                base_time = base_time or took
                if scores is None:
                    print(f"| {name} | {label} | failed | | | | | | | {took:.1f} |", flush=True)
                    continue
                reg = scores.get("label_regression") or {}
                slope = reg.get("slope")
                print(f"| {name} | {label} | {scores['demeaned_nrmse_percent']:.1f} | "
                      f"{scores['detrended_nrmse_percent']:.1f} | {scores['hfen_percent']:.1f} | "
                      f"{scores['xsim']:.3f} | {scores['correlation']:.3f} | "
                      f"{'' if slope is None else f'{slope:.2f}'} | {scores['mask_coverage']:.2f} | "
                      f"{took:.1f} ({took / base_time:.2f}) |", flush=True)
                summary.append((name, label, scores["demeaned_nrmse_percent"],
                                scores["correlation"], scores["mask_coverage"], took / base_time))
    summarise(summary)


if __name__ == "__main__":
    sys.exit(main())
