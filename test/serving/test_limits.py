# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Server limits and edge cases: action sizes other than 7, ``max_queue`` semantics (0 = serve
only when idle), shutdown with cancelled waiters, the server's connection settings and statistics
keys that are not Latin-1."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pytest
import requests

from openvla_ros.policy.base import PolicyResult
from openvla_ros.serving import server as server_mod
from openvla_ros.serving import wire
from openvla_ros.serving.client import RemotePolicy
from openvla_ros.serving.server import (
    UNNORM_KEY_HEADER,
    HTTPError,
    InferenceWorker,
    ServerConfig,
    _Job,
)
from test.serving.conftest import camera_frame
from test.serving.test_batching import serving

SIX_KEY = "six_dof"
#: Not Latin-1: cannot go into an HTTP header unencoded.
WIDE_KEY = "数据集_é"


@pytest.fixture(scope="module")
def six_dim_policy(tmp_path_factory: pytest.TempPathFactory):
    """A small checkpoint whose statistics have a 6-value key and a non-Latin-1 key."""
    from openvla_ros.model.inference import OpenVLAPolicy
    from openvla_ros.model.make_checkpoint import (
        action_stats,
        write_dataset_statistics,
        write_small_checkpoint,
    )

    root = write_small_checkpoint(tmp_path_factory.mktemp("ckpt6") / "ckpt", seed=0)
    write_dataset_statistics(
        root,
        {
            SIX_KEY: action_stats([-2.0] * 6, [2.0] * 6),
            WIDE_KEY: action_stats([-1.0] * 6 + [0.0], [1.0] * 6 + [1.0]),
        },
    )
    return OpenVLAPolicy.from_checkpoint(root, precision="fp32", device="cpu")


def test_six_value_actions_are_served(six_dim_policy) -> None:
    image = camera_frame(3, 120, 160)
    want = six_dim_policy.predict(image, "push the block", SIX_KEY)
    assert want.action.shape == (6,)
    with serving(lambda: six_dim_policy, ServerConfig()) as url:
        body = wire.encode_act_request(image, "push the block", SIX_KEY)
        response = requests.post(url + "/act", data=body, timeout=30)
        assert response.status_code == 200, response.text
        assert np.array_equal(wire.loads(response.text), want.action)
        got = RemotePolicy(url).predict(image, "push the block", SIX_KEY)
    assert np.array_equal(got.action, want.action)
    assert np.array_equal(got.normalized_action, want.normalized_action)
    assert got.token_ids == want.token_ids


def test_non_latin1_unnorm_key_is_percent_encoded_in_the_header(six_dim_policy) -> None:
    image = camera_frame(4, 120, 160)
    want = six_dim_policy.predict(image, "go", WIDE_KEY)
    with serving(lambda: six_dim_policy, ServerConfig()) as url:
        body = wire.encode_act_request(image, "go", WIDE_KEY)
        for path in ("/act", "/v1/act"):
            response = requests.post(url + path, data=body, timeout=30)
            assert response.status_code == 200, response.text
            assert unquote(response.headers[UNNORM_KEY_HEADER]) == WIDE_KEY
        got = RemotePolicy(url).predict(image, "go", WIDE_KEY)
    assert got.unnorm_key == WIDE_KEY
    assert np.array_equal(got.action, want.action)


class _GatedPolicy:
    """Each predict blocks until the test releases it."""

    def __init__(self) -> None:
        self.gate = threading.Semaphore(0)
        self.started = threading.Semaphore(0)

    def predict(self, image: Any, instruction: str, unnorm_key: str | None = None) -> PolicyResult:
        self.started.release()
        assert self.gate.acquire(timeout=10)
        return PolicyResult(np.zeros(7), np.zeros(7), unnorm_key="k")

    def reset(self) -> None:
        pass

    def info(self) -> dict[str, Any]:
        return {}


def _request() -> wire.ActRequest:
    return wire.ActRequest(np.zeros((4, 4, 3), np.uint8), "go", None)


