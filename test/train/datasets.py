# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Small demonstration datasets for the fine-tuning tests, written with the project's real
LeRobot v3 writer (so training reads what recording writes).

Each frame shows a coloured square on a grey table; the action moves towards the square and
depends on where it is (the image) and on the instruction, so a model can learn it and a
model that ignores either input cannot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from openvla_ros.data.lerobot import DatasetWriter, EpisodeRecord

INSTRUCTIONS = ("pick up the red block", "push the blue block")


def scene(step: int, episode: int, side: int = 64) -> tuple[npt.NDArray[np.uint8], float, float]:
    """A frame and the square's position (x, y in [-1, 1])."""
    rng = np.random.default_rng([episode, step])
    img = np.full((side, side, 3), 110, dtype=np.uint8)
    img[..., 1] = 120
    x, y = rng.uniform(-0.8, 0.8, size=2)
    cx, cy = int((x + 1) / 2 * (side - 16)), int((y + 1) / 2 * (side - 16))
    colour = (220, 30, 30) if episode % 2 == 0 else (30, 30, 220)
    img[cy : cy + 16, cx : cx + 16] = colour
    return img, float(x), float(y)


def write_dataset(
    root: Path, episodes: int = 4, frames: int = 6, side: int = 64, unnorm_key: str = "toy_lab"
) -> Path:
    """Episodes alternate between the two instructions; returns ``root``."""
    writer = DatasetWriter(
        root, fps=5.0, image_shape=(side, side, 3), robot_type="sim_panda", unnorm_key=unnorm_key
    )
    for ep in range(episodes):
        images, actions = [], []
        sign = 1.0 if ep % 2 == 0 else -1.0
        for t in range(frames):
            img, x, y = scene(t, ep, side)
            images.append(img)
            gripper = 1.0 if t < frames // 2 else 0.0
            actions.append(
                [0.04 * x, 0.04 * y * sign, 0.01 * sign, 0.0, 0.0, 0.05 * x * sign, gripper]
            )
        writer.add_episode(
            EpisodeRecord(
                instruction=INSTRUCTIONS[ep % 2],
                images=images,
                states=np.zeros((frames, 8), dtype=np.float32),
                actions=np.asarray(actions, dtype=np.float32),
                timestamps=np.arange(frames, dtype=np.float64) / 5.0,
            )
        )
    return root
