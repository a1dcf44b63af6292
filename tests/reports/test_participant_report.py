"""The participant report: figures, lambda, QC warnings, methods paragraph, a failed run,
--reports-only, and a headless-Chromium render with no missing resource."""

import json
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from qsmprep import methods as reg
from qsmprep.reports.boilerplate import methods_paragraph, methods_that_ran
from qsmprep.simulation.dataset import SimulationSpec, write_simulated_dataset

from _chromium import external_resources, render
from cli._support import TINY, run_cli


@pytest.fixture(scope="module")
def bids(tmp_path_factory):
    root = tmp_path_factory.mktemp("report") / "bids"
    write_simulated_dataset(root, SimulationSpec(**TINY))
    return root


@pytest.fixture(scope="module")
def done(bids, tmp_path_factory):
    """The default pipeline on the tiny head (its small brain raises the mask QC warning)."""
    tmp = tmp_path_factory.mktemp("done")
    res = run_cli(bids, tmp / "out", "participant", "-w", tmp / "work", "--nprocs", "2")
    assert res.returncode == 0, res.stdout + res.stderr
    return tmp / "out", tmp / "work", res


def _sources(html):
    return re.findall(r'<img src="([^"]+)"', html)


def test_every_figure_exists_and_is_referenced(done):
    out, _, res = done
    page = out / "sub-01.html"
    assert f"report: {page}" in res.stdout
    html = page.read_text()
    srcs = _sources(html)
    figs = sorted((out / "sub-01" / "figures").glob("*.png"))
    assert len(figs) == 6  # magnitude, total, local, chi, R2*, lambda
    assert sorted(out / s for s in srcs) == figs
    for f in figs:
        assert f.stat().st_size > 2000 and f.read_bytes()[:4] == b"\x89PNG"
    assert external_resources(html) == []


def test_lambda_and_qc_warnings_appear(done):
    out, _, res = done
    html = (out / "sub-01.html").read_text()
    chi = json.loads((out / "sub-01" / "anat" / "sub-01_Chimap.json").read_text())
    inv = chi["DipoleInversion"]
    curve = inv["LambdaCurve"]  # the sweep the sidecar now records
    assert curve["Rule"] == "gcv" and len(curve["Lambdas"]) == len(curve["Criterion"]) == 25
    assert f"{inv['Lambda']:.4g}" in html and f"chosen {curve['Chosen']:.4g}" in html
    warnings = chi["QCWarnings"]
    assert warnings and any("brain mask" in w for w in warnings)
    for w in warnings:
        assert w.replace("'", "&#x27;").replace('"', "&quot;") in html
        assert w.split(": ", 1)[1] in res.stdout  # the same warnings the console printed
    assert f"Quality-control warnings ({len(warnings)})" in html


def test_steps_command_line_and_settings(done):
    out, work, _ = done
    html = (out / "sub-01.html").read_text()
    for stage in ("read echoes", "brain mask", "dipole inversion", "background removal"):
        assert f"<td>{stage}</td>" in html
    rows = re.findall(r"<td>(?:done|FAILED)</td><td class=\"num\">([\d.]+)</td>"
                      r"<td class=\"num\">([^<]+)</td>", html)
    assert len(rows) >= 6 and all(float(t) >= 0 for t, _ in rows)
    mem = [float(m) for _, m in rows if m != "not monitored"]
    assert mem and all(0.01 < m < 16 for m in mem)  # psutil monitored every step's RSS
    assert "participant -w" in html and str(work) in html
    assert "<td>inversion</td><td>tv</td>" in html


def test_methods_paragraph_names_exactly_what_ran(done):
    out, _, _ = done
    record = json.loads((out / "logs" / "sub-01_qsmprep-run.json").read_text())
    ran = methods_that_ran(record)
    # tiny head: combined images (no coil stage), 3 equally spaced echoes (ARLO)
    assert ran == [("mask", "bet"), ("phase_offset", "fit"), ("unwrap", "temporal"),
                   ("echoes", "linear"), ("r2star", "arlo"), ("background", "pdf"),
                   ("inversion", "tv")]
    md = (out / "logs" / "CITATION.md").read_text()
    named = set(re.findall(r"qsmprep method '(\w+)'", md))
    assert named == {m for _, m in ran}
    for stage in ("coils", "background", "inversion", "mask"):
        for m in reg.methods_of(stage):
            if (stage, m.name) not in ran and m.summary not in {r.summary for r in [
                    reg.method(s, n) for s, n in ran]}:
                assert m.summary not in md, m.name
    bib = (out / "logs" / "CITATION.bib").read_text()
    for key in ("gorgolewski2011nipype", "smith2002bet", "liu2011pdf", "pei2015arlo",
                "liu2012medi", "bilgic2014fast"):
        assert key in bib and key in md
    assert "shmueli2009tkd" not in bib and "wu2012vsharp" not in bib
    assert "Methods" in (out / "logs" / "CITATION.html").read_text()
    assert "qsmprep method &#x27;pdf&#x27;" in (out / "sub-01.html").read_text()


