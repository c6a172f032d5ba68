# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Pure logic of the policy loop (no rclpy): frame slot, episodes, rate, blocking handshake,
and the scripted / slow / failing policies and the factory."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openvla_ros.errors import ConfigError, InputError, PolicyError
from openvla_ros.paramspec import default_values
from openvla_ros.policy.base import Policy
from openvla_ros.policy.factory import describe, make_policy
from openvla_ros.policy.runner import (
    POLICY_NODE_PARAMS,
    FrameSlot,
    PolicyNodeConfig,
    PolicyRunner,
)
from openvla_ros.policy.scripted import FailingPolicy, ScriptedPolicy, SlowPolicy

MS = 1_000_000
IMG = np.zeros((4, 5, 3), np.uint8)


def runner(**kw) -> PolicyRunner:
    args = {"control_hz": 10.0, "enabled": True, "max_image_age_s": 0.0}
    args.update(kw)
    r = PolicyRunner(**args)
    r.set_instruction("go")
    return r


def test_slot_keeps_only_the_newest_and_counts_overwritten() -> None:
    slot = FrameSlot()
    slot.put(1, 1, "a")
    slot.put(2, 2, "b")
    assert slot.newest().payload == "b" and slot.replaced_unused == 1
    slot.mark_taken(2)
    slot.put(3, 3, "c")
    assert slot.replaced_unused == 1
    assert slot.put(0, 99, "unstamped").stamp_ns == 99  # zero stamp -> receive time


def test_disabled_paused_and_no_frame() -> None:
    r = PolicyRunner(control_hz=10.0)
    r.on_frame(1, 1, "f")
    assert r.next_job(2)[2] == "disabled"
    r.set_enabled(True, 2)
    assert r.next_job(2)[2] == "paused"
    assert r.set_instruction("pick") == "new_episode"
    job, _, why = r.next_job(3)
    assert why == "ready" and job is not None and job.reset_policy and job.episode_id == 1
    assert r.next_job(500 * MS)[2] == "no_frame", "never the same frame twice"


def test_rate_limit_and_steps() -> None:
    r = runner()
    r.on_frame(1, 1, "f1")
    job, _, _ = r.next_job(10)
    assert r.finish(job, 11)
    r.on_frame(2, 20, "f2")
    job2, wait, why = r.next_job(50 * MS)
    assert job2 is None and why == "rate" and wait == pytest.approx(0.05, abs=1e-3)
    job2, _, _ = r.next_job(100 * MS + 10)
    assert job2.step == 1 and not job2.reset_policy


def test_failures_do_not_consume_steps_and_episode_changes_drop_results() -> None:
    r = runner(control_hz=100.0)
    r.on_frame(1, 1, "f1")
    job, _, _ = r.next_job(1)
    r.fail("image")
    r.on_frame(2, 2, "f2")
    job, _, _ = r.next_job(20 * MS)
    assert job.step == 0
    assert r.set_instruction("another") == "new_episode"
    assert not r.finish(job, 21 * MS), "result of an old episode must be dropped"
    assert r.counters.results_dropped == 1 and r.counters.images_bad == 1
    assert r.set_instruction("another") == "unchanged"
    assert r.set_instruction("  ") == "paused"
    assert r.set_instruction("another") == "new_episode"
    assert r.episode[0] == 3


def test_stale_frames_are_skipped_once() -> None:
    r = runner(max_image_age_s=0.5)
    r.on_frame(1, 1, "old")
    job, _, why = r.next_job(2 * 1000 * MS)
    assert job is None and why == "stale" and r.counters.images_stale == 1
    assert r.next_job(2 * 1000 * MS + 1)[2] == "no_frame"


def test_blocking_handshake_and_timeout() -> None:
    r = runner(mode="blocking", blocking_timeout_s=1.0, control_hz=100.0)
    r.on_frame(1, 1, "f1")
    job, _, _ = r.next_job(10 * MS)
    assert r.finish(job, 11 * MS) and r.waiting_for_executor
    r.on_frame(20 * MS, 20 * MS, "f2")
    assert r.next_job(30 * MS)[2] == "waiting"
    assert not r.on_executor_state(1, 5, True, 40 * MS), "another step's report"
    assert not r.on_executor_state(1, 0, False, 40 * MS), "not done yet"
    assert r.on_executor_state(1, 0, True, 50 * MS)
    assert r.next_job(60 * MS)[2] == "old_frame", "frame captured before the done report"
    r.on_frame(70 * MS, 70 * MS, "f3")
    job, _, _ = r.next_job(80 * MS)
    assert job.step == 1 and job.frame.payload == "f3"
    assert r.finish(job, 81 * MS)
    r.on_frame(90 * MS, 90 * MS, "f4")
    assert r.next_job(500 * MS)[2] == "waiting"
    assert r.next_job(1100 * MS)[2] == "blocking_timeout"
    r.on_frame(1200 * MS, 1200 * MS, "f5")
    job, _, _ = r.next_job(1210 * MS)
    assert job.frame.payload == "f5" and r.counters.blocking_timeouts == 1


