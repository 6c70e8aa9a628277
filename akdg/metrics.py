"""IS, FID, KID, precision and recall through torch-fidelity, with generators passed in memory (no image files).

Every call names its feature extractor and weights explicitly. torch-fidelity's cache is keyed by a
name alone, so akdg uses it for the reference split only, under a name derived from everything that
determines the reference features (:func:`reference_cache`): a changed input gets a new key, never
stale statistics. Without a cache, nothing is cached.

What torch-fidelity 0.4.0 caches for input2 (``utils.extract_featuresdict_from_input_id_cached`` and
``metric_fid.fid_featuresdict_to_statistics_cached``): one file per requested feature layer (the
features KID subsamples, and IS's layer, requested alongside) and the FID mean/covariance. Each file is
written to a temporary name and renamed into place (``utils_torch.torch_atomic_save``), so a reader
never sees half a file; a reader that finds only part of the group recomputes and rewrites all of it.

Inception-v3 takes RGB: one-channel data (the digits default) is repeated to three channels here,
in :class:`UInt8Images` (reference and real rows) and :class:`UInt8Generator` (generated rows).
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch_fidelity
from torch.utils.data import Dataset
from torch_fidelity.defaults import DEFAULTS as FIDELITY_DEFAULTS
from torch_fidelity.generative_model_modulewrapper import GenerativeModelModuleWrapper
from torch_fidelity.metric_fid import fid_featuresdict_to_statistics_cached
from torch_fidelity.utils import create_feature_extractor, extract_featuresdict_from_input_id_cached

from akdg.datasets import ImageSplits
from akdg.feature_extractor_classifier import NAME as CLASSIFIER_NAME
from akdg.feature_extractor_classifier import register_with_torch_fidelity
from akdg.feature_extractors import feature_layers, input_channels
from akdg.images import to_uint8
from akdg.progress import CountedProgress
from akdg.registry import AkdgError

log = logging.getLogger(__name__)


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 (N, C, H, W) with C == channels, or C == 1 repeated to ``channels`` (grey -> RGB)."""
    return images if images.shape[1] == channels else images.repeat(1, channels, 1, 1)


class UInt8Images(Dataset):
    """uint8 NCHW array as the Dataset torch-fidelity reads (one image tensor per item).

    ``progress`` counts the images its DataLoader reads, batch by batch (``__getitems__``), and not
    the single item torch-fidelity reads first to check the type.
    """

    def __init__(self, images: np.ndarray, channels: int | None = None, progress: CountedProgress | None = None) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.channels = channels or self.images.shape[1]
        self.progress = progress

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return to_channels(self.images[index : index + 1], self.channels)[0]

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        if self.progress is not None:
            self.progress.count(len(indices))
        return [self[index] for index in indices]


class UInt8Generator(nn.Module):
    """Maps a -1..1 generator to the uint8 images torch-fidelity's extractors expect.

    The cast to uint8 turns NaN into 0 (a black pixel) that scores like any other image, so it
    counts the generated images holding NaN or Inf (``nonfinite`` of ``generated``) on the way.
    """

    def __init__(self, generator: nn.Module, channels: int, progress: CountedProgress | None = None) -> None:
        super().__init__()
        self.generator = generator
        self.channels = channels
        self.generated = 0
        self.nonfinite = 0
        self.progress = progress

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        images = self.generator(z)
        self.generated += len(images)
        if self.progress is not None:
            self.progress.count(len(images))
        self.nonfinite += int((~images.isfinite()).flatten(1).any(1).sum())
        return to_channels(to_uint8(images), self.channels)


