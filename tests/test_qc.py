"""Quality-control checks (qsmprep.qc and the checks they rely on), without nipype."""

from __future__ import annotations

import types

import numpy as np
import pytest

from qsmprep.algorithms.phase import (PhaseUnitsError, identify_phase_units, phase_range,
                                      rescale_phase)
from qsmprep.errors import QCError, UserInputError
from qsmprep.qc import QC_KEY, add_warnings, run_warnings, warnings_of
from qsmprep.qc.inputs import (check_field_strength, check_magnitude_signal, convert_run_phase,
                               nonfinite_warning, zero_nonfinite)
from qsmprep.qc.results import (MAX_REMOVED_FRACTION, check_chimap, consistency_warning,
                                drop_nonfinite)


def truth(shape=(20, 16, 12), seed=0):
    return np.random.default_rng(seed).uniform(-np.pi, np.pi, shape)


def angular_error(a, b):
    return np.abs((np.asarray(a, np.float64) - b + np.pi) % (2 * np.pi) - np.pi).max()


# ------------------------------------------------------------------ phase units
ENCODINGS = {
    # name: (encode radians [-pi, pi) -> raw, identified units, error bound in radians)
    "radians": (lambda r: r.astype(np.float32), "radians", 1e-6),
    "radians 0..2pi": (lambda r: (r % (2 * np.pi)).astype(np.float32), "radians", 1e-6),
    "degrees": (lambda r: np.rad2deg(r).astype(np.float32), "degrees", 1e-5),
    "degrees 0..360": (lambda r: (np.rad2deg(r) % 360).astype(np.float32), "degrees", 1e-5),
    "integer degrees": (lambda r: np.round(np.rad2deg(r)).astype(np.int16), "degrees",
                        np.deg2rad(0.5) + 1e-6),
    # v = (r + pi) / 2pi * 2^n (Siemens 0..4095), v = r / pi * 2^n (-4096..4095), wrapped
    "uint12": (lambda r: (np.round((r + np.pi) / (2 * np.pi) * 4096) % 4096).astype(np.uint16),
               "integer", np.pi / 4096 + 1e-6),
    "int13": (lambda r: ((np.round(r / np.pi * 4096) + 4096) % 8192 - 4096).astype(np.int16),
              "integer", np.pi / 4096 + 1e-6),
    "uint8": (lambda r: (np.round((r + np.pi) / (2 * np.pi) * 256) % 256).astype(np.uint8),
              "integer", np.pi / 256 + 1e-6),
}


@pytest.mark.parametrize("name", ENCODINGS)
def test_phase_units_identified_and_converted(name):
    encode, units, bound = ENCODINGS[name]
    rad = truth()
    raw = encode(rad)
    assert identify_phase_units(phase_range(raw))[0] == units
    out, note = rescale_phase(raw)
    assert out.dtype == np.float32 and out.min() >= -np.pi - 1e-6 and out.max() < np.pi + 1e-6
    assert angular_error(out, rad) <= bound + 1e-5, note
    assert units.rstrip("s") in note or "rescaled" in note


@pytest.mark.parametrize("values", [
    lambda r: r * 0.0037 / np.pi,          # max |phase| 0.0037: not radians, not anything
    lambda r: np.zeros_like(r),            # constant
    lambda r: (r + np.pi) * 150.0,         # float 0..942: no known range
    lambda r: np.round(r / np.pi * 3142),  # milliradians +-3142: 77% of +-4096
])
def test_unidentifiable_phase_refused(values, tmp_path):
    raw = values(truth())
    with pytest.raises(PhaseUnitsError):
        rescale_phase(raw)
    path = tmp_path / "sub-01_echo-1_part-phase_MEGRE.nii.gz"
    with pytest.raises(UserInputError) as exc:
        convert_run_phase([raw, raw], [path, path], "auto")
    msg = str(exc.value)
    assert str(path) in msg and "--phase-units" in msg and "\n" not in msg


def test_phase_units_override():
    rad = truth()
    tiny = (rad * 0.0037 / np.pi).astype(np.float32)
    out, note = convert_run_phase([tiny], ["p.nii"], "radians")
    np.testing.assert_allclose(out[0], tiny, atol=1e-7)
    assert "radians" in note
    deg, _ = convert_run_phase([np.rad2deg(rad)], ["p.nii"], "degrees")
    assert angular_error(deg[0], rad) < 1e-5
    ints = np.round(rad / np.pi * 3000).astype(np.int16)  # unidentifiable under auto
    out, note = convert_run_phase([ints], ["p.nii"], "integer")
    assert "4096" in note
    with pytest.raises(UserInputError, match="--phase-units radians"):
        convert_run_phase([np.full((4, 4), 4095.0)], ["p.nii"], "radians")


