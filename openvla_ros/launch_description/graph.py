# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""What the launch files start, as plain data: nodes, params files, parameters, remaps.

The ``launch`` package cannot be installed everywhere this project is tested, so every decision
a launch file makes lives here and the files in ``launch/`` stay thin: they declare
:func:`launch_arguments`, evaluate them, call :func:`describe_graph` and turn each
:class:`NodeDescription` into a ``launch_ros.actions.Node``. The demo runner and the tests use
:func:`node_argv` to start the same nodes as ``python -m`` processes.

Pure Python: no launch, launch_ros or rclpy imports.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from openvla_ros.errors import ConfigError
from openvla_ros.paramspec import flatten_params

__all__ = [
    "BOOL_FALSE",
    "BOOL_TRUE",
    "GRIPPER_ADAPTERS",
    "LAUNCH_ARGUMENTS",
    "NODE_ENV",
    "ROBOTS",
    "LaunchArgument",
    "NodeDescription",
    "check_given_arguments",
    "config_path",
    "describe_graph",
    "executor_base_frame",
    "executor_gripper_adapter",
    "exit_message",
    "launch_arguments",
    "node_argv",
    "robot_topic_defaults",
    "sim_arm_geometry",
]

PACKAGE = "openvla_ros"
ROBOTS = ("franka", "widowx", "sim")
_SOURCE_CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
_LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
#: Boolean launch argument spellings (any case); docs/launch.md lists the same.
BOOL_TRUE = ("true", "1", "yes", "on")
BOOL_FALSE = ("false", "0", "no", "off", "")
_BOOL_CHOICES = ("true", "false")
#: Gripper drivers a launch can select; "" keeps the params file's executor value.
GRIPPER_ADAPTERS = ("none", "franka", "interbotix")
#: Environment of every node a launch starts: rclpy then checks the length and type of every
#: message field our nodes set (without it a short list published into ``float64[7]`` goes
#: out padded with whatever memory follows it). Third-party publishers need it themselves.
NODE_ENV: Mapping[str, str] = {"ROS_PYTHON_CHECK_FIELDS": "1"}


@dataclass(frozen=True)
class LaunchArgument:
    """One launch argument: its name, default (a string, as launch substitutions are) and
    the description ``ros2 launch ... --show-args`` prints."""

    name: str
    default: str
    description: str
    choices: tuple[str, ...] | None = None


