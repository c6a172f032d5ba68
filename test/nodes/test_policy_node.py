# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The policy node as a real process over DDS, driven by a probe node in the test process."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (run scripts/setup_env.sh)")
pytest.importorskip("openvla_ros.msg", reason="interfaces not built")

from sensor_msgs.msg import CompressedImage
from std_srvs.srv import SetBool, Trigger

from openvla_ros.image_codec import rgb_to_jpeg
from openvla_ros.msg import DeltaAction, ExecutorState
from openvla_ros.nodes.common import ACTION_QOS, STATE_QOS, stamp_to_ns
from test.nodes.ros_helpers import RECORD_QOS, RGB, image_msg, settle, solid_rgb, wait_until
from test.nodes.test_image_codec import BAD_FRAMES

pytestmark = [pytest.mark.ros, pytest.mark.timeout(60)]

ACTION = "/openvla/delta_action"
ENABLE = "/openvla_policy/enable"


def _stamps(actions: list[DeltaAction]) -> list[int]:
    return [stamp_to_ns(a.header.stamp) for a in actions]


def test_action_fields_and_stamps(probe, start_policy) -> None:
    actions = probe.sub(DeltaAction, ACTION, ACTION_QOS)
    start_policy(
        base_frame="fr3_link0",
        unnorm_key="bridge_orig",
        scripted__actions=[0.01, 0, 0, 0, 0, 0, 1, 0.02, 0, 0, 0, 0, 0, 0],
    )
    probe.instruction("put the carrot in the pot")
    sent: list[int] = []
    for _ in range(3):
        before = len(actions)
        sent.append(probe.publish_frame())
        assert wait_until(lambda b=before: len(actions) > b), "no action for a fresh frame"
    assert _stamps(actions) == sent, "stamp must be the capture time of the frame used"
    assert [a.step for a in actions] == [0, 1, 2]
    assert {a.episode_id for a in actions} == {1}
    first = actions[0]
    assert first.header.frame_id == "fr3_link0"
    assert first.instruction == "put the carrot in the pot"
    assert first.unnorm_key == "bridge_orig"
    assert list(first.action) == pytest.approx([0.01, 0, 0, 0, 0, 0, 1])
    assert list(actions[1].action) == pytest.approx([0.02, 0, 0, 0, 0, 0, 0])
    # report_image: the policy saw the frame's colours in RGB order and its size.
    assert list(first.normalized_action[:5]) == pytest.approx(
        [c / 255 for c in RGB] + [0.032, 0.040], abs=1e-6
    )
    assert all(0.0 <= a.observation_age < 1.0 for a in actions)
    assert all(0.0 <= a.inference_latency < 1.0 for a in actions)


def test_inactive_until_enabled_and_disable_stops(probe, start_policy) -> None:
    actions = probe.sub(DeltaAction, ACTION, ACTION_QOS)
    proc = start_policy(enable=False)
    probe.instruction("pick up the cup")
    probe.start_camera(hz=20)
    settle(0.8)
    assert actions == [], "nothing may be published before ~/enable"
    assert probe.call(SetBool, ENABLE, SetBool.Request(data=True)).success
    assert wait_until(lambda: len(actions) >= 3)
    assert probe.call(SetBool, ENABLE, SetBool.Request(data=False)).success
    settle(0.2)  # an inference in flight may still land
    count = len(actions)
    settle(0.6)
    assert len(actions) == count, "actions kept coming after disable"
    assert proc.alive()


def test_encodings_decode_to_rgb(probe, start_policy) -> None:
    actions = probe.sub(DeltaAction, ACTION, ACTION_QOS)
    start_policy()
    probe.instruction("wipe the table")
    for encoding in ("rgb8", "bgr8", "rgba8", "bgra8", "mono8"):
        before = len(actions)
        stamp = probe.publish_frame(encoding=encoding)
        assert wait_until(lambda b=before: len(actions) > b), f"no action for {encoding}"
        got = actions[-1]
        assert stamp_to_ns(got.header.stamp) == stamp
        want = [RGB[0]] * 3 if encoding == "mono8" else list(RGB)
        assert list(got.normalized_action[:3]) == pytest.approx(
            [c / 255 for c in want], abs=1e-6
        ), encoding


