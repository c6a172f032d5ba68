# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Auth, the queue bound, timeouts, model failures, legacy errors and a server that dies.

The server here is the real model behind ``test.serving.fault_server`` (instruction prefixes
``slow`` / ``crash`` / ``nan`` inject faults), with a token and ``max_queue=1``. A few client
tests use tiny real HTTP servers that answer garbage or never answer.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import json_numpy
import numpy as np
import pytest
import requests

from openvla_ros import cli
from openvla_ros.errors import RemotePolicyError
from openvla_ros.serving.client import RemotePolicy
from test.serving.conftest import (
    TEST_TOKEN,
    UNNORM_KEY,
    ServerProcess,
    camera_frame,
    free_port,
)

IMAGE = camera_frame(7, 96, 128)
AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}


def act_body(instruction: str, image: np.ndarray = IMAGE) -> str:
    return json_numpy.dumps({"image": image, "instruction": instruction, "unnorm_key": UNNORM_KEY})


def post(server: ServerProcess, instruction: str, path: str = "/v1/act", **kw) -> requests.Response:
    headers = kw.pop("headers", AUTH)
    return requests.post(
        server.url + path, data=act_body(instruction), headers=headers, timeout=30, **kw
    )


@pytest.fixture
def server(fault_server: ServerProcess) -> Iterator[ServerProcess]:
    fault_server.wait_idle()
    yield fault_server
    fault_server.wait_idle()


def test_auth_missing_wrong_and_right_token(server, reference_policy) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TEST_TOKEN}):
        for path in ("/act", "/v1/act"):
            response = post(server, "go", path, headers=headers)
            assert response.status_code == 401, (headers, path)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert TEST_TOKEN not in response.text
        assert requests.get(server.url + "/info", headers=headers, timeout=5).status_code == 401
    # Probes need no token and learn nothing but the status.
    assert requests.get(server.url + "/health", timeout=5).status_code == 200
    with pytest.raises(RemotePolicyError, match="401"):
        RemotePolicy(server.url, token="wrong").predict(IMAGE, "go", UNNORM_KEY)
    got = RemotePolicy(server.url, token=TEST_TOKEN).predict(IMAGE, "go", UNNORM_KEY)
    assert np.array_equal(got.action, reference_policy.predict(IMAGE, "go", UNNORM_KEY).action)
    assert RemotePolicy(server.url, token=TEST_TOKEN).info()["wrapper"].startswith("fault")
    assert TEST_TOKEN not in server.proc.output()
    assert TEST_TOKEN not in repr(RemotePolicy(server.url, token=TEST_TOKEN))


def test_queue_bound_answers_503_with_retry_after(server) -> None:
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(post, server, "slow first")
        server.wait_state(running=1, waiting=0)
        waiting = pool.submit(post, server, "slow second")
        server.wait_state(running=1, waiting=1)
        refused = post(server, "third")
        assert not running.done(), "refused at once, not after waiting in the queue"
        assert refused.status_code == 503
        assert refused.json()["error"] == "queue_full"
        assert int(refused.headers["Retry-After"]) >= 1
        # The client does not retry forever: with no retries left it reports the 503.
        with pytest.raises(RemotePolicyError, match="503"):
            RemotePolicy(server.url, token=TEST_TOKEN, retries=0).predict(IMAGE, "x", UNNORM_KEY)
        assert running.result().status_code == 200
        assert waiting.result().status_code == 200


def test_client_retries_503_until_the_queue_drains(server) -> None:
    with ThreadPoolExecutor(2) as pool:
        pool.submit(post, server, "slow first")
        server.wait_state(running=1, waiting=0)
        pool.submit(post, server, "slow second")
        server.wait_state(running=1, waiting=1)
        remote = RemotePolicy(server.url, token=TEST_TOKEN, retries=8, backoff_s=0.05)
        result = remote.predict(IMAGE, "go", UNNORM_KEY)
        assert result.action.shape == (7,)


def test_slow_server_read_timeout_is_a_remote_policy_error(server) -> None:
    remote = RemotePolicy(server.url, token=TEST_TOKEN, timeout_s=0.3, retries=3)
    server.wait_idle()
    before = len(server.proc.output())
    with pytest.raises(RemotePolicyError, match=r"no answer within 0\.3 s"):
        remote.predict(IMAGE, "slow please", UNNORM_KEY)
    server.wait_idle()
    # Read timeouts are not retried: the access log shows one client connection.
    clients = set(re.findall(r'(\S+) "POST /v1/act', server.proc.output()[before:]))
    assert len(clients) == 1, clients