#: Launch arguments shared by every launch file. Topic defaults of ``""`` mean "the robot's
#: default" (see :func:`robot_topic_defaults`); :func:`launch_arguments` fills them per robot.
LAUNCH_ARGUMENTS: tuple[LaunchArgument, ...] = (
    LaunchArgument("robot", "sim", "Robot profile: selects config/<robot>.yaml and the topic "
                   "wiring.", ROBOTS),
    LaunchArgument("checkpoint", "", "OpenVLA checkpoint directory (Hugging Face layout, e.g. a "
                   "local copy of openvla/openvla-7b); ignored when remote_url is set."),
    LaunchArgument("precision", "", "Weights precision of the local model; empty: the params "
                   "file's value (config/<robot>.yaml: bf16 on robots, fp32 in sim).",
                   ("", "fp32", "bf16", "fp16", "int8", "int4")),
    LaunchArgument("device", "", "Torch device of the local model: auto, cpu, cuda, cuda:N; "
                   "empty: the params file's value."),
    LaunchArgument("unnorm_key", "", "Dataset statistics key to un-normalise actions with (e.g. "
                   "bridge_orig); empty: the params file's value (config/<robot>.yaml sets "
                   "bridge_orig: pass the key of a fine-tune that has another, e.g. sim_reach "
                   "for the embedded default)."),
    LaunchArgument("mode", "non_blocking", "non_blocking: infer on the newest frame while the "
                   "arm moves; blocking: observe again only after the previous action is done.",
                   ("non_blocking", "blocking")),
    LaunchArgument("command_type", "pose", "pose: absolute PoseStamped targets to a Cartesian "
                   "pose/impedance controller; twist: TwistStamped to MoveIt Servo.",
                   ("pose", "twist")),
    LaunchArgument("camera_topic", "", "Camera sensor_msgs/Image topic the policy reads "
                   "(empty: the robot's default)."),
    LaunchArgument("ee_pose_topic", "", "Measured end-effector PoseStamped topic the executor "
                   "reads (empty: the robot's default)."),
    LaunchArgument("target_pose_topic", "", "PoseStamped target topic the executor publishes "
                   "with command_type:=pose (empty: the robot's default)."),
    LaunchArgument("target_twist_topic", "", "TwistStamped topic the executor publishes with "
                   "command_type:=twist (empty: the robot's default)."),
    LaunchArgument("gripper_topic", "", "std_msgs/Float64 gripper opening topic (0 closed .. 1 "
                   "open) the executor publishes (empty: the robot's default)."),
    LaunchArgument("remote_url", "", "URL of a remote inference server (openvla_ros serve); "
                   "when set, no model is loaded on this machine."),
    LaunchArgument("namespace", "", "Namespace for the nodes and the package's own topics "
                   "(delta_action, executor_state, estop, instruction)."),
    LaunchArgument("use_sim_time", "false", "Use /clock (true with a simulator that runs "
                   "faster than real time).", _BOOL_CHOICES),
    LaunchArgument("log_level", "info", "Log level of every node.", _LOG_LEVELS),
    LaunchArgument("params_file", "", "Extra ROS params file applied over config/<robot>.yaml "
                   "(same layout: node name -> ros__parameters)."),
    LaunchArgument("enable", "false", "Start policy and executor enabled (demos only; on a real "
                   "arm enable explicitly with the ~/enable services).", _BOOL_CHOICES),
    LaunchArgument("with_sim", "false", "Also start the simulated Panda (sim_arm): camera + EE "
                   "pose out, commands in.", _BOOL_CHOICES),
    LaunchArgument("policy", "model", "model: OpenVLA (local checkpoint or remote_url); "
                   "scripted: a fixed action sequence from the params file (dry runs).",
                   ("model", "scripted")),
    LaunchArgument("gripper_adapter", "", "Gripper driver of the executor besides its Float64 "
                   "topic: none, franka (franka_msgs Move/Grasp), interbotix (xs "
                   "JointSingleCommand); empty: the params file's value (with_sim: none).",
                   ("", *GRIPPER_ADAPTERS)),
)  # fmt: skip

_ARG_NAMES = tuple(a.name for a in LAUNCH_ARGUMENTS)

# Topic defaults per robot. Franka (franka_ros2): the state broadcaster publishes the TCP pose;
# a Cartesian impedance/pose controller takes PoseStamped; MoveIt Servo takes twists. WidowX
# (Interbotix): the xs driver has no Cartesian topics, so pose in/out go through the package's
# widowx_bridge (forward kinematics of the joint states, IK to joint group commands) on the
# package's own topics, and twists through interbotix_xsarm_moveit's Servo. Sim: sim_arm
# speaks the package's topics.
_TOPICS: dict[str, dict[str, str]] = {
    "franka": {
        "camera_topic": "/camera/camera/color/image_raw",  # realsense2_camera 4.5x default
        "ee_pose_topic": "/franka_robot_state_broadcaster/current_pose",
        "target_pose_topic": "/cartesian_impedance_controller/target_pose",
        "target_twist_topic": "/servo_node/delta_twist_cmds",
        "gripper_topic": "/openvla/gripper_command",
    },
    "widowx": {
        "camera_topic": "/camera/camera/color/image_raw",
        "ee_pose_topic": "/openvla/ee_pose",
        "target_pose_topic": "/openvla/target_pose",
        "target_twist_topic": "/servo_node/delta_twist_cmds",
        "gripper_topic": "/openvla/gripper_command",
    },
    "sim": {
        "camera_topic": "/camera/image_raw",
        "ee_pose_topic": "/openvla/ee_pose",
        "target_pose_topic": "/openvla/target_pose",
        "target_twist_topic": "/openvla/target_twist",
        "gripper_topic": "/openvla/gripper_command",
    },
}
# sim_arm's fixed topic names: remapped onto whatever the executor and policy use.
_SIM_TOPICS = {
    "camera_topic": "/camera/image_raw",
    "ee_pose_topic": "/openvla/ee_pose",
    "target_pose_topic": "/openvla/target_pose",
    "target_twist_topic": "/openvla/target_twist",
    "gripper_topic": "/openvla/gripper_command",
}
# Robot-specific non-topic defaults: the sim launch starts the simulator and, as nothing can
# be hurt and no weights exist on a fresh machine, the scripted policy.
_ROBOT_ARG_DEFAULTS: dict[str, dict[str, str]] = {
    "franka": {"robot": "franka"},
    "widowx": {"robot": "widowx"},
    "sim": {"robot": "sim", "with_sim": "true", "policy": "scripted"},
}


