# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The CMake install tree is what `colcon build` gives a ROS 2 user.

Builds the package with CMake (as colcon's ament_cmake build does) into a temporary prefix with
the Python sources installed, then checks the layout ROS tools rely on: executables in
lib/openvla_ros (ros2 run), launch/config/msg in share/openvla_ros (ros2 launch), and one
Python package holding both the sources and the generated `msg` module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.ros]


@pytest.fixture(scope="module")
def install_prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("cmake") is None:
        pytest.skip("cmake not installed")
    venv = Path(sys.prefix)
    if not (venv / "share" / "rosidl_default_generators").is_dir():
        pytest.skip("rosidl generators not installed in this environment (scripts/setup_env.sh)")
    # Build from a copy of the package (as it would sit in a colcon workspace's src/): the dev
    # venv lives inside this checkout, and CMake refuses exported include paths (numpy's, found
    # in the venv) that lie inside the source tree but outside the install prefix.
    src = tmp_path_factory.mktemp("src") / "openvla_ros"
    shutil.copytree(
        REPO, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "__pycache__", "data")
    )
    build = tmp_path_factory.mktemp("build")
    prefix = tmp_path_factory.mktemp("install")
    env = {**os.environ, "AMENT_PREFIX_PATH": str(venv), "PATH": f"{venv}/bin:{os.environ['PATH']}"}
    pyinstall = f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
    configure = [
        "cmake", "-S", str(src), "-B", str(build), "-DBUILD_TESTING=OFF",
        f"-DCMAKE_INSTALL_PREFIX={prefix}", f"-DPYTHON_INSTALL_DIR={pyinstall}",
        f"-DPython3_EXECUTABLE={sys.executable}", "-DOPENVLA_ROS_FIX_WHEEL_INCLUDES=ON",
    ]  # fmt: skip
    for cmd in (
        configure,
        ["cmake", "--build", str(build), "-j2"],
        ["cmake", "--install", str(build)],
    ):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True)
        assert result.returncode == 0, (
            f"{cmd[:2]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return prefix


def test_executables_for_ros2_run(install_prefix: Path) -> None:
    lib = install_prefix / "lib" / "openvla_ros"
    names = (
        "policy_node",
        "executor_node",
        "sim_arm_node",
        "widowx_bridge_node",
        "recorder_node",  # docs/datasets.md: ros2 run openvla_ros recorder_node
        "expert_node",  # docs/datasets.md: ros2 run openvla_ros expert_node
        "openvla-ros",
    )
    for name in names:
        exe = lib / name
        assert exe.is_file(), f"missing {exe}"
        assert os.access(exe, os.X_OK), f"{exe} is not executable"


def test_share_directory_for_ros2_launch(install_prefix: Path) -> None:
    share = install_prefix / "share" / "openvla_ros"
    assert (share / "package.xml").is_file()
    for name in ("DeltaAction.msg", "ExecutorState.msg"):
        assert (share / "msg" / name).is_file()
    for robot in ("franka", "widowx", "sim"):
        assert (share / "config" / f"{robot}.yaml").is_file()
    launch_files = {p.name for p in (share / "launch").glob("*.launch.py")}
    assert {"franka.launch.py", "widowx.launch.py"} <= launch_files
    # The ament index marks the package as installed (get_package_share_directory relies on it).
    assert (
        install_prefix / "share" / "ament_index" / "resource_index" / "packages" / "openvla_ros"
    ).is_file()


def test_installed_python_package_has_sources_and_messages(install_prefix: Path) -> None:
    purelib = Path(sysconfig.get_paths()["purelib"])
    site = install_prefix / purelib.relative_to(Path(sys.prefix))
    code = (
        "import openvla_ros, openvla_ros.msg, openvla_ros.errors\n"
        "from openvla_ros.msg import DeltaAction, ExecutorState\n"
        "print(openvla_ros.errors.__file__); print(openvla_ros.msg.__file__)\n"
        "m = DeltaAction(); m.step = 3; print(m.step)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=install_prefix
    )
    assert out.returncode == 0, out.stderr
    errors_file, msg_file, step = out.stdout.split()
    assert errors_file.startswith(str(site)), errors_file
    assert msg_file.startswith(str(site)), msg_file
    assert step == "3"
    # Our __init__ (not rosidl's empty one) won: the version attribute is there.
    assert "__version__" in (site / "openvla_ros" / "__init__.py").read_text()
