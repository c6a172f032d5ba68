# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The launch layer's decisions (openvla_ros.launch_description.graph), without ``launch``."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from openvla_ros.errors import ConfigError
from openvla_ros.launch_description.graph import (
    LAUNCH_ARGUMENTS,
    ROBOTS,
    describe_graph,
    launch_arguments,
    node_argv,
    robot_topic_defaults,
)

EXPECTED_ARGS = {
    "robot", "checkpoint", "precision", "device", "unnorm_key", "mode", "command_type",
    "camera_topic", "ee_pose_topic", "target_pose_topic", "target_twist_topic", "gripper_topic",
    "remote_url", "namespace", "use_sim_time", "log_level", "params_file", "enable", "with_sim",
    "policy", "gripper_adapter",
}  # fmt: skip
CKPT = {"checkpoint": "/models/openvla-7b"}


def _by_name(nodes):
    return {n.name: n for n in nodes}


def test_every_argument_has_description_and_default() -> None:
    assert {a.name for a in LAUNCH_ARGUMENTS} == EXPECTED_ARGS
    assert len({a.name for a in LAUNCH_ARGUMENTS}) == len(LAUNCH_ARGUMENTS)
    for robot in ROBOTS:
        for arg in launch_arguments(robot):
            assert isinstance(arg.default, str)
            assert len(arg.description) > 20, arg.name
            if arg.choices:
                assert arg.default in arg.choices, (robot, arg.name)
        # Topic arguments show the robot's real topic, not an empty placeholder.
        declared = {a.name: a.default for a in launch_arguments(robot)}
        for key, topic in robot_topic_defaults(robot).items():
            assert declared[key] == topic and topic.startswith("/")


@pytest.mark.parametrize("robot", ROBOTS)
def test_params_files_exist_and_have_node_sections(robot: str) -> None:
    nodes = describe_graph(robot, {**CKPT, "with_sim": "true"})
    for node in nodes:
        assert node.params_files, node.name
        for path in node.params_files:
            assert Path(path).is_file()
            data = yaml.safe_load(Path(path).read_text())
            assert isinstance(data, dict)
        assert node.parameters[-1] == dict(node.overrides)
        assert node.ros_arguments == ("--log-level", "info")
    data = yaml.safe_load(Path(nodes[1].params_files[0]).read_text())
    assert "ros__parameters" in data["openvla_executor"]


def test_franka_pose_and_twist_wiring() -> None:
    nodes = _by_name(describe_graph("franka", CKPT))
    assert set(nodes) == {"openvla_policy", "openvla_executor"}  # no sim on a real robot
    ex = nodes["openvla_executor"].overrides
    assert ex["pose_topic"] == "/franka_robot_state_broadcaster/current_pose"
    assert ex["control.command_type"] == "pose"
    assert ex["target_twist_topic"] == "/servo_node/delta_twist_cmds"
    assert nodes["openvla_executor"].params_files[0].endswith("config/franka.yaml")
    twist = _by_name(describe_graph("franka", {**CKPT, "command_type": "twist"}))
    assert twist["openvla_executor"].overrides["control.command_type"] == "twist"
    pol = nodes["openvla_policy"].overrides
    assert pol["checkpoint"] == "/models/openvla-7b" and pol["policy"] == "model"


def test_widowx_defaults() -> None:
    nodes = _by_name(describe_graph("widowx", CKPT))
    assert nodes["openvla_executor"].params_files[0].endswith("config/widowx.yaml")
    assert nodes["openvla_executor"].overrides["pose_topic"] == "/openvla/ee_pose"


def test_widowx_pose_graph_has_the_bridge() -> None:
    nodes = _by_name(describe_graph("widowx", CKPT))
    assert set(nodes) == {"openvla_policy", "openvla_executor", "widowx_bridge"}
    bridge, ex = nodes["widowx_bridge"], nodes["openvla_executor"]
    assert (bridge.executable, bridge.module) == (
        "widowx_bridge_node",
        "openvla_ros.nodes.widowx_bridge_node",
    )
    assert bridge.params_files == ex.params_files  # its widowx_bridge: section of widowx.yaml
    data = yaml.safe_load(Path(bridge.params_files[0]).read_text())
    assert "ros__parameters" in data["widowx_bridge"]
    # The bridge's pose topics are the executor's, whatever the arguments made them.
    assert bridge.overrides["ee_pose_topic"] == ex.overrides["pose_topic"] == "/openvla/ee_pose"
    assert bridge.overrides["target_pose_topic"] == ex.overrides["target_pose_topic"]
    moved = _by_name(
        describe_graph(
            "widowx", {**CKPT, "ee_pose_topic": "/arm/pose", "target_pose_topic": "/arm/target"}
        )
    )
    assert moved["widowx_bridge"].overrides["ee_pose_topic"] == "/arm/pose"
    assert moved["widowx_bridge"].overrides["target_pose_topic"] == "/arm/target"
    argv = node_argv(bridge)
    assert argv[:3] == ["-m", "openvla_ros.nodes.widowx_bridge_node", "--ros-args"]
    assert "__node:=widowx_bridge" in argv