def test_compressed_transport(probe, start_policy) -> None:
    actions = probe.sub(DeltaAction, ACTION, ACTION_QOS)
    start_policy(image_transport="compressed")
    probe.instruction("open the drawer")
    msg = CompressedImage(format="jpeg", data=rgb_to_jpeg(solid_rgb(), quality=95))
    stamp = probe.publish_frame(msg=msg, topic="/camera/image_raw/compressed")
    assert wait_until(lambda: len(actions) == 1)
    assert stamp_to_ns(actions[0].header.stamp) == stamp
    assert list(actions[0].normalized_action[:3]) == pytest.approx([c / 255 for c in RGB], abs=0.03)


def test_bad_images_are_skipped_and_counted(probe, start_policy) -> None:
    actions = probe.sub(DeltaAction, ACTION, ACTION_QOS)
    proc = start_policy()
    probe.instruction("stack the blocks")
    good = image_msg(solid_rgb(), "rgb8")
    bad = []
    wrong_encoding = image_msg(solid_rgb(), "rgb8")
    wrong_encoding.encoding = "16UC1"
    bad.append(wrong_encoding)
    short_step = image_msg(solid_rgb(), "rgb8")
    short_step.step = 10
    bad.append(short_step)
    wrong_size = image_msg(solid_rgb(), "rgb8")
    wrong_size.height = 64  # data is for 32 rows
    bad.append(wrong_size)
    empty = image_msg(solid_rgb(), "rgb8")
    empty.height, empty.width, empty.step, empty.data = 0, 0, 0, b""
    bad.append(empty)
    garbage_jpeg = None  # compressed garbage is covered in test_compressed_garbage
    del garbage_jpeg
    for k, msg in enumerate(bad, 1):
        probe.publish_frame(msg=msg)
        # One frame at a time (the slot keeps only the newest): each counted before the next.
        assert wait_until(lambda k=k: f"images_bad={k}" in proc.output(), 10.0), proc.output()
    assert actions == [], "a bad image produced an action"
    stamp = probe.publish_frame(msg=good)
    assert wait_until(lambda: len(actions) == 1), "node did not recover after bad images"
    assert stamp_to_ns(actions[0].header.stamp) == stamp
    assert actions[0].step == 0, "skipped frames must not consume step indices"
    assert wait_until(lambda: "images_bad=4" in proc.output(), 3.0), proc.output()
    assert proc.alive()


def test_compressed_garbage_is_skipped(probe, start_policy) -> None:
    actions = probe.sub(DeltaAction, ACTION, ACTION_QOS)
    proc = start_policy(image_transport="compressed")
    probe.instruction("open the drawer")
    topic = "/camera/image_raw/compressed"
    probe.publish_frame(msg=CompressedImage(format="jpeg", data=b"not a jpeg"), topic=topic)
    settle(0.3)
    assert actions == []
    probe.publish_frame(
        msg=CompressedImage(format="jpeg", data=rgb_to_jpeg(solid_rgb())), topic=topic
    )
    assert wait_until(lambda: len(actions) == 1)
    assert "bad image skipped" in proc.output()


