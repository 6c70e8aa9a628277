"""Atomic file output and checksums: an interrupted step never leaves a file that looks finished."""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from akdg.registry import AkdgError

log = logging.getLogger(__name__)

DISK_FULL = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "the disk quota is exceeded"}


def _disk_full(error: BaseException) -> int | None:
    """The ENOSPC/EDQUOT errno behind ``error``, also where a library wrapped it (torch raises RuntimeError around it)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in DISK_FULL:
            return seen.errno
        seen = seen.__cause__ or seen.__context__
    return None


def _free_space(folder: Path) -> str:
    try:
        free = float(shutil.disk_usage(folder).free)
    except OSError:
        return "unknown"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if free < 1024:
            return f"{free:.0f} {unit}" if unit == "B" else f"{free:.1f} {unit}"
        free /= 1024
    return f"{free:.1f} TiB"


@contextlib.contextmanager
def atomic_write(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds.

    Whatever fails, the temporary file is removed and an existing ``path`` is left as it was. A full
    disk or exhausted quota becomes an AkdgError naming the file and the free space, not a traceback.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except Exception as error:
        code = _disk_full(error)
        if code is None:
            raise
        raise AkdgError(
            f"could not write {path}: {DISK_FULL[code]} ({_free_space(path.parent)} free on the filesystem of {path.parent}); "
            "make room there (or raise the quota), or point the config's outdir at a larger disk, then rerun"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path | str, payload: dict[str, Any]) -> None:
    """Write JSON atomically, keys sorted so reruns with equal content give equal files."""
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def save_torch(payload: Any, path: Path | str) -> None:
    """``torch.save`` atomically, through a Python file handle.

    Saved to a path, torch reports a full disk as an errno-less RuntimeError; through a handle the
    OSError(ENOSPC) surfaces, so ``atomic_write`` can name the problem.
    """
    import torch  # akdg.io is imported by light modules (tables, claims) that need no torch

    with atomic_write(path) as tmp, open(tmp, "wb") as handle:
        torch.save(payload, handle)


def read_json(path: Path | str) -> dict[str, Any]:
    """A step's JSON input (an object), with an error naming the step to (re)run instead of a decoder traceback."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise AkdgError(f"{path} does not exist; run the step that makes it first") from None
    except OSError as error:
        raise AkdgError(f"{path} could not be read ({error.strerror}); {_read_fix(error)}") from None
    except ValueError as error:  # JSONDecodeError, and UnicodeDecodeError for bytes that are not text
        raise AkdgError(f"{path} is not valid JSON ({error}); delete it and rerun the step that makes it") from None
    if not isinstance(payload, dict):
        raise AkdgError(f"{path} holds a JSON {type(payload).__name__}, not an object; delete it and rerun the step that makes it")
    return payload


def _read_fix(error: OSError) -> str:
    if error.errno in (errno.EACCES, errno.EPERM):
        return "give this user read access to it"
    if error.errno == errno.EISDIR:
        return "it is a folder: pass the file itself"
    return "check the disk it is on, or delete it and rerun the step that makes it"


def load_torch(path: Path | str, what: str, missing_fix: str, unreadable_fix: str) -> Any:
    """``torch.load`` (tensors only) of a file a step reads, with errors that name it and the fix.

    torch reads a zip-format file without checking its CRC-32s, so a flipped bit in a tensor would load
    as a wrong weight; such a file is verified first. A file cut short raises anything from EOFError to
    ``OSError(EINVAL)`` inside torch, depending on where the cut falls, and text an IndexError from its
    unpickler: each becomes the same sentence.
    """
    import torch

    path = Path(path)
    if path.is_dir():
        raise AkdgError(f"{what} {path} is a folder, not a file; pass the file itself")
    if not path.is_file():
        raise AkdgError(f"{what} {path} does not exist; {missing_fix}")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
            if damaged is not None:
                raise ValueError(f"bad CRC-32 in {damaged}")
        return torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError as error:
        raise AkdgError(f"{what} {path} could not be read ({error.strerror}); {_read_fix(error)}") from None
    except Exception as error:  # torch fails on a damaged file in many ways, even an IndexError from its unpickler
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    raise AkdgError(f"{what} {path} is truncated or not a torch file ({reason}); {unreadable_fix}")


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_writable(path: Path, folder: bool) -> None:
    """Refuse an output that cannot be written: a file in its way, a folder where a file goes, a folder that takes no files."""
    fix = "point the output (or the config's outdir) at a writable folder"
    existing = path
    try:
        if path.exists() and path.is_dir() != folder:
            raise AkdgError(f"cannot write {path}: a {'file' if folder else 'folder'} of that name is in the way; move it away or {fix}")
        existing = _nearest_existing(path if folder else path.parent)
        if not existing.is_dir():
            raise AkdgError(f"cannot write {path}: {existing} is a file, not a folder; {fix}")
        with tempfile.TemporaryFile(dir=existing):  # what the write (or the mkdir before it) needs: a new entry there
            pass
    except OSError as error:
        raise AkdgError(f"cannot write {path}: no file can be created in {existing} ({error.strerror}); {fix}") from None


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID runs on this host (whoever's it is)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(path: Path) -> None:
    """Remove the temporaries :func:`atomic_write` left beside ``path`` when its writer was killed.

    Only one job writes an output at a time (Snakemake within a DAG, the outdir lock across DAGs), so a
    temporary whose writer is no live process on this host is a leftover.
    """
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.tmp-*"):
        pid = candidate.name.rpartition("-")[2]
        if pid.isdigit() and not pid_alive(int(pid)):
            log.warning("removing %s, left by a writer (PID %s) that is gone", candidate, pid)
            candidate.unlink(missing_ok=True)


def prepare_outputs(files: Iterable[Path | str], folders: Iterable[Path | str] = ()) -> None:
    """Before a step does any work: refuse outputs it could not write, and remove its killed writes' temporaries.

    ``files``: what the step writes (with :func:`atomic_write`); ``folders``: where it writes files it does not name up front.
    """
    for path in map(Path, files):
        _check_writable(path, folder=False)
        remove_stale_temporaries(path)
    for path in map(Path, folders):
        _check_writable(path, folder=True)


def sha256_file(path: Path | str) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks so that checkpoints of any size fit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