def test_model_failures_are_500_and_the_server_keeps_serving(server) -> None:
    crash = post(server, "crash now")
    assert crash.status_code == 500 and crash.json()["error"] == "internal_error"
    assert "injected" not in crash.text  # internals stay in the server log
    nan = post(server, "nan please")
    assert nan.status_code == 500 and nan.json()["error"] == "invalid_action"
    remote = RemotePolicy(server.url, token=TEST_TOKEN)
    with pytest.raises(RemotePolicyError, match="500"):
        remote.predict(IMAGE, "crash again", UNNORM_KEY)
    assert remote.predict(IMAGE, "fine", UNNORM_KEY).action.shape == (7,)


def test_legacy_errors_answer_200_error_on_act_only(server) -> None:
    bad = json_numpy.dumps({"image": np.zeros((8, 8, 3), np.float32), "instruction": "x"})
    response = requests.post(server.url + "/act", data=bad, headers=AUTH, timeout=10)
    assert (response.status_code, response.json()) == (200, "error")
    response = requests.post(server.url + "/act", data=b"{", headers=AUTH, timeout=10)
    assert (response.status_code, response.json()) == (200, "error")
    assert post(server, "crash", "/act").json() == "error"
    # The extended endpoint always reports real errors; auth stays a real 401.
    assert (
        requests.post(server.url + "/v1/act", data=bad, headers=AUTH, timeout=10).status_code == 422
    )
    assert post(server, "x", "/act", headers={}).status_code == 401


def test_unreachable_server_is_a_quick_remote_policy_error() -> None:
    remote = RemotePolicy(f"http://127.0.0.1:{free_port()}", retries=2, backoff_s=0.01)
    with pytest.raises(RemotePolicyError, match="3 attempt"):  # retried, then given up
        remote.predict(IMAGE, "go")


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as listener:  # accepts TCP (backlog) but never reads or answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        remote = RemotePolicy(f"http://127.0.0.1:{port}", timeout_s=0.3)
        with pytest.raises(RemotePolicyError, match="no answer"):
            remote.predict(IMAGE, "go")


GARBAGE = {
    "/html": (200, b"<html>hello</html>"),
    "/six": (200, b'{"action":[0,0,0,0,0,0],"normalized_action":[0,0,0,0,0,0,0]}'),
    "/empty": (200, b'{"action":[],"normalized_action":[]}'),
    "/matrix": (200, b'{"action":[[0,0,0]],"normalized_action":[[0,0,0]]}'),
    "/nan": (200, b'{"action":[0,0,0,0,0,0,NaN],"normalized_action":[0,0,0,0,0,0,0]}'),
    "/strings": (200, b'{"action":["a",0,0,0,0,0,0],"normalized_action":[0,0,0,0,0,0,0]}'),
    "/list": (200, b"[1,2,3]"),
    "/bigint": (
        200,
        b'{"action":[1' + b"0" * 400 + b',0,0,0,0,0,0],"normalized_action":[0,0,0,0,0,0,0]}',
    ),
    "/bigtiming": (
        200,
        b'{"action":[0,0,0,0,0,0,0],"normalized_action":[0,0,0,0,0,0,0],'
        b'"timings_ms":{"server":1' + b"0" * 400 + b"}}",
    ),
    "/deep": (200, b'{"action":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    "/teapot": (418, b"I'm a teapot"),
}


class _GarbageHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        path = self.path.removesuffix("/v1/act")
        if path in ("/trickle", "/endless"):
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 30))
            self.end_headers()
            try:
                for _ in range(1 << 16):  # /trickle: a byte every 0.1 s; /endless: 16 kB blocks
                    self.wfile.write(b" " if path == "/trickle" else b" " * 16384)
                    self.wfile.flush()
                    if path == "/trickle":
                        time.sleep(0.1)
            except OSError:  # the client gave up: what the test wants
                pass
            return
        status, body = GARBAGE[path]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def garbage_server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _GarbageHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("path", sorted(GARBAGE))
def test_garbage_answers_are_remote_policy_errors(garbage_server: str, path: str) -> None:
    with pytest.raises(RemotePolicyError):
        RemotePolicy(garbage_server + path, retries=0).predict(IMAGE, "go")


