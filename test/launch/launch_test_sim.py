# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""launch_testing test of ``launch/sim.launch.py enable:=true`` (run by test_launch_real.py
through launch_testing's own runner, or by hand: ``launch_test test/launch/launch_test_sim.py``
with this package on the ament index).

While the launch runs: the three nodes come up, an instruction produces DeltaActions and the
executor reports executed actions. After shutdown: every process exited with code 0.
Not collected by pytest itself (the file name does not start with ``test_``).
"""

from __future__ import annotations

import os
import time
import unittest

import launch
import launch_testing
import launch_testing.actions
import launch_testing.asserts
import rclpy
from ament_index_python.packages import get_package_share_directory
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from std_msgs.msg import String

from openvla_ros.msg import DeltaAction, ExecutorState
from openvla_ros.nodes.common import ACTION_QOS, INSTRUCTION_LATCHED_QOS, STATE_QOS


def generate_test_description():
    """sim.launch.py with enable:=true, then ReadyToTest."""
    path = os.path.join(get_package_share_directory("openvla_ros"), "launch", "sim.launch.py")
    sim = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(path), launch_arguments=[("enable", "true")]
    )
    return launch.LaunchDescription([sim, launch_testing.actions.ReadyToTest()])


class TestSimGraphRuns(unittest.TestCase):
    """Active tests: run while the launch is up."""

    def test_instruction_gives_actions_and_executed_states(self, proc_output) -> None:
        proc_output.assertWaitFor("sim_arm ready", timeout=60, stream="stderr")
        context = rclpy.Context()
        rclpy.init(context=context)
        node = rclpy.create_node("launch_test_probe", context=context)
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        actions: list[DeltaAction] = []
        states: list[ExecutorState] = []
        node.create_subscription(DeltaAction, "/openvla/delta_action", actions.append, ACTION_QOS)
        node.create_subscription(ExecutorState, "/openvla/executor_state", states.append, STATE_QOS)
        # Latched: reaches the policy whenever its subscription matches.
        pub = node.create_publisher(String, "/instruction", INSTRUCTION_LATCHED_QOS)
        pub.publish(String(data="pick up the cube"))
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.1)
                executed = [s for s in states if s.outcome == ExecutorState.OUTCOME_EXECUTED]
                if len(actions) >= 3 and any(s.step > 0 for s in executed):
                    break
            self.assertGreaterEqual(len(actions), 3, "no DeltaActions from the policy")
            self.assertEqual({a.instruction for a in actions}, {"pick up the cube"})
            self.assertTrue(
                any(s.outcome == ExecutorState.OUTCOME_EXECUTED and s.step > 0 for s in states),
                "the executor executed nothing",
            )
        finally:
            node.destroy_node()
            rclpy.try_shutdown(context=context)


@launch_testing.post_shutdown_test()
class TestSimGraphExits(unittest.TestCase):
    """Post-shutdown tests: every node finished cleanly."""

    def test_exit_codes(self, proc_info) -> None:
        launch_testing.asserts.assertExitCodes(proc_info)
