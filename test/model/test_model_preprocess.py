# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Preprocessing against a from-first-principles numpy computation, and the presets."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from openvla_ros.errors import CheckpointError, InputError
from openvla_ros.model.make_checkpoint import synthetic_scene as scene
from openvla_ros.model.preprocess import (
    PRESETS,
    ProcessorSpec,
    apply_preset,
    center_crop,
    jpeg_lanczos,
    load_processor_spec,
    parse_preset,
    process_image,
    rotate180,
    validate_image,
)

PRECISION_BITS = 32 - 8 - 2  # Pillow's fixed-point resampling precision


def _bicubic(x: float) -> float:
    a = -0.5
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    if x < 2.0:
        return (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return 0.0


def _coeffs(in_size: int, out_size: int) -> list[tuple[int, list[int]]]:
    """Pillow's antialiased bicubic weights: support scaled by the downscale factor, normalised,
    then rounded to fixed point."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 2.0 * filterscale
    rows = []
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        w = [_bicubic((x + xmin - center + 0.5) / filterscale) for x in range(xmax)]
        total = sum(w)
        w = [v / total for v in w]
        fixed = [
            int(v * (1 << PRECISION_BITS) - 0.5) if v < 0 else int(v * (1 << PRECISION_BITS) + 0.5)
            for v in w
        ]
        rows.append((xmin, fixed))
    return rows


def _resample_axis(img: npt.NDArray[np.int64], out_size: int, axis: int) -> npt.NDArray[np.int64]:
    img = np.moveaxis(img, axis, 0)
    out = np.empty((out_size, *img.shape[1:]), dtype=np.int64)
    for i, (xmin, k) in enumerate(_coeffs(img.shape[0], out_size)):
        acc = np.full(img.shape[1:], 1 << (PRECISION_BITS - 1), dtype=np.int64)
        for j, kk in enumerate(k):
            acc += img[xmin + j] * kk
        out[i] = np.clip(acc >> PRECISION_BITS, 0, 255)
    return np.moveaxis(out, 0, axis)


def reference_pixels(image: npt.NDArray[np.uint8], vertical_first: bool) -> npt.NDArray[np.float32]:
    """Two 8-bit separable passes, /255, per-tower normalisation."""
    x = image.astype(np.int64)
    axes = (0, 1) if vertical_first else (1, 0)
    for axis in axes:
        if x.shape[axis] != 224:
            x = _resample_axis(x, 224, axis=axis)
    f = x.astype(np.float32).transpose(2, 0, 1) / np.float32(255.0)
    # The published constants written out in this file, not the module's own DINO_MEAN/STD.
    published = PUBLISHED_PREPROCESSOR_FIELDS["tvf_normalize_params"][0]
    mean = np.array(published["mean"], np.float32)[:, None, None]  # type: ignore[index]
    std = np.array(published["std"], np.float32)[:, None, None]  # type: ignore[index]
    dino = (f - mean) / std
    siglip = (f - np.float32(0.5)) / np.float32(0.5)
    return np.concatenate([dino, siglip]).astype(np.float32)


@pytest.mark.parametrize("shape", [(180, 240), (480, 640), (224, 224), (100, 300), (300, 150)])
def test_processor_matches_first_principles(shape: tuple[int, int]) -> None:
    img = scene(7, *shape)
    ours = process_image(img, ProcessorSpec.default())
    assert ours.shape == (6, 224, 224) and ours.dtype == np.float32
    # Pillow runs the horizontal or the vertical pass first depending on a cost estimate that
    # changes between Pillow versions; the result must equal one of the two orders exactly.
    refs = [reference_pixels(img, vertical_first=v) for v in (False, True)]
    assert any(np.array_equal(ours, ref) for ref in refs)


def test_constants_come_from_preprocessor_config(small_ckpt: Path) -> None:
    spec = load_processor_spec(small_ckpt / "preprocessor_config.json", 2)
    assert spec == ProcessorSpec.default()
    # The bf16-rounded ImageNet values, not the exact ones.
    assert spec.means[0] == (0.484375, 0.455078125, 0.40625)


#: The normalisation fields of openvla-7b's published preprocessor_config.json, written out by
#: hand: ``means``/``stds`` hold the exact ImageNet values, ``tvf_normalize_params`` the
#: bf16-rounded ones that the official processor actually normalises with.
PUBLISHED_PREPROCESSOR_FIELDS = {
    "image_resize_strategy": "resize-naive",
    "input_sizes": [[3, 224, 224], [3, 224, 224]],
    "interpolations": ["bicubic", "bicubic"],
    "means": [[0.485, 0.456, 0.406], [0.5, 0.5, 0.5]],
    "stds": [[0.229, 0.224, 0.225], [0.5, 0.5, 0.5]],
    "tvf_normalize_params": [
        {
            "inplace": False,
            "mean": [0.484375, 0.455078125, 0.40625],
            "std": [0.228515625, 0.2236328125, 0.224609375],
        },
        {"inplace": False, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
    ],
}


def test_published_config_normalises_with_tvf_normalize_params(tmp_path: Path) -> None:
    """Regression: the loader read ``means``/``stds`` (exact ImageNet), shifting pixels by up
    to 8e-3 from the official processor's output."""
    path = tmp_path / "preprocessor_config.json"
    path.write_text(json.dumps(PUBLISHED_PREPROCESSOR_FIELDS))
    spec = load_processor_spec(path, 2)
    img = np.empty((224, 224, 3), np.uint8)
    img[...] = (0, 128, 255)
    pixels = process_image(img, spec)
    # Worked by hand from the published constants: (v / 255 - mean) / std.
    expected = [
        (0 / 255 - 0.484375) / 0.228515625,  # -2.1196581...
        (128 / 255 - 0.455078125) / 0.2236328125,  # 0.2096412...
        (255 / 255 - 0.40625) / 0.224609375,  # 2.6434782...
        -1.0,  # SigLIP: (0 - 0.5) / 0.5
        (128 / 255 - 0.5) / 0.5,  # 0.0039215...
        1.0,
    ]
    np.testing.assert_allclose(pixels[:, 100, 100], expected, rtol=0, atol=1e-6)
    # The exact-ImageNet reading would be off by 4.5e-3 in the green channel.
    assert abs(pixels[1, 0, 0] - (128 / 255 - 0.456) / 0.224) > 4e-3
    assert spec.constants_source == "tvf_normalize_params"


def test_means_stds_are_the_fallback_and_say_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fields = {k: v for k, v in PUBLISHED_PREPROCESSOR_FIELDS.items() if k != "tvf_normalize_params"}
    path = tmp_path / "preprocessor_config.json"
    path.write_text(json.dumps(fields))
    with caplog.at_level(logging.WARNING, logger="openvla_ros.model.preprocess"):
        spec = load_processor_spec(path, 2)
    assert spec.means[0] == (0.485, 0.456, 0.406)
    assert spec.constants_source == "means/stds"
    assert "no tvf_normalize_params" in caplog.text


def test_malformed_tvf_normalize_params(tmp_path: Path) -> None:
    fields = dict(PUBLISHED_PREPROCESSOR_FIELDS, tvf_normalize_params=[{"mean": [0.5]}])
    path = tmp_path / "preprocessor_config.json"
    path.write_text(json.dumps(fields))
    with pytest.raises(CheckpointError, match="tvf_normalize_params"):
        load_processor_spec(path, 2)


def test_generated_checkpoint_stores_both_fields_as_published(small_ckpt: Path) -> None:
    raw = json.loads((small_ckpt / "preprocessor_config.json").read_text())
    for key in ("means", "stds", "tvf_normalize_params"):
        assert raw[key] == PUBLISHED_PREPROCESSOR_FIELDS[key], key


def official_processor(
    image: npt.NDArray[np.uint8],
    means: list[list[float]],
    stds: list[list[float]],
) -> npt.NDArray[np.float32]:
    """The official algorithm, step by step: per tower a PIL bicubic resize of the frame to
    224x224, ``to_tensor`` (float32 / 255, CHW) and ``normalize`` ((x - mean) / std in
    float32), towers stacked on channels."""
    towers = []
    for mean, std in zip(means, stds, strict=True):
        pil = Image.fromarray(image, mode="RGB")
        if pil.size != (224, 224):
            pil = pil.resize((224, 224), Image.Resampling.BICUBIC)
        x = np.array(pil, dtype=np.uint8).astype(np.float32).transpose(2, 0, 1)
        x = x / np.float32(255)
        x = (x - np.array(mean, np.float32).reshape(3, 1, 1)) / np.array(std, np.float32).reshape(
            3, 1, 1
        )
        towers.append(x)
    return np.concatenate(towers, axis=0)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    height=st.integers(1, 720),
    width=st.integers(1, 960),
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["noise", "flat", "extremes", "scene"]),
)
def test_fast_processor_is_bit_identical_to_official_algorithm(
    height: int, width: int, seed: int, kind: str
) -> None:
    rng = np.random.default_rng(seed)
    if kind == "noise":
        img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    elif kind == "flat":
        img = np.full((height, width, 3), rng.integers(0, 256, 3), dtype=np.uint8)
    elif kind == "extremes":
        img = (rng.integers(0, 2, (height, width, 3)) * 255).astype(np.uint8)
    else:
        img = scene(seed % 1000, max(height, 4), max(width, 4))
    fields = PUBLISHED_PREPROCESSOR_FIELDS["tvf_normalize_params"]
    expected = official_processor(
        img,
        [f["mean"] for f in fields],
        [f["std"] for f in fields],  # type: ignore[index]
    )
    ours = process_image(img, ProcessorSpec.default())
    assert ours.dtype == np.float32 and ours.shape == (6, 224, 224)
    assert np.array_equal(ours, expected)
    # Writing into a caller's buffer (a batch row) gives the same bits.
    buf = np.full((6, 224, 224), np.nan, np.float32)
    process_image(img, ProcessorSpec.default(), out=buf)
    assert np.array_equal(buf, expected)