@dataclass(frozen=True)
class NodeDescription:
    """One node a launch starts, in the terms of ``launch_ros.actions.Node``.

    Attributes:
        package: ROS package (``openvla_ros``).
        executable: executable in ``lib/openvla_ros`` (``ros2 run`` name).
        module: Python module with ``main()``, to run it without ``ros2 run``.
        name: node name (the key of its section in the params files).
        namespace: node namespace (``""``: none).
        params_files: params YAML paths, applied in order.
        overrides: parameters applied after the files (launch arguments win).
        remappings: ``(from, to)`` topic remaps.
        ros_arguments: extra ``--ros-args`` arguments (``--log-level``).
        env: environment variables added to the node's (:data:`NODE_ENV`).
        required: the launch stops when this node exits (:func:`exit_message` says why).
    """

    package: str
    executable: str
    module: str
    name: str
    namespace: str = ""
    params_files: tuple[str, ...] = ()
    overrides: Mapping[str, Any] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    ros_arguments: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: dict(NODE_ENV))
    required: bool = True

    @property
    def parameters(self) -> list[Any]:
        """``launch_ros.actions.Node(parameters=...)``: the files, then the overrides dict."""
        return [*self.params_files, dict(self.overrides)]


def robot_topic_defaults(robot: str) -> dict[str, str]:
    """The topic each ``*_topic`` launch argument takes for ``robot`` when left empty."""
    _check_robot(robot)
    return dict(_TOPICS[robot])


def launch_arguments(robot: str) -> list[LaunchArgument]:
    """:data:`LAUNCH_ARGUMENTS` with ``robot``'s defaults filled in (what a launch file
    declares, so ``--show-args`` prints the real topic names)."""
    _check_robot(robot)
    fill = {**_TOPICS[robot], **_ROBOT_ARG_DEFAULTS[robot]}
    return [
        LaunchArgument(a.name, fill.get(a.name, a.default), a.description, a.choices)
        for a in LAUNCH_ARGUMENTS
    ]


def config_path(robot: str, share_dir: str | Path | None = None) -> Path:
    """``config/<robot>.yaml`` in the installed share directory, or in the source tree.

    Raises:
        ConfigError: the file does not exist.
    """
    _check_robot(robot)
    base = Path(share_dir) / "config" if share_dir is not None else _SOURCE_CONFIG_DIR
    path = base / f"{robot}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"params file {path} not found (build/install the package, or pass share_dir)"
        )
    return path


def _check_robot(robot: str) -> None:
    if robot not in ROBOTS:
        raise ConfigError(f"unknown robot {robot!r}; choose one of {list(ROBOTS)}")


def _as_bool(name: str, value: str) -> bool:
    text = value.strip().lower()
    if text in BOOL_TRUE:
        return True
    if text in BOOL_FALSE:
        return False
    raise ConfigError(
        f"launch argument {name}:={value!r} is not a boolean; use true or false "
        f"(also accepted, any case: {', '.join(t for t in BOOL_TRUE + BOOL_FALSE if t)})"
    )


def _resolve(robot: str, args: Mapping[str, str]) -> dict[str, str]:
    unknown = sorted(set(args) - set(_ARG_NAMES))
    if unknown:
        raise ConfigError(f"unknown launch argument(s) {unknown}; known: {sorted(_ARG_NAMES)}")
    values = {a.name: a.default for a in launch_arguments(robot)}
    values.update({k: str(v) for k, v in args.items()})
    for key, default in _TOPICS[robot].items():
        if not values[key].strip():
            values[key] = default  # "" means the robot's default, as documented
    for arg in LAUNCH_ARGUMENTS:
        value = values[arg.name]
        if arg.choices is not None and value.lower() not in arg.choices:
            if arg.choices == _BOOL_CHOICES:
                _as_bool(arg.name, value)  # accepts 1/0/yes/no/on/off too
            else:
                raise ConfigError(
                    f"launch argument {arg.name}:={value!r} is not one of {list(arg.choices)}"
                )
    return values


