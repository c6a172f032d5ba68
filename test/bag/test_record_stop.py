# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""`openvla-ros record` without --duration stops on Ctrl-C or SIGTERM: exit 0, its summary
line, a closed bag (its metadata.yaml written), and no traceback. (With rclpy's default
handlers a SIGTERM shut the context down under the loop: a traceback, and the bag's summary
was lost.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (run scripts/setup_env.sh)")
yaml = pytest.importorskip("yaml")

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_record_stops_cleanly_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "bag"
    proc = subprocess.Popen([sys.executable, "-m", "openvla_ros.cli", "record", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while not out.exists() and time.monotonic() < deadline:  # the writer has opened the bag
        time.sleep(0.1)
    time.sleep(1.0)  # spinning
    proc.send_signal(sig)
    try:
        output, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "Traceback" not in output, output
    assert f"recorded 0 messages into {out}" in output, output
    # Closed: rosbag2's metadata.yaml written (read with PyYAML, not the project's reader).
    meta = yaml.safe_load((out / "metadata.yaml").read_text())
    assert meta["rosbag2_bagfile_information"]["message_count"] == 0