def metrics_device() -> str:
    """CUDA when there is one (Inception at 299x299 is ~0.1 s per image on a CPU core), else CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class ReferenceCache:
    """Where torch-fidelity caches the reference split's features, and the content key they are filed under."""

    root: Path
    key: str
    fields: dict[str, Any]

    def files(self, extractor: str) -> list[Path]:
        """The files torch-fidelity 0.4.0 looks up for input2 (its naming, see the module docstring)."""
        layers = feature_layers(extractor)
        names = [f"{self.key}-{extractor}-features-{layer}.pt" for layer in sorted(set(layers.values()))]
        names.append(f"{self.key}-{extractor}-stat-fid-{layers['fid']}.pt")
        return [self.root / name for name in names]

    def is_filled(self, extractor: str) -> bool:
        return all(path.is_file() for path in self.files(extractor))

    def remove_damaged(self, extractor: str) -> None:
        """Delete the entry if a file of it is cut short or corrupt (a bad zip CRC-32), so that torch-fidelity
        computes it again instead of failing to load it; the entry is only a cache of the reference split."""
        damaged = [path for path in self.files(extractor) if path.is_file() and not _intact_zip(path)]
        if damaged:
            log.warning(
                "reference feature cache %s is damaged; removing its entry %s to compute it again", ", ".join(map(str, damaged)), self.key
            )
            for path in self.files(extractor):
                path.unlink(missing_ok=True)


def _intact_zip(path: Path) -> bool:
    """torch.save writes a zip whose members carry CRC-32s; torch.load does not check them, zipfile does."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


def reference_cache(root: Path | str, splits: ImageSplits, extractor: str, weights_sha256: str, split: str = "train") -> ReferenceCache:
    """The cache entry for a split's features: keyed by the data's content, the split and its size,
    the image shape, the extractor and its weights, and torch-fidelity's version."""
    images = {"train": splits.x_train, "test": splits.x_test, "validation": splits.x_val}[split]
    fields = {
        "data_content_sha256": splits.protocol["content_sha256"],
        "split": split,
        "samples": int(len(images)),
        "resolution": int(images.shape[-1]),
        "channels": int(images.shape[1]),
        "feature_extractor": extractor,
        "weights_sha256": weights_sha256,
        "torch_fidelity": torch_fidelity.__version__,
    }
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
    return ReferenceCache(root=Path(root), key=f"akdg-{split}-{digest[:32]}", fields=fields)


def _fidelity_kwargs(
    extractor: str, extractor_weights: Path | str, options: dict[str, Any], cache: ReferenceCache | None
) -> dict[str, Any]:
    """The arguments every torch-fidelity call shares, so the cache filler and the metrics agree on file names."""
    register_with_torch_fidelity()
    kwargs: dict[str, Any] = {
        "feature_extractor": extractor,
        "feature_extractor_weights_path": str(extractor_weights),
        "batch_size": options["batch_size"],
        "cuda": metrics_device() == "cuda",
        "save_cpu_ram": True,
        "verbose": False,
        "cache": cache is not None,
    }
    if cache is not None:
        kwargs.update(cache_root=str(cache.root), input2_cache_name=cache.key)
    return kwargs


def _progress(total: int, what: str) -> CountedProgress:
    """Progress lines for ``total`` images that torch-fidelity reads or generates (see :mod:`akdg.progress`)."""
    return CountedProgress(total, desc=what, unit="images", logger=log)


