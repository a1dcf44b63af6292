"""CLI: help, version, configuration building, and one-paragraph errors without tracebacks."""


import pytest

from qsmprep import __version__
from qsmprep.cli.main import build_config, main
from qsmprep.cli.parser import build_parser
from qsmprep.config import list_presets, load_pipeline
from qsmprep.errors import UserInputError
from qsmprep.simulation.dataset import SimulationSpec, write_simulated_dataset

from ._support import TINY, run_cli


def _cli(*args):
    return run_cli(*args, timeout=120)


@pytest.fixture(scope="module")
def tiny_bids(tmp_path_factory):
    bids = tmp_path_factory.mktemp("cli") / "bids"
    write_simulated_dataset(bids, SimulationSpec(**{**TINY, "echo_times": (0.004, 0.008)}))
    return bids


def test_help_and_version():
    res = _cli("--help")
    assert res.returncode == 0
    for flag in ("--participant-label", "--session-label", "--bids-filter-file", "--pipeline",
                 "--work-dir", "--nprocs", "--omp-nthreads", "--mem-gb", "qsmprep demo"):
        assert flag in res.stdout
    res = _cli("--version")
    assert res.returncode == 0 and __version__ in res.stdout


def test_presets_load():
    assert {"default", "fast", "fsl", "deepqsm"} <= set(list_presets())
    assert load_pipeline("default").method("background") == "pdf"
    assert load_pipeline("default").method("inversion") == "tv"
    assert load_pipeline("fast").method("inversion") == "l2"
    fsl = load_pipeline("fsl")
    assert (fsl.method("mask"), fsl.method("unwrap")) == ("fsl_bet", "prelude")
    # the native BET is the default mask of every preset that does not ask for FSL
    assert {load_pipeline(n).method("mask") for n in ("default", "fast", "deepqsm")} == {"bet"}


def test_config_from_preset_and_flags(tmp_path):
    args = build_parser().parse_args([str(tmp_path / "b"), str(tmp_path / "o"), "participant",
                                      "--participant-label", "sub-01", "02", "--pipeline", "fast",
                                      "--inversion", "l2", "--lambda", "0.01", "--nprocs", "3"])
    cfg = build_config(args)
    assert cfg.participant_labels == ("sub-01", "02")
    assert cfg.pipeline.name == "fast+lambda=0.01"  # the overrides are named
    assert cfg.pipeline.method("background") == "vsharp"
    assert cfg.pipeline.method("inversion") == "l2"
    assert cfg.pipeline.params_of("inversion").lam == 0.01
    assert cfg.nprocs == 3 and cfg.omp_nthreads == 3
    with pytest.raises(Exception):
        cfg.nprocs = 4  # frozen


def test_pipeline_file(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text('[background]\nmethod = "vsharp"\nradii_mm = [8, 6, 4]\n'
                 '[background.pdf]\nmax_iter = 20\n[inversion.l2]\nlam = 0.02\n')
    s = load_pipeline(str(p))
    assert s.name == "mine" and s.params_of("background").radii_mm == (8.0, 6.0, 4.0)
    # a sub-table sets a method that is not chosen: a flag switching to it keeps the setting
    assert s.params_of("background", "pdf").max_iter == 20
    assert s.with_method("inversion", "l2").params_of("inversion").lam == 0.02
    p.write_text('[background]\nmethod = "magic"\n')
    with pytest.raises(UserInputError, match="pdf, vsharp"):
        load_pipeline(str(p))
    p.write_text('[background]\nradius = 3\n')
    with pytest.raises(UserInputError, match="not a parameter of the background method 'pdf'"):
        load_pipeline(str(p))
    p.write_text('[magic]\nmethod = "x"\n')
    with pytest.raises(UserInputError, match="unknown setting"):
        load_pipeline(str(p))
    p.write_text('[background\n')
    with pytest.raises(UserInputError, match="not valid TOML"):
        load_pipeline(str(p))


@pytest.mark.parametrize("case", ["missing_bids", "output_inside", "unknown_subject",
                                  "bad_pipeline", "missing_echo_time"])
def test_user_errors_are_one_paragraph(case, tiny_bids, tmp_path, capsys):
    bids, out = tiny_bids, tmp_path / "out"
    args = [bids, out, "participant", "-w", tmp_path / "work"]
    if case == "missing_bids":
        args[0] = tmp_path / "nope"
    elif case == "output_inside":
        args[1] = bids / "sub-01" / "qsm"
    elif case == "unknown_subject":
        args += ["--participant-label", "99"]
    elif case == "bad_pipeline":
        args += ["--pipeline", "no-such-preset"]
    elif case == "missing_echo_time":
        import shutil
        copy = tmp_path / "bids"
        shutil.copytree(bids, copy)
        sidecar = next(copy.rglob("*echo-2_part-mag_MEGRE.json"))
        sidecar.write_text('{"MagneticFieldStrength": 3}')
        args[0] = copy
    status = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("qsmprep: error: ")
    assert "Traceback" not in err
    assert not out.exists() or case == "missing_echo_time" and not any(out.rglob("*.nii.gz"))
    if case == "missing_echo_time":
        assert "echo-2_part-mag_MEGRE" in err and "EchoTime" in err
    if case == "unknown_subject":
        assert "01" in err  # lists what exists


def test_deepqsm_without_torch_stops_before_processing(tmp_path, monkeypatch, capsys):
    """The deepqsm preset where torch is missing stops at once, naming the fix."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    assert main([str(tmp_path / "bids"), str(tmp_path / "out"), "participant",
                 "--pipeline", "deepqsm"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "needs PyTorch" in err and "--inversion" in err
    assert not (tmp_path / "out").exists()
