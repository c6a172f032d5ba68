# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Action token ids -> normalised actions -> robot units (numpy only).

OpenVLA maps the last ``n_action_bins`` ids of its 32000-token vocabulary to bins counted down
from the top: id 31999 is bin 0 (-0.996), id 31744 bin 254/255 (+0.996). Ids outside that range
are clipped exactly as the official code does (never an exception: a robot needs an action).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from openvla_ros.errors import InputError
from openvla_ros.model.config import ActionStats


class ActionTokenizer:
    """Bin arithmetic of OpenVLA's action tokens.

    Args:
        vocab_size: the unpadded vocabulary (32000 = 32064 - 64).
        n_bins: number of bin edges over [-1, 1] (256 -> 255 centers).
    """

    def __init__(self, vocab_size: int = 32000, n_bins: int = 256) -> None:
        self.vocab_size = vocab_size
        self.n_bins = n_bins
        bins = np.linspace(-1.0, 1.0, n_bins)
        self.bin_centers: npt.NDArray[np.float64] = (bins[:-1] + bins[1:]) / 2.0

    @property
    def first_action_id(self) -> int:
        """Lowest id that is a proper action token (31744 for OpenVLA)."""
        return self.vocab_size - self.n_bins

    def decode(self, token_ids: Sequence[int] | npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Token ids -> normalised actions in [-1, 1]: k = clip(vocab - id - 1, 0, centers - 1)."""
        ids = np.asarray(token_ids, dtype=np.int64)
        k = np.clip(self.vocab_size - ids - 1, 0, self.bin_centers.shape[0] - 1)
        return self.bin_centers[k]

    def encode(
        self, normalized: Sequence[float] | npt.NDArray[np.float64]
    ) -> npt.NDArray[np.int64]:
        """The inverse used in training (digitize into the bins), handy for tests and tools."""
        x = np.clip(np.asarray(normalized, dtype=np.float64), -1.0, 1.0)
        return self.vocab_size - np.digitize(x, np.linspace(-1.0, 1.0, self.n_bins))


def unnormalize(normalized: npt.NDArray[np.float64], stats: ActionStats) -> npt.NDArray[np.float64]:
    """a = 0.5 (x + 1)(q99 - q01) + q01 where mask, else x unchanged (e.g. the gripper)."""
    x = np.asarray(normalized, dtype=np.float64)
    if x.shape[-1] != stats.action_dim:
        raise InputError(
            f"got {x.shape[-1]} action values but the statistics have {stats.action_dim}"
        )
    q01 = np.asarray(stats.q01, dtype=np.float64)
    q99 = np.asarray(stats.q99, dtype=np.float64)
    mask = np.asarray(stats.mask, dtype=bool)
    return np.where(mask, 0.5 * (x + 1.0) * (q99 - q01) + q01, x)


def normalize(actions: npt.ArrayLike, stats: ActionStats) -> npt.NDArray[np.float64]:
    """The training-side inverse of :func:`unnormalize` (OpenVLA's ``BOUNDS_Q99``):
    x = clip(2 (a - q01) / (q99 - q01 + 1e-8) - 1, -1, 1) where mask, else a unchanged."""
    a = np.asarray(actions, dtype=np.float64)
    if a.shape[-1] != stats.action_dim:
        raise InputError(
            f"got {a.shape[-1]} action values but the statistics have {stats.action_dim}"
        )
    q01 = np.asarray(stats.q01, dtype=np.float64)
    q99 = np.asarray(stats.q99, dtype=np.float64)
    mask = np.asarray(stats.mask, dtype=bool)
    return np.where(mask, np.clip(2.0 * (a - q01) / (q99 - q01 + 1e-8) - 1.0, -1.0, 1.0), a)


def resolve_unnorm_key(
    norm_stats: Mapping[str, ActionStats], unnorm_key: str | None, default: str | None = None
) -> str:
    """Pick the statistics key like the official code, with messages that list the options.

    ``unnorm_key`` wins, then ``default``; a checkpoint with a single key needs neither.

    Raises:
        InputError: unknown key, or several keys and none given.
    """
    keys = sorted(norm_stats)
    key = unnorm_key if unnorm_key is not None else default
    if key is None:
        if len(keys) == 1:
            return keys[0]
        raise InputError(
            f"this checkpoint has statistics for {len(keys)} datasets; pass unnorm_key, one of: "
            + ", ".join(keys)
        )
    if not isinstance(key, str):
        raise InputError(f"unnorm_key must be a str, got {type(key).__name__}")
    if key not in norm_stats:
        raise InputError(f"unknown unnorm_key '{key}'; available: " + ", ".join(keys))
    return key
