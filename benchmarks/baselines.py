# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Baseline algorithms the benchmarks time side by side with the project's code.

* :func:`official_processor`: the official OpenVLA processor's algorithm for one frame, step by
  step as ``PrismaticImageProcessor`` runs it (a PIL bicubic resize *per tower*, then
  ``to_tensor`` = float32 / 255 in CHW, then ``normalize`` = (x - mean) / std), in numpy
  because torchvision has no CPU build here (the float32 operations are the same).
* :func:`previous_processor`: this project's processor before the speed-up.
* :func:`gather_decode_rgb8`: the camera decode before the node-overhead fix (a fancy-indexed
  channel gather over the whole frame).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from PIL import Image


def official_processor(
    image: npt.NDArray[np.uint8],
    means: Sequence[Sequence[float]],
    stds: Sequence[Sequence[float]],
    size: int = 224,
) -> npt.NDArray[np.float32]:
    """[3 * towers, size, size] float32, the official processor's output for ``image``."""
    towers = []
    for mean, std in zip(means, stds, strict=True):
        pil = Image.fromarray(image, mode="RGB").resize((size, size), Image.Resampling.BICUBIC)
        x = np.asarray(pil, dtype=np.float32).transpose(2, 0, 1) / np.float32(255.0)
        m = np.asarray(mean, np.float32)[:, None, None]
        s = np.asarray(std, np.float32)[:, None, None]
        towers.append((x - m) / s)
    return np.concatenate(towers, axis=0)


def previous_processor(
    image: npt.NDArray[np.uint8],
    means: Sequence[Sequence[float]],
    stds: Sequence[Sequence[float]],
    size: int = 224,
) -> npt.NDArray[np.float32]:
    """The project's processor before the speed-up (commit 1c2c6f1): one resize, then float32
    /255 and (x - mean) / std per tower, concatenated."""
    pil = Image.fromarray(image, mode="RGB").resize((size, size), Image.Resampling.BICUBIC)
    x = np.asarray(pil, dtype=np.float32).transpose(2, 0, 1) / np.float32(255.0)
    towers = [
        (x - np.asarray(m, np.float32)[:, None, None]) / np.asarray(s, np.float32)[:, None, None]
        for m, s in zip(means, stds, strict=True)
    ]
    return np.ascontiguousarray(np.concatenate(towers, axis=0), dtype=np.float32)


def gather_decode_rgb8(
    data: npt.NDArray[np.uint8], height: int, width: int
) -> npt.NDArray[np.uint8]:
    """rgb8 bytes -> HxWx3 the old way (``pixels[:, :, [0, 1, 2]]``)."""
    pixels = data.reshape(height, width, 3)
    return np.ascontiguousarray(pixels[:, :, [0, 1, 2]])