def test_methods_of_another_pipeline(done):
    """The same record with the fast pipeline, uncombined channels, 2 echoes and user masks."""
    out, _, _ = done
    record = json.loads((out / "logs" / "sub-01_qsmprep-run.json").read_text())
    st = record["Pipeline"]["stages"]
    st["background"]["method"], st["inversion"]["method"] = "vsharp", "l2"
    st["inversion"]["params"] = {"lam": None, "lambda_rule": "upre"}
    record["Settings"]["user_mask"] = "/m/sub-{subject}.nii.gz"
    record["Runs"][0].update(n_channels=8, echo_times=[0.004, 0.009])
    ran = methods_that_ran(record)
    assert ran == [("coils", "mcpc3ds"), ("mask", "user"), ("phase_offset", "fit"),
                   ("unwrap", "temporal"), ("echoes", "linear"), ("r2star", "loglinear"),
                   ("background", "vsharp"), ("inversion", "l2")]
    text = " ".join(methods_paragraph(record)[0])
    assert "V-SHARP" in text and "(UPRE)" in text and "provided by the user" in text
    assert "projection onto dipole fields" not in text and "native BET" not in text


def test_dataset_description_links(done):
    out, _, _ = done
    desc = json.loads((out / "dataset_description.json").read_text())
    chi = json.loads((out / "sub-01" / "anat" / "sub-01_Chimap.json").read_text())
    assert all(s.startswith("bids:raw:") for s in chi["Sources"])
    raw = Path(desc["DatasetLinks"]["raw"].removeprefix("file://"))
    assert all((raw / s.removeprefix("bids:raw:")).is_file() for s in chi["Sources"])


def test_reports_only_rebuilds_from_disk(done, tmp_path):
    out, work, _ = done
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    (copy / "sub-01.html").unlink()
    shutil.rmtree(copy / "sub-01" / "figures")
    res = run_cli(tmp_path / "nobids", copy, "participant", "--reports-only", "-w", work)
    assert res.returncode == 0, res.stdout + res.stderr
    html = (copy / "sub-01.html").read_text()
    assert all((copy / s).is_file() for s in _sources(html)) and len(_sources(html)) == 6
    assert "complete: derivatives written" in html
    res = run_cli(tmp_path / "nobids", tmp_path / "empty", "participant", "--reports-only")
    assert res.returncode == 2 and "no qsmprep run record" in " ".join(res.stderr.split())
    assert "Traceback" not in res.stderr


def test_failed_run_still_gets_a_report(bids, tmp_path):
    """A zero phase stops the run at the inversion: the report shows the stages that ran,
    their images, and the error."""
    variant = tmp_path / "bids"
    shutil.copytree(bids, variant)
    for f in (variant / "sub-01" / "anat").glob("*part-phase*.nii.gz"):
        img = nib.load(f)
        nib.save(nib.Nifti1Image(np.zeros(img.shape, np.float32), img.affine, img.header), f)
    res = run_cli(variant, tmp_path / "out", "participant", "-w", tmp_path / "work",
                  "--nprocs", "2", "--phase-units", "radians")
    assert res.returncode == 1, res.stdout + res.stderr
    html = (tmp_path / "out" / "sub-01.html").read_text()
    assert "INCOMPLETE" in html and "1 incomplete" in html
    assert re.search(r'<div class="error">dipole inversion: The susceptibility map .*zero '
                     r"everywhere", html)
    assert "<td>brain mask</td><td>brain_mask</td><td>done</td>" in html
    assert "<td>dipole inversion</td><td>inversion</td><td>FAILED</td>" in html
    srcs = _sources(html)
    assert any("magnitude" in s for s in srcs) and not any("chimap" in s for s in srcs)
    assert all((tmp_path / "out" / s).is_file() for s in srcs)


def test_chromium_renders_without_missing_resources(done, tmp_path):
    out, _, _ = done
    shot = render(out / "sub-01.html", tmp_path / "report.png")
    assert shot.missing == [] and shot.remote == []
    assert len(shot.requested) == 6  # every figure was loaded
    assert shot.png.stat().st_size > 50_000


def test_memory_estimates_cover_measured_peaks(done, bids, tmp_path):
    """Every step's mem_gb estimate (workflows/resources.py, what the schedulers reserve)
    is at least the peak RSS the resource monitor measured for it."""
    from nipype.utils.filemanip import loadpkl

    from qsmprep.bids import find_runs, run_geometry
    from qsmprep.config import load_pipeline
    from qsmprep.workflows.base import init_participant_wf

    _, work, _ = done
    runs = find_runs(bids)
    wf = init_participant_wf(runs=runs, geometries=[run_geometry(r) for r in runs],
                             bids_dir=bids, output_dir=tmp_path / "o", work_dir=tmp_path / "w",
                             pipeline=load_pipeline("default"))
    # steps run inside the main process (the sinks) measure that whole process: not theirs
    estimates = {n.name: float(n.mem_gb) for n in wf._get_all_nodes()
                 if not n.run_without_submitting}
    checked = []
    for res in work.rglob("result_*.pklz"):
        name = res.name[len("result_"):-len(".pklz")]
        peak = getattr(loadpkl(res).runtime, "mem_peak_gb", None)
        if peak is None or name not in estimates:
            continue
        checked.append(name)
        print(f"{name}: measured {peak:.3f} GB, estimate {estimates[name]:.3f} GB")
        assert peak <= estimates[name], f"{name}: measured {peak:.2f} GB > {estimates[name]:.2f}"
    assert {"stack_echoes", "brain_mask", "field_fit", "background", "inversion"} <= set(checked)