def test_run_phase_decided_once_for_all_echoes():
    """An echo whose values happen to miss the top of the range is read like the others."""
    rad = truth()
    a = np.round((rad + np.pi) / (2 * np.pi) * 4096).clip(0, 4095)
    b = np.clip(a, 0, 2000)  # alone: 0..2000 is [0, 2048)
    out, note = convert_run_phase([a, b], ["e1", "e2"], "auto")
    assert "[0, 4096)" in note
    np.testing.assert_allclose(out[1][b < 2000], out[0][b < 2000], atol=1e-6)


# ------------------------------------------------------------ input images
def test_all_zero_or_nan_magnitude_refused(tmp_path):
    path = tmp_path / "sub-01_echo-2_part-mag_MEGRE.nii.gz"
    for data in (np.zeros((4, 4, 4)), np.full((4, 4, 4), np.nan)):
        with pytest.raises(UserInputError) as exc:
            check_magnitude_signal(data, path)
        assert str(path) in str(exc.value)
    check_magnitude_signal(np.eye(4), path)


def test_nonfinite_voxels_zeroed_and_counted():
    m = np.ones((4, 4, 4), np.float32)
    p = np.zeros((4, 4, 4), np.float32)
    m[0, 0, 0], m[1, 1, 1], p[2, 2, 2] = np.nan, np.inf, np.nan
    m2, p2, nm, npha = zero_nonfinite(m, p)
    assert (nm, npha) == (2, 1)
    assert np.isfinite(m2).all() and np.isfinite(p2).all()
    assert m2[0, 0, 0] == m2[2, 2, 2] == 0 and m2.sum() == 61
    msg = nonfinite_warning({"mag.nii": 2, "phase.nii": 0}, 64)
    assert "2 in mag.nii" in msg and "phase.nii" not in msg
    assert nonfinite_warning({"mag.nii": 0}, 64) is None


@pytest.mark.parametrize("b0,ok", [(3.0, True), (0.1, True), (11.7, True), (50.0, False),
                                   (0.05, False), (3000.0, False), (float("nan"), False)])
def test_field_strength_range(b0, ok):
    if ok:
        assert check_field_strength(b0, "x.nii.gz") == b0
    else:
        with pytest.raises(UserInputError) as exc:
            check_field_strength(b0, "sub-01_echo-1_part-mag_MEGRE.nii.gz", sidecar="s.json")
        assert "sub-01_echo-1_part-mag_MEGRE.nii.gz" in str(exc.value)
        assert "s.json" in str(exc.value)


# ------------------------------------------------------------------ results
def test_consistency_warning_threshold():
    n = 100_000
    assert consistency_warning(int(MAX_REMOVED_FRACTION * n), n) is None
    msg = consistency_warning(5196, n)
    assert "5196 voxels" in msg and "5.2%" in msg and "removed" in msg
    assert "kept" in consistency_warning(5196, n, applied=False)
    assert consistency_warning(0, 0) is None


def test_drop_nonfinite_field():
    f = np.zeros((4, 4, 4), np.float32)
    mask = np.ones(f.shape, bool)
    f[1, 1, 1], f[2, 2, 2] = np.nan, np.inf
    mask[2, 2, 2] = False
    out, m2, msg = drop_nonfinite(f, mask, "total field")
    assert np.isfinite(out).all() and not m2[1, 1, 1] and m2.sum() == 62
    assert "total field" in msg and "2 non-finite" in msg and "1 of them inside" in msg
    assert drop_nonfinite(out, m2, "x")[2] is None


def test_check_chimap():
    rng = np.random.default_rng(0)
    mask = np.zeros((8, 8, 8), bool)
    mask[2:6, 2:6, 2:6] = True
    chi = (rng.normal(0, 0.05, mask.shape) * mask).astype(np.float32)
    check_chimap(chi, mask)  # fine
    bad = chi.copy()
    bad[3, 3, 3] = np.nan
    with pytest.raises(QCError, match="NaN"):
        check_chimap(bad, mask, "local.nii.gz")
    with pytest.raises(QCError, match="zero everywhere"):
        check_chimap(np.zeros_like(chi), mask)
    with pytest.raises(QCError, match="constant"):
        check_chimap(np.full_like(chi, 0.3), mask)
    with pytest.raises(QCError, match="empty mask"):
        check_chimap(chi, np.zeros_like(mask))
    chi[~mask] = np.nan  # outside the mask does not matter
    check_chimap(chi, mask)


def test_warning_helpers():
    p = add_warnings({"Method": "x"}, [None, "a"])
    assert p == {"Method": "x", QC_KEY: ["a"]}
    assert warnings_of(add_warnings(p, ["b"])) == ["a", "b"]
    assert warnings_of(None) == [] and add_warnings({}, [])[QC_KEY] == []
    assert run_warnings([("mask", p), ("fit", {}), ("inv", {QC_KEY: ["c", "c"]})]) == \
        ["mask: a", "inv: c"]


