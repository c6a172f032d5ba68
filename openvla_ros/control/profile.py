# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Robot profiles: everything robot- and dataset-specific, in one frozen dataclass.

The profile is built from the executor node's flat ROS parameters, declared once in
:data:`EXECUTOR_PARAMS` (type, default, unit, range, description). The per-robot
values live in ``config/<robot>.yaml`` under ``openvla_executor: ros__parameters:``.
Defaults here are the conservative, robot-agnostic ones; each robot file overrides
what differs and says why.

``python -m openvla_ros.control.params_doc config/*.yaml`` prints the parameter
table that ``docs/control.md`` embeds (a test keeps the two in sync).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from openvla_ros.errors import ConfigError
from openvla_ros.paramspec import (
    ParamSpec,
    ParamType,
    build_config,
    flatten_params,
    validate,
)

__all__ = [
    "EXECUTOR_NODE_NAME",
    "EXECUTOR_PARAMS",
    "RobotProfile",
    "load_profile_yaml",
    "profile_from_params",
    "profile_to_params",
    "read_ros_params_yaml",
]

#: Node name the executor's section of a params file is keyed by.
EXECUTOR_NODE_NAME = "openvla_executor"

_B, _I, _F, _S, _FL = (
    ParamType.BOOL,
    ParamType.INT,
    ParamType.FLOAT,
    ParamType.STR,
    ParamType.FLOAT_LIST,
)

#: The executor's parameters; :class:`RobotProfile` has one field per entry (``attr``).
EXECUTOR_PARAMS: list[ParamSpec] = [
    # --- identity and frames ---------------------------------------------------------
    ParamSpec("robot_name", _S, "robot", "Robot profile name (for logs and state).",
              read_only=True, attr="name"),
    ParamSpec("frames.base", _S, "base_link",
              "Robot base frame: deltas, targets, workspace and the measured pose are in it.",
              read_only=True, attr="base_frame"),
    ParamSpec("frames.ee", _S, "ee_link", "End-effector (TCP) frame the pose refers to.",
              read_only=True, attr="ee_frame"),
    # --- control ---------------------------------------------------------------------
    ParamSpec("control.command_type", _S, "pose",
              "pose: publish absolute PoseStamped targets; twist: publish TwistStamped "
              "delta/dt for MoveIt Servo.", choices=("pose", "twist"), read_only=True,
              attr="command_type"),
    ParamSpec("control.mode", _S, "non_blocking",
              "non_blocking: act on each new action while the arm moves; blocking: report "
              "done (reached or timeout) before the policy observes again.",
              choices=("non_blocking", "blocking"), attr="mode"),
    ParamSpec("control.rate_hz", _F, 5.0,
              "Policy step rate the deltas were trained at (Bridge: 5 Hz); twist = delta * rate.",
              unit="Hz", min=0.5, max=50.0, attr="control_hz"),
    ParamSpec("control.servo_rate_hz", _F, 50.0,
              "Rate the executor ticks (watchdogs, twist re-publishing, done detection).",
              unit="Hz", min=1.0, max=1000.0, attr="servo_hz"),
    ParamSpec("control.action_scale", _F, 1.0,
              "Factor on the 6 pose deltas before the step limits (< 1 slows the arm).",
              min=0.01, max=10.0, attr="action_scale"),
    ParamSpec("control.republish_target", _B, False,
              "Pose mode: re-publish the current target at the servo rate (for controllers "
              "that halt without a command stream).", attr="republish_target"),
    # --- safety limits ---------------------------------------------------------------
    ParamSpec("limits.step_translation_m", _F, 0.02,
              "Per-axis limit on each translation delta |dx|, |dy|, |dz| per step.",
              unit="m", min=0.001, max=0.2, attr="step_limit_m"),
    ParamSpec("limits.step_rotation_rad", _F, 0.1,
              "Per-axis limit on each rotation delta |droll|, |dpitch|, |dyaw| per step.",
              unit="rad", min=0.001, max=1.0, attr="step_limit_rad"),
    ParamSpec("limits.workspace_min_m", _FL, (0.3, -0.2, 0.1),
              "Workspace box lower corner (x, y, z) in the base frame; targets are clipped "
              "into the box.", unit="m", min=-3.0, max=3.0, length=3, attr="workspace_min_m"),
    ParamSpec("limits.workspace_max_m", _FL, (0.5, 0.2, 0.4),
              "Workspace box upper corner (x, y, z) in the base frame.",
              unit="m", min=-3.0, max=3.0, length=3, attr="workspace_max_m"),
    ParamSpec("limits.max_tracking_error_m", _F, 0.05,
              "Max distance target-to-measured position; a step that would exceed it (and "
              "grow it) holds the position.", unit="m", min=0.005, max=1.0,
              attr="max_tracking_error_m"),
    ParamSpec("limits.max_tracking_error_rad", _F, 0.3,
              "Max angle target-to-measured orientation; a step that would exceed it (and "
              "grow it) holds the orientation.", unit="rad", min=0.01, max=3.14,
              attr="max_tracking_error_rad"),
    ParamSpec("limits.max_linear_speed_m_s", _F, 0.25,
              "Max speed of the commanded translation over steady time (norm): pose mode, "
              "a token bucket of one control period; twist mode, the linear twist norm.",
              unit="m/s", min=0.001, max=3.0, attr="max_linear_speed_m_s"),
    ParamSpec("limits.max_angular_speed_rad_s", _F, 1.0,
              "Max speed of the commanded rotation over steady time (geodesic angle rate), "
              "as limits.max_linear_speed_m_s.", unit="rad/s", min=0.01, max=10.0,
              attr="max_angular_speed_rad_s"),
    ParamSpec("limits.nominal_rpy_rad", _FL, (3.141592653589793, 0.0, 0.0),
              "Nominal tool orientation in the base frame (extrinsic XYZ roll, pitch, yaw): "
              "the centre of the orientation bound.", unit="rad", min=-6.3, max=6.3,
              length=3, attr="nominal_rpy_rad"),
    ParamSpec("limits.tool_axis", _FL, (0.0, 0.0, 1.0),
              "Tool axis in the end-effector frame (normalised): the cone and the yaw range "
              "are about it.", min=-1.0, max=1.0, length=3, attr="tool_axis"),
    ParamSpec("limits.max_tilt_rad", _F, 0.8,
              "Orientation bound: max angle between the tool axis and its nominal direction "
              "(cone half-angle).", unit="rad", min=0.01, max=3.1416, attr="max_tilt_rad"),
    ParamSpec("limits.yaw_range_rad", _FL, (-1.6, 1.6),
              "Orientation bound: allowed rotation about the tool axis relative to the nominal "
              "orientation [min, max]; [-3.1416, 3.1416] = unlimited.", unit="rad",
              min=-3.1416, max=3.1416, length=2, attr="yaw_range_rad"),
    ParamSpec("limits.max_steps_per_episode", _I, 200,
              "Actions executed per episode before the executor holds (new instruction or "
              "reset starts a new episode).", min=1, max=1_000_000, attr="max_steps_per_episode"),
    # --- watchdogs -------------------------------------------------------------------
    ParamSpec("watchdog.action_timeout_s", _F, 1.0,
              "No new action for this long: hold (zero twist).", unit="s", min=0.05, max=60.0,
              attr="action_timeout_s"),
    ParamSpec("watchdog.max_action_age_s", _F, 1.0,
              "Drop actions whose image was captured longer ago than this (0 disables; needs "
              "camera and executor on one clock).", unit="s", min=0.0, max=60.0,
              attr="max_action_age_s"),
    ParamSpec("watchdog.pose_timeout_s", _F, 0.25,
              "No fresh end-effector pose for this long (steady time): hold, drop the target, "
              "re-seed from the next fresh pose.", unit="s", min=0.01, max=10.0,
              attr="pose_timeout_s"),
    ParamSpec("watchdog.max_clock_skew_s", _F, 0.05,
              "Pose and action stamps more than this ahead of the executor's ROS clock are "
              "refused (a negative age is never fresh beyond it).", unit="s", min=0.0,
              max=3600.0, attr="max_clock_skew_s"),
    ParamSpec("watchdog.max_pose_age_s", _F, 0.0,
              "Poses stamped longer ago than this (executor's ROS clock) are refused: a "
              "lagging relay or an unrestamped bag describes where the arm was, not where it "
              "is (0 disables; needs robot and executor on one clock).", unit="s", min=0.0,
              max=60.0, attr="max_pose_age_s"),
    ParamSpec("watchdog.clock_jump_threshold_s", _F, 1.0,
              "ROS time advancing this much more than steady time between two executor "
              "callbacks (or any backward step) is a clock jump: hold, drop in-flight actions, "
              "re-seed.", unit="s", min=0.05, max=60.0, attr="clock_jump_threshold_s"),
    # --- blocking mode ---------------------------------------------------------------
    ParamSpec("blocking.reached_tolerance_m", _F, 0.01,
              "Blocking mode: action done when the measured position is this close to the target.",
              unit="m", min=0.0005, max=0.2, attr="reached_tolerance_m"),
    ParamSpec("blocking.reached_tolerance_rad", _F, 0.05,
              "Blocking mode: and the measured orientation this close (geodesic angle).",
              unit="rad", min=0.001, max=1.0, attr="reached_tolerance_rad"),
    ParamSpec("blocking.timeout_s", _F, 2.0,
              "Blocking mode: action done (timed out) after this long even if not reached.",
              unit="s", min=0.05, max=60.0, attr="blocking_timeout_s"),
    # --- gripper ---------------------------------------------------------------------
    ParamSpec("gripper.mode", _S, "binary",
              "binary: open/closed with threshold + hysteresis; continuous: linear map of the "
              "value onto [closed, open] command.", choices=("binary", "continuous"),
              attr="gripper_mode"),
    ParamSpec("gripper.input_range", _FL, (0.0, 1.0),
              "Range of the model's gripper value in the dataset convention (Bridge: [0, 1]); "
              "values outside are clamped.", min=-10.0, max=10.0, length=2,
              attr="gripper_input_range"),
    ParamSpec("gripper.threshold", _F, 0.5,
              "Binary mode: value at the centre of the switching band (Bridge: 0.5).",
              min=-10.0, max=10.0, attr="gripper_threshold"),
    ParamSpec("gripper.hysteresis", _F, 0.2,
              "Binary mode: full width of the band around the threshold in which the state "
              "does not change.", min=0.0, max=10.0, attr="gripper_hysteresis"),
    ParamSpec("gripper.inverted", _B, False,
              "false: high value = open (Bridge/OXE-standardised: 1 = open); true: high = closed.",
              attr="gripper_inverted"),
    ParamSpec("gripper.open_command", _F, 1.0,
              "Command sent for fully open (Franka: width in m; WidowX: normalised).",
              min=-1000.0, max=1000.0, attr="gripper_open_command"),
    ParamSpec("gripper.closed_command", _F, 0.0,
              "Command sent for fully closed (Franka: width in m; WidowX: normalised).",
              min=-1000.0, max=1000.0, attr="gripper_closed_command"),
    ParamSpec("gripper.initially_open", _B, True,
              "Assumed gripper state before the first action.", attr="gripper_initially_open"),
    ParamSpec("gripper.min_switch_interval_s", _F, 0.0,
              "Binary state changes at most this often (steady time): a change asked for "
              "sooner after the previous one keeps the state, and a later action may make it; "
              "protects the gripper and its driver from a flood of goals. 0: off.",
              unit="s", min=0.0, max=10.0, attr="gripper_min_switch_interval_s"),
    # --- policy defaults (read by the policy side; kept here so one file describes a robot)
    ParamSpec("policy.default_unnorm_key", _S, "bridge_orig",
              "Dataset statistics key to un-normalise actions with, unless the launch overrides.",
              attr="default_unnorm_key"),
    ParamSpec("policy.default_preprocess", _S, "bridge",
              "Image preprocessing preset the policy applies (e.g. bridge, none).",
              attr="default_preprocess"),
]  # fmt: skip


@dataclass(frozen=True)
class RobotProfile:
    """A robot's frames, control semantics, safety limits and gripper convention.

    One field per :data:`EXECUTOR_PARAMS` entry; units are in the field names. Build it
    with :func:`profile_from_params` or :func:`load_profile_yaml`; ``__post_init__``
    checks the relations between fields (box corners ordered, bands sensible).

    Raises:
        ConfigError: an inconsistent combination, with the reason.
    """

    name: str
    base_frame: str
    ee_frame: str
    command_type: str
    mode: str
    control_hz: float
    servo_hz: float
    action_scale: float
    republish_target: bool
    step_limit_m: float
    step_limit_rad: float
    workspace_min_m: tuple[float, ...]
    workspace_max_m: tuple[float, ...]
    max_tracking_error_m: float
    max_tracking_error_rad: float
    max_linear_speed_m_s: float
    max_angular_speed_rad_s: float
    nominal_rpy_rad: tuple[float, ...]
    tool_axis: tuple[float, ...]
    max_tilt_rad: float
    yaw_range_rad: tuple[float, ...]
    max_steps_per_episode: int
    action_timeout_s: float
    max_action_age_s: float
    pose_timeout_s: float
    max_clock_skew_s: float
    max_pose_age_s: float
    clock_jump_threshold_s: float
    reached_tolerance_m: float
    reached_tolerance_rad: float
    blocking_timeout_s: float
    gripper_mode: str
    gripper_input_range: tuple[float, ...]
    gripper_threshold: float
    gripper_hysteresis: float
    gripper_inverted: bool
    gripper_open_command: float
    gripper_closed_command: float
    gripper_initially_open: bool
    gripper_min_switch_interval_s: float
    default_unnorm_key: str
    default_preprocess: str

    def __post_init__(self) -> None:
        # Every field is checked against its spec even when the dataclass is built
        # directly (tests, scripts), so no profile object can hold an out-of-range limit.
        for spec in EXECUTOR_PARAMS:
            try:
                value = validate(spec, getattr(self, spec.field_name))
            except ConfigError as exc:
                raise ConfigError(f"profile '{self.name}': {exc}") from exc
            object.__setattr__(self, spec.field_name, value)
        lo, hi = np.asarray(self.workspace_min_m), np.asarray(self.workspace_max_m)
        if np.any(lo >= hi):
            raise ConfigError(
                f"profile '{self.name}': workspace_min_m {list(self.workspace_min_m)} must be "
                f"below workspace_max_m {list(self.workspace_max_m)} on every axis"
            )
        g_lo, g_hi = self.gripper_input_range
        if g_lo >= g_hi:
            raise ConfigError(
                f"profile '{self.name}': gripper.input_range {list(self.gripper_input_range)} "
                "must be [low, high] with low < high"
            )
        band_lo = self.gripper_threshold - self.gripper_hysteresis / 2
        band_hi = self.gripper_threshold + self.gripper_hysteresis / 2
        if self.gripper_mode == "binary" and not (g_lo < band_lo and band_hi < g_hi):
            raise ConfigError(
                f"profile '{self.name}': gripper band [{band_lo:g}, {band_hi:g}] "
                f"(threshold +- hysteresis/2) must lie strictly inside gripper.input_range "
                f"[{g_lo:g}, {g_hi:g}], or the gripper could never switch"
            )
        if self.servo_hz < self.control_hz:
            raise ConfigError(
                f"profile '{self.name}': control.servo_rate_hz {self.servo_hz:g} must be >= "
                f"control.rate_hz {self.control_hz:g} (the tick must be at least as fast as "
                "the actions)"
            )
        if self.action_timeout_s < 1.0 / self.control_hz:
            raise ConfigError(
                f"profile '{self.name}': watchdog.action_timeout_s {self.action_timeout_s:g} s "
                f"is shorter than one control period ({1.0 / self.control_hz:g} s): every "
                "action would be stale"
            )
        if self.max_tracking_error_m < self.step_limit_m:
            raise ConfigError(
                f"profile '{self.name}': limits.max_tracking_error_m "
                f"{self.max_tracking_error_m:g} m is below one step "
                f"({self.step_limit_m:g} m): the arm could never move"
            )
        if self.max_tracking_error_rad < self.step_limit_rad:
            raise ConfigError(
                f"profile '{self.name}': limits.max_tracking_error_rad "
                f"{self.max_tracking_error_rad:g} rad is below one step "
                f"({self.step_limit_rad:g} rad): the arm could never rotate"
            )

        self._check_orientation_bound()

    def _check_orientation_bound(self) -> None:
        axis = np.asarray(self.tool_axis, dtype=np.float64)
        if float(np.linalg.norm(axis)) < 1e-6:
            raise ConfigError(
                f"profile '{self.name}': limits.tool_axis {list(self.tool_axis)} must be a "
                "non-zero vector (the tool's pointing axis in the end-effector frame)"
            )
        lo, hi = self.yaw_range_rad
        if lo >= hi:
            raise ConfigError(
                f"profile '{self.name}': limits.yaw_range_rad {list(self.yaw_range_rad)} must "
                "be [min, max] with min < max"
            )

    @property
    def tool_axis_unit(self) -> npt.NDArray[np.float64]:
        """``limits.tool_axis`` normalised (end-effector frame)."""
        axis = np.asarray(self.tool_axis, dtype=np.float64)
        return axis / np.linalg.norm(axis)

    @property
    def control_period_s(self) -> float:
        """Seconds per policy step (1 / control_hz): the dt of twist = delta / dt."""
        return 1.0 / self.control_hz

    @property
    def workspace_min(self) -> npt.NDArray[np.float64]:
        """Workspace box lower corner as float64[3] (m, base frame)."""
        return np.asarray(self.workspace_min_m, dtype=np.float64)

    @property
    def workspace_max(self) -> npt.NDArray[np.float64]:
        """Workspace box upper corner as float64[3] (m, base frame)."""
        return np.asarray(self.workspace_max_m, dtype=np.float64)

    def replace(self, **changes: Any) -> RobotProfile:
        """Copy with some fields changed (re-checked)."""
        return dataclasses.replace(self, **changes)


def profile_from_params(params: Mapping[str, Any], *, strict: bool = True) -> RobotProfile:
    """Build a profile from flat parameter values (dotted names), defaults for absent ones.

    Args:
        params: ``{name: value}`` as a node reads its parameters.
        strict: reject names not in :data:`EXECUTOR_PARAMS`.

    Raises:
        ConfigError: an unknown name, a bad value or an inconsistent combination.
    """
    return build_config(RobotProfile, EXECUTOR_PARAMS, params, strict=strict)


def profile_to_params(profile: RobotProfile) -> dict[str, Any]:
    """The flat ``{name: value}`` parameters that rebuild ``profile``."""
    return {s.name: getattr(profile, s.field_name) for s in EXECUTOR_PARAMS}


def read_ros_params_yaml(path: str | Path, node_name: str) -> dict[str, Any]:
    """Read one node's parameters from a ROS 2 params YAML, flattened to dotted names.

    Merges, in ROS's order of precedence, the ``/**`` wildcard section and the
    ``node_name`` (or ``/node_name``) section, each under ``ros__parameters``.

    Raises:
        ConfigError: the file is missing, is not YAML, or has neither section.
    """
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read params file {p}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"params file {p} is not valid YAML: {exc}") from exc
    if not isinstance(doc, Mapping):
        raise ConfigError(f"params file {p}: expected a mapping of node names at the top level")
    found = False
    merged: dict[str, Any] = {}
    for key in ("/**", node_name.lstrip("/"), "/" + node_name.lstrip("/")):
        section = doc.get(key)
        if section is None:
            continue
        if not isinstance(section, Mapping) or not isinstance(
            section.get("ros__parameters"), Mapping
        ):
            raise ConfigError(f"params file {p}: section '{key}' has no 'ros__parameters' mapping")
        found = True
        merged.update(flatten_params(section["ros__parameters"]))
    if not found:
        raise ConfigError(
            f"params file {p} has no section for node '{node_name}' "
            f"(top-level keys: {sorted(map(str, doc))})"
        )
    return merged


def load_profile_yaml(
    path: str | Path,
    node_name: str = EXECUTOR_NODE_NAME,
    *,
    ignore: Collection[str] | None = None,
) -> RobotProfile:
    """Load a :class:`RobotProfile` from the ``node_name`` section of a ROS params YAML.

    Args:
        path: the params file (``config/franka.yaml`` ...).
        node_name: the section (``<node_name>: ros__parameters: {...}``).
        ignore: parameter names (or prefixes ending in ``.``) the node declares besides
            the profile (topics, ...): skipped here instead of rejected as typos.
            Default: the executor node's own parameters
            (:data:`openvla_ros.nodes.params.EXECUTOR_NODE_PARAMS`, e.g.
            ``gripper_adapter``), whose values are still checked against their specs.

    Raises:
        ConfigError: missing file/section, an unknown or bad parameter, or an
            inconsistent profile; the message names the file.
    """
    params = read_ros_params_yaml(path, node_name)
    if ignore is None:
        from openvla_ros.nodes.params import EXECUTOR_NODE_PARAMS

        for spec in EXECUTOR_NODE_PARAMS:
            if spec.name in params:
                try:
                    validate(spec, params[spec.name])
                except ConfigError as exc:
                    raise ConfigError(f"{path}: {exc}") from exc
        ignore = [spec.name for spec in EXECUTOR_NODE_PARAMS]
    ignored = tuple(ignore)
    kept = {
        k: v
        for k, v in params.items()
        if k not in ignored and not any(i.endswith(".") and k.startswith(i) for i in ignored)
    }
    try:
        return profile_from_params(kept)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
