"""Execution plugins: ``--plugin``, ``--plugin-args`` and ``--sbatch-args`` turned into the
nipype plugin and its arguments, and each node's memory/thread estimate turned into the
scheduler's resource request.

Local plugins (``Linear``, ``MultiProc``) run in this process; the batch plugins submit one
job per node (``SLURM``, ``SGE``, ``PBS``, ``LSF``: qsmprep waits for the jobs and reports
them as they finish) or the whole graph at once with dependencies (``SLURMGraph``: qsmprep
submits and exits without waiting; a re-run with the same work directory afterwards reports
and reuses what the jobs finished).
"""

from __future__ import annotations

import getpass
import json
import math
import os
from pathlib import Path

from ..errors import UserInputError

PLUGINS = ("Linear", "MultiProc", "SLURM", "SLURMGraph", "SGE", "PBS", "LSF")
LOCAL = ("Linear", "MultiProc")
# the plugin argument holding the submission command's options, per batch plugin
SUBMIT_ARGS = {"SLURM": "sbatch_args", "SLURMGraph": "sbatch_args", "SGE": "qsub_args",
               "PBS": "qsub_args", "LSF": "bsub_args"}
# what a job needs beside a node's arrays: the interpreter with numpy/scipy/nipype loaded
JOB_OVERHEAD_GB = 0.5
# seconds between two looks at the queue (squeue/qstat/bjobs) while jobs run
BATCH_POLL_S = 2.0


def load_plugin_args(text: str | None) -> dict:
    """``--plugin-args``: a JSON object, given inline or as the path of a ``.json`` file."""
    if not text:
        return {}
    source = "--plugin-args"
    path = Path(text).expanduser()
    if not text.lstrip().startswith("{") and path.is_file():
        source = f"--plugin-args file {path}"
        text = path.read_text()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserInputError(
            f"{source} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}). "
            'Give a JSON object, e.g. --plugin-args \'{"sbatch_args": "--partition=short"}\', '
            "or the path of a file holding one.") from None
    if not isinstance(value, dict):
        raise UserInputError(
            f"{source} must be a JSON object of nipype plugin arguments (e.g. "
            '{"max_jobs": 50}), not a JSON ' + type(value).__name__ + ".")
    return value


def plugin_args_from_flags(plugin: str, plugin_args: str | None,
                           sbatch_args: str | None) -> dict:
    """The plugin arguments the flags ask for (``--sbatch-args`` appended to any
    ``sbatch_args`` of ``--plugin-args``)."""
    args = load_plugin_args(plugin_args)
    if sbatch_args:
        if SUBMIT_ARGS.get(plugin) != "sbatch_args":
            raise UserInputError(
                f"--sbatch-args is for the Slurm plugins, but --plugin is {plugin}. Use "
                "--plugin SLURM (one job per step, qsmprep waits) or SLURMGraph, or pass your "
                f"scheduler's options through --plugin-args.")
        args["sbatch_args"] = " ".join(filter(None, [args.get("sbatch_args", ""),
                                                     sbatch_args])).strip()
    return args


def resource_request(plugin: str, mem_gb: float, n_procs: int) -> str:
    """The submission options reserving ``mem_gb`` (plus the interpreter) and ``n_procs``
    CPUs for one node's job."""
    mb = int(math.ceil((float(mem_gb) + JOB_OVERHEAD_GB) * 1024))
    n = max(1, int(n_procs))
    if plugin in ("SLURM", "SLURMGraph"):
        return f"--mem={mb}M --cpus-per-task={n}"
    if plugin == "SGE":  # parallel-environment names are site-specific: memory only
        return f"-l h_vmem={mb}M"
    if plugin == "PBS":
        return f"-l nodes=1:ppn={n},mem={mb}mb"
    if plugin == "LSF":  # rusage memory in LSF_UNIT_FOR_LIMITS (MB on most sites)
        return f"-n {n} -R 'rusage[mem={mb}]'"
    raise ValueError(f"no resource request for plugin {plugin!r}")


def set_node_resources(wf, plugin: str) -> int:
    """Give every submitted node of ``wf`` its own memory/CPU request (appended to the
    plugin-wide submission options); return how many nodes got one."""
    if plugin in LOCAL:
        return 0
    key = SUBMIT_ARGS[plugin]
    count = 0
    for node in wf._get_all_nodes():
        if getattr(node, "run_without_submitting", False):
            continue
        request = resource_request(plugin, node.mem_gb, node.n_procs)
        node.plugin_args = {**(node.plugin_args or {}), key: request, "overwrite": False}
        count += 1
    return count


def plugin_settings(plugin: str, user_args: dict, *, nprocs: int, mem_gb=None,
                    status_callback=None) -> dict:
    """The ``plugin_args`` of ``Workflow.run`` for ``plugin``; prepares the environment and
    nipype's polling interval for the batch plugins."""
    args = {}
    if status_callback is not None and plugin != "SLURMGraph":
        args["status_callback"] = status_callback
    if plugin == "MultiProc":
        args.update(n_procs=nprocs, raise_insufficient=False)
        if mem_gb:
            args["memory_gb"] = mem_gb
    elif plugin not in LOCAL:
        from nipype import config as ncfg

        # nipype names Slurm jobs after LOGNAME, which batch shells and containers may lack
        os.environ.setdefault("LOGNAME", _user())
        ncfg.set("execution", "poll_sleep_duration", str(BATCH_POLL_S))
        if plugin == "SLURMGraph":
            args["dont_resubmit_completed_jobs"] = True
    args.update(user_args)
    return args


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a UID without a passwd entry (docker -u 1234)
        return f"uid{os.getuid()}"
