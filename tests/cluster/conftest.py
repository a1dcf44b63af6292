"""A single-node Slurm cluster (Debian's slurm-wlm + munge) for the cluster tests.

The fixture writes a private munge key and slurm.conf under a temporary directory, starts
munged, slurmctld and slurmd on free ports (nothing in /etc is touched), waits until the
node is idle, and stops the daemons afterwards. It skips, with the reason, when the
programs are missing, when it is not root (slurmd must be), or when the cluster does not
come up; `.ci/run` installs the packages, so in CI it runs.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo")


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no two adjacent free ports")


def _kill_pidfile(path: Path, sig=signal.SIGTERM, wait=10.0):
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


SLURM_CONF = """\
ClusterName=qsmprepci
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={port}
SlurmdPort={port1}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge.socket
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=30
KillWait=5
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName=ci Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A running single-node Slurm; yields the environment (SLURM_CONF, LOGNAME) its
    clients need. Jobs inherit the caller's environment (sbatch --export=ALL)."""
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if missing:
        pytest.skip(f"Slurm is not installed ({', '.join(missing)} missing): "
                    "apt-get install slurm-wlm munge (as .ci/run does)")
    if os.geteuid() != 0:
        pytest.skip("a single-node Slurm needs root here (slurmd runs as root)")
    root = tmp_path_factory.mktemp("slurm")
    os.chmod(root, 0o755)
    for sub in ("state", "spool"):
        (root / sub).mkdir()
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    host = socket.gethostname().split(".")[0]
    port = _free_port_pair()
    cpus = len(os.sched_getaffinity(0))
    mem_mb = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 * 0.8)
    conf = root / "slurm.conf"
    conf.write_text(SLURM_CONF.format(host=host, port=port, port1=port + 1, root=root,
                                      cpus=cpus, mem_mb=mem_mb))
    env = {**os.environ, "SLURM_CONF": str(conf), "LOGNAME": os.environ.get("LOGNAME", "root")}

    def start(cmd):
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        if res.returncode:
            stop()
            pytest.skip(f"Slurm did not start: {' '.join(map(str, cmd))} exited "
                        f"{res.returncode}: {(res.stderr or res.stdout).strip()[-500:]}")

    def stop():
        for pid in ("slurmd.pid", "slurmctld.pid", "munged.pid"):
            _kill_pidfile(root / pid)

    start(["munged", "--force", f"--key-file={key}", f"--socket={root}/munge.socket",
           f"--pid-file={root}/munged.pid", f"--log-file={root}/munged.log",
           f"--seed-file={root}/munged.seed"])
    start(["slurmctld", "-f", str(conf)])
    start(["slurmd", "-f", str(conf)])
    deadline = time.monotonic() + 60
    state = ""
    while time.monotonic() < deadline:
        res = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True,
                             text=True, timeout=30)
        state = res.stdout.strip() or res.stderr.strip()
        if state == "idle":
            break
        time.sleep(0.5)
    else:
        logs = "; ".join(f"{n}: {(root / n).read_text()[-300:]}" for n in
                         ("slurmctld.log", "slurmd.log") if (root / n).exists())
        stop()
        pytest.skip(f"the single-node Slurm did not become idle in 60 s (sinfo: {state!r}); "
                    f"{logs}")
    try:
        yield {"SLURM_CONF": str(conf), "LOGNAME": env["LOGNAME"], "root": root}
    finally:
        stop()