def _ns_topic(namespace: str, topic: str) -> str:
    return f"/{namespace}{topic}" if namespace else topic


def describe_graph(
    robot: str, args: Mapping[str, str], share_dir: str | Path | None = None
) -> list[NodeDescription]:
    """The nodes to start for ``robot`` with launch arguments ``args`` (strings, as launch
    substitutions yield; absent names take :func:`launch_arguments` defaults).

    Always the policy node and the executor, both with ``config/<robot>.yaml`` (plus
    ``params_file`` when given), the executor wired between policy and controller; for the
    WidowX with ``command_type:=pose`` and no simulator, the ``widowx_bridge`` (executor pose
    topics <-> the xs driver's joint topics); the simulated arm too when ``with_sim`` is true
    (its commands and observations remapped onto the topics the executor and policy use).

    Args:
        robot: one of :data:`ROBOTS`; picks the params file and the topic defaults.
        args: launch argument values by name.
        share_dir: the package's share directory (``get_package_share_directory``); ``None``
            uses the source tree's ``config/``.

    Raises:
        ConfigError: an unknown robot or argument, a value that is not a choice, a missing
            params file, or ``policy:=model`` with neither ``checkpoint`` nor ``remote_url``.
    """
    _check_robot(robot)
    v = _resolve(robot, args)
    profile = v["robot"] if v["robot"] else robot
    namespace = v["namespace"].strip().strip("/")
    files = [str(config_path(profile, share_dir))]
    if v["params_file"].strip():
        extra = Path(v["params_file"]).expanduser()
        if not extra.is_file():
            raise ConfigError(f"params_file {extra} does not exist")
        files.append(str(extra.resolve()))
    ros_args = ("--log-level", v["log_level"].lower())
    use_sim_time = _as_bool("use_sim_time", v["use_sim_time"])
    enable = _as_bool("enable", v["enable"])
    remote_url = v["remote_url"].strip()

    # The package's own topics follow the namespace; robot/driver topics are given absolute.
    action_topic = _ns_topic(namespace, "/openvla/delta_action")
    state_topic = _ns_topic(namespace, "/openvla/executor_state")

    policy: dict[str, Any] = {
        "use_sim_time": use_sim_time,
        "policy": v["policy"].lower(),
        "mode": v["mode"].lower(),
        "camera_topic": v["camera_topic"],
        "instruction_topic": _ns_topic(namespace, "/instruction"),
        "action_topic": action_topic,
        "state_topic": state_topic,
        "enable_on_start": enable,
    }
    if remote_url:
        # No local model: the checkpoint stays empty so the node never loads weights here.
        policy.update(remote_url=remote_url, checkpoint="")
    else:
        if v["policy"].lower() == "model" and not v["checkpoint"].strip():
            raise ConfigError(
                "policy:=model needs checkpoint:=<dir> or remote_url:=<url> (or use "
                "policy:=scripted for a dry run)"
            )
        if v["checkpoint"].strip():
            policy["checkpoint"] = str(Path(v["checkpoint"]).expanduser())
        # Empty: the params file's value (one source of truth per robot), like unnorm_key.
        if v["precision"].strip():
            policy["precision"] = v["precision"].strip().lower()
        if v["device"].strip():
            policy["device"] = v["device"].strip()
    if v["unnorm_key"].strip():
        policy["unnorm_key"] = v["unnorm_key"].strip()

    executor: dict[str, Any] = {
        "use_sim_time": use_sim_time,
        "control.mode": v["mode"].lower(),
        "control.command_type": v["command_type"].lower(),
        "action_topic": action_topic,
        "state_topic": state_topic,
        "estop_topic": _ns_topic(namespace, "/openvla/estop"),
        "pose_topic": v["ee_pose_topic"],
        "target_pose_topic": v["target_pose_topic"],
        "target_twist_topic": v["target_twist_topic"],
        "gripper_topic": v["gripper_topic"],
        "enable_on_start": enable,
    }
    with_sim = _as_bool("with_sim", v["with_sim"])
    adapter = v["gripper_adapter"].strip().lower()
    if adapter:
        executor["gripper_adapter"] = executor_gripper_adapter(adapter)
    elif with_sim:
        # The simulator takes the Float64 topic; a robot's driver adapter has nothing to talk to.
        executor["gripper_adapter"] = executor_gripper_adapter("none")
    if with_sim and profile != "sim":
        executor.update(sim_arm_geometry(share_dir))

    def package_node(
        executable: str,
        name: str,
        overrides: Mapping[str, Any],
        remappings: tuple[tuple[str, str], ...] = (),
    ) -> NodeDescription:
        # Every node reads its own section (keyed by node name) of the same params files.
        return NodeDescription(
            package=PACKAGE,
            executable=executable,
            module=f"openvla_ros.nodes.{executable}",
            name=name,
            namespace=namespace,
            params_files=tuple(files),
            overrides=overrides,
            remappings=remappings,
            ros_arguments=ros_args,
        )

    nodes = [
        package_node("policy_node", "openvla_policy", policy),
        package_node("executor_node", "openvla_executor", executor),
    ]
    if _needs_widowx_bridge(profile, v):
        # Its section (widowx_bridge:) of config/widowx.yaml holds the robot name, IK
        # tolerances and joint step limit. It gets the executor's pose topics, whatever the
        # launch arguments made them, so the two always meet; the driver's joint topics follow
        # robot_name in the YAML.
        bridge = {
            "use_sim_time": use_sim_time,
            "ee_pose_topic": v["ee_pose_topic"],
            "target_pose_topic": v["target_pose_topic"],
        }
        nodes.append(package_node("widowx_bridge_node", "widowx_bridge", bridge))
    if with_sim:
        remaps = tuple((fixed, v[key]) for key, fixed in _SIM_TOPICS.items() if v[key] != fixed)
        # The simulator is the clock: with use_sim_time it runs as fast as it can and
        # publishes /clock; it never listens to /clock itself. It speaks the executor's base
        # frame (fr3_link0, wx250s/base_link, ...): in its own (panda_link0) every pose and
        # command would be refused as a frame mismatch and nothing would move.
        sim = {
            "use_sim_time": False,
            "real_time": not use_sim_time,
            "base_frame": executor_base_frame(files),
        }
        nodes.append(package_node("sim_arm_node", "sim_arm", sim, remaps))
    if namespace:
        nodes = [_inline_params(n) for n in nodes]
    return nodes


