# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Sampling and batch building of a run: which frame is sample k, with which augmentation
draws, and the tensors the model gets (the model's processor, prompt ids and action ids).

Every random draw is a function of (seed, global sample position): a resumed run replays the
same samples with the same augmentation, and no data-loader state needs saving.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from openvla_ros.model.action_tokenizer import normalize
from openvla_ros.model.preprocess import resize_for_towers
from openvla_ros.train.samples import DatasetLike, FrameTable, SampleCoder


class Sampler:
    """Global sample position -> frame index: a fresh seeded permutation per epoch."""

    def __init__(self, frames: npt.NDArray[np.int64], seed: int) -> None:
        self.frames = frames
        self.seed = seed
        self._perms: dict[int, npt.NDArray[np.int64]] = {}

    def __call__(self, position: int) -> int:
        epoch, offset = divmod(position, len(self.frames))
        if epoch not in self._perms:
            self._perms = {
                epoch: np.random.default_rng([self.seed, epoch]).permutation(len(self.frames))
            }
        return int(self.frames[self._perms[epoch][offset]])


def aug_generator(seed: int, position: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + position * 7919 + 17) % (2**63))


class RunData:
    """Frames, tokens and batch building for one run."""

    def __init__(
        self,
        table: FrameTable,
        dataset: DatasetLike,
        coder: SampleCoder,
        prompts: dict[str, list[int]],
        device: torch.device,
    ) -> None:
        self.table = table
        self.dataset = dataset
        self.coder = coder
        self.device = device
        self.prompts = {t: prompts.get(t) or coder.prompt_ids(t) for t in table.instructions}
        self.action_ids = coder.action_ids(table.actions)
        self.targets = np.clip(normalize(table.actions, coder.stats), -1.0, 1.0)

    def image(self, i: int) -> npt.NDArray[np.uint8]:
        if self.table.images is not None:
            return self.table.images[i]
        # Not cached: decode and resize now, so augmentation sees what the cache would hold.
        frame = np.ascontiguousarray(self.dataset.frame(i).image)
        return resize_for_towers(frame, self.coder.spec)

    def sequences(self, frames: npt.NDArray[np.int64]) -> list[torch.Tensor]:
        out = []
        for i in frames:
            prompt = self.prompts[self.table.instructions[self.table.instruction_ids[i]]]
            ids = [*prompt, *self.action_ids[i].tolist(), self.coder.eos_id]
            out.append(torch.tensor(ids, dtype=torch.long, device=self.device))
        return out

    def pixels(
        self, frames: npt.NDArray[np.int64], gens: list[torch.Generator] | None
    ) -> torch.Tensor:
        return self.coder.pixels([self.image(int(i)) for i in frames], gens).to(self.device)

    def eval_batch(
        self, frames: npt.NDArray[np.int64], texts: list[str]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        prompts = [
            torch.tensor(self.prompts.get(t) or self.coder.prompt_ids(t), device=self.device)
            for t in texts
        ]
        return self.pixels(frames, None), prompts


def fingerprint(table: FrameTable, train_eps: list[int], val_eps: list[int]) -> dict[str, Any]:
    return {
        "frames": table.num_frames,
        "episodes": sorted({int(e) for e in table.episodes}),
        "instructions": table.instructions,
        "action_sum": float(np.round(table.actions.sum(), 6)),
        "train_episodes": train_eps,
        "val_episodes": val_eps,
    }
