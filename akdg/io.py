"""Atomic file output and checksums: an interrupted step never leaves a file that looks finished."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_write(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path | str, payload: dict[str, Any]) -> None:
    """Write JSON atomically, keys sorted so reruns with equal content give equal files."""
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def read_json(path: Path | str) -> dict[str, Any]:
    from akdg.registry import AkdgError

    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise AkdgError(f"{path} does not exist; run the step that makes it first") from None
    except json.JSONDecodeError as error:
        raise AkdgError(f"{path} is not valid JSON ({error}); delete it and rerun the step that makes it") from None


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
