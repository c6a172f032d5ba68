# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The camera-frame decode feeding the processor: every encoding, random pixels, row padding.

Pins the per-channel copy that replaced the fancy-indexed gather (the node-overhead fix):
the expected frame is assembled pixel-channel by pixel-channel from the byte layout of
sensor_msgs/Image, not by the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest

from openvla_ros.image_codec import image_to_rgb

#: encoding -> (bytes per pixel, byte offset of R, G, B inside a pixel)
LAYOUT = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, (0, 0, 0)),
}


@pytest.mark.parametrize("encoding", sorted(LAYOUT))
@pytest.mark.parametrize("padding", [0, 7])
def test_decode_maps_channels_and_skips_row_padding(encoding: str, padding: int) -> None:
    height, width = 5, 9
    bpp, offsets = LAYOUT[encoding]
    step = width * bpp + padding
    rng = np.random.default_rng(len(encoding) + padding)
    data = rng.integers(0, 256, step * height, dtype=np.uint8)
    out = image_to_rgb(encoding, height, width, step, data)
    assert out.shape == (height, width, 3) and out.dtype == np.uint8
    assert out.flags.c_contiguous
    for y in range(height):
        for x in range(width):
            for c in range(3):
                assert out[y, x, c] == data[y * step + x * bpp + offsets[c]]
    # A copy: later changes to the message buffer cannot reach the decoded frame.
    data[:] = 0
    assert out.any()
