"""Tests for qsmprep.bids on tiny synthetic BIDS datasets."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from bids_fixtures import (  # noqa: E402
    AFFINE, add_run, make_dataset, rotation_x_affine, snapshot, write_json, write_nifti,
)

from qsmprep import __version__  # noqa: E402
from qsmprep.bids import (  # noqa: E402
    Run, check_output_dir, derivative_path, find_runs, load_bids_filters,
    normalize_bids_filters, run_geometry, write_dataset_description, write_sidecar,
)
from qsmprep.cli.summary import format_run_summary  # noqa: E402
from qsmprep.errors import UserInputError  # noqa: E402


def one_paragraph(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg.strip() == msg
    return msg


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    """sub-01 (two sessions, acq/run), sub-02 (no session, T2starw), sub-10; plus clutter."""
    root = make_dataset(tmp_path_factory.mktemp("multi") / "ds")
    add_run(root, sub="01", ses="1", acq="fast", run="1", echo_times=(0.004, 0.008))
    add_run(root, sub="01", ses="1", acq="fast", run="2", echo_times=(0.004, 0.008))
    add_run(root, sub="01", ses="2", echo_times=(0.005, 0.010, 0.015), field=7.0)
    add_run(root, sub="02", suffix="T2starw", echo_times=(0.020,), echo_entity=False)
    add_run(root, sub="10", rec="nd", echo_times=[0.003 * i for i in range(1, 11)])
    # clutter pybids must never index (invalid JSON would make indexing fail)
    for junk in ("derivatives/x/bad_MEGRE.json", "sourcedata/bad_MEGRE.json",
                 "code/bad_MEGRE.json", "sub-01/func/bad_MEGRE.json",
                 "sub-01/ses-1/func/sub-01_ses-1_task-a_bold.json"):
        (root / junk).parent.mkdir(parents=True, exist_ok=True)
        (root / junk).write_text("{not json")
    write_nifti(root / "sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz")
    return root


# ------------------------------------------------------------------ discovery
def test_multi_echo_discovery_with_sessions_acq_run(multi):
    runs = find_runs(multi)
    assert [r.name for r in runs] == [
        "sub-01_ses-1_acq-fast_run-1", "sub-01_ses-1_acq-fast_run-2", "sub-01_ses-2",
        "sub-02", "sub-10_rec-nd",
    ]
    r = runs[0]
    assert (r.subject, r.session, r.acquisition, r.reconstruction, r.run, r.suffix) == (
        "01", "1", "fast", None, "1", "MEGRE")
    assert r.echo_times == (0.004, 0.008)
    assert r.field_strength == 3.0
    assert runs[2].field_strength == 7.0
    for run in runs:
        assert len(run.magnitude) == len(run.phase) == len(run.echo_times)
        assert all(os.path.isabs(p) and os.path.exists(p) for p in run.magnitude + run.phase)
        assert all("part-mag" in p for p in run.magnitude)
        assert all("part-phase" in p for p in run.phase)
    assert runs[0].magnitude[1].endswith("sub-01_ses-1_acq-fast_run-1_echo-2_part-mag_MEGRE.nii.gz")
    assert runs[0].phase[0].endswith("sub-01_ses-1_acq-fast_run-1_echo-1_part-phase_MEGRE.nii.gz")
    assert hash(r) == hash(find_runs(multi, ["01"])[0])  # frozen, comparable


def test_numeric_echo_sort(multi):
    (run,) = find_runs(multi, ["10"])
    echoes = [int(Path(p).name.split("echo-")[1].split("_")[0]) for p in run.magnitude]
    assert echoes == list(range(1, 11))
    assert [int(Path(p).name.split("echo-")[1].split("_")[0]) for p in run.phase] == echoes
    assert np.allclose(run.echo_times, [0.003 * i for i in range(1, 11)])
    assert run.reconstruction == "nd"


def test_t2starw_single_echo(multi, tmp_path):
    (run,) = find_runs(multi, ["02"])
    assert run.suffix == "T2starw" and run.echo_times == (0.02,)
    assert run.magnitude[0].endswith("sub-02_part-mag_T2starw.nii.gz")
    root = make_dataset(tmp_path / "ds")
    add_run(root, suffix="T2starw", echo_times=(0.015,), ext=".nii")  # with echo-1, .nii
    (run,) = find_runs(root)
    assert run.suffix == "T2starw" and run.magnitude[0].endswith("echo-1_part-mag_T2starw.nii")


def test_labels_with_and_without_prefix(multi):
    a = find_runs(multi, ["01"], ["1"])
    b = find_runs(multi, ["sub-01"], ["ses-1"])
    assert a == b and [r.run for r in a] == ["1", "2"]
    assert [r.subject for r in find_runs(multi, "sub-02")] == ["02"]
    assert {r.subject for r in find_runs(multi, ["01", "sub-10"])} == {"01", "10"}
    assert len(find_runs(multi, [])) == len(find_runs(multi)) == 5  # empty list: everyone


def test_session_filter_excludes_other_sessions_and_sessionless(multi):
    runs = find_runs(multi, session_labels=["2"])
    assert [r.name for r in runs] == ["sub-01_ses-2"]


def test_unknown_participant_lists_existing(multi):
    with pytest.raises(UserInputError) as err:
        find_runs(multi, ["sub-03"])
    msg = one_paragraph(err)
    assert "03" in msg and "01, 02, 10" in msg and "--participant-label" in msg


def test_unknown_session_and_bad_label(multi):
    with pytest.raises(UserInputError) as err:
        find_runs(multi, ["01"], ["9"])
    assert "Sessions present: 1, 2" in one_paragraph(err)
    with pytest.raises(UserInputError) as err:
        find_runs(multi, ["../01"])
    assert "letters and digits" in one_paragraph(err)


def test_bids_dir_checks(tmp_path):
    with pytest.raises(UserInputError) as err:
        find_runs(tmp_path / "nope")
    assert str(tmp_path / "nope") in one_paragraph(err)
    (tmp_path / "raw").mkdir()
    with pytest.raises(UserInputError) as err:
        find_runs(tmp_path / "raw")
    assert "dataset_description.json" in one_paragraph(err)


def test_no_runs_explains_naming(tmp_path):
    root = make_dataset(tmp_path / "ds")
    write_nifti(root / "sub-01/anat/sub-01_T1w.nii.gz")
    with pytest.raises(UserInputError) as err:
        find_runs(root)
    msg = one_paragraph(err)
    assert "echo-<n>_part-<mag|phase>_MEGRE.nii.gz" in msg
    assert "EchoTime" in msg and "MagneticFieldStrength" in msg
    write_nifti(root / "sub-01/anat/sub-01_echo-1_MEGRE.nii.gz")
    with pytest.raises(UserInputError) as err:
        find_runs(root)
    assert "sub-01_echo-1_MEGRE.nii.gz" in one_paragraph(err)


def test_sidecar_inheritance(tmp_path):
    root = make_dataset(tmp_path / "ds")
    files = add_run(root, sidecar=False, echo_times=(0.004, 0.008))
    write_json(root / "MEGRE.json", {"MagneticFieldStrength": 2.89})
    for (part, echo), path in files.items():
        write_json(str(path).replace(".nii.gz", ".json"), {"EchoTime": 0.004 * echo})
    (run,) = find_runs(root)
    assert run.field_strength == 2.89 and run.echo_times == (0.004, 0.008)


def _set_key(files, key, value):
    for path in files.values():
        side = Path(str(path).replace(".nii.gz", ".json"))
        meta = json.loads(side.read_text())
        meta[key] = value
        side.write_text(json.dumps(meta))


def test_imaging_frequency_gives_the_true_field_strength(tmp_path):
    """A scanner labelled 3 T running at 123.2 MHz is at 2.8935 T: ImagingFrequency wins and
    the run records where B0 came from."""
    root = make_dataset(tmp_path / "ds")
    _set_key(add_run(root, echo_times=(0.004, 0.008)), "ImagingFrequency", 123.2)
    (run,) = find_runs(root)
    assert run.field_strength == pytest.approx(123.2 / 42.577478, rel=1e-9)
    assert run.field_strength_source == "ImagingFrequency"
    root2 = make_dataset(tmp_path / "ds2")
    add_run(root2, echo_times=(0.004, 0.008))
    (run,) = find_runs(root2)
    assert (run.field_strength, run.field_strength_source) == (3.0, "MagneticFieldStrength")


def test_imaging_frequency_contradicting_field_strength_is_refused(tmp_path):
    root = make_dataset(tmp_path / "ds")
    _set_key(add_run(root, echo_times=(0.004, 0.008)), "ImagingFrequency", 63.9)  # 1.5 T
    with pytest.raises(UserInputError) as err:
        find_runs(root)
    msg = one_paragraph(err)
    assert "ImagingFrequency" in msg and "MagneticFieldStrength" in msg and ".json" in msg


# --------------------------------------------------------------- input errors
def _drop_key(files, part, echo, key):
    side = Path(str(files[(part, echo)]).replace(".nii.gz", ".json"))
    meta = json.loads(side.read_text())
    del meta[key]
    side.write_text(json.dumps(meta))
    return files[(part, echo)]


@pytest.mark.parametrize("key", ["EchoTime", "MagneticFieldStrength"])
def test_missing_sidecar_key_names_file(tmp_path, key):
    root = make_dataset(tmp_path / "ds")
    files = add_run(root)
    bad = _drop_key(files, "mag", 2, key)
    with pytest.raises(UserInputError) as err:
        find_runs(root)
    msg = one_paragraph(err)
    assert str(bad) in msg and key in msg


def test_echo_time_in_ms(tmp_path):
    root = make_dataset(tmp_path / "ds")
    add_run(root, echo_times=(4.0, 8.0))
    with pytest.raises(UserInputError) as err:
        find_runs(root)
    msg = one_paragraph(err)
    assert "milliseconds" in msg and "seconds" in msg and "echo-1_part-mag" in msg


@pytest.mark.parametrize("have,lack", [("mag", "phase"), ("phase", "mag")])
def test_missing_partner(tmp_path, have, lack):
    root = make_dataset(tmp_path / "ds")
    files = add_run(root)
    os.remove(files[(lack, 3)])
    with pytest.raises(UserInputError) as err:
        find_runs(root)
    msg = one_paragraph(err)
    assert str(files[(have, 3)]) in msg and f"part-{lack}" in msg


def test_grid_mismatch_names_both_files(tmp_path):
    root = make_dataset(tmp_path / "ds")
    files = add_run(root)
    write_nifti(files[("phase", 2)], shape=(8, 8, 5))
    with pytest.raises(UserInputError) as err:
        find_runs(root)
    msg = one_paragraph(err)
    assert str(files[("phase", 2)]) in msg and str(files[("mag", 1)]) in msg
    write_nifti(files[("phase", 2)], affine=rotation_x_affine(5))
    with pytest.raises(UserInputError) as err:
        find_runs(root)
    assert "affine" in one_paragraph(err)


def test_four_d_image_rejected(tmp_path):
    root = make_dataset(tmp_path / "ds")
    files = add_run(root)
    write_nifti(files[("mag", 1)], shape=(8, 8, 4, 3))
    with pytest.raises(UserInputError) as err:
        find_runs(root)
    assert str(files[("mag", 1)]) in one_paragraph(err)


@pytest.mark.parametrize("tes", [(0.004, 0.004, 0.012), (0.008, 0.004)])
def test_echo_times_must_increase(tmp_path, tes):
    root = make_dataset(tmp_path / "ds")
    add_run(root, echo_times=tes)
    with pytest.raises(UserInputError) as err:
        find_runs(root)
    assert "strictly increasing" in one_paragraph(err)


def test_field_strength_must_agree(tmp_path):
    root = make_dataset(tmp_path / "ds")
    files = add_run(root)
    side = Path(str(files[("mag", 3)]).replace(".nii.gz", ".json"))
    write_json(side, {"EchoTime": 0.012, "MagneticFieldStrength": 1.5})
    with pytest.raises(UserInputError) as err:
        find_runs(root)
    assert str(files[("mag", 3)]) in one_paragraph(err)


def test_megre_needs_echo_entity(tmp_path):
    root = make_dataset(tmp_path / "ds")
    add_run(root, echo_times=(0.01,), echo_entity=False)
    with pytest.raises(UserInputError) as err:
        find_runs(root)
    assert "echo-" in one_paragraph(err)


def test_megre_and_t2starw_name_clash(tmp_path):
    root = make_dataset(tmp_path / "ds")
    add_run(root)
    add_run(root, suffix="T2starw", echo_times=(0.02,), echo_entity=False)
    with pytest.raises(UserInputError) as err:
        find_runs(root)
    assert '"t2starw": false' in one_paragraph(err)
    (run,) = find_runs(root, bids_filters={"t2starw": False})
    assert run.suffix == "MEGRE"


# -------------------------------------------------------------------- filters
def test_filter_file_forms(multi, tmp_path):
    f = write_json(tmp_path / "f.json", {"megre": {"acq": "fast", "run": 2}, "t2starw": False})
    filters = load_bids_filters(f)
    assert filters == {"megre": {"acquisition": "fast", "run": 2}, "t2starw": False}
    assert normalize_bids_filters(filters) == filters
    assert [r.name for r in find_runs(multi, bids_filters=filters)] == ["sub-01_ses-1_acq-fast_run-2"]
    flat = load_bids_filters(write_json(tmp_path / "g.json", {"acquisition": None, "ses": "*"}))
    assert flat["megre"] == flat["t2starw"] == {"acquisition": None, "session": "*"}
    assert [r.name for r in find_runs(multi, bids_filters=flat)] == ["sub-01_ses-2"]
    runs = find_runs(multi, bids_filters={"reconstruction": ["nd"]})
    assert [r.name for r in runs] == ["sub-10_rec-nd"]


@pytest.mark.parametrize("content,needle", [
    ("{bad json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"megre": {"foo": 1}}', "allowed"),
    ('{"subject": "01"}', "--participant-label"),
    ('{"megre": {}, "acquisition": "x"}', "mixes"),
    ('{"megre": 3}', "object of entity filters"),
    ('{"acquisition": "a-b"}', "invalid value"),
])
def test_filter_file_errors(tmp_path, content, needle):
    path = tmp_path / "filters.json"
    path.write_text(content)
    with pytest.raises(UserInputError) as err:
        load_bids_filters(path)
    msg = one_paragraph(err)
    assert needle in msg and str(path) in msg


def test_filter_that_matches_nothing(multi):
    with pytest.raises(UserInputError) as err:
        find_runs(multi, bids_filters={"acquisition": "nothing"})
    assert "BIDS filters" in one_paragraph(err)


# ------------------------------------------------------------ names and paths
def _run(**kw):
    base = dict(subject="01", session=None, acquisition=None, reconstruction=None, run=None,
                suffix="MEGRE", magnitude=("m",), phase=("p",), echo_times=(0.01,),
                field_strength=3.0)
    base.update(kw)
    return Run(**base)


def test_prefix_name_node_id():
    r = _run(session="1", acquisition="x", reconstruction="y", run="01")
    assert r.prefix == r.name == "sub-01_ses-1_acq-x_rec-y_run-01"
    assert r.node_id == "sub_01_ses_1_acq_x_rec_y_run_01"
    assert _run().prefix == "sub-01"
    assert _run(run="2").prefix == "sub-01_run-2"


def test_derivative_path(tmp_path):
    r = _run(session="1", acquisition="x", run="1")
    assert derivative_path(tmp_path, r, "Chimap") == (
        tmp_path / "sub-01/ses-1/anat/sub-01_ses-1_acq-x_run-1_Chimap.nii.gz")
    assert derivative_path(tmp_path, r, "mask", desc="brain") == (
        tmp_path / "sub-01/ses-1/anat/sub-01_ses-1_acq-x_run-1_desc-brain_mask.nii.gz")
    assert derivative_path(tmp_path, _run(), "fieldmap", "local", ".json", space="orig").name == (
        "sub-01_space-orig_desc-local_fieldmap.json")
    assert derivative_path(tmp_path, _run(), "phase", desc="unwrapped", echo=2).name == (
        "sub-01_echo-2_desc-unwrapped_phase.nii.gz")
    assert derivative_path(str(tmp_path), _run(), "R2starmap").parent == tmp_path / "sub-01/anat"
    with pytest.raises(ValueError):
        derivative_path(tmp_path, _run(), "mask", desc="brain_mask")


def test_dataset_description(tmp_path):
    bids = make_dataset(tmp_path / "raw")
    out = tmp_path / "out"
    path = write_dataset_description(out, bids)
    assert path == out / "dataset_description.json"
    desc = json.loads(path.read_text())
    assert desc["BIDSVersion"] == "1.10.0" and desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0]["Name"] == "qsmprep"
    assert desc["GeneratedBy"][0]["Version"] == __version__
    assert "Container" not in desc["GeneratedBy"][0]
    assert desc["SourceDatasets"] == [{"URL": bids.absolute().as_uri()}]
    assert desc["Name"]
    desc = json.loads(write_dataset_description(out, bids, container="docker").read_text())
    assert desc["GeneratedBy"][0]["Container"] == {"Type": "docker"}
    cont = {"Type": "singularity", "Tag": "qsmprep.sif"}
    desc = json.loads(write_dataset_description(out, bids, container=cont).read_text())
    assert desc["GeneratedBy"][0]["Container"] == cont


def test_write_sidecar_numpy_types(tmp_path):
    nii = tmp_path / "sub-01_Chimap.nii.gz"
    meta = {"Units": "ppm", "b": np.float32(0.5), "a": np.int64(3), "c": np.array([1.0, 2.0]),
            "d": (np.bool_(True), Path("/x")), "e": float("nan"), "f": {"g": np.float64(1.5)}}
    side = write_sidecar(nii, meta)
    assert side == tmp_path / "sub-01_Chimap.json"
    text = side.read_text()
    data = json.loads(text)
    assert data == {"Units": "ppm", "a": 3, "b": 0.5, "c": [1.0, 2.0], "d": [True, "/x"],
                    "e": None, "f": {"g": 1.5}}
    assert list(data) == sorted(data) and '\n  "Units"' in text
    assert write_sidecar(tmp_path / "x_mask.nii", {}).name == "x_mask.json"
    assert not list(tmp_path.glob(".*tmp"))


def test_check_output_dir(tmp_path):
    bids = make_dataset(tmp_path / "raw")
    check_output_dir(bids, tmp_path / "out", tmp_path / "work")  # fine, nothing created
    assert not (tmp_path / "out").exists()
    for out, work in [(bids, None), (bids / "derivatives", None), (bids / "sub-01/qsm", None),
                      (tmp_path / "out", bids / "work")]:
        with pytest.raises(UserInputError) as err:
            check_output_dir(bids, out, work)
        message = one_paragraph(err)
        assert "inside the input BIDS dataset" in message
        # the suggested folder is one unbroken path
        assert str((bids / "derivatives" / "qsmprep").resolve()) in message
    # the BIDS-recommended place for derivatives is allowed (discovery never indexes it)
    check_output_dir(bids, bids / "derivatives" / "qsmprep", tmp_path / "work")
    link = tmp_path / "link"
    link.symlink_to(bids)
    with pytest.raises(UserInputError):
        check_output_dir(bids, link / "derivatives")
    with pytest.raises(UserInputError):
        check_output_dir(bids, link / "sub-01")
    (tmp_path / "afile").write_text("")
    with pytest.raises(UserInputError) as err:
        check_output_dir(bids, tmp_path / "afile")
    assert "not a directory" in one_paragraph(err)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write anywhere")
def test_check_output_dir_unwritable(tmp_path):
    bids = make_dataset(tmp_path / "raw")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(UserInputError) as err:
            check_output_dir(bids, ro / "out")
        assert "not writable" in one_paragraph(err)
    finally:
        ro.chmod(0o755)


# ------------------------------------------------------------------ geometry
def test_run_geometry_oblique(tmp_path):
    root = make_dataset(tmp_path / "ds")
    add_run(root, affine=rotation_x_affine(20, voxel=(0.5, 0.6, 2.0)))
    (run,) = find_runs(root)
    g = run_geometry(run)
    assert g.shape == (8, 8, 4)
    assert np.allclose(g.voxel_size, (0.5, 0.6, 2.0))
    t = math.radians(20)
    assert np.allclose(np.abs(g.b0_direction), (0, math.sin(t), math.cos(t)), atol=1e-6)
    assert g.b0_angle_deg == pytest.approx(20.0, abs=1e-4)
    assert np.allclose(np.asarray(g.affine), rotation_x_affine(20, voxel=(0.5, 0.6, 2.0)),
                       atol=1e-5)
    summary = format_run_summary([run])
    for needle in ("01", "MEGRE", "4, 8, 12", "8x8x4", "0.5x0.6x2",
                   f"{math.sin(t):.3f}", f"{math.cos(t):.3f}", "20.0", " 3 "):
        assert needle in summary, needle


def test_format_run_summary(multi):
    runs = find_runs(multi)
    text = format_run_summary(runs)
    lines = text.splitlines()
    assert "5 run(s)" in lines[0]
    for word in ("subject", "session", "echoes", "TE (ms)", "B0 (T)", "matrix", "voxel",
                 "B0 dir"):
        assert word in lines[1]
    row = next(line for line in lines if "acq-fast run-2" in line)
    assert row.split()[:2] == ["01", "1"] and "4, 8" in row and "MEGRE" in row
    assert "(0.000, 0.000, 1.000)" in row and "0.0 deg" in row and "1x1x2" in row
    assert any("T2starw" in line and "20" in line for line in lines)
    assert any(" 7 " in line and "5, 10, 15" in line for line in lines)


# ---------------------------------------------------------------- read-only
def test_find_runs_writes_nothing_into_bids_dir(multi):
    before = snapshot(multi)
    find_runs(multi)
    find_runs(multi, ["01"], ["1"], {"megre": {"acquisition": "fast"}})
    run_geometry(find_runs(multi, ["02"])[0])
    assert snapshot(multi) == before
    assert AFFINE.shape == (4, 4)


# ------------------------------------------------------- uncombined channels / body coil
def test_uncombined_channels_and_body_coil(tmp_path):
    root = make_dataset(tmp_path / "ds")
    add_run(root, shape=(8, 8, 4, 6))                                  # 6 channels, 3 echoes
    body = add_run(root, acq="body", echo_times=(0.004,))                 # first echo only
    add_run(root, sub="02", acq="hr", shape=(8, 8, 4, 2), echo_times=(0.005, 0.010))
    add_run(root, sub="02", acq="hrbody", echo_times=(0.005, 0.010))
    add_run(root, sub="03", acq="body")                                 # orphan: ordinary run
    runs = find_runs(root)
    assert [r.name for r in runs] == ["sub-01", "sub-02_acq-hr", "sub-03_acq-body"]
    r1, r2, r3 = runs
    assert r1.uncombined and r1.n_channels == 6 and r1.n_echoes == 3
    assert r1.body_magnitude == (str(body[("mag", 1)]),)
    assert r1.body_phase == (str(body[("phase", 1)]),)
    assert r2.n_channels == 2 and len(r2.body_magnitude) == 2
    assert all("acq-hrbody" in p for p in r2.body_magnitude + r2.body_phase)
    assert not r3.uncombined and r3.n_channels == 1 and r3.body_magnitude == ()
    geom = run_geometry(r1)
    assert geom.shape == (8, 8, 4)


def test_body_coil_errors(tmp_path):
    root = make_dataset(tmp_path / "ds")
    add_run(root, shape=(8, 8, 4, 4))
    add_run(root, acq="body", echo_times=(0.004, 0.008))   # 2 echoes for a 3-echo run
    with pytest.raises(UserInputError) as err:
        find_runs(root)
    assert "first echo only" in one_paragraph(err)
    root = make_dataset(tmp_path / "ds2")
    add_run(root, shape=(8, 8, 4, 4))
    add_run(root, acq="body", shape=(8, 8, 5))
    with pytest.raises(UserInputError) as err:
        find_runs(root)
    assert "voxel grid" in one_paragraph(err)


def test_channel_count_must_agree(tmp_path):
    root = make_dataset(tmp_path / "ds")
    files = add_run(root, shape=(8, 8, 4, 4))
    write_nifti(files[("phase", 2)], shape=(8, 8, 4, 3))
    with pytest.raises(UserInputError) as err:
        find_runs(root)
    msg = one_paragraph(err)
    assert str(files[("phase", 2)]) in msg and "receive channels" in msg


def test_atomic_copy_never_leaves_a_partial_file(tmp_path, monkeypatch):
    """A copy that fails half way (disk full, kill) leaves the previous output intact and no
    temporary file behind."""
    import shutil

    from qsmprep.bids.derivatives import atomic_copy

    dst = tmp_path / "out" / "sub-01_Chimap.nii.gz"
    src = tmp_path / "new.nii.gz"
    src.write_bytes(b"new complete result")
    atomic_copy(src, dst)
    assert dst.read_bytes() == b"new complete result"

    def failing_copy(a, b):
        Path(b).write_bytes(b"new comp")  # half written, then the disk fills
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", failing_copy)
    src.write_bytes(b"a second result")
    with pytest.raises(OSError):
        atomic_copy(src, dst)
    assert dst.read_bytes() == b"new complete result"
    assert sorted(p.name for p in dst.parent.iterdir()) == ["sub-01_Chimap.nii.gz"]