def test_bad_preprocessor_config(tmp_path: Path) -> None:
    (tmp_path / "preprocessor_config.json").write_text('{"means": [[0.5, 0.5, 0.5]], "stds": []}')
    with pytest.raises(CheckpointError, match=r"preprocessor_config\.json: means/stds must"):
        load_processor_spec(tmp_path / "preprocessor_config.json", 2)


def test_validate_image_contiguity() -> None:
    img = scene(1)[:, ::-1]
    out = validate_image(img)
    assert out.flags.c_contiguous and np.array_equal(out, img)
    with pytest.raises(InputError, match="dtype uint8"):
        validate_image(img.astype(np.int16))


def test_presets_parse() -> None:
    assert parse_preset("none") == ()
    assert parse_preset("libero") == ("rotate180", "bridge", "center_crop")
    assert parse_preset("rotate180+bridge") == ("rotate180", "bridge")
    assert set(PRESETS) >= {"none", "bridge", "center_crop", "libero"}
    with pytest.raises(InputError, match="unknown preprocess preset 'blur'"):
        parse_preset("blur")


def test_bridge_preset_is_jpeg_round_trip_and_lanczos() -> None:
    img = scene(3, 256, 256)
    out = jpeg_lanczos(img)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    # Close to a plain resize, but not equal (the JPEG round trip changes pixels).
    from PIL import Image

    plain = np.asarray(Image.fromarray(img).resize((224, 224), Image.Resampling.LANCZOS))
    diff = np.abs(out.astype(int) - plain.astype(int))
    assert 0 < diff.mean() < 3


