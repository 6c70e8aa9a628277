"""Image tensors between their stored form (uint8 0..255) and the models' (float -1..1), and resizing.

Kept apart from :mod:`akdg.datasets`, which config validation and workflow planning import, because these need torch.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def resize_uint8(images: np.ndarray, resolution: int) -> np.ndarray:
    """Resize uint8 NCHW images with antialiased bilinear interpolation, back to uint8."""
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    tensor = torch.from_numpy(images).float()
    resized = F.interpolate(tensor, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
    return resized.round().clamp(0, 255).to(torch.uint8).numpy()


def to_model_range(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float -1..1, the range generators produce with tanh."""
    tensor = torch.as_tensor(images)
    return tensor.float().div(127.5).sub(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float -1..1 -> uint8 0..255, the input torch-fidelity's feature extractors expect."""
    return images.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)
