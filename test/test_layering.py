# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Pure layers import no ROS: read from the source (every import statement, also the ones
inside functions), so a lazy ``import rclpy`` in a model or training helper is caught too,
not only what a module happens to load at import time (test/data/test_purity.py)."""

from __future__ import annotations

import ast

import pytest

from test.conftest import REPO

#: Top-level names that only exist on a ROS install (or the ROS wheels).
ROS_MODULES = {
    "rclpy", "std_msgs", "sensor_msgs", "geometry_msgs", "std_srvs", "builtin_interfaces",
    "rcl_interfaces", "rosgraph_msgs", "launch", "launch_ros", "ament_index_python",
    "franka_msgs", "interbotix_xs_msgs", "rosidl_runtime_py",
}  # fmt: skip

PURE_PACKAGES = ["data", "train", "model", "control", "serving", "policy", "sim"]

#: Glue that starts or talks to nodes on purpose (the CLI entry points and the DDS demo runner).
GLUE = {"data/cli.py", "sim/cli.py", "sim/demo.py"}

#: The one module under openvla_ros.nodes that is plain data (parameter specs), no rclpy.
PURE_NODE_MODULES = {"openvla_ros.nodes.params"}


def _ros_imports(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            ros = name.split(".")[0] in ROS_MODULES or name.startswith("openvla_ros.msg")
            node_module = name.startswith("openvla_ros.nodes") and name not in PURE_NODE_MODULES
            if ros or node_module:
                found.append(name)
    return found


def test_the_scan_sees_a_lazy_import() -> None:
    source = "def f():\n    from rclpy.node import Node\n    import openvla_ros.nodes.common\n"
    assert _ros_imports(source) == ["rclpy.node", "openvla_ros.nodes.common"]
    assert _ros_imports("from openvla_ros.nodes.params import EXECUTOR_NODE_PARAMS\n") == []


@pytest.mark.parametrize("package", PURE_PACKAGES)
def test_pure_layer_imports_no_ros(package: str) -> None:
    root = REPO / "openvla_ros"
    files = sorted((root / package).rglob("*.py"))
    assert files, f"openvla_ros/{package} has no modules"
    offenders = {
        str(p.relative_to(root)): hits
        for p in files
        if str(p.relative_to(root)) not in GLUE
        and (hits := _ros_imports(p.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_node_params_module_is_itself_pure() -> None:
    path = REPO / "openvla_ros" / "nodes" / "params.py"
    assert _ros_imports(path.read_text(encoding="utf-8")) == []
