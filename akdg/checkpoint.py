"""Generator checkpoints: what was trained, how, and its weights, with errors that name the file.

A checkpoint carries its architecture spec, resolution, channels and z size, so that a checkpoint
loaded for the wrong model is rejected with a sentence, not a size-mismatch traceback from torch.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from akdg.architectures import build_generator
from akdg.io import atomic_write
from akdg.registry import AkdgError

FORMAT = "akdg-generator-v1"


def save_generator(path: Path | str, generator: nn.Module, meta: dict[str, Any]) -> None:
    """Write weights plus ``meta`` (spec, resolution, channels, z_dim, protocol) atomically."""
    with atomic_write(path) as tmp:
        torch.save({"format": FORMAT, "meta": meta, "state_dict": generator.state_dict()}, tmp)


def read_checkpoint(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise AkdgError(f"checkpoint {path} does not exist; train it first (its Snakemake rule makes it)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as error:
        raise AkdgError(f"checkpoint {path} is truncated or not a checkpoint ({error}); delete it and retrain") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise AkdgError(f"checkpoint {path} is not an akdg generator checkpoint (format {FORMAT!r} expected)")
    return payload


def load_generator(path: Path | str, expect: dict[str, Any] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a generator from its checkpoint, in eval mode.

    ``expect`` (e.g. ``{"resolution": 16, "generator": {...}}``) must match the checkpoint's metadata.
    """
    payload = read_checkpoint(path)
    meta = payload["meta"]
    for key, wanted in (expect or {}).items():
        if meta.get(key) != wanted:
            raise AkdgError(
                f"checkpoint {path} has {key}={meta.get(key)!r} but {wanted!r} is needed here; "
                "point the config at the right checkpoint or retrain it"
            )
    generator = build_generator(meta["generator"], resolution=meta["resolution"], channels=meta["channels"], z_dim=meta["z_dim"])
    try:
        generator.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        first_line = str(error).splitlines()[1] if len(str(error).splitlines()) > 1 else str(error)
        raise AkdgError(f"checkpoint {path} does not fit architecture {meta['generator']}: {first_line.strip()}") from None
    return generator.eval(), meta