def fidelity_metrics(
    candidate: nn.Module | np.ndarray,
    reference: np.ndarray,
    *,
    z_dim: int,
    extractor_weights: Path | str,
    options: dict[str, Any],
    extractor: str = CLASSIFIER_NAME,
    cache: ReferenceCache | None = None,
    label: str = "the generator",
) -> dict[str, float]:
    """Score a generator (or a uint8 image array) against uint8 reference images.

    ``options``: num_samples, isc_splits, kid_subsets, kid_subset_size, prc_neighborhood, batch_size, rng_seed.
    ``cache``: read the reference features from it, computing and filling them if absent.
    A generator any of whose images holds NaN or Inf raises AkdgError naming ``label`` and the
    count: its scores would be those of black images, not of a generator.
    Progress lines (:mod:`akdg.progress`) name ``label``: the candidate's images, then the
    reference's if they are not read from ``cache``.
    """
    channels = input_channels(extractor, int(reference.shape[1]))
    references = UInt8Images(reference, channels, _progress(len(reference), f"reference features for {label}"))
    if not isinstance(candidate, nn.Module):
        images = UInt8Images(candidate, channels, _progress(len(candidate), f"features of {label}"))
        return score(images, references, extractor, extractor_weights, options, cache)
    generated = UInt8Generator(candidate, channels, _progress(options["num_samples"], f"generate and extract features of {label}"))
    input1 = GenerativeModelModuleWrapper(generated, z_dim, "normal", 0)
    scores = score(input1, references, extractor, extractor_weights, options, cache, input1_model_num_samples=options["num_samples"])
    if generated.nonfinite:
        raise AkdgError(
            f"{label}: {generated.nonfinite} of {generated.generated} generated images contain NaN or Inf values, so its scores "
            "would be those of black images; retrain it (check the learning rates in 'training.optimizer' and the method's options)"
        )
    return scores


def score(
    input1: Any,
    input2: Any,
    extractor: str,
    extractor_weights: Path | str,
    options: dict[str, Any],
    cache: ReferenceCache | None,
    **extra: Any,
) -> dict[str, float]:
    """IS, FID, KID, precision and recall of ``input1`` against ``input2`` through torch-fidelity, with the arguments every akdg score uses.

    Precision and recall (torch-fidelity's ``prc``) read each extractor's default layer for them, which
    is FID's (tests/test_metrics.py checks it), so one pass of the extractor feeds every metric and a
    fall in fidelity or in diversity shows in the same space as FID.

    One place for the call, so that another input (a folder of PNGs in benchmarks/eval_paths.py)
    is scored exactly as an evaluation scores a generator.
    """
    result = torch_fidelity.calculate_metrics(
        input1=input1,
        input2=input2,
        isc=True,
        fid=True,
        kid=True,
        prc=True,
        isc_splits=options["isc_splits"],
        kid_subsets=options["kid_subsets"],
        kid_subset_size=options["kid_subset_size"],
        prc_neighborhood=options.get("prc_neighborhood", FIDELITY_DEFAULTS["prc_neighborhood"]),
        rng_seed=options["rng_seed"],
        **_fidelity_kwargs(extractor, extractor_weights, options, cache),
        **extra,
    )
    return {
        "is_mean": result["inception_score_mean"],
        "is_std": result["inception_score_std"],
        "fid": result["frechet_inception_distance"],
        "kid_mean": result["kernel_inception_distance_mean"],
        "kid_std": result["kernel_inception_distance_std"],
        "precision": result["precision"],
        "recall": result["recall"],
    }


def fill_reference_cache(
    reference: np.ndarray, *, extractor: str, extractor_weights: Path | str, batch_size: int, cache: ReferenceCache
) -> list[Path]:
    """Compute the reference features and FID statistics into ``cache`` (or find them there); returns its files.

    Runs torch-fidelity's own cached functions for input2 with the layers :func:`fidelity_metrics`
    requests, so the files are exactly those that ``calculate_metrics`` later looks up.
    """
    channels = input_channels(extractor, int(reference.shape[1]))
    kwargs = _fidelity_kwargs(extractor, extractor_weights, {"batch_size": batch_size}, cache)
    kwargs["input2"] = UInt8Images(reference, channels, _progress(len(reference), "reference features"))
    layers = feature_layers(extractor)
    model = create_feature_extractor(extractor, sorted(set(layers.values())), **kwargs)
    features = extract_featuresdict_from_input_id_cached(2, model, **kwargs)
    fid_featuresdict_to_statistics_cached(features, cache.key, model, layers["fid"], **kwargs)
    missing = [path for path in cache.files(extractor) if not path.is_file()]
    if missing:  # torch-fidelity named its files otherwise: the evaluations would recompute, not read
        raise RuntimeError(f"torch-fidelity did not write the expected cache files {missing}")
    return cache.files(extractor)
