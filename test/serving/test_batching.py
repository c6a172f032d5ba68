# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The server app in this process (hypercorn with the configuration ``serve`` uses, in a
thread, real HTTP on loopback): the loading
state of /health, and dynamic batching of concurrent requests through the model's
``predict_batch``."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import requests
from hypercorn.asyncio import serve as hypercorn_serve

from openvla_ros.policy.base import Policy
from openvla_ros.serving.client import RemotePolicy
from openvla_ros.serving.server import ServerConfig, create_app, hypercorn_config
from test.serving.conftest import UNNORM_KEY, camera_frame, free_port


@contextmanager
def serving(loader: Callable[[], Policy], config: ServerConfig) -> Iterator[str]:
    port = free_port()
    app = create_app(loader=loader, config=config)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        hc = hypercorn_config(config, "127.0.0.1", port, "warning")
        loop.run_until_complete(hypercorn_serve(app, hc, shutdown_trigger=stop.wait))  # type: ignore[arg-type]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.02)
    try:
        yield url
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        assert not thread.is_alive(), "hypercorn did not stop within 10 s"
        loop.close()


def test_health_is_503_loading_until_the_policy_is_ready(reference_policy) -> None:
    release = threading.Event()

    def slow_loader() -> Policy:
        release.wait(10)
        return reference_policy

    with serving(slow_loader, ServerConfig()) as url:
        response = requests.get(url + "/health", timeout=5)
        assert (response.status_code, response.json()["status"]) == (503, "loading")
        remote = RemotePolicy(url, retries=0)
        act = requests.post(url + "/v1/act", data=b"{}", timeout=5)
        assert act.status_code in (400, 503)  # parse errors may come first; never a 200
        info = requests.get(url + "/info", timeout=5)
        assert info.status_code == 503 and "Retry-After" in info.headers
        release.set()
        deadline = time.monotonic() + 10
        while remote.health()["status"] != "ready" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert remote.predict(camera_frame(0), "go", UNNORM_KEY).action.shape == (7,)


def test_batched_requests_get_their_own_actions(reference_policy) -> None:
    cases = [(camera_frame(10 + i, 120, 160), f"task number {i}") for i in range(8)]
    want = [reference_policy.predict(img, text, UNNORM_KEY).action for img, text in cases]
    with serving(lambda: reference_policy, ServerConfig(max_batch=4, max_queue=16)) as url:
        remote = RemotePolicy(url)
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda c: remote.predict(c[0], c[1], UNNORM_KEY), cases))
    # Batched rows differ from single inference only by float reduction order.
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.action, w, atol=1e-2)
    assert max(r.timings_ms["model_batch"] for r in got) > 1  # batching actually happened
