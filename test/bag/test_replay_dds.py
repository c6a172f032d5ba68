# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Replay bags into real nodes over DDS; blocking mode must match offline evaluation step
for step (same action per frame), and ``--record`` must capture the nodes' outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (run scripts/setup_env.sh)")

from openvla_ros.bag.evaluate import EvalConfig, evaluate_bag, load_robot_profile
from openvla_ros.bag.reader import BagReader
from openvla_ros.bag.replay import ReplayOptions, run_replay
from openvla_ros.policy.scripted import ScriptedPolicy
from test.bag import bagfactory as bf
from test.nodes.ros_helpers import wait_until

pytestmark = [pytest.mark.ros, pytest.mark.slow]

SCRIPT = [
    [0.02, 0.0, 0.0, 0.0, 0.0, 0.1, 1.0],
    [0.3, -0.01, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.01, -0.02, 0.05, 0.0, 0.0, 1.0],
]


def _policy_args() -> list[str]:
    flat = ",".join(str(v) for row in SCRIPT for v in row)
    return [
        "-m", "openvla_ros.nodes.policy_node", "--ros-args",
        "-p", "policy:=scripted", "-p", f"scripted.actions:=[{flat}]",
        "-p", "enable_on_start:=true", "-p", "control_hz:=50.0",
        "-p", "max_image_age_s:=0.0", "-p", "base_frame:=panda_link0",
    ]  # fmt: skip


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_blocking_replay_matches_offline(tmp_path: Path, spawn, storage):
    bag = bf.write_episode(
        tmp_path / "bag", storage=storage, n_frames=6, instructions=("pick", "place"),
        with_actions=False,
    )  # fmt: skip
    policy_proc = spawn(_policy_args(), name="policy")
    profile = load_robot_profile("sim")
    offline = evaluate_bag(
        bag, ScriptedPolicy(SCRIPT), profile,
        EvalConfig(camera_topic=bf.CAMERA, instruction_topic=bf.INSTRUCTION),
    )  # fmt: skip

    out = tmp_path / "outputs"
    stats = run_replay(
        bag,
        ReplayOptions(
            blocking=True, restamp=True, state_topic=None, record=out, step_timeout_s=15.0,
            topics=(bf.CAMERA, bf.INSTRUCTION),
        ),
    )  # fmt: skip
    assert policy_proc.alive(), policy_proc.output()
    assert stats.timeouts == 0, policy_proc.output()
    live = [(s.episode_id, s.step, s.action) for s in stats.steps]
    want = [(s.episode_id, s.step, s.predicted) for s in offline.steps]
    assert len(live) == len(want) == 6
    for (_, ls, la), (_, os_, oa) in zip(live, want, strict=True):
        assert ls == os_ and la == pytest.approx(oa)
    # Episodes: the node counts its own ids; the split must be the same.
    assert [e for e, _, _ in live] == [live[0][0]] * 3 + [live[0][0] + 1] * 3
    # The nodes' outputs were recorded into a new bag, readable by the reader.
    with BagReader(out) as rec:
        assert rec.topics.get("/openvla/delta_action") == "openvla_ros/msg/DeltaAction"
        assert rec.message_count("/openvla/delta_action") == 6


def test_timed_replay_keeps_timing(tmp_path: Path, spawn):
    bag = bf.write_episode(tmp_path / "bag", n_frames=8, with_actions=False)
    stats = run_replay(bag, ReplayOptions(rate=2.0, discovery_timeout_s=0.5))
    assert stats.published == 8 + 8 + 1
    # The bag's timeline at 2x is honoured: never ahead of it (how far behind is a speed
    # figure: benchmarks/bench_bag.py measures it, docs/BENCHMARKS.md records it).
    assert stats.bag_duration_s == pytest.approx(1.4 + 0.2, abs=0.25)
    assert stats.wall_s >= 0.95 * stats.bag_duration_s / 2.0
    assert len(stats.lateness_s) == stats.published
    assert min(stats.lateness_s) >= 0.0


def test_blocking_replay_with_executor_matches_offline(tmp_path: Path, spawn):
    bag = bf.write_episode(tmp_path / "bag", n_frames=6, with_actions=False)
    config = str(Path(__file__).resolve().parents[2] / "config" / "sim.yaml")
    spawn(_policy_args(), name="policy")
    # A generous pose timeout on both sides: the replay waits for each action before the next
    # pose, and under load that wait alone could outlast sim.yaml's 0.5 s (HELD live, not
    # offline).
    executor = spawn(
        ["-m", "openvla_ros.nodes.executor_node", "--ros-args", "--params-file", config,
         "-p", "enable_on_start:=true", "-p", "watchdog.max_action_age_s:=0.0",
         "-p", "watchdog.pose_timeout_s:=10.0"],
        name="executor",
    )  # fmt: skip
    # The replay's fresh node knows only the subscribers it has discovered: an executor not
    # yet up missed the first poses and rejected the first action ("no confirmed end-effector
    # pose").
    assert wait_until(lambda: "ready:" in executor.output(), 30.0), executor.output()
    profile = load_robot_profile("sim").replace(max_action_age_s=0.0, pose_timeout_s=10.0)
    offline = evaluate_bag(
        bag, ScriptedPolicy(SCRIPT), profile,
        EvalConfig(camera_topic=bf.CAMERA, instruction_topic=bf.INSTRUCTION, pose_topic=bf.POSE,
                   pose_source="recorded"),
    )  # fmt: skip
    stats = run_replay(bag, ReplayOptions(blocking=True, restamp=True, step_timeout_s=15.0))
    assert stats.timeouts == 0, executor.output()
    assert [s.action for s in stats.steps] == [pytest.approx(s.predicted) for s in offline.steps]
    from openvla_ros.control import Outcome

    assert [Outcome(s.outcome).name for s in stats.steps] == [s.outcome for s in offline.steps]
