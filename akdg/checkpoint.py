"""Generator checkpoints: what was trained, how, and its weights, with errors that name the file.

A checkpoint carries its architecture spec, resolution, channels and z size, so that a checkpoint
loaded for the wrong model is rejected with a sentence, not a size-mismatch traceback from torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from akdg.architectures import build_generator
from akdg.io import load_torch, save_torch
from akdg.registry import AkdgError

FORMAT = "akdg-generator-v1"


def save_generator(
    path: Path | str,
    generator: nn.Module,
    meta: dict[str, Any],
    last_weights: dict[str, torch.Tensor] | None = None,
    *,
    curve: list[dict[str, Any]] | None = None,
) -> None:
    """Write weights plus ``meta`` (spec, resolution, channels, z_dim, protocol) atomically.

    ``generator`` is the model every later step uses (the EMA, where training kept one);
    ``last_weights`` (the raw weights at the last step) are stored beside it as ``last_state_dict``,
    so the evaluation can score both. ``curve``: the training-curve snapshots (``step``, ``fraction``
    and ``state_dict``, none for the last step, whose weights are ``generator``'s), see :func:`curve_generators`.
    """
    payload = {"format": FORMAT, "meta": meta, "state_dict": generator.state_dict()}
    if last_weights is not None:
        payload["last_state_dict"] = last_weights
    if curve:
        payload["curve"] = curve
    save_torch(payload, path)


def curve_generators(path: Path | str, expect: dict[str, Any] | None = None) -> list[tuple[dict[str, Any], nn.Module]]:
    """The checkpoint's training-curve points as (``{"step", "fraction"}``, generator in eval mode), in step order;
    [] where it holds none. A generator that grows is set to the progress of its step; the last step's
    point is the saved generator itself."""
    payload = read_checkpoint(path)
    points = []
    for snapshot in payload.get("curve", []):
        generator, _ = load_generator(path, expect, state_dict=snapshot.get("state_dict"), payload=payload)
        if hasattr(generator, "set_progress"):
            generator.set_progress(snapshot["fraction"])
        points.append(({"step": snapshot["step"], "fraction": snapshot["fraction"]}, generator))
    return points


def has_last_weights(path: Path | str) -> bool:
    """Whether the checkpoint holds the raw last-step weights beside its EMA (not before akdg kept them, nor without an EMA)."""
    return "last_state_dict" in read_checkpoint(path)


def read_checkpoint(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    payload = load_torch(path, "checkpoint", "train it first (its Snakemake rule makes it)", "delete it and retrain")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise AkdgError(f"checkpoint {path} is not an akdg generator checkpoint (format {FORMAT!r} expected)")
    return payload


def load_generator(
    path: Path | str,
    expect: dict[str, Any] | None = None,
    *,
    last: bool = False,
    state_dict: dict[str, torch.Tensor] | None = None,
    payload: dict[str, Any] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a generator from its checkpoint, in eval mode.

    ``expect`` (e.g. ``{"resolution": 16, "generator": {...}}``) must match the checkpoint's metadata.
    ``last`` loads the raw last-step weights instead of the saved (EMA) ones; see :func:`has_last_weights`.
    ``state_dict``: other weights of the checkpoint to load (a curve snapshot); ``payload``: the checkpoint already read.
    """
    payload = read_checkpoint(path) if payload is None else payload
    if last and "last_state_dict" not in payload:
        raise AkdgError(f"checkpoint {path} holds no last-step weights (it was trained without an EMA, or before akdg kept them)")
    meta = payload["meta"]
    for key, wanted in (expect or {}).items():
        if meta.get(key) != wanted:
            raise AkdgError(
                f"checkpoint {path} has {key}={meta.get(key)!r} but {wanted!r} is needed here; "
                "point the config at the right checkpoint or retrain it"
            )
    generator = build_generator(meta["generator"], resolution=meta["resolution"], channels=meta["channels"], z_dim=meta["z_dim"])
    try:
        generator.load_state_dict(state_dict if state_dict is not None else payload["last_state_dict" if last else "state_dict"])
    except RuntimeError as error:
        first_line = str(error).splitlines()[1] if len(str(error).splitlines()) > 1 else str(error)
        raise AkdgError(f"checkpoint {path} does not fit architecture {meta['generator']}: {first_line.strip()}") from None
    return generator.eval(), meta


def import_generator(
    source: Path | str, spec: dict[str, Any], *, resolution: int, channels: int, z_dim: int
) -> tuple[nn.Module, dict[str, Any]]:
    """A generator trained elsewhere, checked against the config that will use it; returns (model, meta).

    ``source`` is an akdg checkpoint (its recorded architecture must equal ``spec``) or a plain
    ``state_dict`` saved from the ``spec`` architecture (how weights usually leave another code base).
    """
    source = Path(source)
    expect = {"generator": spec, "resolution": resolution, "channels": channels, "z_dim": z_dim}
    payload = load_torch(source, "teacher checkpoint", "fix teacher.checkpoint in the config", "point teacher.checkpoint at the right file")
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        generator, meta = load_generator(source, expect=expect)
        return generator, {**meta, "training": {"imported_from": str(source), "original_training": meta.get("training")}}
    if not isinstance(payload, dict) or not all(isinstance(value, torch.Tensor) for value in payload.values()):
        raise AkdgError(f"teacher checkpoint {source} is neither an akdg checkpoint nor a plain state_dict of tensors")
    generator = build_generator(spec, resolution=resolution, channels=channels, z_dim=z_dim)
    try:
        generator.load_state_dict(payload)
    except RuntimeError as error:
        detail = " ".join(line.strip() for line in str(error).splitlines()[1:3])
        raise AkdgError(
            f"teacher checkpoint {source} does not fit {spec} at {resolution}px, {channels} channels, z_dim {z_dim}: {detail}; "
            "set teacher.generator (and z_dim, dataset.resolution) to what it was trained with"
        ) from None
    return generator.eval(), {**expect, "training": {"imported_from": str(source), "original_training": None}}
