# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The one adapter from :mod:`.graph` to the ``launch`` / ``launch_ros`` API.

Every ``launch/<robot>.launch.py`` calls :func:`generate_launch_description_for`. The launch
packages are imported inside the functions, so this module imports (and its logic is tested)
where ``launch`` is not installed.
"""

from __future__ import annotations

from typing import Any

from openvla_ros.errors import LaunchError
from openvla_ros.launch_description.graph import (
    NodeDescription,
    check_given_arguments,
    describe_graph,
    exit_message,
    launch_arguments,
)

_BOOL_CHOICES = ("true", "false")


def _on_exit(node: NodeDescription) -> Any:
    """``on_exit`` of a required node: unless the launch is already stopping, shut the launch
    down and fail it with :func:`exit_message` (which node ended and why).

    The failure is an exception raised by an action after the ``Shutdown``: launch logs it as
    ``Caught exception in launch ...: <message>`` and returns 1, so a supervisor sees a
    non-zero exit code (a plain ``Shutdown`` exits 0).
    """
    from launch.actions import OpaqueFunction, Shutdown

    def handler(event: Any, context: Any) -> list[Any] | None:
        if context.is_shutdown:
            return None  # Ctrl-C / a stop already under way: every node exits, as asked
        message = exit_message(node.name, event.returncode)

        def fail(context: Any) -> None:
            raise LaunchError(message)

        return [Shutdown(reason=message), OpaqueFunction(function=fail)]

    return handler


def launch_nodes(robot: str, context: Any) -> list[Any]:
    """The ``launch_ros.actions.Node`` list for ``robot``, once the arguments have values.

    Launch arguments are substitutions until the launch runs: an ``OpaqueFunction`` evaluates
    them in ``context`` and the plain-code graph decides (the same code the tests and the demo
    runner use). A misspelled argument is refused (:func:`check_given_arguments`); other
    unknown names are warned about.
    """
    import launch.logging
    from ament_index_python.packages import get_package_share_directory
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    ignored = check_given_arguments(list(context.launch_configurations))
    if ignored:
        launch.logging.get_logger("openvla_ros").warning(
            f"ignoring launch argument(s) this launch file does not declare: {ignored}"
        )
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in launch_arguments(robot)}
    share_dir = get_package_share_directory("openvla_ros")
    return [
        Node(
            package=node.package,
            executable=node.executable,
            name=node.name,
            namespace=node.namespace,
            parameters=node.parameters,
            remappings=list(node.remappings),
            arguments=["--ros-args", *node.ros_arguments],
            additional_env=dict(node.env),
            output="screen",
            emulate_tty=True,
            **({"on_exit": _on_exit(node)} if node.required else {}),
        )
        for node in describe_graph(robot, values, share_dir=share_dir)
    ]


def generate_launch_description_for(robot: str) -> Any:
    """Declare every launch argument of ``robot`` (description, default, choices), then start
    the graph through an ``OpaqueFunction``.

    Boolean arguments declare no ``choices``: launch compares choices exactly, and the graph
    accepts every documented spelling (true/false, 1/0, yes/no, on/off, any case).
    """
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    declared = [
        DeclareLaunchArgument(
            arg.name,
            default_value=arg.default,
            description=arg.description,
            **(
                {"choices": list(arg.choices)}
                if arg.choices and arg.choices != _BOOL_CHOICES
                else {}
            ),
        )
        for arg in launch_arguments(robot)
    ]
    opaque = OpaqueFunction(function=lambda context, *a, **k: launch_nodes(robot, context))
    return LaunchDescription([*declared, opaque])
