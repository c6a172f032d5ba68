# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Dataset statistics in OpenVLA's form and in LeRobot's form.

OpenVLA (``dataset_statistics.json`` beside a fine-tuned checkpoint, keyed by ``unnorm_key``)::

    {key: {"action": {mean, std, max, min, q01, q99, mask},
           "proprio": {mean, std, max, min, q01, q99},
           "num_transitions": N, "num_trajectories": E}}

with per-dimension ``numpy.quantile`` 0.01 / 0.99 and ``mask`` False for the gripper (absolute,
not normalised). The model's de-normalisation maps [-1, 1] back onto [q01, q99] where the mask is
true, so training must normalise with exactly these numbers.

LeRobot (``meta/stats.json`` and the ``stats/<feature>/<stat>`` columns of ``meta/episodes``):
per feature ``min, max, mean, std, count`` and quantiles ``q01 q10 q50 q90 q99``; images per
channel (shape ``[3, 1, 1]``) in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from openvla_ros.errors import DatasetError

__all__ = [
    "GRIPPER_MASK",
    "LEROBOT_QUANTILES",
    "aggregate_feature_stats",
    "compute_statistics",
    "feature_stats",
    "image_stats",
    "openvla_block",
]

#: OpenVLA's default action mask: the 6 motion dimensions are normalised, the gripper is not.
GRIPPER_MASK: tuple[bool, ...] = (True, True, True, True, True, True, False)

#: Quantiles LeRobot (v3) stores per feature, besides min/max/mean/std/count.
LEROBOT_QUANTILES: tuple[float, ...] = (0.01, 0.10, 0.50, 0.90, 0.99)


def openvla_block(values: npt.ArrayLike, mask: Sequence[bool] | None = None) -> dict[str, Any]:
    """``{mean, std, max, min, q01, q99[, mask]}`` of an ``(N, D)`` array, as JSON-ready lists."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise DatasetError(f"statistics need a non-empty (N, D) array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise DatasetError("statistics input has non-finite values: fix or drop those frames")
    block: dict[str, Any] = {
        "mean": arr.mean(axis=0).tolist(),
        "std": arr.std(axis=0).tolist(),
        "max": arr.max(axis=0).tolist(),
        "min": arr.min(axis=0).tolist(),
        "q01": np.quantile(arr, 0.01, axis=0).tolist(),
        "q99": np.quantile(arr, 0.99, axis=0).tolist(),
    }
    if mask is not None:
        if len(mask) != arr.shape[1]:
            raise DatasetError(f"mask has {len(mask)} entries for {arr.shape[1]} dimensions")
        block["mask"] = [bool(m) for m in mask]
    return block


def compute_statistics(
    actions: npt.ArrayLike,
    mask: Sequence[bool] | None = GRIPPER_MASK,
    num_trajectories: int = 1,
    proprio: npt.ArrayLike | None = None,
) -> dict[str, Any]:
    """The statistics of one dataset in OpenVLA's form (the value under its ``unnorm_key``).

    Args:
        actions: ``(N, 7)`` delta actions (all frames of all episodes).
        mask: which dimensions are normalised (default: all but the gripper).
        num_trajectories: number of episodes.
        proprio: ``(N, D)`` states; when absent the block is zeros like OpenVLA's datasets
            without proprioception.
    """
    acts = np.asarray(actions, dtype=np.float64)
    if mask is None:
        mask = [True] * (acts.shape[1] if acts.ndim == 2 else 0)
    out: dict[str, Any] = {"action": openvla_block(acts, mask)}
    if proprio is None:
        zeros = [0.0] * acts.shape[1]
        out["proprio"] = {k: zeros for k in ("mean", "std", "max", "min", "q01", "q99")}
    else:
        out["proprio"] = openvla_block(proprio)
    out["num_transitions"] = int(acts.shape[0])
    out["num_trajectories"] = int(num_trajectories)
    return out


def feature_stats(values: npt.ArrayLike) -> dict[str, Any]:
    """LeRobot stats of one numeric feature over the frames of ``values`` ``(N, D)``."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    stats: dict[str, Any] = {
        "min": arr.min(axis=0).tolist(),
        "max": arr.max(axis=0).tolist(),
        "mean": arr.mean(axis=0).tolist(),
        "std": arr.std(axis=0).tolist(),
        "count": [int(arr.shape[0])],
    }
    for q in LEROBOT_QUANTILES:
        stats[_qname(q)] = np.quantile(arr, q, axis=0).tolist()
    return stats


def image_stats(images: Sequence[npt.NDArray[np.uint8]], max_samples: int = 100) -> dict[str, Any]:
    """Per-channel LeRobot stats (shape ``[3, 1, 1]``, values in [0, 1]) of RGB frames.

    Like LeRobot, at most ``max_samples`` evenly spaced frames are used, each downsampled
    to ~64 px on its longer side: statistics of colour, not of every pixel.
    """
    if not images:
        raise DatasetError("image statistics need at least one frame")
    idx = np.linspace(0, len(images) - 1, min(len(images), max_samples)).round().astype(int)
    pixels = []
    for i in np.unique(idx):
        img = np.asarray(images[int(i)])
        step = max(1, max(img.shape[:2]) // 64)
        pixels.append(img[::step, ::step, :3].reshape(-1, 3))
    px = np.concatenate(pixels).astype(np.float64) / 255.0
    stats = feature_stats(px)
    stats["count"] = [len(images)]
    return {k: [[[v]] for v in vals] if k != "count" else vals for k, vals in stats.items()}


def aggregate_feature_stats(per_episode: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Combine per-episode LeRobot stats: exact min/max/mean/std, count-weighted quantiles.

    Quantiles cannot be merged exactly from summaries; the count-weighted mean of the
    per-episode quantiles is the same approximation LeRobot makes.
    """
    if not per_episode:
        raise DatasetError("no episode statistics to aggregate")
    counts = np.array([float(np.asarray(s["count"]).reshape(-1)[0]) for s in per_episode])
    w = counts / counts.sum()
    means = np.stack([np.asarray(s["mean"], dtype=np.float64) for s in per_episode])
    stds = np.stack([np.asarray(s["std"], dtype=np.float64) for s in per_episode])
    shape = (-1,) + (1,) * (means.ndim - 1)
    mean = (w.reshape(shape) * means).sum(axis=0)
    second = (w.reshape(shape) * (stds**2 + means**2)).sum(axis=0)
    out: dict[str, Any] = {
        "min": np.min(np.stack([np.asarray(s["min"]) for s in per_episode]), axis=0).tolist(),
        "max": np.max(np.stack([np.asarray(s["max"]) for s in per_episode]), axis=0).tolist(),
        "mean": mean.tolist(),
        "std": np.sqrt(np.maximum(second - mean**2, 0.0)).tolist(),
        "count": [int(counts.sum())],
    }
    for q in LEROBOT_QUANTILES:
        name = _qname(q)
        if all(name in s for s in per_episode):
            qs = np.stack([np.asarray(s[name], dtype=np.float64) for s in per_episode])
            out[name] = (w.reshape(shape) * qs).sum(axis=0).tolist()
    return out


def _qname(q: float) -> str:
    return f"q{round(q * 100):02d}"
