"""``qsmprep stage``: one stage on plain files gives what the pipeline's node gave."""

import nibabel as nib
import numpy as np
import pytest

from qsmprep import methods
from qsmprep.cli.main import main
from qsmprep.simulation.dataset import SimulationSpec, write_simulated_dataset


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("stage")
    write_simulated_dataset(root / "bids", SimulationSpec(
        shape=(40, 48, 40), voxel_size=(4.0, 4.0, 4.0), scale=0.8,
        echo_times=(0.004, 0.008, 0.012)))
    assert main([str(root / "bids"), str(root / "out"), "participant", "-w", str(root / "work"),
                 "--nprocs", "1"]) == 0
    run = root / "work" / "qsmprep_participant_wf" / "run_sub_01"
    return root, _Nodes(run)


class _Nodes:
    """``w / "background/local_field.nii.gz"`` -> that node's file wherever its stage
    workflow nests it in the work dir."""

    def __init__(self, run):
        self.run = run

    def __truediv__(self, rel):
        node, name = rel.split("/")
        (found,) = self.run.glob(f"**/{node}/{name}")
        return found


def _data(path):
    return np.asanyarray(nib.load(path).dataobj)


def test_stage_invert_gives_the_pipeline_chi(pipeline_run, capsys):
    root, w = pipeline_run
    out = root / "chi_stage.nii.gz"
    assert main(["stage", "invert", "--method", "tv", str(w / "background/local_field.nii.gz"),
                 "--mask", str(w / "background/local_mask.nii.gz"),
                 "--magnitude", str(w / "stack_echoes/magnitude.nii.gz"), "-o", str(out)]) == 0
    assert np.array_equal(_data(out), _data(w / "inversion/chi.nii.gz"))


def test_stage_background_and_parameters(pipeline_run):
    root, w = pipeline_run
    out = root / "local_lbv.nii.gz"
    assert main(["stage", "background", "--method", "lbv", str(w / "field_fit/total_field.nii.gz"),
                 "--mask", str(w / "field_fit/quality_mask.nii.gz"), "--peel", "2",
                 "-o", str(out)]) == 0
    local, mask = _data(out), _data(root / "local_lbv_mask.nii.gz") > 0
    assert mask.any() and np.isfinite(local).all() and not local[~mask].any()
    # a parameter out of its range stops before anything runs, naming it
    assert main(["stage", "background", "--method", "lbv", str(w / "field_fit/total_field.nii.gz"),
                 "--mask", str(w / "field_fit/quality_mask.nii.gz"), "--peel", "-1",
                 "-o", str(root / "bad.nii.gz")]) == 2
    assert not (root / "bad.nii.gz").exists()


def test_stage_needs_its_inputs(pipeline_run, capsys):
    root, w = pipeline_run
    assert main(["stage", "invert", "--method", "tv", str(w / "background/local_field.nii.gz"),
                 "--mask", str(w / "background/local_mask.nii.gz"), "-o",
                 str(root / "x.nii.gz")]) == 2
    assert "--magnitude" in capsys.readouterr().err


def test_stage_help_lists_registry_methods_with_units(capsys):
    with pytest.raises(SystemExit):
        main(["stage", "invert", "--help"])
    text = capsys.readouterr().out
    for m in methods.methods_of("inversion"):
        if m.name != "preconditioned":
            assert m.name in text
    assert "ppm^2" in " ".join(text.split()) and "--threshold" in text


def test_stage_unwrap_gives_the_pipeline_unwrapped_phase(pipeline_run, tmp_path):
    root, w = pipeline_run
    out = tmp_path / "unwrapped.nii.gz"
    assert main(["stage", "unwrap", "--method", "temporal", str(w / "stack_echoes/phase.nii.gz"),
                 "--magnitude", str(w / "stack_echoes/magnitude.nii.gz"),
                 "--mask", str(w / "brain_mask/mask.nii.gz"),
                 "--echo-times", "0.004", "0.008", "0.012", "-o", str(out)]) == 0
    assert np.array_equal(_data(out), _data(w / "unwrap/unwrapped.nii.gz"))
    with pytest.raises(SystemExit):  # echo times are required
        main(["stage", "unwrap", str(w / "stack_echoes/phase.nii.gz"), "-o", str(out)])