def _started_worker(max_queue: int) -> tuple[InferenceWorker, _GatedPolicy]:
    policy = _GatedPolicy()
    worker = InferenceWorker(lambda: policy, ServerConfig(max_queue=max_queue))
    worker.start()
    deadline = time.monotonic() + 5
    while worker.status != "ready" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.status == "ready"
    return worker, policy


@pytest.mark.parametrize("max_queue", [0, 2])
def test_max_queue_counts_only_requests_waiting_behind_a_running_one(max_queue: int) -> None:
    worker, policy = _started_worker(max_queue)
    try:
        # Idle: the request runs at once, whatever the bound (0 used to refuse everything).
        first = worker.submit(_request())
        assert policy.started.acquire(timeout=5)
        # Busy: exactly max_queue more may wait, the next one is refused.
        waiting = [worker.submit(_request()) for _ in range(max_queue)]
        with pytest.raises(HTTPError) as refused:
            worker.submit(_request())
        assert (refused.value.status, refused.value.code) == (503, "queue_full")
        for _ in range(1 + max_queue):
            policy.gate.release()
        for future in [first, *waiting]:
            assert future.result(timeout=5).action.shape == (7,)
        # Idle again: admitted.
        again = worker.submit(_request())
        policy.gate.release()
        assert again.result(timeout=5).unnorm_key == "k"
    finally:
        for _ in range(4):
            policy.gate.release()
        worker.stop()


def test_stop_skips_futures_cancelled_by_their_callers() -> None:
    worker = InferenceWorker(lambda: _GatedPolicy(), ServerConfig())  # never started
    cancelled: concurrent.futures.Future[PolicyResult] = concurrent.futures.Future()
    assert cancelled.cancel()
    done: concurrent.futures.Future[PolicyResult] = concurrent.futures.Future()
    done.set_result(PolicyResult(np.zeros(7), np.zeros(7)))
    live: concurrent.futures.Future[PolicyResult] = concurrent.futures.Future()
    worker._waiting.extend(_Job(_request(), f) for f in (cancelled, done, live))
    worker._thread.join = lambda timeout=None: None  # type: ignore[method-assign]
    worker.stop()
    assert not worker._waiting
    assert isinstance(live.exception(timeout=0), HTTPError)  # later waiters still answered
    assert cancelled.cancelled() and done.result().action.shape == (7,)


def test_server_configuration_from_the_limits() -> None:
    # What the slowloris / idle-connection protection rests on (test_connections.py runs it).
    config = ServerConfig(max_queue=3, max_batch=2, idle_timeout_s=4.0)
    hc = server_mod.hypercorn_config(config, "0.0.0.0", 8123, "info")
    assert hc.bind == ["0.0.0.0:8123"]
    assert hc.keep_alive_timeout == 4.0 and hc.read_timeout == 4
    assert hc.h11_max_incomplete_size == server_mod.MAX_HEADER_BYTES
    assert "%(q)s" not in hc.access_log_format and "%(r)s" not in hc.access_log_format
    from hypercorn.asyncio import tcp_server
    from hypercorn.logging import Logger

    # Larger socket reads (fewer loop passes per frame); the access logger is hypercorn's.
    assert tcp_server.MAX_RECV >= server_mod.READ_CHUNK_BYTES
    assert issubclass(hc.logger_class, Logger)
    assert server_mod.hypercorn_config(config, "::", 1, "info").bind == ["[::]:1"]
    assert server_mod.inflight_limit(config) == 5
    assert server_mod.inflight_limit(ServerConfig(max_queue=0, max_batch=1)) == 1


def test_cli_accepts_max_queue_zero(tmp_path: Path, monkeypatch) -> None:
    from openvla_ros.serving import cli

    captured: dict[str, Any] = {}

    def fake_serve(**kwargs: Any) -> int:
        captured.update(kwargs)
        return 0

    monkeypatch.setattr(server_mod, "serve", fake_serve)
    monkeypatch.delenv("OPENVLA_ROS_TOKEN", raising=False)
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cli.register(sub)
    args = parser.parse_args(["serve", "--checkpoint", str(tmp_path), "--max-queue", "0"])
    assert args.func(args) == 0
    assert captured["config"].max_queue == 0
