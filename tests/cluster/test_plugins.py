"""--plugin / --plugin-args / --sbatch-args, the per-step scheduler requests, and the cache
surviving a change of --nprocs / --omp-nthreads (thread counts are not hashed)."""

import json

import pytest

from qsmprep.cli.plugins import (PLUGINS, plugin_args_from_flags, plugin_settings,
                                 resource_request, set_node_resources)
from qsmprep.errors import UserInputError

from ._support import run_cli, tiny_dataset


def test_plugin_args_from_json_file_and_sbatch_args(tmp_path):
    f = tmp_path / "plugin.json"
    f.write_text(json.dumps({"sbatch_args": "--partition=short", "max_jobs": 5}))
    args = plugin_args_from_flags("SLURM", str(f), "--account=lab")
    assert args == {"sbatch_args": "--partition=short --account=lab", "max_jobs": 5}
    assert plugin_args_from_flags("MultiProc", '{"maxtasksperchild": 1}', None) == \
        {"maxtasksperchild": 1}


@pytest.mark.parametrize("text, plugin, sbatch, words", [
    ("{bad", "SLURM", None, ["not valid JSON", "--plugin-args"]),
    ("[1, 2]", "SLURM", None, ["JSON object", "list"]),
    (None, "SGE", "--time=1:00:00", ["--sbatch-args", "SGE", "--plugin SLURM"]),
])
def test_plugin_flag_mistakes_are_one_paragraph(text, plugin, sbatch, words):
    with pytest.raises(UserInputError) as err:
        plugin_args_from_flags(plugin, text, sbatch)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_cli_reports_bad_plugin_args_without_traceback(tmp_path):
    res = run_cli(tmp_path / "bids", tmp_path / "out", "participant", "--plugin", "SLURM",
                  "--plugin-args", "{oops", cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "--plugin-args is not valid JSON" in res.stderr


def test_resource_requests_per_scheduler():
    assert resource_request("SLURM", 1.5, 4) == "--mem=2048M --cpus-per-task=4"
    assert resource_request("SLURMGraph", 0.2, 1) == "--mem=717M --cpus-per-task=1"
    assert resource_request("PBS", 1.5, 2) == "-l nodes=1:ppn=2,mem=2048mb"
    assert resource_request("SGE", 1.5, 2) == "-l h_vmem=2048M"
    assert resource_request("LSF", 1.5, 2) == "-n 2 -R 'rusage[mem=2048]'"
    assert set(PLUGINS) >= {"Linear", "MultiProc", "SLURM", "SLURMGraph", "SGE", "PBS", "LSF"}


def test_every_submitted_node_gets_its_estimate():
    from nipype.pipeline import engine as pe
    from nipype.interfaces.utility import IdentityInterface

    wf = pe.Workflow(name="w")
    big = pe.Node(IdentityInterface(fields=["a"]), name="big", mem_gb=3.0, n_procs=2)
    small = pe.Node(IdentityInterface(fields=["a"]), name="small", mem_gb=0.2)
    local = pe.Node(IdentityInterface(fields=["a"]), name="local", run_without_submitting=True)
    wf.connect([(big, small, [("a", "a")]), (small, local, [("a", "a")])])
    assert set_node_resources(wf, "SLURM") == 2
    assert big.plugin_args == {"sbatch_args": "--mem=3584M --cpus-per-task=2",
                               "overwrite": False}
    assert small.plugin_args["sbatch_args"] == "--mem=717M --cpus-per-task=1"
    assert not local.plugin_args
    assert set_node_resources(wf, "MultiProc") == 0


def test_plugin_settings(monkeypatch):
    monkeypatch.delenv("LOGNAME", raising=False)
    args = plugin_settings("SLURM", {"max_jobs": 3}, nprocs=4, status_callback=print)
    assert args == {"status_callback": print, "max_jobs": 3}
    import os
    assert os.environ["LOGNAME"]  # nipype's SLURM plugin names jobs after it
    assert plugin_settings("MultiProc", {}, nprocs=4, mem_gb=8) == \
        {"n_procs": 4, "raise_insufficient": False, "memory_gb": 8}
    graph = plugin_settings("SLURMGraph", {}, nprocs=1, status_callback=print)
    assert "status_callback" not in graph and graph["dont_resubmit_completed_jobs"]


def _results(work):
    """mtime of every node's result file under ``work``, by node directory."""
    return {str(p.parent.relative_to(work)): p.stat().st_mtime_ns
            for p in work.rglob("result_*.pklz")}


def test_rerun_with_other_nprocs_and_threads_reuses_every_cached_step(tmp_path):
    bids = tiny_dataset(tmp_path / "bids")
    work = tmp_path / "work"
    first = run_cli(bids, tmp_path / "out", "participant", "-w", work, "--pipeline", "fast",
                    "--nprocs", 1, "--omp-nthreads", 1, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    before = _results(work)
    assert any("inversion" in k for k in before) and any("unwrap" in k for k in before)
    second = run_cli(bids, tmp_path / "out", "participant", "-w", work, "--pipeline", "fast",
                     "--nprocs", 2, "--omp-nthreads", 2, cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    after = _results(work)
    # the computing steps (the derivative sinks re-write the outputs on every run)
    steps = [k for k in before if "/run_" in k]
    assert len(steps) >= 5, steps
    recomputed = sorted(k for k in steps if after.get(k) != before[k])
    assert not recomputed, f"re-run with other thread counts recomputed {recomputed}"
