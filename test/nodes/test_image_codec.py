# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Pure tests of the camera image codec (no rclpy): hostile compressed frames are an
InputError, never some other exception (which would kill the policy node's worker)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest

from openvla_ros.errors import InputError
from openvla_ros.image_codec import MAX_PIXELS, MAX_SIDE_PX, compressed_to_rgb

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def bomb_png(side: int = 20000) -> bytes:
    """A tiny PNG whose header claims side x side RGB pixels (PIL: DecompressionBombError)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IEND", b"")


def _saved(fmt: str) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(out, format=fmt)
    return out.getvalue()


def broken_chunk_png() -> bytes:
    """A PNG whose second chunk's length is zeroed (PIL: SyntaxError "broken PNG file")."""
    good = _saved("PNG")
    return good[:33] + b"\x00\x00\x00\x00" + good[37:]


def bad_tag_tiff() -> bytes:
    """A TIFF with one corrupted tag type (PIL: TypeError on an IFDRational)."""
    raw = bytearray(_saved("TIFF"))
    raw[72] = 5
    return bytes(raw)


#: Hostile / broken frames: name -> bytes. Also sent over DDS by test_policy_node.
BAD_FRAMES = {
    "bomb_png": bomb_png(),
    "broken_chunk_png": broken_chunk_png(),
    "bad_tag_tiff": bad_tag_tiff(),
    "truncated_png": _saved("PNG")[:40],
    "truncated_tiff": _saved("TIFF")[:120],
    "garbage": b"not an image at all",
    "oversized_png": bomb_png(MAX_SIDE_PX + 1),
}


@pytest.mark.filterwarnings("ignore::UserWarning")  # PIL: "Corrupt EXIF data"
@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
def test_any_decoder_failure_is_an_input_error(name: str) -> None:
    with pytest.raises(InputError, match="compressed image"):
        compressed_to_rgb("png", BAD_FRAMES[name])


def test_pil_pixel_limit_is_consistent_with_max_side() -> None:
    from PIL import Image

    rgb = compressed_to_rgb("png", _saved("PNG"))
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    assert (rgb == [10, 20, 30]).all()
    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS <= MAX_PIXELS
    assert MAX_PIXELS == MAX_SIDE_PX * MAX_SIDE_PX


def _encoded(mode: str, size: tuple[int, int], fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size).save(buf, fmt)
    return buf.getvalue()


def test_small_png_declaring_8192_square_is_refused_before_decoding() -> None:
    # Issue 11: an 8 kB 1-bit PNG of 8192x8192 took the policy node from 80 to 777 MB.
    from openvla_ros.image_codec import MAX_COMPRESSED_PIXELS

    bomb = _encoded("1", (8192, 8192), "PNG")
    assert len(bomb) < 10_000 and MAX_COMPRESSED_PIXELS < 8192 * 8192
    with pytest.raises(InputError, match="refused before decoding"):
        compressed_to_rgb("png", bomb)
    # A 4K UHD frame is the largest that decodes at full size.
    assert compressed_to_rgb("png", _encoded("1", (3840, 2160), "PNG")).shape == (2160, 3840, 3)


def test_oversized_jpeg_decodes_at_a_reduced_dct_scale() -> None:
    from openvla_ros.image_codec import MAX_COMPRESSED_PIXELS

    rgb = compressed_to_rgb("jpeg", _encoded("RGB", (8000, 6000), "JPEG"))
    # 8000x6000 = 48 Mpx: 1/2 is still 12 Mpx > 8.3 Mpx, 1/4 fits (2000x1500).
    assert rgb.shape == (1500, 2000, 3) and rgb.size // 3 <= MAX_COMPRESSED_PIXELS
    assert rgb.flags.writeable
    # Normal frames are decoded exactly (the preprocessing sees the camera's pixels).
    assert compressed_to_rgb("jpeg", _encoded("RGB", (640, 480), "JPEG")).shape == (480, 640, 3)
