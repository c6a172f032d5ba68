# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""OpenVLA's training-time image augmentation, written in torch (no torchvision on CPU).

The official recipe (``image_aug``), applied to the 224x224 uint8 frame before the processor:
random resized crop of 0.9 of the area with aspect ratio 1, then brightness (+-0.2), contrast
[0.8, 1.2], saturation [0.8, 1.2] and hue (+-0.05), in that order, each result clipped to
[0, 1]. The crop uses TF ``crop_and_resize`` sampling (corners map to pixel centres, bilinear),
the same geometry as the ``center_crop`` inference preset, which is why fine-tunes trained with
augmentation are served with that preset. Every random draw comes from the caller's generator,
so a run is reproducible and resumable.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F  # noqa: N812

#: The official parameters (``finetune.py`` / Octo's ``image_augment_kwargs``).
CROP_SCALE = 0.9
BRIGHTNESS = 0.2
CONTRAST = (0.8, 1.2)
SATURATION = (0.8, 1.2)
HUE = 0.05


def _uniform(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen))


def random_resized_crop(image: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Crop a random square of ``CROP_SCALE`` of the area and resize it back (bilinear).

    Args:
        image: float [3, H, W] in [0, 1].
    """
    _, h, w = image.shape
    side = math.sqrt(CROP_SCALE)  # ratio 1: both sides sqrt(scale) in normalised units
    y1 = _uniform(gen, 0.0, 1.0 - side)
    x1 = _uniform(gen, 0.0, 1.0 - side)
    # crop_and_resize: output pixel i samples source row y1 (H-1) + i side (H-1)/(H-1).
    ys = (y1 + torch.linspace(0.0, side, h, dtype=torch.float32)) * 2.0 - 1.0
    xs = (x1 + torch.linspace(0.0, side, w, dtype=torch.float32)) * 2.0 - 1.0
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([grid_x, grid_y], dim=-1)[None]
    out = F.grid_sample(image[None], grid, mode="bilinear", align_corners=True)
    return out[0]


def _rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x[0], x[1], x[2]
    maxc, _ = x.max(dim=0)
    minc, _ = x.min(dim=0)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.where(
        maxc == r,
        ((g - b) / safe) % 6.0,
        torch.where(maxc == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    )
    hue = torch.where(delta > 0, hue / 6.0, torch.zeros_like(hue))
    sat = torch.where(
        maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), 0 * maxc
    )
    return torch.stack([hue, sat, maxc])


def _hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x[0], x[1], x[2]
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    p = v * (1.0 - s)
    q = v * (1.0 - s * f)
    t = v * (1.0 - s * (1.0 - f))
    i = i.long() % 6
    choices = [
        torch.stack([v, t, p]),
        torch.stack([q, v, p]),
        torch.stack([p, v, t]),
        torch.stack([p, q, v]),
        torch.stack([t, p, v]),
        torch.stack([v, p, q]),
    ]
    out = torch.zeros_like(x)
    for k, rgb in enumerate(choices):
        out = torch.where((i == k)[None], rgb, out)
    return out


def color_jitter(image: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Brightness, contrast, saturation, hue (TF ``random_*`` semantics), clipped after each."""
    x = (image + _uniform(gen, -BRIGHTNESS, BRIGHTNESS)).clamp(0.0, 1.0)
    mean = x.mean(dim=(1, 2), keepdim=True)
    x = ((x - mean) * _uniform(gen, *CONTRAST) + mean).clamp(0.0, 1.0)
    saturation = _uniform(gen, *SATURATION)
    hue_delta = _uniform(gen, -HUE, HUE)
    hsv = _rgb_to_hsv(x)
    hsv = torch.stack([(hsv[0] + hue_delta) % 1.0, (hsv[1] * saturation).clamp(0.0, 1.0), hsv[2]])
    return _hsv_to_rgb(hsv).clamp(0.0, 1.0)


def augment_uint8(image: npt.NDArray[np.uint8], gen: torch.Generator) -> npt.NDArray[np.uint8]:
    """The whole recipe on an HxWx3 uint8 frame; returns a new HxWx3 uint8 frame.

    The float -> uint8 step is TF's ``convert_image_dtype(saturate=True)``: x 255.5, truncate.
    """
    x = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float() / 255.0
    x = color_jitter(random_resized_crop(x, gen), gen)
    out = (x * 255.5).clamp(0.0, 255.0).to(torch.uint8)
    return out.permute(1, 2, 0).contiguous().numpy()
