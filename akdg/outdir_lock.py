"""One DAG at a time per output folder, across clones and working directories.

Snakemake locks its working directory (``.snakemake/locks``), so two clones, or ``akdg run`` from two
folders, writing the same absolute outdir would overwrite each other's files. The Snakefile takes this
lock when a run starts (not for dry runs; its jobs never take it) and gives it back when the run ends.
The lock file names its holder (host, PID, start time, working directory): a second run is refused
with a sentence that names it, and a lock left by a process that died on this host is taken over with
a warning. It is created with a hard link, atomic on local filesystems and NFS alike.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

from akdg.io import pid_alive
from akdg.registry import AkdgError

log = logging.getLogger(__name__)

LOCK_NAME = ".akdg.lock"


class OutdirLock:
    """The lock file ``<outdir>/.akdg.lock``; :meth:`acquire` it before writing there, :meth:`release` it after."""

    def __init__(self, outdir: Path | str) -> None:
        self.outdir = Path(outdir).absolute()
        self.path = self.outdir / LOCK_NAME
        self.owner = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": datetime.now().astimezone().isoformat(timespec="seconds"),
            "directory": os.getcwd(),
        }
        self.held = False

    def acquire(self) -> None:
        """Take the lock, or raise AkdgError naming its live holder; released at exit if :meth:`release` is not reached."""
        try:
            self.outdir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise AkdgError(f"cannot create the outdir {self.outdir} ({error.strerror}); set outdir to a writable folder") from None
        while not self._create():
            holder = self._holder()
            if holder is None:  # released between our attempt and the read: try again
                continue
            ours = holder["host"] == self.owner["host"] and holder["pid"] == self.owner["pid"]  # a killed run's PID, reused by us
            if holder["host"] != self.owner["host"] or (not ours and pid_alive(holder["pid"])):
                raise AkdgError(
                    f"the outdir {self.outdir} is in use by another run: {describe(holder)}; wait for it to finish, "
                    f"or, if that process is gone, remove {self.path} and rerun"
                )
            log.warning("taking over %s, left by a run that is gone: %s", self.path, describe(holder))
            self._remove(holder)
        self.held = True
        atexit.register(self.release)

    def release(self) -> None:
        """Remove the lock if this process still holds it (a no-op otherwise, so every exit path may call it)."""
        with contextlib.suppress(AkdgError):  # a lock made unreadable by hand is left for its maker
            if self.held and self._holder() == self.owner:
                self.path.unlink(missing_ok=True)
        self.held = False

    def _create(self) -> bool:
        """Write the owner to a file of our own, then link it to the lock's name: False if a lock is there already."""
        staging = self.path.with_name(f"{LOCK_NAME}.{self.owner['host']}.{self.owner['pid']}")
        try:
            staging.write_text(json.dumps(self.owner, indent=2) + "\n")
            os.link(staging, self.path)
        except FileExistsError:
            return False
        except OSError as error:
            raise AkdgError(
                f"cannot create the lock {self.path} ({error.strerror}); make room there, or set outdir to a writable folder"
            ) from None
        finally:
            staging.unlink(missing_ok=True)
        return True

    def _holder(self) -> dict[str, Any] | None:
        """The lock's owner as written, or None if there is no lock file (any more)."""
        try:
            holder = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise AkdgError(
                f"the outdir lock {self.path} is unreadable ({error}); if no run is writing to {self.outdir}, remove it and rerun"
            ) from None
        if not isinstance(holder, dict) or not {"host", "pid", "started", "directory"} <= set(holder) or not isinstance(holder["pid"], int):
            raise AkdgError(
                f"the outdir lock {self.path} does not name its holder; if no run is writing to {self.outdir}, remove it and rerun"
            )
        return holder

    def _remove(self, stale: dict[str, Any]) -> None:
        """Remove a stale lock, unless another run took it over meanwhile (moved aside, checked, put back if not ours to remove)."""
        aside = self.path.with_name(f"{LOCK_NAME}.stale.{self.owner['host']}.{self.owner['pid']}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            if json.loads(aside.read_text()) != stale:
                with contextlib.suppress(FileExistsError):
                    os.link(aside, self.path)
        finally:
            aside.unlink(missing_ok=True)


def describe(holder: dict[str, Any]) -> str:
    """Who holds a lock, in the words a user needs to find that run."""
    return f"host {holder['host']}, PID {holder['pid']}, started {holder['started']}, in {holder['directory']}"