def executor_gripper_adapter(choice: str) -> str:
    """The executor's ``gripper_adapter`` value for a launch choice (``none`` is the
    executor's Float64-only setting, whatever it is named there).

    Raises:
        ConfigError: not one of :data:`GRIPPER_ADAPTERS`.
    """
    from openvla_ros.nodes.params import EXECUTOR_NODE_PARAMS

    if choice not in GRIPPER_ADAPTERS:
        raise ConfigError(
            f"launch argument gripper_adapter:={choice!r} is not one of {list(GRIPPER_ADAPTERS)}"
        )
    spec = next(s for s in EXECUTOR_NODE_PARAMS if s.name == "gripper_adapter")
    allowed = spec.choices or ()
    if choice == "none" and "none" not in allowed:
        return "topic"
    return choice


#: Executor parameters that describe the arm's geometry rather than the robot's safety
#: envelope: with the simulator standing in for a robot they come from config/sim.yaml (a
#: Panda pointing down), not from the robot's file (the WidowX's tool points forward).
SIM_ARM_GEOMETRY = (
    "limits.nominal_rpy_rad",
    "limits.tool_axis",
    "limits.max_tilt_rad",
    "limits.yaw_range_rad",
)


def sim_arm_geometry(share_dir: str | Path | None = None) -> dict[str, Any]:
    """The :data:`SIM_ARM_GEOMETRY` values of config/sim.yaml's executor section (those set)."""
    section = _node_section(str(config_path("sim", share_dir)), "openvla_executor")
    return {k: section[k] for k in SIM_ARM_GEOMETRY if k in section}


def executor_base_frame(params_files: Sequence[str]) -> str:
    """``frames.base`` of the executor as the params files set it (later files win).

    Raises:
        ConfigError: no file sets it.
    """
    merged: dict[str, Any] = {}
    for path in params_files:
        merged.update(_node_section(path, "openvla_executor"))
    base = merged.get("frames.base")
    if not isinstance(base, str) or not base:
        raise ConfigError(f"no openvla_executor frames.base in {list(params_files)}")
    return base


