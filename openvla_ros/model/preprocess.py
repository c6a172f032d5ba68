# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Image preprocessing identical to OpenVLA's processor, plus the evaluation-time presets.

numpy + PIL only (no torch, no torchvision): the official processor's PIL bicubic resize and
float32 normalisation are reproduced bit-exactly, with one resize for both towers and a lookup
table for the normalisation. Presets run *before* the processor and
mirror what OpenVLA's evaluation scripts did to camera frames so they look like training data.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from openvla_ros.errors import CheckpointError, InputError
from openvla_ros.image_codec import MAX_SIDE_PX, check_rgb_array
from openvla_ros.model.config import read_json

#: DINOv2 / SigLIP constants the official processor normalises with: openvla-7b's
#: ``preprocessor_config.json`` ``tvf_normalize_params`` (bf16-rounded ImageNet values).
DINO_MEAN = (0.484375, 0.455078125, 0.40625)
DINO_STD = (0.228515625, 0.2236328125, 0.224609375)
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)
#: The exact ImageNet values the same file stores under ``means`` / ``stds`` (not used by the
#: official processor; written by the checkpoint generator as the published file has them).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}
LOG = logging.getLogger(__name__)


def validate_image(image: Any) -> npt.NDArray[np.uint8]:
    """Check that ``image`` is an HxWx3 uint8 RGB array (at most
    :data:`~openvla_ros.image_codec.MAX_SIDE_PX` per side); return it C-contiguous.

    Raises:
        InputError: wrong type, dtype, rank, channel count or size.
    """
    return check_rgb_array(image, MAX_SIDE_PX)


@dataclass(frozen=True)
class ProcessorSpec:
    """The processor's settings from ``preprocessor_config.json``.

    Attributes:
        means / stds: per tower, the 3 normalisation constants in force (the file's
            ``tvf_normalize_params``; ``means``/``stds`` only when that field is absent).
        size: output side (224).
        interpolation: resize filter (bicubic).
        resize_strategy: ``resize-naive`` or ``letterbox``.
        constants_source: which field the constants came from (for info() and messages).
    """

    means: tuple[tuple[float, float, float], ...]
    stds: tuple[tuple[float, float, float], ...]
    size: int = 224
    interpolation: str = "bicubic"
    resize_strategy: str = "resize-naive"
    constants_source: str = field(default="tvf_normalize_params", compare=False)

    @classmethod
    def default(cls, fused: bool = True) -> ProcessorSpec:
        """openvla-7b's values (DINOv2 + SigLIP when fused)."""
        if fused:
            return cls(means=(DINO_MEAN, SIGLIP_MEAN), stds=(DINO_STD, SIGLIP_STD))
        return cls(means=(SIGLIP_MEAN,), stds=(SIGLIP_STD,))


def _tvf_constants(
    raw: dict[str, Any], path: Path
) -> tuple[list[tuple[float, ...]], list[tuple[float, ...]]] | None:
    """``tvf_normalize_params`` -> (means, stds), or None when the field is absent."""
    params = raw.get("tvf_normalize_params")
    if params is None:
        return None
    if isinstance(params, dict):  # single-tower processors store one dict, not a list
        params = [params]
    try:
        means = [tuple(float(v) for v in p["mean"]) for p in params]
        stds = [tuple(float(v) for v in p["std"]) for p in params]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: tvf_normalize_params is malformed ({exc}); expected one "
            '{"mean": [3 floats], "std": [3 floats]} per tower'
        ) from exc
    return means, stds


def load_processor_spec(path: Path, towers: int) -> ProcessorSpec:
    """Read ``preprocessor_config.json``; CheckpointError naming the field if it is unusable.

    The normalisation constants come from ``tvf_normalize_params``, the field the official
    processor normalises with (openvla-7b: bf16-rounded ImageNet values). Only when it is
    absent are ``means`` / ``stds`` used, and a warning says so.
    """
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    try:
        tvf = _tvf_constants(raw, path)
        if tvf is not None:
            means, stds = tvf
            source = "tvf_normalize_params"
        else:
            means = [tuple(float(v) for v in m) for m in raw["means"]]
            stds = [tuple(float(v) for v in s) for s in raw["stds"]]
            source = "means/stds"
            LOG.warning(
                "%s has no tvf_normalize_params: normalising with its means/stds fields "
                "instead (the official processor uses tvf_normalize_params; check that these "
                "are the constants the checkpoint was trained with)",
                path,
            )
        sizes = raw.get("input_sizes", [[3, 224, 224]] * towers)
        interps = raw.get("interpolations", ["bicubic"] * towers)
        strategy = str(raw.get("image_resize_strategy", "resize-naive"))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: missing or malformed field ({exc})") from exc
    if len(means) != towers or len(stds) != towers or any(len(m) != 3 for m in means + stds):
        raise CheckpointError(
            f"{path}: {source} must hold 3 means and 3 stds for each of {towers} towers"
        )
    if any(s <= 0 for std in stds for s in std):
        raise CheckpointError(f"{path}: {source} stds must be positive")
    if {tuple(s) for s in sizes} != {(3, 224, 224)}:
        raise CheckpointError(f"{path}: input_sizes {sizes} unsupported (expected 3x224x224)")
    if len(set(interps)) != 1 or interps[0] not in _RESAMPLE:
        raise CheckpointError(f"{path}: interpolations {interps} unsupported (expected bicubic)")
    if strategy not in ("resize-naive", "letterbox"):
        raise CheckpointError(
            f"{path}: image_resize_strategy '{strategy}' unsupported (resize-naive, letterbox)"
        )
    return ProcessorSpec(
        means=tuple(means),  # type: ignore[arg-type]
        stds=tuple(stds),  # type: ignore[arg-type]
        interpolation=interps[0],
        resize_strategy=strategy,
        constants_source=source,
    )


