# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Pure control layer: SE(3) helpers, robot profiles, safety filter, gripper, executor core.

numpy (+ pyyaml for profiles) only: no rclpy, no torch, so the robot side stays light
and every rule here is unit-tested without ROS. The executor node wraps
:class:`ExecutorCore`; see ``docs/control.md`` for the semantics.
"""

from openvla_ros.control.executor_core import (
    Command,
    CommandResult,
    Counters,
    Decision,
    DoneReport,
    DoneStatus,
    ExecutorCore,
    ExecutorState,
    PoseUpdate,
    TickResult,
    Twist,
)
from openvla_ros.control.gripper import GripperCommand, GripperMapper
from openvla_ros.control.pose_monitor import PoseMonitor, PoseVerdict
from openvla_ros.control.profile import (
    EXECUTOR_NODE_NAME,
    EXECUTOR_PARAMS,
    RobotProfile,
    load_profile_yaml,
    profile_from_params,
    profile_to_params,
    read_ros_params_yaml,
)
from openvla_ros.control.safety import (
    ACTION_DIM,
    ClipFlag,
    Outcome,
    SafetyFilter,
    SafetyResult,
    orientation_violation,
    seed_target,
    step_within_limits,
)
from openvla_ros.control.se3 import Pose, apply_delta, delta_between, pose_distance
from openvla_ros.control.timing import ClockJump, ClockJumpDetector, SpeedBudget

__all__ = [
    "ACTION_DIM",
    "EXECUTOR_NODE_NAME",
    "EXECUTOR_PARAMS",
    "ClipFlag",
    "ClockJump",
    "ClockJumpDetector",
    "Command",
    "CommandResult",
    "Counters",
    "Decision",
    "DoneReport",
    "DoneStatus",
    "ExecutorCore",
    "ExecutorState",
    "GripperCommand",
    "GripperMapper",
    "Outcome",
    "Pose",
    "PoseMonitor",
    "PoseUpdate",
    "PoseVerdict",
    "RobotProfile",
    "SafetyFilter",
    "SafetyResult",
    "SpeedBudget",
    "TickResult",
    "Twist",
    "apply_delta",
    "delta_between",
    "load_profile_yaml",
    "orientation_violation",
    "pose_distance",
    "profile_from_params",
    "profile_to_params",
    "read_ros_params_yaml",
    "seed_target",
    "step_within_limits",
]