@pytest.mark.parametrize(
    ("robot", "args"),
    [
        ("widowx", {"command_type": "twist"}),  # MoveIt Servo drives the arm, no IK needed
        ("widowx", {"with_sim": "true"}),  # the simulator speaks the pose topics itself
        ("franka", {}),
        ("sim", {}),
    ],
)
def test_no_bridge_outside_widowx_pose(robot: str, args: dict[str, str]) -> None:
    assert "widowx_bridge" not in _by_name(describe_graph(robot, {**CKPT, **args}))


def test_namespaced_bridge_inlines_its_section() -> None:
    bridge = _by_name(describe_graph("widowx", {**CKPT, "namespace": "left"}))["widowx_bridge"]
    assert bridge.namespace == "left" and bridge.params_files == ()
    assert bridge.overrides["robot_name"] == "wx250s"
    assert bridge.overrides["max_joint_step_rad"] > 0


@pytest.mark.parametrize("mode", ["blocking", "non_blocking"])
def test_mode_reaches_both_nodes(mode: str) -> None:
    nodes = _by_name(describe_graph("franka", {**CKPT, "mode": mode}))
    assert nodes["openvla_policy"].overrides["mode"] == mode
    assert nodes["openvla_executor"].overrides["control.mode"] == mode


def test_remote_url_means_no_local_model() -> None:
    nodes = _by_name(describe_graph("franka", {"remote_url": "http://gpu:8000", **CKPT}))
    pol = nodes["openvla_policy"].overrides
    assert pol["remote_url"] == "http://gpu:8000" and pol["checkpoint"] == ""
    assert "precision" not in pol and "device" not in pol


def test_model_without_checkpoint_or_url_is_refused() -> None:
    with pytest.raises(ConfigError, match="checkpoint"):
        describe_graph("franka", {})


def test_sim_graph_and_topic_overrides() -> None:
    nodes = _by_name(describe_graph("sim", {}))
    assert set(nodes) == {"openvla_policy", "openvla_executor", "sim_arm"}
    assert nodes["openvla_policy"].overrides["policy"] == "scripted"
    assert nodes["sim_arm"].remappings == ()
    nodes = _by_name(
        describe_graph("sim", {"camera_topic": "/cam/rgb", "ee_pose_topic": "/arm/pose"})
    )
    assert set(nodes["sim_arm"].remappings) == {
        ("/camera/image_raw", "/cam/rgb"),
        ("/openvla/ee_pose", "/arm/pose"),
    }
    assert nodes["openvla_policy"].overrides["camera_topic"] == "/cam/rgb"
    assert nodes["openvla_executor"].overrides["pose_topic"] == "/arm/pose"


def test_use_sim_time_makes_sim_the_clock() -> None:
    nodes = _by_name(describe_graph("sim", {"use_sim_time": "true"}))
    assert nodes["openvla_executor"].overrides["use_sim_time"] is True
    assert nodes["sim_arm"].overrides == {
        "use_sim_time": False,
        "real_time": False,
        "base_frame": "panda_link0",
    }


def test_enable_log_level_and_unnorm_key() -> None:
    nodes = _by_name(
        describe_graph(
            "franka", {**CKPT, "enable": "true", "log_level": "debug", "unnorm_key": "bridge_orig"}
        )
    )
    assert nodes["openvla_policy"].overrides["enable_on_start"] is True
    assert nodes["openvla_executor"].overrides["enable_on_start"] is True
    assert nodes["openvla_policy"].overrides["unnorm_key"] == "bridge_orig"
    assert nodes["openvla_executor"].ros_arguments == ("--log-level", "debug")


