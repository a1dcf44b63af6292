"""``qsmprep train-deepqsm``: flags and config file, checkpoints, resume, bad input."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from qsmprep.cli.main import main  # noqa: E402

TINY = ["--patch-size", "16", "--batch-size", "1", "--base-channels", "2", "--val-size", "1",
        "--val-every", "2", "--checkpoint-every", "1", "--threads", "1", "--warmup", "1"]


def test_train_resume_and_export(tmp_path, capsys):
    out = tmp_path / "run"
    cfg = tmp_path / "tiny.toml"
    cfg.write_text("steps = 2\nlr = 0.002\nseed = 5\n")
    assert main(["train-deepqsm", "--config", str(cfg), "-o", str(out), *TINY]) == 0
    ck = torch.load(out / "checkpoint-last.pt", weights_only=False)
    assert ck["step"] == 2 and ck["config"]["lr"] == 0.002 and ck["done"]
    # the same command with more steps resumes from step 2 instead of starting over
    export = tmp_path / "weights" / "deepqsm.pt"
    assert main(["train-deepqsm", "--config", str(cfg), "-o", str(out), "--steps", "4",
                 "--export", str(export), *TINY]) == 0
    err = capsys.readouterr().err
    assert "resumed from" in err and "at step 2" in err
    ck = torch.load(out / "checkpoint-last.pt", weights_only=False)
    assert ck["step"] == 4
    steps = [json.loads(line)["step"] for line in (out / "history.jsonl").read_text().splitlines()]
    assert steps == [0, 2, 4]
    payload = torch.load(export, weights_only=False)
    assert payload["steps"] == 4 and payload["format"] == "qsmprep-deepqsm-1"


def test_resume_with_other_network_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train-deepqsm", "-o", str(out), "--steps", "1", *TINY]) == 0
    tiny = [a if a != "2" else "4" for a in TINY]  # base channels 2 -> 4
    assert main(["train-deepqsm", "-o", str(out), "--steps", "2", *tiny]) == 2
    assert "--no-resume" in " ".join(capsys.readouterr().err.split())


def test_bad_config_and_patch_size(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("stepz = 3\n")
    assert main(["train-deepqsm", "--config", str(bad), "-o", str(tmp_path / "a")]) == 2
    assert "unknown keys ['stepz']" in " ".join(capsys.readouterr().err.split())
    assert main(["train-deepqsm", "--config", str(tmp_path / "missing.toml")]) == 2
    assert main(["train-deepqsm", "-o", str(tmp_path / "b"), "--patch-size", "20"]) == 2
    assert "multiple of" in " ".join(capsys.readouterr().err.split())


def test_brain_like_recipe_keys_train_a_bias_free_network(tmp_path):
    from qsmprep.algorithms.deepqsm import load_model

    out = tmp_path / "run"
    cfg = tmp_path / "tissue.toml"
    cfg.write_text("steps = 2\nbias = false\nloss = \"demeaned\"\nmin_chi = 0.01\n"
                   "tissue_prob = 0.5\nstrong_max_radius = 2.0\nstrong_factor_min = 3.0\n"
                   "strong_factor_max = 20.0\n")
    assert main(["train-deepqsm", "--config", str(cfg), "-o", str(out), *TINY]) == 0
    model = load_model(out / "deepqsm.pt")
    assert model.meta["arch"]["bias"] is False
    assert all(m.bias is None for m in model.net.modules() if hasattr(m, "bias"))
    hist = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert all("val_rel" in h for h in hist)


def test_unknown_loss_and_bad_contrast_range_are_refused(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("loss = \"l1\"\n")
    assert main(["train-deepqsm", "--config", str(cfg), "-o", str(tmp_path / "a"), *TINY]) == 2
    assert "\"demeaned\"" in capsys.readouterr().err
    cfg.write_text("min_chi = 0.5\nchi_range = 0.25\n")
    assert main(["train-deepqsm", "--config", str(cfg), "-o", str(tmp_path / "b"), *TINY]) == 2
    assert "min_chi" in capsys.readouterr().err
