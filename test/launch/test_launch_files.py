# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The launch files: thin over the graph, declaring exactly the documented arguments.

``launch``/``launch_ros`` are not installable here, so the files are checked three ways: their
source (ast), an import against recording stand-ins for the launch API (checks the calls they
make), and a real import when ``launch`` is installed (skipped otherwise, with the reason).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest

from openvla_ros.errors import ConfigError, LaunchError
from openvla_ros.launch_description.graph import describe_graph, launch_arguments
from test.conftest import REPO

LAUNCH_FILES = {"franka": "franka.launch.py", "widowx": "widowx.launch.py", "sim": "sim.launch.py"}


def _source(robot: str) -> str:
    return (REPO / "launch" / LAUNCH_FILES[robot]).read_text()


ADAPTER = REPO / "openvla_ros" / "launch_description" / "ros_launch.py"


def _imports(src: str) -> set[tuple[str | None, str]]:
    return {
        (node.module, alias.name)
        for node in ast.walk(ast.parse(src))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def test_adapter_source_uses_the_documented_launch_api() -> None:
    # What a real `ros2 launch` needs: the documented launch / launch_ros entry points.
    assert {
        ("launch", "LaunchDescription"),
        ("launch.actions", "DeclareLaunchArgument"),
        ("launch.actions", "OpaqueFunction"),
        ("launch.substitutions", "LaunchConfiguration"),
        ("launch_ros.actions", "Node"),
        ("ament_index_python.packages", "get_package_share_directory"),
        ("openvla_ros.launch_description.graph", "describe_graph"),
        ("openvla_ros.launch_description.graph", "launch_arguments"),
    } <= _imports(ADAPTER.read_text())


@pytest.mark.parametrize("robot", LAUNCH_FILES)
def test_launch_file_source_is_thin_over_the_adapter(robot: str) -> None:
    src = _source(robot)
    assert src.startswith("# SPDX-License-Identifier: Apache-2.0\n# Copyright 2026")
    tree = ast.parse(src)
    assert (
        "openvla_ros.launch_description.ros_launch",
        "generate_launch_description_for",
    ) in _imports(src)
    funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in funcs
    robot_const = [
        n.value.value
        for n in tree.body
        if isinstance(n, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "ROBOT" for t in n.targets)
        and isinstance(n.value, ast.Constant)
    ]
    assert robot_const == [robot]


class _Recorder:
    """Stands in for a launch class: remembers its constructor arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs


class _Config:
    values: ClassVar[dict[str, str]] = {}

    def __init__(self, name: str) -> None:
        self.name = name

    def perform(self, context: Any) -> str:
        return self.values[self.name]


class _Warnings(list):
    def warning(self, text: str) -> None:
        self.append(text)


_WARNINGS = _Warnings()


class _Context:
    """What launch_nodes reads of a LaunchContext."""

    def __init__(self, given: dict[str, str], is_shutdown: bool = False) -> None:
        self.launch_configurations = dict(given)
        self.is_shutdown = is_shutdown


def _import_with_stand_ins(robot: str, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    mods = {
        name: types.ModuleType(name)
        for name in (
            "launch",
            "launch.actions",
            "launch.logging",
            "launch.substitutions",
            "launch_ros",
            "launch_ros.actions",
            "ament_index_python",
            "ament_index_python.packages",
        )
    }
    mods["launch"].LaunchDescription = _Recorder
    mods["launch"].LaunchContext = object
    mods["launch.actions"].DeclareLaunchArgument = type("DeclareLaunchArgument", (_Recorder,), {})
    mods["launch.actions"].OpaqueFunction = type("OpaqueFunction", (_Recorder,), {})
    mods["launch.actions"].Shutdown = type("Shutdown", (_Recorder,), {})
    mods["launch.logging"].get_logger = lambda name: _WARNINGS
    mods["launch"].logging = mods["launch.logging"]
    mods["launch.substitutions"].LaunchConfiguration = _Config
    mods["launch_ros.actions"].Node = type("Node", (_Recorder,), {})
    mods["ament_index_python.packages"].get_package_share_directory = lambda pkg: str(REPO)
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    path = REPO / "launch" / LAUNCH_FILES[robot]
    spec = importlib.util.spec_from_file_location(f"_launch_{robot}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("robot", LAUNCH_FILES)
def test_launch_file_declares_arguments_and_builds_the_graph(
    robot: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _import_with_stand_ins(robot, monkeypatch)
    desc = module.generate_launch_description()
    entities = desc.args[0]
    declared = [e for e in entities if type(e).__name__ == "DeclareLaunchArgument"]
    expected = launch_arguments(robot)
    assert [d.args[0] for d in declared] == [a.name for a in expected]
    for d, a in zip(declared, expected, strict=True):
        assert d.kwargs["default_value"] == a.default and d.kwargs["description"] == a.description
        # launch compares choices exactly: booleans declare none (the graph accepts 1/yes/on..)
        if a.choices == ("true", "false"):
            assert "choices" not in d.kwargs, a.name
        else:
            assert d.kwargs.get("choices") == (list(a.choices) if a.choices else None)
    opaque = [e for e in entities if type(e).__name__ == "OpaqueFunction"]
    assert len(opaque) == 1

    # Evaluate as `ros2 launch` would with the declared defaults (plus a checkpoint for real
    # robots) and compare with the graph description.
    values = {a.name: a.default for a in expected}
    if robot != "sim":
        values["checkpoint"] = "/models/openvla-7b"
    _Config.values = values
    nodes = opaque[0].kwargs["function"](_Context(values))
    graph = describe_graph(robot, values, share_dir=REPO)
    assert [n.kwargs["name"] for n in nodes] == [g.name for g in graph]
    for node, g in zip(nodes, graph, strict=True):
        kw = node.kwargs
        assert (kw["package"], kw["executable"], kw["namespace"]) == (
            "openvla_ros",
            g.executable,
            g.namespace,
        )
        assert kw["parameters"] == g.parameters
        assert isinstance(kw["parameters"][0], str) and isinstance(kw["parameters"][-1], dict)
        assert kw["remappings"] == list(g.remappings)
        assert kw["arguments"] == ["--ros-args", "--log-level", "info"]
        assert kw["additional_env"] == {"ROS_PYTHON_CHECK_FIELDS": "1"}
        # Required: a node that exits on its own stops the launch, saying which and why.
        on_exit = kw["on_exit"]
        actions = on_exit(types.SimpleNamespace(returncode=2), _Context({}))
        assert [type(a).__name__ for a in actions] == ["Shutdown", "OpaqueFunction"]
        message = actions[0].kwargs["reason"]
        assert message.startswith(f"{g.name} could not start (exit code 2")
        # ... then fails the launch (non-zero exit) with the same message.
        with pytest.raises(LaunchError, match=re.escape(message)):
            actions[1].kwargs["function"](_Context({}))
        # Exits during a requested stop (Ctrl-C) add nothing.
        assert on_exit(types.SimpleNamespace(returncode=0), _Context({}, is_shutdown=True)) is None


@pytest.mark.parametrize(
    ("given", "refused"), [("enabel", "enable"), ("comand_type", "command_type")]
)
def test_misspelled_launch_argument_is_refused(
    given: str, refused: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _import_with_stand_ins("sim", monkeypatch)
    desc = module.generate_launch_description()
    opaque = next(e for e in desc.args[0] if type(e).__name__ == "OpaqueFunction")
    values = {a.name: a.default for a in launch_arguments("sim")}
    _Config.values = values
    with pytest.raises(ConfigError, match=f"did you mean '{refused}'"):
        opaque.kwargs["function"](_Context({**values, given: "true"}))
    # A name that is not near any argument (a parent launch file's own) is only warned about.
    _WARNINGS.clear()
    nodes = opaque.kwargs["function"](_Context({**values, "parent_world": "kitchen"}))
    assert nodes and _WARNINGS and "parent_world" in _WARNINGS[0]


@pytest.mark.parametrize("robot", LAUNCH_FILES)
def test_launch_file_with_real_launch_package(robot: str) -> None:
    pytest.importorskip(
        "launch_ros.actions",
        reason="launch_ros is not installable from PyPI (ENVIRONMENT.md): real import skipped",
    )
    from launch.actions import DeclareLaunchArgument

    path = REPO / "launch" / LAUNCH_FILES[robot]
    spec = importlib.util.spec_from_file_location(f"_real_launch_{robot}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    desc = module.generate_launch_description()
    names = [e.name for e in desc.entities if isinstance(e, DeclareLaunchArgument)]
    assert names == [a.name for a in launch_arguments(robot)]


def test_launch_files_are_listed() -> None:
    on_disk = {p.name for p in (REPO / "launch").glob("*.launch.py")}
    assert set(LAUNCH_FILES.values()) <= on_disk
    assert Path(REPO / "config").is_dir()