def _tf_crop_and_resize_pixel(img: np.ndarray, i: int, j: int, area: float) -> np.ndarray:
    """One output pixel of OpenVLA's crop_and_resize, written out like TF's CPU kernel in
    float32 scalars (uint8 -> [0, 1], 224x224 bilinear crop, clip, x255.5 and truncate)."""
    f32 = np.float32
    h, w = img.shape[:2]
    s = f32(math.sqrt(f32(area)))
    y1 = x1 = (f32(1) - s) / f32(2)
    y2 = x2 = y1 + s
    in_y = y1 * f32(h - 1) + f32(i) * f32((y2 - y1) * f32(h - 1) / f32(223))
    in_x = x1 * f32(w - 1) + f32(j) * f32((x2 - x1) * f32(w - 1) / f32(223))
    t, b = math.floor(in_y), math.ceil(in_y)
    le, r = math.floor(in_x), math.ceil(in_x)
    dy, dx = f32(in_y - f32(t)), f32(in_x - f32(le))
    f = img.astype(f32) * f32(1.0 / 255.0)
    top = f[t, le] + (f[t, r] - f[t, le]) * dx
    bottom = f[b, le] + (f[b, r] - f[b, le]) * dx
    v = np.clip(top + (bottom - top) * dy, f32(0), f32(1))
    return np.clip(v * f32(255.5), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape", [(240, 320), (224, 224), (480, 640)])
def test_center_crop_matches_tf_crop_and_resize_definition(shape: tuple[int, int]) -> None:
    img = scene(4, *shape)
    out = center_crop(img, 0.9)
    # OpenVLA's crop_and_resize always outputs 224x224, whatever the frame size.
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    for i in (0, 1, 57, 100, 111, 200, 222, 223):
        for j in (0, 3, 100, 150, 223):
            np.testing.assert_array_equal(out[i, j], _tf_crop_and_resize_pixel(img, i, j, 0.9))
    # The crop is central: the centre of the output is the centre of the input.
    h, w = shape
    centre = img[h // 2 - 1 : h // 2 + 1, w // 2 - 1 : w // 2 + 1].astype(int)
    assert np.all(np.abs(out[111:113, 111:113].astype(int) - centre.mean((0, 1))) < 64)


def test_center_crop_area_one_of_a_224_frame_is_the_identity() -> None:
    img = scene(4, 224, 224)
    np.testing.assert_array_equal(center_crop(img, 1.0), img)


def test_libero_preset_is_rotate_jpeg_lanczos_then_crop_to_224() -> None:
    img = scene(6, 256, 256)
    out = apply_preset(img, parse_preset("libero"))
    np.testing.assert_array_equal(out, center_crop(jpeg_lanczos(rotate180(img))))
    assert out.shape == (224, 224, 3)


def test_rotate180_and_chain() -> None:
    img = scene(5, 50, 70)
    np.testing.assert_array_equal(rotate180(rotate180(img)), img)
    assert rotate180(img)[0, 0].tolist() == img[-1, -1].tolist()
    out = apply_preset(img, parse_preset("libero"))
    assert out.shape == (224, 224, 3)
