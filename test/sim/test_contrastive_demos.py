# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Contrastive colour demonstrations (``sim-demos --every-colour``): each layout is run once
per colour, so the episodes of a layout share the cubes and the first camera frame and differ
only in the instruction and in which cube the expert reached. Read back with plain pyarrow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from openvla_ros.bag.evaluate import load_robot_profile
from openvla_ros.errors import ConfigError
from openvla_ros.sim.expert_demos import GenerateConfig, generate_demos
from openvla_ros.sim.tasks import COLOURS, TaskConfig, instructed_colour, sample_scene

pytestmark = pytest.mark.timeout(300)

SIZE = (32, 32)


@pytest.mark.parametrize("task", ["reach_colour", "pick_colour"])
def test_with_target_keeps_the_layout_and_names_the_new_cube(task: str) -> None:
    scene = sample_scene(task, 1234)
    for colour in COLOURS:
        other = scene.with_target(colour)
        assert other.cubes == scene.cubes and other.seed == scene.seed
        assert other.target_colour == colour
        assert colour in other.instruction.split()
        others = set(COLOURS) - {colour}
        assert not others & set(other.instruction.split())
        assert type(scene).from_dict(other.to_dict()) == other
    with pytest.raises(ConfigError, match="no 'purple' cube"):
        scene.with_target("purple")


def test_every_colour_runs_each_layout_once_per_colour(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    cfg = GenerateConfig("reach_colour", 6, seed=51, image_size=SIZE, every_colour=True)
    summary = generate_demos(cfg, out, load_robot_profile("sim"))
    assert summary["episodes_written"] == 6
    episodes = pq.read_table(sorted(out.glob("meta/episodes/chunk-*/*.parquet"))).to_pylist()
    frames = pq.read_table(sorted(out.glob("data/chunk-*/*.parquet"))).to_pylist()
    assert len(episodes) == 6
    for layout in range(2):
        group = episodes[3 * layout : 3 * layout + 3]
        recs = [json.loads(e["recording"]) for e in group]
        assert {r["scene"]["seed"] for r in recs} == {51 + layout}
        assert len({json.dumps(r["scene"]["cubes"]) for r in recs}) == 1  # one layout
        assert [r["scene"]["target_colour"] for r in recs] == list(COLOURS)
        assert [e["tasks"] for e in group] == [[f"reach the {c} cube"] for c in COLOURS]
        # The sim's detector saw the instructed cube reached in each.
        assert [r["reached"] for r in recs] == list(COLOURS)
        # Same start: the first frames are the same image; the labels then differ.
        firsts = [frames[e["dataset_from_index"]] for e in group]
        images = [np.asarray(f["observation.images.primary"]["bytes"]) for f in firsts]
        assert all(np.array_equal(images[0], im) for im in images[1:])
        moves = [np.asarray(f["action"][:3]) for f in firsts]
        assert min(np.abs(moves[i] - moves[j]).max() for i, j in ((0, 1), (0, 2), (1, 2))) > 1e-3


def test_every_colour_needs_three_cubes(tmp_path: Path) -> None:
    cfg = GenerateConfig("reach_cube", 3, image_size=SIZE, every_colour=True)
    with pytest.raises(ConfigError, match="all three cubes"):
        generate_demos(cfg, tmp_path / "ds", load_robot_profile("sim"))
    assert not (tmp_path / "ds").exists()


def test_instructed_colour_reads_the_task_wording_only() -> None:
    for colour in COLOURS:
        assert instructed_colour("reach_colour", f"reach the {colour} cube") == colour
        assert instructed_colour("reach_colour", f"  Reach  the {colour.upper()} cube? ") == colour
        assert instructed_colour("pick_colour", f"pick up the {colour} cube.") == colour
        assert instructed_colour("pick_colour", f"reach the {colour} cube") is None
        assert instructed_colour("reach_cube", f"reach the {colour} cube") is None
    for text in ("", "reach the cube", "reach the purple cube", "reach the red cube!!",
                 "reach the red cube and the blue cube", "no task"):  # fmt: skip
        assert instructed_colour("reach_colour", text) is None
    assert instructed_colour("no_such_task", "reach the red cube") is None


@pytest.mark.parametrize("task", ["reach_colour", "pick_colour"])
def test_colour_order_by_y_colours_the_same_positions_by_y(task: str) -> None:
    by_y = TaskConfig(colour_order="by_y")
    for seed in range(200):
        plain, sorted_ = sample_scene(task, seed), sample_scene(task, seed, config=by_y)
        ys = [c.position[1] for c in sorted_.cubes]
        assert [c.colour for c in sorted_.cubes] == list(COLOURS)
        assert ys == sorted(ys)  # red at the smallest y, blue at the largest
        # The same draw: the same positions (which colour, and yaw, sits where changed), target
        # and instruction.
        assert sorted(c.position for c in plain.cubes) == sorted(c.position for c in sorted_.cubes)
        assert (sorted_.target_colour, sorted_.instruction) == (plain.target_colour,
                                                                plain.instruction)  # fmt: skip
    # Random order really is random: red is not always at the smallest y.
    reds_lowest = [min(sample_scene(task, s).cubes, key=lambda c: c.position[1]).colour == "red"
                   for s in range(200)]  # fmt: skip
    assert 0.15 < np.mean(reds_lowest) < 0.55
    with pytest.raises(ConfigError, match="colour_order 'by_x'"):
        sample_scene(task, 0, config=TaskConfig(colour_order="by_x"))


def test_colour_order_reaches_the_dataset(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    cfg = GenerateConfig("reach_colour", 3, seed=7, image_size=SIZE, every_colour=True,
                         task_config=TaskConfig(colour_order="by_y"))  # fmt: skip
    assert generate_demos(cfg, out, load_robot_profile("sim"))["episodes_written"] == 3
    episodes = pq.read_table(sorted(out.glob("meta/episodes/chunk-*/*.parquet"))).to_pylist()
    for e, colour in zip(episodes, COLOURS, strict=True):
        rec = json.loads(e["recording"])
        cubes = rec["scene"]["cubes"]
        assert [c["colour"] for c in sorted(cubes, key=lambda c: c["position"][1])] == list(COLOURS)
        assert rec["reached"] == colour
