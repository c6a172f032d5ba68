# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The server against what a hostile or clumsy network client does (issue 11, items 10-11).

Silent sockets and a slowloris (headers trickled a byte at a time) must not deny ``/health``
or authenticated ``/act`` and are closed after ``--idle-timeout-s``; a request beyond the
in-flight limit is refused before its body is read; a client that disconnects mid-upload is
one INFO line, not a traceback; a lone-surrogate instruction is a 422; a token put in the URL
never reaches the log. Every socket here is bounded in time and closed by the test.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import json_numpy
import numpy as np
import pytest
import requests

from openvla_ros.serving.client import RemotePolicy
from test.serving.conftest import TEST_TOKEN, UNNORM_KEY, ServerProcess, _start, camera_frame

IMAGE = camera_frame(3, 64, 64)
AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}
IDLE_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def guarded_server(
    checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The fault-injecting server (``slow ...`` sleeps) with a token, ``--max-queue 1`` and a
    short idle timeout."""
    tmp = tmp_path_factory.mktemp("guarded_server")
    token_file = tmp / "token"
    token_file.write_text(TEST_TOKEN + "\n")
    token_file.chmod(0o600)
    args = [
        "-m", "test.serving.fault_server", "--checkpoint", str(checkpoint),
        "--token-file", str(token_file), "--max-queue", "1",
        "--idle-timeout-s", str(IDLE_TIMEOUT_S),
    ]  # fmt: skip
    yield from _start(args, tmp / "server.log")


def _act(server: ServerProcess, instruction: str = "go") -> requests.Response:
    body = json_numpy.dumps({"image": IMAGE, "instruction": instruction, "unnorm_key": UNNORM_KEY})
    return requests.post(server.url + "/v1/act", data=body, headers=AUTH, timeout=30)


def _connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.settimeout(0.05)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_idle_and_slowloris_sockets_neither_deny_service_nor_stay(guarded_server) -> None:
    server = guarded_server
    silent = [_connect(server) for _ in range(48)]
    loris = [_connect(server) for _ in range(16)]
    stop = threading.Event()
    closed_at: dict[int, float] = {}
    t0 = time.monotonic()

    def trickle() -> None:  # one header byte per socket every 0.2 s, never a complete head
        head = b"POST /v1/act HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4096
        i = 0
        while not stop.is_set() and i < len(head):
            for n, sock in enumerate(loris):
                if n in closed_at:
                    continue
                try:
                    sock.send(head[i : i + 1])
                except OSError:
                    closed_at[n] = time.monotonic() - t0
            i += 1
            stop.wait(0.2)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        health, acts = [], []
        while time.monotonic() - t0 < IDLE_TIMEOUT_S + 2.5:  # bounded: ~4.5 s
            health.append(requests.get(server.url + "/health", timeout=2).status_code)
            acts.append(_act(server).status_code)
            time.sleep(0.2)
        assert set(health) == {200}, health
        assert set(acts) == {200}, acts
        # The server closed the silent sockets and the slowloris after the idle timeout.
        assert all(_closed_by_server(s) for s in silent), "idle connections were kept open"
        assert all(_closed_by_server(s) or n in closed_at for n, s in enumerate(loris)), (
            "a slowloris trickling header bytes was kept open"
        )
    finally:
        stop.set()
        thread.join(timeout=5)
        for sock in silent + loris:
            sock.close()
    assert "Traceback" not in server.proc.output()


def test_request_beyond_the_limit_is_refused_before_its_body(guarded_server) -> None:
    server = guarded_server
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(_act, server, "slow first")
        server.wait_state(running=1, waiting=0)
        waiting = pool.submit(_act, server, "slow second")
        server.wait_state(running=1, waiting=1)
        # Headers only, announcing 15 MiB: the answer comes without a single body byte sent.
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(
                b"POST /v1/act HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {TEST_TOKEN}\r\n".encode()
                + b"Content-Length: 15728640\r\n\r\n"
            )
            answer = b""
            while b"queue_full" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert b"retry-after" in answer.lower() and b"queue_full" in answer
        assert running.result().status_code == 200 and waiting.result().status_code == 200


def test_client_disconnect_mid_upload_is_one_info_line(guarded_server) -> None:
    server = guarded_server
    before = len(server.proc.output())
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(
                b"POST /v1/act HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {TEST_TOKEN}\r\n".encode()
                + b"Content-Length: 1000000\r\n\r\n"
                + b"x" * 100_000
            )
            time.sleep(0.1)
    assert requests.get(server.url + "/health", timeout=2).status_code == 200
    deadline = time.monotonic() + 5
    while server.proc.output()[before:].count("disconnected mid-upload") < 5:
        assert time.monotonic() < deadline, server.proc.output()[before:]
        time.sleep(0.05)
    log = server.proc.output()[before:]
    assert "Traceback" not in log and "ERROR" not in log, log


def test_lone_surrogate_instruction_is_422(cli_server) -> None:
    image = json.loads(json_numpy.dumps(IMAGE))
    body = json.dumps({"image": image, "instruction": "\ud800 pick", "unnorm_key": UNNORM_KEY})
    assert "\\ud800" in body  # the escape a client sends
    for path in ("/act", "/v1/act"):
        response = requests.post(cli_server.url + path, data=body, timeout=30)
        assert response.status_code == 422, response.text
        assert "not valid Unicode" in response.json()["detail"]


def test_client_reopens_a_keep_alive_connection_the_server_closed(guarded_server) -> None:
    # The server closes a connection idle for --idle-timeout-s; the client's next request must
    # notice before sending, not fail (retries=0: one attempt only).
    remote = RemotePolicy(guarded_server.url, token=TEST_TOKEN, retries=0)
    first = remote.predict(IMAGE, "go", UNNORM_KEY)
    time.sleep(IDLE_TIMEOUT_S + 1.0)
    second = remote.predict(IMAGE, "go", UNNORM_KEY)
    assert np.array_equal(first.action, second.action)


def test_token_in_the_query_string_never_reaches_the_log(guarded_server) -> None:
    secret = "not-a-header-token-5f3a"
    response = requests.get(guarded_server.url + f"/info?token={secret}", timeout=5)
    assert response.status_code == 401
    time.sleep(0.2)
    log = guarded_server.proc.output()
    assert '"GET /info HTTP/1.1" 401' in log, log[-2000:]  # the access log line is there
    assert secret not in log
