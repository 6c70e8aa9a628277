"""IS, FID and KID through torch-fidelity, with generators passed in memory (no image files).

Every call names its feature extractor explicitly and disables torch-fidelity's name-keyed cache,
so a changed input can never be scored against stale statistics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch_fidelity
from torch.utils.data import Dataset
from torch_fidelity.generative_model_modulewrapper import GenerativeModelModuleWrapper

from akdg.datasets import to_uint8
from akdg.feature_extractor_classifier import NAME as CLASSIFIER_NAME
from akdg.feature_extractor_classifier import register_with_torch_fidelity


class UInt8Images(Dataset):
    """uint8 NCHW array as the Dataset torch-fidelity reads (one image tensor per item)."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(images))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


class UInt8Generator(nn.Module):
    """Maps a -1..1 generator to the uint8 images torch-fidelity's extractors expect."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return to_uint8(self.generator(z))


def fidelity_metrics(
    candidate: nn.Module | np.ndarray,
    reference: np.ndarray,
    *,
    z_dim: int,
    extractor_weights: Path | str,
    options: dict[str, Any],
) -> dict[str, float]:
    """Score a generator (or a uint8 image array) against uint8 reference images.

    ``options``: num_samples, isc_splits, kid_subsets, kid_subset_size, batch_size, rng_seed.
    """
    register_with_torch_fidelity()
    if isinstance(candidate, nn.Module):
        input1: Any = GenerativeModelModuleWrapper(UInt8Generator(candidate), z_dim, "normal", 0)
        extra = {"input1_model_num_samples": options["num_samples"]}
    else:
        input1, extra = UInt8Images(candidate), {}
    result = torch_fidelity.calculate_metrics(
        input1=input1,
        input2=UInt8Images(reference),
        isc=True,
        fid=True,
        kid=True,
        feature_extractor=CLASSIFIER_NAME,
        feature_extractor_weights_path=str(extractor_weights),
        isc_splits=options["isc_splits"],
        kid_subsets=options["kid_subsets"],
        kid_subset_size=options["kid_subset_size"],
        batch_size=options["batch_size"],
        rng_seed=options["rng_seed"],
        cuda=False,
        cache=False,
        save_cpu_ram=True,
        verbose=False,
        **extra,
    )
    return {
        "is_mean": result["inception_score_mean"],
        "is_std": result["inception_score_std"],
        "fid": result["frechet_inception_distance"],
        "kid_mean": result["kernel_inception_distance_mean"],
        "kid_std": result["kernel_inception_distance_std"],
    }