def test_namespace_inlines_the_robot_yaml(tmp_path: Path) -> None:
    extra = tmp_path / "mine.yaml"
    extra.write_text(
        "openvla_executor:\n  ros__parameters:\n    limits:\n      step_translation_m: 0.01\n"
    )
    nodes = _by_name(
        describe_graph("franka", {**CKPT, "namespace": "left", "params_file": str(extra)})
    )
    ex = nodes["openvla_executor"]
    assert ex.namespace == "left" and ex.params_files == ()
    assert ex.overrides["limits.step_translation_m"] == 0.01  # params_file wins over the robot
    assert ex.overrides["frames.base"]  # the robot yaml's values are kept
    assert ex.overrides["action_topic"] == "/left/openvla/delta_action"
    assert nodes["openvla_policy"].overrides["instruction_topic"] == "/left/instruction"


def test_params_file_is_layered(tmp_path: Path) -> None:
    extra = tmp_path / "mine.yaml"
    extra.write_text("openvla_executor:\n  ros__parameters: {}\n")
    node = _by_name(describe_graph("franka", {**CKPT, "params_file": str(extra)}))[
        "openvla_executor"
    ]
    assert node.params_files[0].endswith("franka.yaml") and node.params_files[1] == str(extra)


@pytest.mark.parametrize(
    "args",
    [
        {"mode": "fast"},
        {"command_type": "joint"},
        {"nonsense": "1"},
        {"enable": "maybe"},
        {"params_file": "/does/not/exist.yaml"},
        {"log_level": "loud"},
    ],
)
def test_bad_arguments_are_refused(args: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        describe_graph("franka", {**CKPT, **args})
    with pytest.raises(ConfigError):
        describe_graph("ur5", CKPT)


def test_node_argv_shape() -> None:
    node = _by_name(describe_graph("sim", {"namespace": "", "camera_topic": "/cam"}))["sim_arm"]
    argv = node_argv(node, extra_overrides={"seed": 7})
    assert argv[:3] == ["-m", "openvla_ros.nodes.sim_arm_node", "--ros-args"]
    assert "__node:=sim_arm" in argv and "seed:=7" in argv
    assert "/camera/image_raw:=/cam" in argv
    assert argv[-2:] == ["--log-level", "info"]
    pol = _by_name(describe_graph("sim", {}))["openvla_policy"]
    assert 'policy:="scripted"' in node_argv(pol)


def test_precision_and_device_come_from_the_params_file_unless_given() -> None:
    policy = describe_graph("sim", {"policy": "model", "checkpoint": "/ckpt"})[0]
    assert "precision" not in policy.overrides and "device" not in policy.overrides
    policy = describe_graph(
        "franka", {"checkpoint": "/ckpt", "precision": "INT4", "device": "cuda:1"}
    )[0]
    assert policy.overrides["precision"] == "int4" and policy.overrides["device"] == "cuda:1"


# -- issue 11 (launch side) and issue 10 items 7/8 ---------------------------------------------

CONFIG = Path(__file__).resolve().parents[2] / "config"


def _yaml_executor(robot: str) -> dict:
    data = yaml.safe_load((CONFIG / f"{robot}.yaml").read_text())
    return data["openvla_executor"]["ros__parameters"]


@pytest.mark.parametrize("robot", ["franka", "widowx", "sim"])
def test_with_sim_speaks_the_executors_base_frame(robot: str) -> None:
    # franka/widowx with_sim:=true never moved: the sim published panda_link0 poses and the
    # executor (fr3_link0 / wx250s/base_link) refused every one.
    nodes = _by_name(describe_graph(robot, {**CKPT, "with_sim": "true"}))
    base = _yaml_executor(robot)["frames"]["base"]
    assert nodes["sim_arm"].overrides["base_frame"] == base
    assert (
        base == {"franka": "fr3_link0", "widowx": "wx250s/base_link", "sim": "panda_link0"}[robot]
    )


def test_with_sim_base_frame_follows_an_extra_params_file(tmp_path: Path) -> None:
    extra = tmp_path / "panda.yaml"
    extra.write_text(
        "openvla_executor:\n  ros__parameters:\n    frames:\n      base: panda_link0\n"
    )
    nodes = _by_name(
        describe_graph("franka", {**CKPT, "with_sim": "true", "params_file": str(extra)})
    )
    assert nodes["sim_arm"].overrides["base_frame"] == "panda_link0"


@pytest.mark.parametrize("robot", ROBOTS)
def test_every_node_is_required_and_checks_message_fields(robot: str) -> None:
    for node in describe_graph(robot, {**CKPT, "with_sim": "true"}):
        assert node.required, node.name
        assert node.env == {"ROS_PYTHON_CHECK_FIELDS": "1"}, node.name


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("none", {"topic", "none"}), ("franka", {"franka"}), ("INTERBOTIX", {"interbotix"})],
)
def test_gripper_adapter_argument(choice: str, expected: set) -> None:
    executor = _by_name(describe_graph("franka", {**CKPT, "gripper_adapter": choice}))[
        "openvla_executor"
    ]
    assert executor.overrides["gripper_adapter"] in expected


