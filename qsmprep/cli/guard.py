"""What keeps a participant run safe around nipype: one run per participant and work directory, a clean stop
on SIGTERM/SIGINT, and a memory budget that is checked, not only used for scheduling."""

from __future__ import annotations

import fcntl
import math
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from ..errors import UserInputError

__all__ = ["lock_participants", "stop_cleanly_on_signals", "check_memory_budget",
           "check_disk_space", "disk_needs", "watch_disk_space"]

_LOCKS = {}  # resolved lock path -> open lock file, held until the process exits


def lock_participants(work_dir, subjects) -> list[Path]:
    """Take one lock per participant in the work directory (``WORK_DIR/locks/sub-<label>.lock``,
    an advisory ``flock`` released by the OS when this process ends, even on kill -9). A
    second run of the same participant on the same work directory stops with a message
    naming the first; other participants may share the work directory."""
    paths = []
    for subject in sorted(set(subjects)):
        path = Path(work_dir) / "locks" / f"sub-{subject}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        key = str(path.resolve())
        paths.append(path)
        if key in _LOCKS:  # this process holds it already (sequential runs in one process)
            continue
        fh = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise UserInputError(
                f"sub-{subject} is being processed by another qsmprep run on the work directory "
                f"{work_dir} ({holder}). Two runs of one participant cannot share a work "
                "directory: wait for that run to finish, or give this one its own "
                "-w/--work-dir.") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {os.uname().nodename}, started "
                 f"{datetime.now().isoformat(timespec='seconds')}\n")
        fh.flush()
        _LOCKS[key] = fh
    return paths


def _stop_children() -> int:
    """Terminate this process's worker processes (MultiProc's pool); return how many."""
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    deadline = time.monotonic() + 5
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
        if child.is_alive():
            child.kill()
    return len(children)


def stop_cleanly_on_signals(work_dir, output_dir, out=None) -> None:
    """On SIGTERM (a cluster's time limit, ``kill``) or SIGINT (Ctrl-C): stop the worker
    processes, delete this process's half-written temporary outputs, say how to resume, and
    exit with 128 + the signal number. Finished steps stay cached in ``work_dir``; every
    derivative is the old file or the complete new one (writes are atomic)."""
    started = time.monotonic()
    main_pid = os.getpid()

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        if os.getpid() != main_pid:  # a forked worker inherited the handler: just stop
            os._exit(128 + signum)
        stream = out or sys.stdout
        workers = _stop_children()
        for tmp in Path(output_dir).rglob(f".*.{os.getpid()}.tmp"):
            tmp.unlink(missing_ok=True)
        name = signal.Signals(signum).name
        print(f"\nqsmprep: stopped by {name} after {time.monotonic() - started:.0f} s"
              f"{f' ({workers} worker process(es) stopped)' if workers else ''}. Finished steps "
              f"are cached in {work_dir}: run the same command with the same -w to resume. "
              "Runs without a completion record in OUTPUT_DIR/logs/complete/ are not finished.",
              file=stream, flush=True)
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            signal.signal(sig, handler)
        except ValueError:  # not the main thread (qsmprep called from a library): leave as is
            return


def check_memory_budget(wf, mem_gb) -> None:
    """Stop before anything runs when ``--mem-gb`` is below the largest node's estimate
    (nipype would only log a warning and run it anyway, past the budget)."""
    if mem_gb is None:
        return
    nodes = [(float(getattr(n, "mem_gb", 0) or 0), n) for n in wf._get_all_nodes()]
    if not nodes:
        return
    need, node = max(nodes, key=lambda x: x[0])
    if need > float(mem_gb):
        raise UserInputError(
            f"--mem-gb {mem_gb:g} is below what the largest step needs: about {need:.2g} GB "
            f"for {node.fullname}. Give --mem-gb {need:.2g} or more (or leave it out to use "
            "the machine's memory); a step cannot be split to fit a smaller budget.")


#: below this many free bytes on the work or output filesystem, a run stops (a write that
#: fails for space leaves nipype's MultiProc waiting forever for a result file)
MIN_FREE_BYTES = 16 * 1024 * 1024


def _free(path) -> int:
    path = Path(path)
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def disk_needs(runs, geometries) -> tuple[float, float]:
    """``(work_bytes, output_bytes)`` a run needs: float32 volumes per run, about three per
    echo (and channel) plus ten in the work dir (measured: 4.2 MB for the 40x48x40 3-echo
    test head, gzip-compressed; this allows 5.8 MB), eight in the outputs (measured 0.9 MB)."""
    work = out = 0.0
    for run, geom in zip(runs, geometries):
        nvox = float(math.prod(geom.shape))
        work += nvox * 4 * (3 * len(run.echo_times) * max(1, run.n_channels) + 10)
        out += nvox * 4 * 8
    return work, out


def check_disk_space(needs: dict) -> None:
    """Stop before anything runs when a folder's filesystem has less free space than the
    run needs: ``needs`` maps a folder (and its option name) to bytes, e.g.
    ``{(work_dir, "--work-dir"): 5e8}``."""
    for (path, option), need in needs.items():
        free = _free(path)
        if free < need + MIN_FREE_BYTES:
            raise UserInputError(
                f"The {option} {path} has {free / 1e6:.0f} MB free, but this run needs about "
                f"{(need + MIN_FREE_BYTES) / 1e6:.0f} MB there. Free some space or choose a "
                "folder on a larger disk (on a cluster: the node's scratch for -w).")


def watch_disk_space(paths, out=None, interval: float = 1.0) -> threading.Thread:
    """A daemon thread that stops the run cleanly (message, workers stopped, exit 1) when a
    filesystem of ``paths`` falls below :data:`MIN_FREE_BYTES` free during the run, instead
    of nipype failing to write a result and waiting for it forever."""
    main_pid = os.getpid()

    def watch():
        while True:
            for path in paths:
                free = _free(path)
                if free < MIN_FREE_BYTES and os.getpid() == main_pid:
                    workers = _stop_children()
                    print(f"\nqsmprep: error: the disk of {path} is full ({free / 1e6:.1f} MB "
                          f"free); the run stopped{f' ({workers} worker(s))' if workers else ''}. "
                          "Free space or move -w/OUTPUT_DIR to a larger disk, then run the same "
                          "command: finished steps are cached, and outputs are either complete "
                          "or the previous ones (atomic writes).", file=out or sys.stdout,
                          flush=True)
                    os._exit(1)
            time.sleep(interval)

    thread = threading.Thread(target=watch, name="qsmprep-disk-watch", daemon=True)
    thread.start()
    return thread
