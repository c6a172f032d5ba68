# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""SIGTERM stops a node started by ``run_node`` cleanly (exit 0, no traceback) wherever it
lands: while the node is busy taking messages (a KeyboardInterrupt raised from the handler
there came out of rclpy's pybind11 bindings as a RuntimeError: a traceback and exit 1, seen
in test_parent_death), while it is still starting, and while it is idle (nothing woke
rclpy's wait then: it never stopped)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (run scripts/setup_env.sh)")

from test.nodes.ros_helpers import wait_until

pytestmark = [pytest.mark.ros, pytest.mark.timeout(180)]

#: A node that keeps its main thread in rclpy's take path: a 2 kHz timer publishing to 20
#: subscriptions of its own. START_DELAY_S makes its constructor slow instead (a model load);
#: IDLE=1 gives it nothing to wait for (no timer, no subscription).
NODE = """
import os, sys, time
from std_msgs.msg import String
from rclpy.node import Node
from openvla_ros.nodes.common import run_node

class Busy(Node):
    def __init__(self):
        super().__init__("busy_node")
        print("starting", flush=True)
        time.sleep(float(os.environ.get("START_DELAY_S", "0")))
        if os.environ.get("IDLE") != "1":
            self.pub = self.create_publisher(String, "busy_topic", 10)
            for _ in range(20):
                self.create_subscription(String, "busy_topic", lambda m: None, 10)
            self.create_timer(0.0005, lambda: self.pub.publish(String(data="x" * 200)))
        print("spinning", flush=True)

sys.exit(run_node(Busy, "busy_node"))
"""


class _Proc:
    """The node's process with its output read by a thread (``lines``)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-c", NODE], env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> tuple[int, str]:
        """SIGTERM; returns its exit status and whole output."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=5)
        return self.proc.returncode, self.output()


def _stop_after(env: dict[str, str], line: str, after_s: float) -> tuple[int, str, float]:
    """Start the node, wait for ``line`` and ``after_s`` more, SIGTERM it; returns its exit
    status, whole output and the seconds the stop took."""
    node = _Proc(env)
    assert wait_until(lambda: line in node.output(), 30.0), node.output()
    time.sleep(after_s)
    t0 = time.monotonic()
    code, out = node.stop()
    return code, out, time.monotonic() - t0


@pytest.mark.parametrize("round_", range(16))
def test_sigterm_while_busy_is_a_clean_stop(round_: int) -> None:
    # In the middle of the message traffic, a little later each round.
    code, out, _ = _stop_after(dict(os.environ), "spinning", 0.2 + 0.05 * round_)
    assert code == 0 and "Traceback" not in out, out


def test_sigterm_while_starting_is_a_clean_stop() -> None:
    code, out, stop_s = _stop_after({**os.environ, "START_DELAY_S": "30"}, "starting", 0.3)
    assert code == 0 and "Traceback" not in out, out
    assert stop_s < 10.0, "the slow start was not interrupted"
    assert "spinning" not in out


def test_sigterm_to_an_idle_node_is_a_clean_stop() -> None:
    """Nothing wakes rcl_wait for a node without timers or traffic (rclpy's own handlers are
    off): the spin loop's bounded waits are what let it see the signal."""
    code, out, stop_s = _stop_after({**os.environ, "IDLE": "1"}, "spinning", 0.5)
    assert code == 0 and "Traceback" not in out, out
    assert stop_s < 10.0
