# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Redirected colour demonstrations (``sim-demos --redirect-after K``): the expert heads for
another cube first for 1..K steps that are not written, then for the instructed one. Checked
from the simulator's own scene and detector and read back with plain pyarrow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from openvla_ros.bag.evaluate import load_robot_profile
from openvla_ros.errors import ConfigError
from openvla_ros.sim.expert_demos import GenerateConfig, generate_demos
from openvla_ros.sim.tasks import COLOURS

pytestmark = pytest.mark.timeout(300)

SIZE = (32, 32)


def _read(out: Path) -> tuple[list[dict], list[dict]]:
    episodes = pq.read_table(sorted(out.glob("meta/episodes/chunk-*/*.parquet"))).to_pylist()
    frames = pq.read_table(sorted(out.glob("data/chunk-*/*.parquet"))).to_pylist()
    return episodes, frames


@pytest.mark.parametrize("task, n", [("reach_colour", 8), ("pick_colour", 4)])
def test_redirected_episodes_start_on_the_way_to_another_cube(
    tmp_path: Path, task: str, n: int
) -> None:
    profile = load_robot_profile("sim")
    most = 4
    red = GenerateConfig(task, n, seed=700, image_size=SIZE, redirect_after=most)
    plain = GenerateConfig(task, n, seed=700, image_size=SIZE)
    assert generate_demos(red, tmp_path / "r", profile)["episodes_written"] == n
    assert generate_demos(plain, tmp_path / "p", profile)["episodes_written"] == n
    (r_eps, r_frames), (p_eps, p_frames) = _read(tmp_path / "r"), _read(tmp_path / "p")
    steps_seen = set()
    for e, pe in zip(r_eps, p_eps, strict=True):
        rec, prec = json.loads(e["recording"]), json.loads(pe["recording"])
        scene = rec["scene"]
        assert scene == prec["scene"]  # the same scene and instruction
        target = scene["target_colour"]
        assert e["tasks"] == [plain_ep_task(task, target)]
        decoy = rec["redirected_from"]
        assert decoy in COLOURS and decoy != target
        assert 1 <= rec["redirect_steps"] <= most
        steps_seen.add(rec["redirect_steps"])
        assert rec["reached"] == target  # the sim's detector: the instructed cube in the end
        assert prec["redirected_from"] is None and prec["redirect_steps"] == 0
        # The written episode starts where the arm has moved towards the decoy cube: nearer
        # to it than the clean episode's first frame (the arm's start pose).
        cube = {c["colour"]: np.asarray(c["position"]) for c in scene["cubes"]}[decoy]
        first = np.asarray(r_frames[e["dataset_from_index"]]["observation.state"][:3])
        start = np.asarray(p_frames[pe["dataset_from_index"]]["observation.state"][:3])
        assert np.linalg.norm(first[:2] - cube[:2]) < np.linalg.norm(start[:2] - cube[:2])
        # Exactly the steps towards the decoy are left out (the start is never idle).
        assert rec["perturbed_frames_dropped"] == rec["redirect_steps"]
        assert prec["perturbed_frames_dropped"] == 0
    if task == "reach_colour":
        assert len(steps_seen) > 1  # the count is drawn per episode


def plain_ep_task(task: str, colour: str) -> str:
    return f"pick up the {colour} cube" if task == "pick_colour" else f"reach the {colour} cube"


@pytest.mark.parametrize("task, most", [("reach_cube", 3), ("reach_colour", -1)])
def test_redirect_needs_three_cubes_and_a_count(tmp_path: Path, task: str, most: int) -> None:
    cfg = GenerateConfig(task, 2, image_size=SIZE, redirect_after=most)
    with pytest.raises(ConfigError, match="redirect_after"):
        generate_demos(cfg, tmp_path / "ds", load_robot_profile("sim"))
    assert not (tmp_path / "ds").exists()