def check_given_arguments(given: Sequence[str]) -> list[str]:
    """Check launch argument names given on the command line against the declared ones.

    A name within one or two typos of a declared argument (``comand_type``, ``enabel``) is
    refused: ignoring it would run with a default the operator meant to change. Other
    unknown names are returned (the launch warns about them: a parent launch file may pass
    arguments of its own to an included one).

    Raises:
        ConfigError: a misspelled argument, with the one meant.
    """
    unknown = sorted(set(given) - set(_ARG_NAMES))
    others = []
    for name in unknown:
        close = difflib.get_close_matches(name, _ARG_NAMES, n=1, cutoff=0.8)
        if close:
            raise ConfigError(
                f"unknown launch argument {name!r}: did you mean {close[0]!r}? (see --show-args)"
            )
        others.append(name)
    return others


def exit_message(node_name: str, returncode: int | None) -> str:
    """What the launch says when a required node exits on its own, before it stops the rest.

    Exit code 2 is a node that refused its configuration (its ``cannot start:`` line gives
    the reason); a negative code is the signal that killed it.
    """
    if returncode == 2:
        why = "could not start (exit code 2: see its 'cannot start:' line above)"
    elif returncode is not None and returncode < 0:
        why = f"was killed by signal {-returncode}"
    else:
        why = f"exited with code {returncode}"
    return (
        f"{node_name} {why}; stopping the launch (the other nodes hold and exit: a partial "
        "graph cannot run the arm)"
    )


def _needs_widowx_bridge(profile: str, v: Mapping[str, str]) -> bool:
    """The WidowX's xs driver takes joints only: with pose commands and a real arm (no
    simulator, which speaks the Cartesian topics itself), the bridge turns the executor's
    target poses into joint commands and joint states into its EE pose. No launch argument:
    a widowx pose launch without it could not move the arm."""
    return (
        profile == "widowx"
        and v["command_type"].lower() == "pose"
        and not _as_bool("with_sim", v["with_sim"])
    )


def _node_section(path: str, node_name: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as stream:
        data = yaml.safe_load(stream) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"params file {path} is not a mapping of node names")
    out: dict[str, Any] = {}
    # rcl applies '/**' (any node) first, then the node's own section.
    for key in ("/**", node_name, f"/{node_name}"):
        section = data.get(key)
        if isinstance(section, dict) and isinstance(section.get("ros__parameters"), dict):
            out.update(flatten_params(section["ros__parameters"]))
    return out


def _inline_params(node: NodeDescription) -> NodeDescription:
    """Move the params files' sections for ``node`` into its overrides.

    A params file keyed ``openvla_executor:`` only matches the node in the root namespace
    (rcl matches fully qualified names), so a namespaced node would silently run on defaults
    and lose the robot's safety limits. Inlining keeps one YAML per robot for every namespace.
    """
    merged: dict[str, Any] = {}
    for path in node.params_files:
        merged.update(_node_section(path, node.name))
    merged.update(node.overrides)
    return dataclasses.replace(node, params_files=(), overrides=merged)


def _param_text(value: Any) -> str:
    # `-p name:=value` parses value as YAML: JSON is YAML, and quoting keeps strings strings
    # ("true", "", "1.0" stay text).
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"parameter value {value} is not finite")
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value)


def node_argv(
    node: NodeDescription, *, extra_overrides: Mapping[str, Any] | None = None
) -> list[str]:
    """``python`` arguments that run ``node`` as ``launch_ros`` would, without ``launch``:
    ``["-m", module, "--ros-args", "-r", "__node:=...", "--params-file", ..., "-p", ...]``.

    ``extra_overrides`` are applied after the node's own (tests and the demo runner use them).
    """
    argv = ["-m", node.module, "--ros-args", "-r", f"__node:={node.name}"]
    if node.namespace:
        argv += ["-r", f"__ns:=/{node.namespace}"]
    for path in node.params_files:
        argv += ["--params-file", path]
    for name, value in {**node.overrides, **(extra_overrides or {})}.items():
        argv += ["-p", f"{name}:={_param_text(value)}"]
    for src, dst in node.remappings:
        argv += ["-r", f"{src}:={dst}"]
    argv += list(node.ros_arguments)
    return argv


def launch_argument_names() -> Sequence[str]:
    """Names of :data:`LAUNCH_ARGUMENTS`, in declaration order."""
    return _ARG_NAMES
