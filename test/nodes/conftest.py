# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Fixtures for the node tests. ROS helpers are imported lazily, so the pure-logic tests in
this folder run (and the ROS ones skip with a reason) where rclpy is not installed."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def _ros() -> Any:
    pytest.importorskip("rclpy", reason="rclpy not installed (run scripts/setup_env.sh)")
    pytest.importorskip("openvla_ros.msg", reason="interfaces not built")
    from test.nodes import ros_helpers

    return ros_helpers


@pytest.fixture
def probe() -> Iterator[Any]:
    """A :class:`~test.nodes.ros_helpers.Probe` with its own rclpy context."""
    p = _ros().Probe()
    yield p
    p.close()


@pytest.fixture
def start_policy(spawn: Callable, probe: Any) -> Callable[..., Any]:
    """Start the policy node (scripted unless given) and wait until its services are up."""

    def _start(name: str = "policy", enable: bool = True, **params: Any) -> Any:
        defaults: dict[str, Any] = {
            "policy": "scripted",
            "control_hz": 50.0,
            "stats_period_s": 0.5,
            "scripted__report_image": True,
        }
        defaults.update(params)
        args = _ros().ros_args(**defaults)
        proc = spawn(["-m", "openvla_ros.nodes.policy_node", *args], name=name)
        from std_srvs.srv import SetBool

        ok = probe.wait_service(SetBool, "/openvla_policy/enable", 30.0)
        assert ok, f"policy node did not come up; its log:\n{proc.output()}"
        if enable:
            resp = probe.call(SetBool, "/openvla_policy/enable", SetBool.Request(data=True))
            assert resp.success, resp.message
        return proc

    return _start


@pytest.fixture
def start_executor(spawn: Callable, probe: Any) -> Callable[..., Any]:
    """Start the executor node and wait until its services are up (enabled by default)."""

    def _start(
        name: str = "executor",
        enable: bool = True,
        env: dict | None = None,
        wait_pose: bool | None = None,
        **params: Any,
    ) -> Any:
        defaults: dict[str, Any] = {"stats_period_s": 0.5}
        defaults.update(params)
        args = _ros().ros_args(**defaults)
        proc = spawn(["-m", "openvla_ros.nodes.executor_node", *args], name=name, env=env)
        from std_srvs.srv import SetBool

        ok = probe.wait_service(SetBool, "/openvla_executor/enable", 30.0)
        assert ok, f"executor node did not come up; its log:\n{proc.output()}"
        if enable:
            resp = probe.call(SetBool, "/openvla_executor/enable", SetBool.Request(data=True))
            assert resp.success, resp.message
            # The executor acts only on a confirmed pose (two agreeing samples). Where the probe
            # plays the robot, wait for that (the enable service reports it; calling it again
            # while enabled changes nothing): under load the pose subscription can be matched
            # after the action topic, and a first action would then be rejected.
            if wait_pose if wait_pose is not None else probe.robot_running:
                from openvla_ros.control.executor_core import NO_CONFIRMED_POSE

                deadline = time.monotonic() + 30.0
                while NO_CONFIRMED_POSE in resp.message:
                    assert time.monotonic() < deadline, f"no pose confirmed: {resp.message}"
                    time.sleep(0.05)
                    resp = probe.call(
                        SetBool, "/openvla_executor/enable", SetBool.Request(data=True)
                    )
        return proc

    return _start


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random OpenVLA checkpoint in the published layout (generated once)."""
    pytest.importorskip("torch", reason="torch not installed")
    from openvla_ros.model.make_checkpoint import write_small_checkpoint

    return write_small_checkpoint(tmp_path_factory.mktemp("ckpt") / "openvla-small", seed=0)


@pytest.fixture(scope="session")
def robot_interfaces() -> dict[str, str]:
    """Env additions (PYTHONPATH, LD_LIBRARY_PATH) for stand-in franka_msgs and
    interbotix_xs_msgs packages built from upstream's definitions (cached between runs)."""
    _ros()
    if shutil.which("cmake") is None:
        pytest.skip("cmake not found: cannot build the stand-in robot interface packages")
    from test.nodes import robot_interfaces as ifaces

    return ifaces.build(Path(sys.prefix) / "build" / "test_interfaces")