def test_a_trickled_answer_fails_by_the_total_deadline(garbage_server: str) -> None:
    # Each byte arrives well within the read timeout; the whole answer never does.
    remote = RemotePolicy(garbage_server + "/trickle", timeout_s=0.5, connect_timeout_s=0.5)
    t0 = time.monotonic()
    with pytest.raises(RemotePolicyError, match="not complete within 1 s"):
        remote.predict(IMAGE, "go")
    assert time.monotonic() - t0 < 5.0  # the old client read for 1 GiB / 10 bytes per s


def test_an_endless_answer_is_refused_by_size(garbage_server: str) -> None:
    remote = RemotePolicy(garbage_server + "/endless", timeout_s=30.0, retries=0)
    with pytest.raises(RemotePolicyError, match="answer larger than"):
        remote.predict(IMAGE, "go")


def test_failed_load_exits_non_zero(tmp_path) -> None:
    # An empty checkpoint directory: the port opens, loading fails, the server stops with 1.
    argv = ["serve", "--checkpoint", str(tmp_path), "--port", str(free_port())]
    assert cli.main(argv) == 1


def test_client_reads_the_token_from_the_environment(fault_server, monkeypatch) -> None:
    fault_server.wait_idle()
    monkeypatch.setenv("OPENVLA_ROS_TOKEN", TEST_TOKEN)
    assert RemotePolicy(fault_server.url).predict(IMAGE, "go", UNNORM_KEY).action.shape == (7,)


def test_netrc_credentials_do_not_replace_the_token(
    server, reference_policy, tmp_path, monkeypatch
) -> None:
    # requests applies ~/.netrc Basic credentials for the host over the Authorization header
    # when it reads the environment per request: a right token was then answered 401.
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login robot password not-the-token\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    got = RemotePolicy(server.url, token=TEST_TOKEN).predict(IMAGE, "go", UNNORM_KEY)
    assert np.array_equal(got.action, reference_policy.predict(IMAGE, "go", UNNORM_KEY).action)


@contextlib.contextmanager
def _recording_proxy(record: Callable[[http.server.BaseHTTPRequestHandler], None]) -> Iterator[int]:
    """A local HTTP proxy that passes each request to ``record`` and answers 502; its port."""

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            record(self)
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy.server_address[1]
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=5)


def test_proxy_variables_still_route_the_client(monkeypatch) -> None:
    # The environment is read once per connection now, not per request; a proxy it names is
    # still used (and NO_PROXY still bypasses it).
    seen: list[str] = []
    target = f"http://127.0.0.1:{free_port()}"  # nobody listens: only the proxy can answer
    with _recording_proxy(lambda req: seen.append(req.path)) as port:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with pytest.raises(RemotePolicyError, match="502"):
            RemotePolicy(target, retries=0).predict(IMAGE, "go", UNNORM_KEY)
        assert seen == [target + "/v1/act"]  # the absolute URL a proxy is sent
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        with pytest.raises(RemotePolicyError, match="cannot reach"):
            RemotePolicy(target, retries=0).predict(IMAGE, "go", UNNORM_KEY)
        assert len(seen) == 1


def test_server_killed_mid_request_gives_remote_policy_error(fault_server) -> None:
    # Last in this module: it kills the module's fault server.
    server = fault_server
    server.wait_idle()
    remote = RemotePolicy(server.url, token=TEST_TOKEN, timeout_s=30, retries=2, backoff_s=0.05)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(remote.predict, IMAGE, "slow and doomed", UNNORM_KEY)
        server.wait_state(running=1, waiting=0)
        server.proc.proc.send_signal(signal.SIGKILL)
        with pytest.raises(RemotePolicyError, match="cannot reach"):
            pending.result(timeout=10)


def test_credentials_in_the_proxy_url_reach_the_proxy(monkeypatch) -> None:
    # requests sends HTTP_PROXY's user:password as Proxy-Authorization; urllib3's ProxyManager
    # does not on its own, so an authenticating proxy answered every request 407.
    seen: list[str | None] = []
    target = f"http://127.0.0.1:{free_port()}"  # nobody listens: only the proxy can answer
    with _recording_proxy(lambda req: seen.append(req.headers.get("Proxy-Authorization"))) as port:
        # "p%40ss" is the percent-encoded password "p@ss".
        monkeypatch.setenv("HTTP_PROXY", f"http://robot:p%40ss@127.0.0.1:{port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with pytest.raises(RemotePolicyError, match="502"):
            RemotePolicy(target, retries=0).predict(IMAGE, "go", UNNORM_KEY)
        assert seen == ["Basic " + base64.b64encode(b"robot:p@ss").decode()]
