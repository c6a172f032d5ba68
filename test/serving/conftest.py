# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Fixtures for the serving tests: a generated checkpoint, the in-process reference policy and
real server processes (`openvla-ros serve`, hypercorn, on a free loopback port), each started
once per session."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import requests

from test.conftest import REPO, NodeProcess

#: Bearer token of the fault-injecting server (test value, not a secret).
TEST_TOKEN = "test-token-0123456789abcdef"
UNNORM_KEY = "bridge_orig"


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def camera_frame(seed: int, height: int = 240, width: int = 320) -> np.ndarray:
    """A deterministic random RGB frame."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


class ServerProcess:
    """A server started as its own OS process on a free loopback port."""

    def __init__(self, args: Sequence[str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = NodeProcess([sys.executable, *args, "--port", str(self.port)], log_path)

    def health(self) -> dict | None:
        try:
            return requests.get(self.url + "/health", timeout=1).json()
        except (requests.RequestException, ValueError):
            return None

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise RuntimeError(f"server exited:\n{self.proc.output()}")
            body = self.health()
            if body is not None and body.get("status") == "ready":
                return
            time.sleep(0.1)
        raise TimeoutError(f"server not ready after {timeout} s:\n{self.proc.output()}")

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until nothing runs or waits (tests that load the queue leave work behind)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.health()
            if body is not None and body["running"] == 0 and body["queue_waiting"] == 0:
                return
            time.sleep(0.05)
        raise TimeoutError("server did not become idle")

    def wait_state(self, running: int, waiting: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.health()
            if body is not None and (body["running"], body["queue_waiting"]) == (running, waiting):
                return
            time.sleep(0.01)
        raise TimeoutError(f"server never reached running={running} waiting={waiting}")


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random checkpoint in the published layout (bridge_orig + fractal statistics)."""
    from openvla_ros.model.make_checkpoint import write_small_checkpoint

    return write_small_checkpoint(tmp_path_factory.mktemp("ckpt") / "openvla-small", seed=0)


@pytest.fixture(scope="session")
def reference_policy(checkpoint: Path):
    """The same checkpoint in this process: what remote answers must equal exactly."""
    from openvla_ros.model.inference import OpenVLAPolicy

    return OpenVLAPolicy.from_checkpoint(checkpoint, precision="fp32", device="cpu")


def _start(args: Sequence[str], log: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(args, log)
    try:
        server.wait_ready()
        yield server
    finally:
        server.proc.stop()


@pytest.fixture(scope="session")
def cli_server(
    checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """``openvla-ros serve`` exactly as a user runs it, with small limits to test them."""
    log = tmp_path_factory.mktemp("cli_server") / "server.log"
    args = [
        "-m", "openvla_ros.cli", "serve", "--checkpoint", str(checkpoint),
        "--precision", "fp32", "--device", "cpu",
        "--max-body-mb", "2", "--max-image-side", "1024",
    ]  # fmt: skip
    yield from _start(args, log)


@pytest.fixture(scope="module")
def fault_server(
    checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The real model behind a fault-injecting wrapper, token auth, queue of 1, legacy errors."""
    tmp = tmp_path_factory.mktemp("fault_server")
    token_file = tmp / "token"
    token_file.write_text(TEST_TOKEN + "\n")
    token_file.chmod(0o600)
    args = [
        "-m", "test.serving.fault_server", "--checkpoint", str(checkpoint),
        "--token-file", str(token_file), "--max-queue", "1",
    ]  # fmt: skip
    yield from _start(args, tmp / "server.log")


def run_python(code: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet in a fresh interpreter from the repo root."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
