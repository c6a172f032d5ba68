# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Gripper mapping: threshold + hysteresis, inversion, non-finite keeps the last command."""

from __future__ import annotations

import itertools
import math

import pytest

from openvla_ros.control.gripper import GripperMapper
from openvla_ros.control.profile import RobotProfile


def test_hysteresis_band_keeps_state(profile: RobotProfile) -> None:
    g = GripperMapper(profile)  # threshold 0.5, band 0.4..0.6, starts open
    assert g.is_open
    seq = [0.55, 0.45, 0.41, 0.39, 0.45, 0.59, 0.61, 0.5, 0.0]
    states = [g.update(v).is_open for v in seq]
    assert states == [True, True, True, False, False, False, True, True, False]


def test_changed_flag_and_commands(profile: RobotProfile) -> None:
    g = GripperMapper(profile)
    c = g.update(0.0)
    assert c.changed and not c.is_open and c.command == profile.gripper_closed_command
    c = g.update(0.1)
    assert not c.changed
    c = g.update(1.0)
    assert c.changed and c.is_open and c.command == profile.gripper_open_command


def test_inverted_convention(profile: RobotProfile) -> None:
    g = GripperMapper(profile.replace(gripper_inverted=True))  # high = closed
    assert not g.update(0.9).is_open
    assert g.update(0.1).is_open


def test_non_finite_and_garbage_keep_last(profile: RobotProfile) -> None:
    g = GripperMapper(profile)
    g.update(0.0)
    for bad in (math.nan, math.inf, -math.inf, "x", None):
        c = g.update(bad)  # type: ignore[arg-type]
        assert not c.is_open and not c.changed and math.isnan(c.value)


def test_out_of_range_is_clamped(profile: RobotProfile) -> None:
    g = GripperMapper(profile)
    c = g.update(-5.0)
    assert c.value == 0.0 and not c.is_open
    assert g.update(7.0).value == 1.0


def test_continuous_mode(profile: RobotProfile) -> None:
    p = profile.replace(gripper_mode="continuous", gripper_open_command=0.08)
    g = GripperMapper(p)
    assert g.update(0.25).command == pytest.approx(0.02)
    inv = GripperMapper(p.replace(gripper_inverted=True))
    assert inv.update(0.25).command == pytest.approx(0.06)


def test_reset(profile: RobotProfile) -> None:
    g = GripperMapper(profile)
    g.update(0.0)
    g.reset()
    assert g.is_open
    g.reset(is_open=False)
    assert not g.current().is_open


def test_binary_state_changes_at_most_once_per_min_switch_interval() -> None:
    from openvla_ros.control.profile import profile_from_params

    p = profile_from_params({"robot_name": "g", "gripper.min_switch_interval_s": 0.5})
    m = GripperMapper(p)
    changes = []
    for i in range(1000):  # a flood: open/close alternating at 1 kHz for 1 s
        c = m.update(float(i % 2), now_s=10.0 + i * 0.001)
        if c.changed:
            changes.append(10.0 + i * 0.001)
    assert len(changes) == 2, changes  # at 10.000 (close) and 10.501 (open)
    assert all(b - a >= 0.5 - 1e-9 for a, b in itertools.pairwise(changes))
    assert m.deferred >= 490  # every other value asks for the other state
    # Kept back, not lost: a value that still asks for the change makes it once allowed.
    m2 = GripperMapper(p)
    assert m2.update(0.0, now_s=0.0).changed and not m2.is_open
    assert not m2.update(1.0, now_s=0.1).changed and not m2.is_open
    assert m2.update(1.0, now_s=0.6).changed and m2.is_open
    # Offline callers (no time) and a zero interval apply every change.
    m3 = GripperMapper(p)
    assert all(m3.update(float(i % 2)).changed for i in range(10))
    m4 = GripperMapper(profile_from_params({"robot_name": "g"}))  # the spec default: off
    assert all(m4.update(float(i % 2), now_s=i * 0.001).changed for i in range(10))