def test_hostile_compressed_frames_do_not_stop_inference(probe, start_policy) -> None:
    # PIL raises DecompressionBombError, SyntaxError, TypeError, ... on such data; once that
    # escaped the worker thread, the node stayed up but never inferred again.
    actions = probe.sub(DeltaAction, ACTION, ACTION_QOS)
    proc = start_policy(image_transport="compressed")
    probe.instruction("open the drawer")
    topic = "/camera/image_raw/compressed"
    for k, name in enumerate(("bomb_png", "broken_chunk_png", "bad_tag_tiff"), 1):
        probe.publish_frame(msg=CompressedImage(format="png", data=BAD_FRAMES[name]), topic=topic)
        # One frame at a time (the slot keeps only the newest): each counted before the next.
        assert wait_until(lambda k=k: f"images_bad={k}" in proc.output(), 10.0), proc.output()
    assert actions == [], "a hostile frame produced an action"
    stamp = probe.publish_frame(
        msg=CompressedImage(format="jpeg", data=rgb_to_jpeg(solid_rgb())), topic=topic
    )
    assert wait_until(lambda: len(actions) == 1), "no inference after hostile frames"
    assert stamp_to_ns(actions[0].header.stamp) == stamp
    assert actions[0].step == 0
    assert wait_until(lambda: "images_bad=3" in proc.output(), 3.0), proc.output()
    assert "Traceback" not in proc.output()
    assert proc.alive()


def test_policy_errors_publish_nothing_and_node_survives(probe, start_policy) -> None:
    actions = probe.sub(DeltaAction, ACTION, ACTION_QOS)
    proc = start_policy(scripted__fail_every=2)
    probe.instruction("pick up the cup")
    for _ in range(4):
        probe.publish_frame()
        settle(0.15)
    assert wait_until(lambda: len(actions) == 2)
    settle(0.2)
    assert len(actions) == 2, "failed predictions must not publish"
    assert [a.step for a in actions] == [0, 1]
    assert "policy error, no action published" in proc.output()
    assert proc.alive()


def test_instruction_change_starts_new_episode_and_empty_pauses(probe, start_policy) -> None:
    actions = probe.sub(DeltaAction, ACTION, RECORD_QOS)  # every step of each episode
    start_policy()
    probe.start_camera(hz=25)
    probe.instruction("pick up the cup")
    assert wait_until(lambda: len(actions) >= 3)
    probe.instruction("pick up the cup")  # rqt re-publishing the same text: same episode
    settle(0.2)
    probe.instruction("put the cup down")
    assert wait_until(lambda: actions[-1].episode_id == 2 and actions[-1].step >= 1)
    first_of_2 = next(a for a in actions if a.episode_id == 2)
    assert first_of_2.step == 0 and first_of_2.instruction == "put the cup down"
    assert {a.episode_id for a in actions} == {1, 2}
    ep1 = [a.step for a in actions if a.episode_id == 1]
    assert ep1 == list(range(len(ep1))), "steps within an episode are consecutive"
    probe.instruction("")
    settle(0.2)
    count = len(actions)
    settle(0.5)
    assert len(actions) == count, "an empty instruction pauses"
    probe.instruction("pick up the cup")  # after a pause, even the old text is a new episode
    assert wait_until(lambda: len(actions) > count and actions[-1].episode_id == 3)
    # ~/reset: a new episode with the same instruction.
    assert probe.call(Trigger, "/openvla_policy/reset", Trigger.Request()).message == "episode 4"
    assert wait_until(lambda: actions[-1].episode_id == 4)
    assert next(a for a in actions if a.episode_id == 4).step == 0


def test_non_blocking_newest_frame_once_and_rate_limit(probe, start_policy) -> None:
    actions = probe.sub(DeltaAction, ACTION, ACTION_QOS)
    start_policy(control_hz=4.0)
    probe.instruction("push the button")
    stamp = probe.publish_frame()
    assert wait_until(lambda: len(actions) == 1)
    settle(0.6)
    assert _stamps(actions) == [stamp], "inferred twice on the same frame"
    probe.start_camera(hz=30)
    settle(1.5)
    probe.stop_camera()
    n = len(actions) - 1
    assert 3 <= n <= 8, f"{n} actions in 1.5 s at control_hz=4"
    stamps = _stamps(actions)
    assert stamps == sorted(set(stamps)), "a frame was used twice or out of order"