def test_node_error_read_from_traceback():
    from qsmprep.cli.run import _node_error

    tb = ("Traceback (most recent call last):\n  File \"x\", line 1\n"
          "qsmprep.errors.UserInputError: The phase units of a.nii could not be established.\n")
    node = types.SimpleNamespace(result=types.SimpleNamespace(
        runtime=types.SimpleNamespace(traceback=tb)))
    assert _node_error(node) == ("UserInputError",
                                 "The phase units of a.nii could not be established.")
    node.result.runtime.traceback = "ValueError: boom\n"
    assert _node_error(node) is None


# --------------------------------------------------------- magnitude scaling
@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_huge_magnitudes_do_not_overflow():
    """Magnitudes up to ~1e7 (a Philips scan reaches 8.6e6): no overflow warning, finite
    results, and the same field and noise as for magnitudes ~1 (weights are relative)."""
    from qsmprep.algorithms.echoes.echofit import fit_field, fit_field_nonlinear
    from qsmprep.algorithms.magnitude import rss
    from qsmprep.algorithms.mask.masking import magnitude_mask
    from qsmprep.algorithms.echoes.r2star import r2star_map
    from qsmprep.algorithms.unwrap.laplacian import temporal_unwrap

    rng = np.random.default_rng(0)
    shape = (16, 16, 16)
    te = np.array([0.004, 0.008, 0.012, 0.016])
    base = rng.uniform(0.5, 1.5, shape + (4,)).astype(np.float32) * np.exp(-30 * te)
    base[:3] = rng.uniform(0, 0.02, (3, 16, 16, 4))  # background
    big = (base * np.float32(8.6e6)).astype(np.float32)
    big[8, 8, 8] = [1e7, 0, 0, 0]      # all weight on one echo: singular fit
    big[4, 4, 4] = [1e7, 1e-3, 0, 0]
    ph = (2 * np.pi * 30 * te + rng.normal(0, 0.05, shape + (4,))).astype(np.float32)
    mask = np.zeros(shape, bool)
    mask[3:, :, :] = True
    for fitter in (fit_field, fit_field_nonlinear):
        fit = fitter(ph, big, te, 3.0, mask)
        ref = fitter(ph, big / np.float32(8.6e6), te, 3.0, mask)
        for a in (fit.field_ppm, fit.noise_ppm, fit.phase_offset):
            assert np.isfinite(a).all()
        ok = mask.copy()
        ok[8, 8, 8] = ok[4, 4, 4] = False
        np.testing.assert_allclose(fit.field_ppm[ok], ref.field_ppm[ok], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(fit.noise_ppm[ok], ref.noise_ppm[ok], rtol=1e-3)
    for method in ("arlo", "loglinear"):
        r2 = r2star_map(big, te, method=method, mask=mask)
        assert np.isfinite(r2.r2star).all() and np.isfinite(r2.t2star).all()
    un = temporal_unwrap(ph, te, (1.0, 1.0, 1.0), magnitudes=big, mask=mask)
    assert np.isfinite(un).all()
    assert np.isfinite(rss(big)).all() and rss(big).max() > 8e6
    magnitude_mask(big, (1.0, 1.0, 1.0))


# ------------------------------------------------------- numeric settings
@pytest.mark.parametrize("toml,key", [
    ("[background]\nmethod = \"pdf\"\nmax_iter = -5\n", "[background.pdf] max_iter"),
    ("[inversion.l2]\nlam = nan\n", "[inversion.l2] lam"),
    ("[inversion.tkd]\nthreshold = -0.1\n", "[inversion.tkd] threshold"),
    ("[mask.bet]\nopen_mm = inf\n", "[mask.bet] open_mm"),
    ("[background.vsharp]\nradii_mm = [6, -2]\n", "[background.vsharp] radii_mm"),
])
def test_numeric_settings_refused(toml, key, tmp_path):
    from qsmprep.config import load_pipeline

    path = tmp_path / "mine.toml"
    path.write_text(toml)
    with pytest.raises(UserInputError) as exc:
        load_pipeline(str(path))
    assert key in str(exc.value) and str(path) in str(exc.value)


def test_numeric_flags_refused():
    from qsmprep.config import PipelineSettings, with_overrides

    with pytest.raises(UserInputError, match="--lambda"):
        with_overrides(PipelineSettings(), lam=-1.0)
    with pytest.raises(UserInputError, match="--lambda"):
        with_overrides(PipelineSettings(), lam=float("inf"))
    assert with_overrides(PipelineSettings(), lam=0.01).params_of("inversion").lam == 0.01
    with pytest.raises(UserInputError, match="has no lambda"):
        with_overrides(PipelineSettings(), {"inversion": "tkd"}, lam=0.01)