def _letterbox(img: Image.Image, fill: tuple[int, int, int]) -> Image.Image:
    # Prismatic's letterbox: pad the short side symmetrically to a square with the mean colour.
    w, h = img.size
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(img, ((side - w) // 2, (side - h) // 2))
    return canvas


@functools.lru_cache(maxsize=16)
def _normalise_lut(
    means: tuple[tuple[float, float, float], ...], stds: tuple[tuple[float, float, float], ...]
) -> npt.NDArray[np.float32]:
    """[3 * towers, 256] float32: the normalised value of every uint8 level per output channel.

    Each entry is computed with exactly the official float32 operations (``to_tensor``: x / 255;
    ``normalize``: (x - mean) / std), so looking a pixel up gives the bit-identical value of
    computing it, at the cost of one gather instead of three float passes per tower.
    """
    levels = np.arange(256, dtype=np.float32) / np.float32(255.0)
    rows = [
        (levels - np.float32(m)) / np.float32(s)
        for mean, std in zip(means, stds, strict=True)
        for m, s in zip(mean, std, strict=True)
    ]
    lut = np.stack(rows).astype(np.float32)
    lut.flags.writeable = False
    return lut


def resize_for_towers(image: npt.NDArray[np.uint8], spec: ProcessorSpec) -> npt.NDArray[np.uint8]:
    """The processor's uint8 resize (letterbox if configured, then PIL resize to 224x224).

    Every tower of OpenVLA resizes the same frame with the same filter to the same size, so
    one resize serves all towers.
    """
    img = Image.fromarray(image, mode="RGB")
    if spec.resize_strategy == "letterbox":
        img = _letterbox(img, tuple(int(x * 255) for x in spec.means[0]))  # type: ignore[arg-type]
    if img.size != (spec.size, spec.size):
        img = img.resize((spec.size, spec.size), _RESAMPLE[spec.interpolation])
    return np.asarray(img, dtype=np.uint8)


def normalise_into(
    resized: npt.NDArray[np.uint8], spec: ProcessorSpec, out: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Normalise a resized HxWx3 uint8 frame straight into ``out`` [3 * towers, H, W] float32."""
    lut = _normalise_lut(spec.means, spec.stds)
    planes = np.ascontiguousarray(resized.transpose(2, 0, 1))
    for channel in range(lut.shape[0]):
        np.take(lut[channel], planes[channel % 3], out=out[channel])
    return out


def process_image(
    image: npt.NDArray[np.uint8],
    spec: ProcessorSpec,
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]:
    """The official processor: resize to 224x224 (aspect ignored), /255, normalise per tower.

    Bit-identical to the official algorithm (a PIL resize per tower, ``to_tensor``,
    ``normalize``) and about 3x faster: one resize serves both towers, and normalisation is a
    per-level table lookup written straight into the output tensor.

    Args:
        image: HxWx3 uint8 RGB.
        spec: the processor settings.
        out: optional C-contiguous float32 [3 * towers, 224, 224] buffer to write into (e.g.
            one row of a batch); a new array when omitted.

    Returns:
        float32 [3 * towers, 224, 224]: DINOv2-normalised channels first, then SigLIP.
    """
    resized = resize_for_towers(image, spec)
    shape = (3 * len(spec.means), spec.size, spec.size)
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}")
    return normalise_into(resized, spec, out)


# ---------------------------------------------------------------------------------------------
# Presets: steps applied to the uint8 frame before the processor.


def jpeg_lanczos(image: npt.NDArray[np.uint8], size: int = 224) -> npt.NDArray[np.uint8]:
    """Bridge/LIBERO evaluation: JPEG encode/decode (quality 95, 4:2:0, TF's defaults), then an
    antialiased Lanczos-3 resize to ``size`` with rounding. PIL's Lanczos filter is the same
    kernel as TF's ``lanczos3`` + antialias; results differ from TF by at most a few levels."""
    buf = io.BytesIO()
    Image.fromarray(image, mode="RGB").save(buf, format="JPEG", quality=95, subsampling="4:2:0")
    buf.seek(0)
    decoded = Image.open(buf).convert("RGB")
    resized = decoded.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8)


def center_crop(
    image: npt.NDArray[np.uint8], area: float = 0.9, size: int = 224
) -> npt.NDArray[np.uint8]:
    """Center crop of ``area`` of the image, bilinearly resized to ``size`` x ``size``.

    OpenVLA's evaluation ``crop_and_resize`` (``experiments/robot/openvla_utils.py``, batch of
    1, crop scale 0.9 of the area, i.e. sqrt(0.9) of each side) on the raw frame, reproduced in
    float32 step by step: ``convert_image_dtype`` to [0, 1] (x * float32(1/255)), then
    ``tf.image.crop_and_resize`` to a fixed 224x224 (its CPU kernel: box ``[y1, x1, y2, x2]`` =
    ``[(1-s)/2, (1-s)/2, (1+s)/2, (1+s)/2]``, source row ``y1 (H-1) + i (y2-y1)(H-1)/(size-1)``,
    bilinear between the floor/ceil neighbours, lerp as ``a + (b - a) t``), clip to [0, 1] and
    ``convert_image_dtype(..., uint8, saturate=True)``: multiply by 255.5, clip to [0, 255] and
    truncate.
    """
    h, w = image.shape[:2]
    f32 = np.float32
    side = np.clip(np.sqrt(f32(area)), f32(0), f32(1))
    lo = (f32(1) - side) / f32(2)
    hi = lo + side
    x = image.astype(f32) * f32(1.0 / 255.0)

    def coords(n_in: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[Any]]:
        if size > 1:
            scale = f32((hi - lo) * f32(n_in - 1) / f32(size - 1))
            pos = lo * f32(n_in - 1) + np.arange(size, dtype=f32) * scale
        else:
            pos = np.full(1, f32(0.5) * (lo + hi) * f32(n_in - 1), dtype=f32)
        pos = pos.astype(f32)
        first = np.clip(np.floor(pos), 0, n_in - 1).astype(np.intp)
        second = np.clip(np.ceil(pos), 0, n_in - 1).astype(np.intp)
        return first, second, (pos - np.floor(pos)).astype(f32)

    top_i, bottom_i, y_lerp = coords(h)
    left_i, right_i, x_lerp = coords(w)
    xl = x_lerp[None, :, None]
    rows_top, rows_bottom = x[top_i], x[bottom_i]
    top = rows_top[:, left_i] + (rows_top[:, right_i] - rows_top[:, left_i]) * xl
    bottom = rows_bottom[:, left_i] + (rows_bottom[:, right_i] - rows_bottom[:, left_i]) * xl
    out = np.clip(top + (bottom - top) * y_lerp[:, None, None], f32(0), f32(1))
    # convert_image_dtype(float -> uint8, saturate=True): scale by 255.5, clip, truncate.
    return np.clip(out * f32(255.5), 0, 255).astype(np.uint8)


def rotate180(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """LIBERO's cameras are upside down relative to training; OpenVLA's eval flips both axes."""
    return np.ascontiguousarray(image[::-1, ::-1])


_STEPS: dict[str, Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.uint8]]] = {
    "bridge": jpeg_lanczos,
    "center_crop": center_crop,
    "rotate180": rotate180,
}
#: Named presets -> the steps they run, in order.
PRESETS: dict[str, tuple[str, ...]] = {
    "none": (),
    "bridge": ("bridge",),
    "center_crop": ("center_crop",),
    "bridge+center_crop": ("bridge", "center_crop"),
    "libero": ("rotate180", "bridge", "center_crop"),
}


def parse_preset(name: str) -> tuple[str, ...]:
    """A preset name, or steps joined with '+' (e.g. ``rotate180+bridge``), -> step names.

    Raises:
        InputError: an unknown preset or step.
    """
    if name in PRESETS:
        return PRESETS[name]
    steps = tuple(s.strip() for s in name.split("+") if s.strip())
    unknown = [s for s in steps if s not in _STEPS]
    if not steps or unknown:
        raise InputError(
            f"unknown preprocess preset '{name}'; presets: {sorted(PRESETS)}, or '+'-joined "
            f"steps from {sorted(_STEPS)}"
        )
    return steps


def apply_preset(image: npt.NDArray[np.uint8], steps: tuple[str, ...]) -> npt.NDArray[np.uint8]:
    """Run preset steps on a validated uint8 frame."""
    for step in steps:
        image = _STEPS[step](image)
    return image
