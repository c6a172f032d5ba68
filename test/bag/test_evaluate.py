# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Offline evaluation on bags written in fixtures: both storages, compression, metrics."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from openvla_ros.bag.evaluate import EvalConfig, evaluate_bag, load_robot_profile, write_report
from openvla_ros.policy.scripted import ScriptedPolicy
from test.bag import bagfactory as bf

SCRIPT = [[0.2, 0.0, 0.002, 0.0, 0.0, 0.05, 1.0], [-0.04, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]


@pytest.fixture(scope="module")
def profile():
    return load_robot_profile("sim")


@pytest.mark.parametrize(
    ("storage", "compression", "compressed_images"),
    [
        ("sqlite3", "none", False),
        ("mcap", "none", True),
        ("sqlite3", "file", False),
        ("mcap", "message", False),
    ],
)
def test_evaluate_both_storages(tmp_path: Path, profile, storage, compression, compressed_images):
    bag = bf.write_episode(
        tmp_path / "bag", storage=storage, compression=compression,
        compressed_images=compressed_images,
    )  # fmt: skip
    cam = bf.COMPRESSED if compressed_images else bf.CAMERA
    cfg = EvalConfig(
        camera_topic=cam, instruction_topic=bf.INSTRUCTION, action_topic=bf.ACTION,
        pose_topic=bf.POSE,
    )  # fmt: skip
    res = evaluate_bag(bag, ScriptedPolicy(SCRIPT), profile, cfg)
    assert len(res.steps) == 10
    assert res.bag["storage"] == storage and res.bag["compression"] == compression
    # Every frame's reference is its own recorded action (matched by image stamp).
    for s in res.steps:
        assert s.reference == pytest.approx(bf.reference_action(s.frame_index))
        assert s.stamp_ns == bf.T0_NS + s.frame_index * bf.PERIOD_NS
    # Even steps ask for 0.2 m: the step limit (0.05 m) clips them; odd ones execute.
    assert [s.outcome for s in res.steps[:2]] == ["CLIPPED", "EXECUTED"]
    assert "STEP_TRANSLATION" in res.steps[0].clip_flags
    assert res.steps[0].applied[0] == pytest.approx(0.05)
    assert res.safety["outcomes"] == {"EXECUTED": 5, "CLIPPED": 5}
    m = res.metrics
    assert m["n_compared"] == 10
    assert m["per_dim"]["dx"]["max_abs"] == pytest.approx(0.19)
    assert m["per_dim"]["dz"]["mae"] == pytest.approx(0.001)
    # Reference gripper open for frames 0-5; prediction alternates 1/0: agree on 0 2 4 7 9.
    assert m["gripper_agreement"] == pytest.approx(0.5)
    # Targets compose onto the previous target, starting at the recorded pose.
    assert res.steps[0].target_position == pytest.approx([0.55, 0.0, 0.302])
    assert res.steps[1].target_position == pytest.approx([0.51, 0.0, 0.302])


def test_report_files(tmp_path: Path, profile):
    bag = bf.write_episode(tmp_path / "bag")
    cfg = EvalConfig(camera_topic=bf.CAMERA, instruction="pick", action_topic=bf.ACTION)
    res = evaluate_bag(bag, ScriptedPolicy(SCRIPT), profile, cfg)
    paths = write_report(res, tmp_path / "report")
    doc = json.loads(paths["results"].read_text())
    assert doc["frames_evaluated"] == 10 and doc["metrics"]["n_compared"] == 10
    assert doc["safety"]["events"][0]["outcome"] == "CLIPPED"
    rows = list(csv.DictReader(paths["steps"].open()))
    assert len(rows) == 10 and rows[0]["clip_flags"] == "STEP_TRANSLATION"
    assert float(rows[0]["ref_dx"]) == pytest.approx(0.01)
    for key in ("plot_actions", "plot_target"):
        assert paths[key].read_bytes()[:4] == b"\x89PNG"
    summary = paths["summary"].read_text()
    assert "| dx m | 10 |" in summary and "gripper agreement: 50.0%" in summary


def test_every_nth_and_control_rate(tmp_path: Path, profile):
    bag = bf.write_episode(tmp_path / "bag", n_frames=12)
    base = dict(camera_topic=bf.CAMERA, instruction="pick")
    res = evaluate_bag(bag, ScriptedPolicy(), profile, EvalConfig(**base, every=3))
    assert [s.frame_index for s in res.steps] == [0, 3, 6, 9]
    assert res.frames_unselected == 8
    # Camera at 5 Hz, control at 2 Hz: ticks every 0.5 s -> frames 0, 3 (0.6 s), 5 (1.0 s)...
    res = evaluate_bag(bag, ScriptedPolicy(), profile, EvalConfig(**base, control_hz=2.0))
    assert [s.frame_index for s in res.steps] == [0, 3, 5, 8, 10]


def test_new_instruction_starts_episode(tmp_path: Path, profile):
    bag = bf.write_episode(tmp_path / "bag", n_frames=8, instructions=("pick", "place"))
    policy = ScriptedPolicy([[0.01 * (k + 1), 0, 0, 0, 0, 0, 1] for k in range(8)])
    cfg = EvalConfig(camera_topic=bf.CAMERA, instruction_topic=bf.INSTRUCTION, pose_topic=bf.POSE)
    res = evaluate_bag(bag, policy, profile, cfg)
    assert [(s.episode_id, s.step) for s in res.steps] == [
        (0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2), (1, 3),
    ]  # fmt: skip
    assert res.steps[4].instruction == "place"
    # The policy was reset: the new episode starts at the script's first action again.
    assert res.steps[4].predicted[0] == pytest.approx(0.01)


def test_pose_delta_reference_without_actions(tmp_path: Path, profile):
    bag = bf.write_episode(tmp_path / "bag", n_frames=5)
    cfg = EvalConfig(camera_topic=bf.CAMERA, instruction="pick", pose_topic=bf.POSE)
    res = evaluate_bag(bag, ScriptedPolicy(SCRIPT), profile, cfg)
    # The recorded arm moved by the reference action between frames; no gripper reference.
    assert res.steps[0].reference_source == "pose_delta"
    assert res.steps[0].reference[:3] == pytest.approx(bf.reference_action(0)[:3])
    assert res.steps[-1].reference is None
    assert "gripper_agreement" not in res.metrics and res.metrics["n_compared"] == 4


def test_recorded_pose_mode_trips_tracking(tmp_path: Path, profile):
    bag = bf.write_episode(tmp_path / "bag", n_frames=10)
    cfg = EvalConfig(
        camera_topic=bf.CAMERA, instruction="pick", pose_topic=bf.POSE, pose_source="recorded"
    )
    # Policy pushes +y while the recorded arm went +x: the target drifts from the measured
    # pose until the tracking bound (0.10 m) holds it; the measured arm is the reference, so
    # no target is ever further than that from the recorded pose (y = 0).
    res = evaluate_bag(bag, ScriptedPolicy([[0, 0.05, 0, 0, 0, 0, 1]]), profile, cfg)
    assert any("TRACKING_ERROR" in s.clip_flags for s in res.steps)
    ys = [s.target_position[1] for s in res.steps if s.target_position is not None]
    assert ys and max(ys) <= profile.max_tracking_error_m + 1e-9


def test_progress_reported(tmp_path: Path, profile):
    bag = bf.write_episode(tmp_path / "bag", n_frames=4)
    calls = []
    evaluate_bag(
        bag, ScriptedPolicy(), profile, EvalConfig(camera_topic=bf.CAMERA, instruction="x"),
        progress=lambda done, total, el: calls.append((done, total)), progress_interval_s=0.0,
    )  # fmt: skip
    assert calls[-1] == (4, 4)
