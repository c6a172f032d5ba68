# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The nodes' own parameters (topics, start-up behaviour), as :class:`ParamSpec` lists.

Pure (no rclpy), so launch logic, docs and tests can read them. The executor's robot
profile parameters are :data:`openvla_ros.control.profile.EXECUTOR_PARAMS`; the policy
node's are :data:`openvla_ros.policy.runner.POLICY_NODE_PARAMS`.
"""

from __future__ import annotations

import dataclasses

from openvla_ros.paramspec import ParamSpec, ParamType
from openvla_ros.policy.runner import POLICY_NODE_PARAMS

__all__ = [
    "EXECUTOR_NODE_PARAMS",
    "POLICY_NODE_PARAMS",
    "executor_params",
]

_S, _B, _F = ParamType.STR, ParamType.BOOL, ParamType.FLOAT

#: Executor-node parameters besides the robot profile (topics and start-up behaviour).
EXECUTOR_NODE_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("action_topic", _S, "/openvla/delta_action", "DeltaAction input topic",
              read_only=True),
    ParamSpec("pose_topic", _S, "/openvla/ee_pose", "Measured end-effector PoseStamped input "
              "(best effort, depth 1)", read_only=True),
    ParamSpec("estop_topic", _S, "/openvla/estop", "std_msgs/Bool e-stop input; true latches",
              read_only=True),
    ParamSpec("target_pose_topic", _S, "/openvla/target_pose", "PoseStamped target output "
              "(control.command_type = pose)", read_only=True),
    ParamSpec("target_twist_topic", _S, "/openvla/target_twist", "TwistStamped output "
              "(control.command_type = twist)", read_only=True),
    ParamSpec("gripper_topic", _S, "/openvla/gripper_command", "std_msgs/Float64 gripper "
              "opening output, 0 = closed .. 1 = open", read_only=True),
    ParamSpec("state_topic", _S, "/openvla/executor_state", "ExecutorState output",
              read_only=True),
    ParamSpec("enable_on_start", _B, False, "Start enabled (default: nothing moves before "
              "~/enable)", read_only=True),
    ParamSpec("gripper_adapter", _S, "topic", "Gripper driver: topic (Float64 only), franka "
              "(franka_msgs Move/Grasp actions), interbotix (interbotix_xs_msgs "
              "JointSingleCommand); the Float64 topic is always published",
              choices=("topic", "franka", "interbotix"), read_only=True),
    ParamSpec("gripper_namespace", _S, "", "Adapter namespace; empty: /fr3_gripper (franka: "
              "the gripper action prefix), /wx250s (interbotix: the robot namespace)",
              read_only=True),
    ParamSpec("franka_grasp_force_n", _F, 20.0, "franka adapter: Grasp force when closing",
              unit="N", min=1.0, max=140.0, read_only=True),
    ParamSpec("gripper_speed", _F, 0.1, "franka adapter: finger speed for Move/Grasp",
              unit="m/s", min=0.001, max=0.2, read_only=True),
    ParamSpec("interbotix_gripper_pressure", _F, 250.0, "interbotix adapter: PWM effort "
              "sent to the gripper motor (+ opens, - closes; the SDK's default is about 250)",
              min=1.0, max=885.0, read_only=True),
    ParamSpec("state_heartbeat_s", _F, 1.0, "Publish the state at least this often even "
              "without events (0 = only on events)", unit="s", min=0.0, max=60.0),
    ParamSpec("stats_period_s", _F, 10.0, "Period of the counters log line; 0 disables it",
              unit="s", min=0.0, max=3600.0),
)  # fmt: skip


def executor_params() -> list[ParamSpec]:
    """Everything the executor node declares: the robot profile, then the node's own.

    The profile's parameters are declared read-only: limits, frames and gripper mapping
    must not change under a moving arm; changing them is a restart with a new params file.
    """
    from openvla_ros.control.profile import EXECUTOR_PARAMS

    profile = [dataclasses.replace(s, read_only=True) for s in EXECUTOR_PARAMS]
    return [*profile, *EXECUTOR_NODE_PARAMS]
