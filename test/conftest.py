# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Test-wide set-up: DDS isolation and helpers to run nodes as real OS processes.

Every pytest session gets its own ROS_DOMAIN_ID (unless one is set) and localhost-only
discovery, so parallel or repeated runs on one machine never see each other's topics.
Child processes inherit the environment, hence the same domain.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

# OPENVLA_ROS_REQUIRE_ROS=1 (scripts/test.sh): ROS skips are failures (see test/ros_gate.py).
from test.ros_gate import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401

REPO = Path(__file__).resolve().parent.parent


def _pick_domain_id() -> int:
    # Domain ids 1..100 keep Fast DDS ports in range on Linux; mix the pid so that concurrent
    # sessions (developers, CI, pytest-xdist workers) land on different domains.
    return 1 + (os.getpid() * 7919) % 100


os.environ.setdefault("ROS_DOMAIN_ID", str(_pick_domain_id()))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")  # honoured by older distros (Humble)
os.environ.setdefault("PYTHONUNBUFFERED", "1")
# Keep torch from grabbing both cores in every child process at once.
os.environ.setdefault("OMP_NUM_THREADS", "1")


class NodeProcess:
    """A child process running a node or script, with its output captured to a file."""

    def __init__(self, args: Sequence[str], log_path: Path, env: dict[str, str] | None = None):
        self.args = list(args)
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            self.args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=REPO,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """Kill hard (SIGKILL), as a crashing process would die."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop gracefully with SIGINT (as ros2 launch does), then SIGKILL if needed."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator:
    """Start Python modules/scripts as separate processes; all are stopped at teardown.

    Usage: ``p = spawn(["-m", "openvla_ros.nodes.executor_node", "--ros-args", ...])``.
    """
    procs: list[NodeProcess] = []

    def _spawn(python_args: Sequence[str], name: str | None = None, env: dict | None = None):
        label = name or f"proc{len(procs)}"
        proc = NodeProcess([sys.executable, *python_args], tmp_path / f"{label}.log", env)
        procs.append(proc)
        return proc

    yield _spawn
    for proc in procs:
        proc.stop()


def wait_for(predicate, timeout: float, interval: float = 0.02, spin=None) -> bool:
    """Poll ``predicate`` until true or ``timeout`` s; ``spin`` (callable) runs between polls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if spin is not None:
            spin()
        else:
            time.sleep(interval)
    return bool(predicate())
