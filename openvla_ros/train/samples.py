# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Dataset frames -> training samples, with the model's own preprocessing and tokenisation.

One pass over the dataset decodes every PNG once; frames are kept as the processor's resized
224x224 uint8 image (``resize_for_towers``), 150 KB each, when they fit the cache budget, and
decoded again on demand otherwise. Batches are built on the fly: optional augmentation on the
uint8 frame, then :func:`openvla_ros.model.preprocess.process_image` (the inference path).

A training sequence is exactly what inference feeds the model followed by the targets:
``PromptTokenizer.encode(instruction)`` ([BOS] + ``In: What action should the robot take to
{instruction}?\\nOut:`` + token 29871) + the 7 action token ids + ``</s>``. Tokenising the
official string ``"...Out: " + action characters`` gives the same ids (the space before the
action characters is the lone 29871 piece), so inference and training agree token for token;
building the ids directly avoids a round trip through characters that a small tokenizer may
not know. Action ids come from :func:`~openvla_ros.model.action_tokenizer.normalize` (the
dataset's q01/q99) and :meth:`~openvla_ros.model.action_tokenizer.ActionTokenizer.encode`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import torch

from openvla_ros.errors import TrainingError
from openvla_ros.model.action_tokenizer import ActionTokenizer, normalize
from openvla_ros.model.config import ActionStats
from openvla_ros.model.preprocess import ProcessorSpec, process_image, resize_for_towers
from openvla_ros.model.prompt import PromptTokenizer
from openvla_ros.train.augment import augment_uint8

LOG = logging.getLogger(__name__)

#: Smallest image side accepted from a dataset (smaller frames cannot carry a scene).
MIN_IMAGE_SIDE_PX = 32


class FrameLike(Protocol):
    """What training reads from one dataset frame (``openvla_ros.data.lerobot.Frame``)."""

    @property
    def image(self) -> Any: ...

    @property
    def action(self) -> Any: ...

    @property
    def instruction(self) -> str: ...

    @property
    def episode_index(self) -> int: ...

    @property
    def frame_index(self) -> int: ...


class DatasetLike(Protocol):
    """The reader API of CONTRACT.md (``openvla_ros.data.lerobot.DemoDataset``)."""

    @property
    def num_frames(self) -> int: ...

    def episode_indices(self) -> list[int]: ...

    def frame(self, i: int) -> FrameLike: ...

    def dataset_statistics(self) -> dict[str, Any]: ...


@dataclass
class FrameTable:
    """Every frame's labels, plus the resized uint8 images when cached.

    Attributes:
        actions: float64 [N, D] raw actions (robot units).
        instruction_ids: int [N] index into ``instructions``.
        instructions: the distinct instruction strings, sorted.
        episodes: int [N] episode index per frame.
        frame_index: int [N] index of the frame within its episode.
        images: uint8 [N, 224, 224, 3] when cached, else None (decoded on demand).
        image_hw: the dataset's (height, width).
    """

    actions: npt.NDArray[np.float64]
    instruction_ids: npt.NDArray[np.int64]
    instructions: list[str]
    episodes: npt.NDArray[np.int64]
    frame_index: npt.NDArray[np.int64]
    images: npt.NDArray[np.uint8] | None
    image_hw: tuple[int, int]

    @property
    def num_frames(self) -> int:
        """Number of frames."""
        return int(self.actions.shape[0])


def _check_image(image: Any, index: int, expected_hw: tuple[int, int] | None) -> tuple[int, int]:
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise TrainingError(
            f"dataset frame {index}: image is {arr.dtype} with shape {arr.shape}; fine-tuning "
            "needs HxWx3 uint8 RGB frames (re-record or convert the camera stream to rgb8)"
        )
    hw = (int(arr.shape[0]), int(arr.shape[1]))
    if min(hw) < MIN_IMAGE_SIDE_PX:
        raise TrainingError(
            f"dataset frame {index}: image is {hw[1]}x{hw[0]} px; the model sees 224x224, "
            f"frames smaller than {MIN_IMAGE_SIDE_PX} px per side cannot carry the scene"
        )
    if expected_hw is not None and hw != expected_hw:
        raise TrainingError(
            f"dataset frame {index}: image is {hw[1]}x{hw[0]} px but earlier frames are "
            f"{expected_hw[1]}x{expected_hw[0]}: one dataset must come from one camera setting "
            "(split it, or resize every frame the same way)"
        )
    return hw


def load_frames(
    dataset: DatasetLike,
    spec: ProcessorSpec,
    *,
    action_dim: int,
    cache_budget_bytes: int,
    progress: Callable[[int, int], None] | None = None,
) -> FrameTable:
    """Read every frame once: labels always, resized images when they fit the budget.

    Raises:
        TrainingError: empty dataset, wrong action dimension, non-finite actions, bad or
            inconsistent image sizes, or an empty instruction.
    """
    n = int(dataset.num_frames)
    if n == 0:
        raise TrainingError("the dataset has no frames; record some demonstrations first")
    side = spec.size
    cache = n * side * side * 3 <= cache_budget_bytes
    if not cache:
        LOG.warning(
            "image cache of %.1f GB exceeds the budget of %.1f GB: decoding frames on demand "
            "(slower; raise --cache-gb)",
            n * side * side * 3 / 1e9,
            cache_budget_bytes / 1e9,
        )
    images = np.empty((n, side, side, 3), dtype=np.uint8) if cache else None
    actions = np.empty((n, action_dim), dtype=np.float64)
    episodes = np.empty(n, dtype=np.int64)
    frame_index = np.empty(n, dtype=np.int64)
    texts: list[str] = []
    hw: tuple[int, int] | None = None
    for i in range(n):
        frame = dataset.frame(i)
        act = np.asarray(frame.action, dtype=np.float64).reshape(-1)
        if act.shape[0] != action_dim:
            raise TrainingError(
                f"dataset frame {i}: action has {act.shape[0]} values but the base model "
                f"predicts {action_dim} (its statistics' action dimension); the dataset does not "
                "fit this base"
            )
        if not np.all(np.isfinite(act)):
            raise TrainingError(f"dataset frame {i}: action has non-finite values {act.tolist()}")
        if not isinstance(frame.instruction, str) or not frame.instruction.strip():
            raise TrainingError(f"dataset frame {i}: empty instruction")
        hw = _check_image(frame.image, i, hw)
        if images is not None:
            images[i] = resize_for_towers(np.ascontiguousarray(frame.image), spec)
        actions[i] = act
        episodes[i] = int(frame.episode_index)
        frame_index[i] = int(frame.frame_index)
        texts.append(frame.instruction)
        if progress is not None:
            progress(i + 1, n)
    instructions = sorted(set(texts))
    lookup = {t: k for k, t in enumerate(instructions)}
    assert hw is not None
    return FrameTable(
        actions=actions,
        instruction_ids=np.asarray([lookup[t] for t in texts], dtype=np.int64),
        instructions=instructions,
        episodes=episodes,
        frame_index=frame_index,
        images=images,
        image_hw=hw,
    )


def split_episodes(
    episodes: Sequence[int], val_episodes: int, seed: int
) -> tuple[list[int], list[int]]:
    """Hold out ``val_episodes`` whole episodes, chosen with ``seed``: (train, val), sorted.

    Raises:
        TrainingError: nothing would be left to train on.
    """
    eps = sorted(int(e) for e in episodes)
    if val_episodes < 0:
        raise TrainingError("--val-episodes must be >= 0")
    if val_episodes >= len(eps):
        raise TrainingError(
            f"--val-episodes {val_episodes} leaves no training episode (the dataset has "
            f"{len(eps)}); hold out fewer"
        )
    rng = np.random.default_rng([seed, 7])
    val = sorted(int(e) for e in rng.choice(eps, size=val_episodes, replace=False))
    return [e for e in eps if e not in set(val)], val


def default_val_episodes(num_episodes: int) -> int:
    """10 % of the episodes (at least 1) when there are 5 or more, else none."""
    return max(1, round(0.1 * num_episodes)) if num_episodes >= 5 else 0


@dataclass
class SampleCoder:
    """Turns frames into model inputs: the processor, the prompt and the action tokens.

    Attributes:
        spec: the base's processor settings.
        tokenizer: the base's prompt tokenizer.
        action_tokenizer: bins of the base.
        stats: the dataset's statistics (q01/q99/mask) used to normalise actions.
        eos_id: id of ``</s>``.
    """

    spec: ProcessorSpec
    tokenizer: PromptTokenizer
    action_tokenizer: ActionTokenizer
    stats: ActionStats
    eos_id: int

    def prompt_ids(self, instruction: str) -> list[int]:
        """[BOS] + prompt + 29871, exactly as inference builds it."""
        return self.tokenizer.encode(instruction)

    def action_ids(self, actions: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """[N, D] raw actions -> [N, D] action token ids (normalise, then bin)."""
        return self.action_tokenizer.encode(normalize(actions, self.stats)).astype(np.int64)

    def pixels(
        self,
        images: Sequence[npt.NDArray[np.uint8]],
        augment: Sequence[torch.Generator] | None,
    ) -> torch.Tensor:
        """Processor output [B, 3 * towers, 224, 224] for resized (or raw) uint8 frames."""
        towers = len(self.spec.means)
        out = np.empty((len(images), 3 * towers, self.spec.size, self.spec.size), np.float32)
        for row, image in enumerate(images):
            frame = image if augment is None else augment_uint8(image, augment[row])
            out[row] = process_image(frame, self.spec)
        return torch.from_numpy(out)


def eos_token_id(tokenizer: PromptTokenizer) -> int:
    """The ``</s>`` id of the base tokenizer.

    Raises:
        TrainingError: the tokenizer has no ``</s>``.
    """
    eos = tokenizer.tokenizer.token_to_id("</s>")
    if eos is None:
        raise TrainingError(f"{tokenizer.path}: the tokenizer has no '</s>' token")
    return int(eos)


def check_instructions(
    instructions: Sequence[str], tokenizer: PromptTokenizer, unk_id: int | None, limit: int
) -> dict[str, list[int]]:
    """Prompt ids of every instruction, refusing ones the base cannot read.

    Args:
        instructions: the dataset's distinct instructions.
        tokenizer: the base's tokenizer.
        unk_id: the ``<unk>`` id (an instruction that maps to it would train on noise).
        limit: most prompt tokens that still leave room for the image and action tokens.

    Raises:
        TrainingError: naming the instruction and what is wrong.
    """
    out: dict[str, list[int]] = {}
    for text in instructions:
        ids = tokenizer.encode(text)
        if unk_id is not None and unk_id in ids:
            raise TrainingError(
                f"instruction '{text}' contains text the base tokenizer maps to <unk>; the "
                "instruction set does not fit this base (fix the text or use another base)"
            )
        if len(ids) > limit:
            raise TrainingError(
                f"instruction '{text[:60]}...' is {len(ids)} prompt tokens; at most {limit} fit "
                "the context with the image and action tokens"
            )
        out[text] = ids
    return out
