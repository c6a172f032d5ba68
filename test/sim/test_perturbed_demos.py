# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""DART-style perturbed demonstrations (``sim-demos --perturb-prob``): the perturbed
transitions are exactly the ones dropped, every written label is still the measured delta of
an expert step, runs are deterministic per scene seed, p = 0 is the clean expert, and the
expert still solves the scenes. Read back with plain pyarrow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from openvla_ros.bag.evaluate import load_robot_profile
from openvla_ros.data.labels import transition_labels
from openvla_ros.sim.expert_demos import (
    GenerateConfig,
    Perturbation,
    episode_record,
    generate_demos,
    run_expert_episode,
)
from openvla_ros.sim.panda_sim import PandaSim, SimConfig
from openvla_ros.sim.tasks import sample_scene

pytestmark = pytest.mark.timeout(300)

SIZE = (32, 32)  # rendering is not what is under test


@pytest.fixture(scope="module")
def sim():  # type: ignore[no-untyped-def]
    with PandaSim(SimConfig()) as s:
        yield s


def _run(sim, task: str, seed: int, p: Perturbation | None):  # type: ignore[no-untyped-def]
    scene = sample_scene(task, seed, SimConfig().cube_size_m)
    return run_expert_episode(sim, scene, image_size=SIZE, perturbation=p)


def test_perturbed_steps_are_the_dropped_ones_and_the_rest_are_expert_labels(sim) -> None:
    profile = load_robot_profile("sim")
    kicked = 0
    for seed in range(6):
        run = _run(sim, "reach_colour", 700 + seed, Perturbation(prob=0.4, max_m=0.05))
        assert run.success
        assert len(run.perturbed) == run.steps == len(run.images)
        kicked += sum(run.perturbed)
        record = episode_record(run, profile, idle=None)
        actions, _ = transition_labels(run.poses, run.openings, profile)
        clean = ~np.asarray(run.perturbed)
        # Exactly the unperturbed transitions are written, each with its measured label.
        np.testing.assert_array_equal(record.actions, actions[clean])
        assert len(record.images) == int(clean.sum())
        for img, want in zip(record.images, np.asarray(run.images)[clean], strict=True):
            np.testing.assert_array_equal(img, want)
        assert record.info["perturbed_frames_dropped"] == int((~clean).sum())
        # The expert's own steps respect its 3 cm per-axis clip (a perturbation may not).
        assert np.abs(record.actions[:, :3]).max() <= 0.03 + 2e-3
    assert kicked >= 6  # p = 0.4 over ~60 steps: perturbations did happen


def test_runs_are_deterministic_and_zero_probability_is_the_clean_expert(sim) -> None:
    p = Perturbation(prob=0.3)
    a, b = _run(sim, "reach_cube", 42, p), _run(sim, "reach_cube", 42, p)
    assert a.perturbed == b.perturbed and any(a.perturbed)
    np.testing.assert_allclose([q.position for q in a.poses], [q.position for q in b.poses],
                               atol=1e-5)  # fmt: skip
    clean, zero = _run(sim, "reach_cube", 42, None), _run(sim, "reach_cube", 42, Perturbation())
    assert not any(zero.perturbed)
    np.testing.assert_allclose([q.position for q in clean.poses],
                               [q.position for q in zero.poses], atol=1e-5)  # fmt: skip
    # Perturbed states are off the clean path: the recovery visits other positions.
    off = np.asarray([q.position for q in a.poses])
    path = np.asarray([q.position for q in clean.poses])
    gap = np.min(np.linalg.norm(off[:, None, :] - path[None, :, :], axis=2), axis=1)
    assert gap.max() > 0.02


def test_a_perturbed_dataset_reads_back_with_pyarrow(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    cfg = GenerateConfig("reach_cube", 4, seed=9, image_size=SIZE,
                         perturbation=Perturbation(prob=0.3))  # fmt: skip
    summary = generate_demos(cfg, out, load_robot_profile("sim"))
    assert summary["episodes_written"] == 4 and summary["perturbed_frames_dropped"] > 0
    table = pq.read_table(sorted(out.glob("data/chunk-*/*.parquet")))
    assert table.num_rows == summary["frames"]
    episodes = pq.read_table(sorted(out.glob("meta/episodes/chunk-*/*.parquet"))).to_pylist()
    dropped = 0
    for row in episodes:
        dropped += int(json.loads(row["recording"])["perturbed_frames_dropped"])
    assert dropped == summary["perturbed_frames_dropped"]