S = 1000 * MS
OLD = 1000 * S  # ROS time before a simulator restarted /clock
NEW = 5 * S  # after


def test_clock_going_back_does_not_stall_the_rate_limit() -> None:
    r = runner()
    r.on_frame(OLD, OLD, "f1")
    job, _, _ = r.next_job(OLD)
    assert r.finish(job, OLD + 1)
    r.on_frame(NEW, NEW, "f2")
    job2, wait, why = r.next_job(NEW)  # before the fix: "rate", 995 s to wait
    assert why == "ready" and job2 is not None and job2.frame.payload == "f2", (why, wait)
    assert job2.step == 1


def test_clock_going_back_while_blocking() -> None:
    r = runner(mode="blocking", blocking_timeout_s=1.0, control_hz=100.0)
    r.on_frame(OLD, OLD, "f1")
    job, _, _ = r.next_job(OLD)
    assert r.finish(job, OLD + 1) and r.waiting_for_executor
    r.on_frame(NEW, NEW, "f2")
    assert r.next_job(NEW)[2] == "waiting"
    # The handshake times out 1 s after the clock went back (not 996 s).
    assert r.next_job(NEW + 1100 * MS)[2] == "blocking_timeout"
    r.on_frame(NEW + 1200 * MS, NEW + 1200 * MS, "f3")
    job, _, why = r.next_job(NEW + 1210 * MS)
    assert why == "ready" and job.frame.payload == "f3"
    # A done report, then the clock goes back again: later frames are not "old_frame".
    assert r.finish(job, NEW + 1211 * MS)
    assert r.on_executor_state(job.episode_id, job.step, True, NEW + 1300 * MS)
    r.on_frame(NEW // 2, NEW // 2, "f4")
    assert r.next_job(NEW // 2 + 1)[2] == "old_frame"  # captured before "now" (the jump)
    r.on_frame(NEW // 2 + 10 * MS, NEW // 2 + 10 * MS, "f5")
    job, _, why = r.next_job(NEW // 2 + 20 * MS)
    assert why == "ready" and job.frame.payload == "f5"


def test_camera_stall_reported_once() -> None:
    r = runner(camera_stall_s=0.5)
    r.set_enabled(False, 0)
    r.set_enabled(True, 0)
    assert r.check_camera_stall(100 * MS) is None
    assert r.check_camera_stall(600 * MS) == pytest.approx(0.6)
    assert r.check_camera_stall(700 * MS) is None
    r.on_frame(800 * MS, 800 * MS, "f")
    assert r.check_camera_stall(900 * MS) is None
    assert r.check_camera_stall(1400 * MS) is not None
    assert r.counters.camera_stalls == 2


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["frame", "tick", "instr", "pause", "done", "reset"]),
            st.integers(0, 300),
        ),
        max_size=60,
    ),
    st.sampled_from(["non_blocking", "blocking"]),
)
def test_invariants_under_any_event_order(events, mode) -> None:
    """Never the same frame twice; steps consecutive per episode; frames newer in time."""
    r = PolicyRunner(control_hz=50.0, mode=mode, blocking_timeout_s=0.2, enabled=True)
    now = 0
    used: set[int] = set()
    last: dict[int, int] = {}
    for kind, dt in events:
        now += dt * MS
        if kind == "frame":
            r.on_frame(now, now, None)
        elif kind == "instr":
            r.set_instruction(f"task {dt % 3}")
        elif kind == "pause":
            r.set_instruction("")
        elif kind == "reset":
            r.reset_episode()
        elif kind == "done":
            ep, step, _ = r.episode
            r.on_executor_state(ep, max(step - 1, 0), True, now)
        job, _, _ = r.next_job(now)
        if job is None:
            continue
        assert job.frame.seq not in used
        used.add(job.frame.seq)
        if r.finish(job, now):
            assert job.step == last.get(job.episode_id, -1) + 1
            last[job.episode_id] = job.step


def test_scripted_policy_cycles_and_reports_image() -> None:
    p = ScriptedPolicy([[0.1, 0, 0, 0, 0, 0, 1], [0.2, 0, 0, 0, 0, 0, 0]], unnorm_key="k")
    assert isinstance(p, Policy)
    a = [p.predict(IMG, "x").action[0] for _ in range(3)]
    assert a == [0.1, 0.2, 0.1]
    p.reset()
    assert p.predict(IMG, "x").action[0] == 0.1
    assert p.predict(IMG, "x", "other").unnorm_key == "other"
    once = ScriptedPolicy([0.1, 0, 0, 0, 0, 0, 1, 0.2, 0, 0, 0, 0, 0, 0], repeat=False)
    assert [once.predict(IMG, "x").action[0] for _ in range(3)] == [0.1, 0.2, 0.2]
    img = np.full((10, 20, 3), (255, 0, 51), np.uint8)
    r = ScriptedPolicy(report_image=True).predict(img, "x")
    assert list(r.normalized_action[:5]) == pytest.approx([1.0, 0.0, 0.2, 0.01, 0.02])
    with pytest.raises(InputError):
        p.predict(np.zeros((4, 4), np.uint8), "x")
    with pytest.raises(InputError):
        p.predict(IMG, " ")
    with pytest.raises(ConfigError):
        ScriptedPolicy([1.0, 2.0])
    with pytest.raises(ConfigError):
        ScriptedPolicy([np.nan] * 7)