def test_gripper_adapter_default_is_the_params_files_value_and_none_with_sim() -> None:
    executor = _by_name(describe_graph("franka", CKPT))["openvla_executor"]
    assert "gripper_adapter" not in executor.overrides  # config/franka.yaml decides
    sim = _by_name(describe_graph("franka", {**CKPT, "with_sim": "true"}))["openvla_executor"]
    assert sim.overrides["gripper_adapter"] in ("topic", "none")  # the sim takes the Float64
    explicit = describe_graph(
        "widowx", {**CKPT, "with_sim": "true", "gripper_adapter": "interbotix"}
    )
    assert _by_name(explicit)["openvla_executor"].overrides["gripper_adapter"] == "interbotix"
    with pytest.raises(ConfigError, match="gripper_adapter"):
        describe_graph("franka", {**CKPT, "gripper_adapter": "robotiq"})


@pytest.mark.parametrize("text", ["true", "True", "TRUE", "1", "yes", "Yes", "on", "ON"])
def test_boolean_spellings_true(text: str) -> None:
    nodes = _by_name(describe_graph("sim", {"enable": text}))
    assert nodes["openvla_executor"].overrides["enable_on_start"] is True


@pytest.mark.parametrize("text", ["false", "False", "0", "no", "NO", "off", ""])
def test_boolean_spellings_false(text: str) -> None:
    nodes = _by_name(describe_graph("sim", {"enable": text}))
    assert nodes["openvla_executor"].overrides["enable_on_start"] is False


def test_boolean_nonsense_is_refused_with_the_spellings() -> None:
    with pytest.raises(ConfigError, match="not a boolean; use true or false"):
        describe_graph("sim", {"with_sim": "maybe"})


def test_exit_messages_say_which_node_and_why() -> None:
    from openvla_ros.launch_description.graph import exit_message

    assert exit_message("openvla_policy", 2).startswith(
        "openvla_policy could not start (exit code 2: see its 'cannot start:' line above)"
    )
    assert "killed by signal 9" in exit_message("sim_arm", -9)
    assert "exited with code 1" in exit_message("openvla_executor", 1)
    assert "stopping the launch" in exit_message("openvla_executor", 0)


def test_given_argument_names() -> None:
    from openvla_ros.launch_description.graph import check_given_arguments

    declared = [a.name for a in LAUNCH_ARGUMENTS]
    assert check_given_arguments(declared) == []
    assert check_given_arguments([*declared, "world"]) == ["world"]
    for typo, meant in [
        ("enabel", "enable"),
        ("with_simm", "with_sim"),
        ("unorm_key", "unnorm_key"),
    ]:
        with pytest.raises(ConfigError, match=f"did you mean '{meant}'"):
            check_given_arguments([typo])


def test_with_sim_on_a_robot_takes_the_simulated_arms_orientation_bound() -> None:
    # The WidowX's tool points forward (nominal pitch pi/2); the simulated Panda's points down:
    # with the robot's bound every sim pose was refused as 1.5 rad out of orientation.
    sim = _yaml_executor("sim")["limits"]
    executor = _by_name(describe_graph("widowx", {**CKPT, "with_sim": "true"}))["openvla_executor"]
    assert executor.overrides["limits.nominal_rpy_rad"] == sim["nominal_rpy_rad"]
    assert executor.overrides["limits.tool_axis"] == sim["tool_axis"]
    assert _yaml_executor("widowx")["limits"]["nominal_rpy_rad"] != sim["nominal_rpy_rad"]
    # The robot's own safety envelope stays: no box or speed limit is taken from the sim.
    assert not any(k.startswith("limits.workspace") for k in executor.overrides)
    real = _by_name(describe_graph("widowx", CKPT))["openvla_executor"]
    assert "limits.nominal_rpy_rad" not in real.overrides
