"""A real single-node SLURM cluster on 127.0.0.1, for the SLURM profile's end-to-end test.

Debian's ``slurm-wlm`` and ``munge``, started by hand (no systemd): munged, then slurmctld and slurmd
in the foreground, each kept by PID and stopped in reverse order. The node is declared the size of a
GPU node (``SlurmdParameters=config_overrides``: 8 CPUs, 128 GB, 8 GPUs as gres on placeholder
device files), so the DAG's default resource requests are accepted as they are, several jobs run at
once as on a real cluster, and jobs fall back to the CPU inside.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

DAEMONS = ("munged", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")  # the plugin's inner srun drops SLURM_CONF, so it reads this path


def missing_requirements() -> str | None:
    """Why a loopback cluster cannot start here, or None when it can."""
    missing = [name for name in DAEMONS if shutil.which(name) is None and not Path(f"/usr/sbin/{name}").exists()]
    if missing:
        return f"not installed: {', '.join(missing)} (apt-get install slurm-wlm munge; scripts/test.sh does this as root)"
    if os.geteuid() != 0:
        return "the loopback cluster runs its daemons as root"
    if SYSTEM_CONF.exists() and not SYSTEM_CONF.is_symlink():
        return f"{SYSTEM_CONF} is a real cluster's configuration; not replacing it"
    return None


def _slurm_conf(work: Path, host: str, cpus: int, memory_mb: int, gpus: int) -> str:
    return f"""ClusterName=akdgloop
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
# Finished jobs stay in squeue/scontrol for 2 h: the plugin's squeue status route and the test read them.
MinJobAge=7200
StateSaveLocation={work}/state
SlurmdSpoolDir={work}/spool
SlurmctldPidFile={work}/slurmctld.pid
SlurmdPidFile={work}/slurmd.pid
SlurmctldLogFile={work}/slurmctld.log
SlurmdLogFile={work}/slurmd.log
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} Gres=gpu:{gpus} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _munge_works() -> bool:
    encoded = subprocess.run(["munge", "-n"], capture_output=True)
    return encoded.returncode == 0 and subprocess.run(["unmunge"], input=encoded.stdout, capture_output=True).returncode == 0


def _start_munged(stack: contextlib.ExitStack) -> None:
    """Reuse a working munged; else start one as the munge user and stop it on exit."""
    if _munge_works():
        return
    run_dir = Path("/run/munge")
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.chown(run_dir, "munge", "munge")
    daemon = subprocess.Popen(["/usr/sbin/munged", "--foreground"], user="munge", group="munge", stderr=subprocess.PIPE)
    stack.callback(_stop, daemon)
    _wait_for(_munge_works, 20, "munged to answer", daemon)


def _stop(daemon: subprocess.Popen) -> None:
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(20)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def _wait_for(condition, seconds: float, what: str, *daemons: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        dead = [d for d in daemons if d.poll() is not None]
        if dead or time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what}; exited: {[d.args for d in dead]}")
        time.sleep(0.5)


def _link_system_conf(conf: Path, stack: contextlib.ExitStack) -> None:
    SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
    if SYSTEM_CONF.is_symlink():
        SYSTEM_CONF.unlink()
    SYSTEM_CONF.symlink_to(conf)
    stack.callback(lambda: SYSTEM_CONF.is_symlink() and SYSTEM_CONF.readlink() == conf and SYSTEM_CONF.unlink())


@contextlib.contextmanager
def loopback_cluster(work: Path, cpus: int = 8, memory_mb: int = 131072, gpus: int = 8) -> Iterator[dict[str, str]]:
    """Start munged (if needed), slurmctld and slurmd; yield the environment for sbatch/snakemake; stop all."""
    work.mkdir(parents=True, exist_ok=True)
    for name in ("state", "spool"):
        (work / name).mkdir(exist_ok=True)
    host = socket.gethostname().split(".")[0]
    conf = work / "slurm.conf"
    conf.write_text(_slurm_conf(work, host, cpus, memory_mb, gpus))
    for index in range(gpus):  # slurmd drops a gpu gres whose File is missing; an empty file is enough
        (work / f"gpu{index}").touch()
    (work / "gres.conf").write_text(f"AutoDetect=off\nName=gpu File={work}/gpu[0-{gpus - 1}]\n")
    env = {**os.environ, "SLURM_CONF": str(conf)}
    with contextlib.ExitStack() as stack:
        _start_munged(stack)
        _link_system_conf(conf, stack)
        daemons = []
        for command in (["slurmctld", "-D", "-i"], ["slurmd", "-D"]):
            daemon = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=(work / f"{command[0]}.err").open("w"))
            stack.callback(_stop, daemon)  # ExitStack unwinds in reverse: slurmd first, munged last
            daemons.append(daemon)

        def node_idle() -> bool:
            states = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True).stdout.split()
            return states == ["idle"]

        _wait_for(node_idle, 60, "the node to be idle (see slurmctld.log and slurmd.log in the work folder)", *daemons)
        log.info("loopback SLURM cluster up on %s: %s", host, conf)
        yield env