def test_blocking_handshake(probe, start_policy) -> None:
    actions = probe.sub(DeltaAction, ACTION, ACTION_QOS)
    state_pub = probe.pub(ExecutorState, "/openvla/executor_state", STATE_QOS)
    start_policy(mode="blocking", blocking_timeout_s=30.0)
    probe.start_camera(hz=30)
    probe.instruction("close the lid")
    assert wait_until(lambda: len(actions) == 1)
    settle(0.5)
    assert len(actions) == 1, "blocking: no new step before the executor reports done"
    # A done report for another step (or not done) does not release the step.
    state_pub.publish(ExecutorState(episode_id=1, step=7, action_done=True))
    state_pub.publish(ExecutorState(episode_id=1, step=0, action_done=False))
    settle(0.3)
    assert len(actions) == 1
    done_at = probe.now_ns()
    state_pub.publish(ExecutorState(episode_id=1, step=0, action_done=True))
    assert wait_until(lambda: len(actions) == 2)
    assert actions[1].step == 1
    assert stamp_to_ns(actions[1].header.stamp) > done_at, "used a frame from before done"


def test_blocking_timeout(probe, start_policy) -> None:
    actions = probe.sub(DeltaAction, ACTION, ACTION_QOS)
    proc = start_policy(mode="blocking", blocking_timeout_s=0.6)
    probe.start_camera(hz=30)
    probe.instruction("close the lid")
    assert wait_until(lambda: len(actions) == 2, 5.0)
    t = [stamp_to_ns(a.header.stamp) for a in actions]
    assert (t[1] - t[0]) / 1e9 >= 0.55, "the next step came before the timeout"
    assert "did not report the action done" in proc.output()


def test_camera_stall_and_stale_frames(probe, start_policy) -> None:
    actions = probe.sub(DeltaAction, ACTION, ACTION_QOS)
    proc = start_policy(camera_stall_s=0.5, max_image_age_s=0.5)
    probe.instruction("pick up the cup")
    probe.start_camera(hz=20)
    assert wait_until(lambda: len(actions) >= 2)
    probe.stop_camera()
    settle(0.2)
    count = len(actions)
    assert wait_until(lambda: "camera stalled" in proc.output(), 3.0), proc.output()
    assert len(actions) == count, "actions without new frames"
    # Old frames (a lagging camera or clock) are skipped and counted.
    probe.publish_frame(stamp_ns=probe.now_ns() - 3_000_000_000)
    settle(0.3)
    assert len(actions) == count
    assert wait_until(lambda: "older than max_image_age_s" in proc.output(), 2.0), proc.output()
    probe.start_camera(hz=20)
    assert wait_until(lambda: len(actions) > count + 1), "did not resume after the stall"
    assert proc.alive()


def test_parameters_validated_at_set_time(probe, start_policy, spawn) -> None:
    proc = start_policy(enable=False)
    ok = probe.set_params("openvla_policy", control_hz=2.0)
    assert ok[0].successful
    bad = probe.set_params("openvla_policy", control_hz=-1.0)
    assert not bad[0].successful and "control_hz" in bad[0].reason
    bad = probe.set_params("openvla_policy", blocking_timeout_s=0.0)
    assert not bad[0].successful and "blocking_timeout_s" in bad[0].reason
    ro = probe.set_params("openvla_policy", camera_topic="/other")
    assert not ro[0].successful and "read-only" in ro[0].reason
    assert proc.alive()
    # A bad launch value stops the node at start-up with the reason.
    from test.nodes.ros_helpers import ros_args

    bad_proc = spawn(
        ["-m", "openvla_ros.nodes.policy_node", *ros_args(policy="scripted", mode="often")],
        name="bad_params",
    )
    assert wait_until(lambda: not bad_proc.alive(), 15.0)
    assert bad_proc.proc.returncode == 2
    assert "mode" in bad_proc.output() and "cannot start" in bad_proc.output()