def test_slow_and_failing_wrappers() -> None:
    f = FailingPolicy(ScriptedPolicy(), fail_every=2)
    f.predict(IMG, "x")
    with pytest.raises(PolicyError):
        f.predict(IMG, "x")
    assert f.info()["fail_every"] == 2
    s = SlowPolicy(ScriptedPolicy(), delay_s=0.0)
    assert s.predict(IMG, "x").action[6] == 1.0 and s.info()["delay_s"] == 0.0


def _config(**over) -> PolicyNodeConfig:
    values = default_values(POLICY_NODE_PARAMS)
    values.update(over)
    return PolicyNodeConfig.from_params(values)


def test_factory_and_config() -> None:
    with pytest.raises(ConfigError, match="checkpoint"):
        _config()  # policy=model without a checkpoint or remote_url
    p = make_policy(
        _config(policy="scripted", **{"scripted.delay_s": 0.001, "scripted.fail_every": 3})
    )
    assert isinstance(p, FailingPolicy) and "scripted" in describe(p)
    with pytest.raises(ConfigError):
        _config(policy="scripted", control_hz=0.0)
    with pytest.raises(ConfigError, match="unknown"):
        PolicyNodeConfig.from_params({"contrl_hz": 5.0})
    with pytest.raises(ConfigError, match="remote_url"):
        make_policy(_config(remote_url="ftp://gpu-box"))
    pytest.importorskip("requests", reason="requests not installed")
    remote = make_policy(_config(remote_url="http://127.0.0.1:9", remote_timeout_s=0.5))
    assert type(remote).__name__ == "RemotePolicy"  # built lazily: no connection yet


def test_factory_loads_a_generated_checkpoint(small_checkpoint) -> None:
    policy = make_policy(
        _config(checkpoint=str(small_checkpoint), precision="fp32", device="cpu",
                unnorm_key="bridge_orig")
    )  # fmt: skip
    result = policy.predict(np.zeros((64, 64, 3), np.uint8), "pick up the cup")
    assert result.action.shape == (7,) and result.unnorm_key == "bridge_orig"


def test_factory_refuses_a_multi_dataset_checkpoint_without_unnorm_key(small_checkpoint) -> None:
    # Every step would fail with "pass unnorm_key": the node must refuse at start-up instead.
    with pytest.raises(ConfigError, match="bridge_orig, fractal20220817_data"):
        make_policy(_config(checkpoint=str(small_checkpoint), precision="fp32", device="cpu"))


def test_redundant_enable_keeps_the_blocking_wait() -> None:
    r = runner(mode="blocking", blocking_timeout_s=1.0, control_hz=100.0)
    r.on_frame(1, 1, "f1")
    job, _, _ = r.next_job(10 * MS)
    assert r.finish(job, 11 * MS) and r.waiting_for_executor
    assert not r.set_enabled(True, 15 * MS), "already enabled"
    assert r.waiting_for_executor, "a redundant enable must not end the handshake"
    r.on_frame(20 * MS, 20 * MS, "f2")  # captured while the arm still moves
    assert r.next_job(30 * MS)[2] == "waiting"
    # A real change (disable, then enable) does end it.
    assert r.set_enabled(False, 40 * MS) and not r.waiting_for_executor
    assert r.set_enabled(True, 50 * MS) and not r.waiting_for_executor


def test_finish_publishes_under_the_lock_and_not_after_disable() -> None:
    import threading

    r = runner()
    r.on_frame(1, 1, "f1")
    job, _, _ = r.next_job(10 * MS)
    calls: list[str] = []
    r.set_enabled(False, 11 * MS)
    assert not r.finish(job, 12 * MS, publish=lambda: calls.append("published"))
    assert calls == [] and r.counters.results_dropped == 1
    # A disable racing the publish waits until the publish is done: never in between.
    r.set_enabled(True, 13 * MS)
    r.on_frame(20 * MS, 20 * MS, "f2")
    job, _, _ = r.next_job(200 * MS)
    assert job is not None
    disabler = threading.Thread(target=lambda: r.set_enabled(False, 201 * MS))

    def publish() -> None:
        disabler.start()
        disabler.join(timeout=0.2)
        calls.append("still enabled" if disabler.is_alive() else "disabled mid-publish")

    assert r.finish(job, 201 * MS, publish=publish)
    disabler.join(timeout=5.0)
    assert calls == ["still enabled"] and not r.enabled
    assert r.episode[1] == job.step + 1


def test_adapter_with_a_remote_server_is_refused() -> None:
    # The server computes the actions: a local adapter would be silently unused (was accepted).
    with pytest.raises(ConfigError, match=r"openvla-ros serve --checkpoint BASE --adapter DIR"):
        _config(remote_url="http://gpu-box:8000", adapter="/models/my_lab/adapter")
    assert _config(remote_url="http://gpu-box:8000").adapter == ""
