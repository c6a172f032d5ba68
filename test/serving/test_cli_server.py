# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""``openvla-ros serve`` as a real process on loopback, against in-process inference.

On CPU fp32 the server runs the same code on the same weights as the reference policy in this
process, so actions must be bit-identical, whichever client asks.
"""

from __future__ import annotations

import json

import json_numpy
import numpy as np
import pytest
import requests

from openvla_ros.errors import InputError
from openvla_ros.policy.base import Policy
from openvla_ros.serving.client import RemoteInputError, RemotePolicy
from openvla_ros.serving.server import TIMING_HEADER, TOKEN_IDS_HEADER
from test.serving.conftest import UNNORM_KEY, ServerProcess, camera_frame, run_python

CASES = [
    (camera_frame(1), "pick up the red block", "bridge_orig"),
    (camera_frame(2, 480, 640), "Put The Spoon In The Pot", "fractal20220817_data"),
    (camera_frame(3, 224, 224), "open the drawer", "bridge_orig"),
]


def post(server: ServerProcess, path: str, **kwargs) -> requests.Response:
    return requests.post(server.url + path, timeout=30, **kwargs)


def test_remote_policy_matches_in_process_exactly(cli_server, reference_policy) -> None:
    remote = RemotePolicy(cli_server.url)
    assert isinstance(remote, Policy)
    for image, instruction, key in CASES:
        want = reference_policy.predict(image, instruction, key)
        got = remote.predict(image, instruction, key)
        assert np.array_equal(got.action, want.action)
        assert got.action.dtype == np.float64
        assert np.array_equal(got.normalized_action, want.normalized_action)
        assert got.token_ids == want.token_ids
        assert got.unnorm_key == key
        assert {"model_total", "server", "client_total"} <= set(got.timings_ms)
    remote.reset()


def test_openvla_readme_client_gets_the_same_action(cli_server, reference_policy, monkeypatch):
    # Exactly how OpenVLA's README / deploy.py docstring queries its server.
    for name in ("dumps", "loads", "dump", "load"):
        monkeypatch.setattr(json, name, getattr(json, name))  # undone after the test
    json_numpy.patch()
    for image, instruction, key in CASES:
        want = reference_policy.predict(image, instruction, key).action
        action = requests.post(
            cli_server.url + "/act",
            json={"image": image, "instruction": instruction, "unnorm_key": key},
        ).json()
        assert isinstance(action, np.ndarray) and action.dtype == np.float64
        assert np.array_equal(action, want)
        # The "encoded" variant (for clients without json_numpy on the request side): the
        # official server answers it with the array double-encoded as a JSON string.
        payload = {"image": image, "instruction": instruction, "unnorm_key": key}
        answer = requests.post(cli_server.url + "/act", json={"encoded": json.dumps(payload)})
        assert np.array_equal(json.loads(answer.json()), want)
    # Our client keeps working in a process that patched json.
    got = RemotePolicy(cli_server.url).predict(*CASES[0])
    assert np.array_equal(got.action, reference_policy.predict(*CASES[0]).action)


def test_act_reports_timing_and_tokens_in_headers(cli_server, reference_policy) -> None:
    image, instruction, key = CASES[0]
    body = json_numpy.dumps({"image": image, "instruction": instruction, "unnorm_key": key})
    response = post(cli_server, "/act", data=body)
    assert response.status_code == 200
    timings = json.loads(response.headers[TIMING_HEADER])
    assert timings["server"] >= timings["model_total"] > 0
    want = reference_policy.predict(image, instruction, key).token_ids
    assert tuple(int(t) for t in response.headers[TOKEN_IDS_HEADER].split(",")) == want
    assert "server;dur=" in response.headers["Server-Timing"]


def test_health_and_info(cli_server, reference_policy) -> None:
    health = requests.get(cli_server.url + "/health", timeout=5)
    assert health.status_code == 200 and health.json()["status"] == "ready"
    info = RemotePolicy(cli_server.url).info()
    assert info["unnorm_keys"] == ["bridge_orig", "fractal20220817_data"]
    assert info["precision"] == "fp32" and info["device"] == "cpu"
    assert info["action_dim"] == {"bridge_orig": 7, "fractal20220817_data": 7}
    assert info["model_id"] == reference_policy.info()["model_id"]
    server = info["server"]
    assert server["limits"]["auth"] is False and "token" not in server["limits"]
    assert server["limits"]["max_body_bytes"] == 2 * 1024 * 1024
    assert {"openvla_ros", "fastapi", "hypercorn", "numpy"} <= set(server["versions"])
    assert "torch" in info["versions"]


def test_unknown_unnorm_key_lists_the_available_ones(cli_server) -> None:
    image = camera_frame(0, 64, 64)
    response = post(
        cli_server,
        "/act",
        data=json_numpy.dumps({"image": image, "instruction": "go", "unnorm_key": "nope"}),
    )
    assert response.status_code == 422
    assert "bridge_orig, fractal20220817_data" in response.json()["detail"]
    # Several keys and none given: refused the same way, listing them.
    response = post(
        cli_server, "/v1/act", data=json_numpy.dumps({"image": image, "instruction": "go"})
    )
    assert response.status_code == 422 and "bridge_orig" in response.json()["detail"]
    with pytest.raises(RemoteInputError, match="available"):
        RemotePolicy(cli_server.url).predict(image, "go", "nope")


@pytest.mark.parametrize(
    ("body", "status", "match"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "not valid JSON"),
        (b'"error"', 400, "JSON object"),
        (
            json.dumps(
                {"image": {"__numpy__": "AAAA", "dtype": "|O", "shape": [1]}, "instruction": "x"}
            ).encode(),
            400,
            "not allowed",
        ),
        (
            json_numpy.dumps(
                {"image": np.zeros((8, 8, 3), np.float32), "instruction": "x"}
            ).encode(),
            422,
            "uint8",
        ),
        (
            json_numpy.dumps({"image": np.zeros((8, 8, 3), np.int64), "instruction": "x"}).encode(),
            422,
            "uint8",
        ),
        (
            json_numpy.dumps({"image": np.zeros((8, 8), np.uint8), "instruction": "x"}).encode(),
            422,
            "HxWx3",
        ),
        (
            json_numpy.dumps({"image": np.zeros((8, 8, 4), np.uint8), "instruction": "x"}).encode(),
            422,
            "HxWx3",
        ),
        (
            json_numpy.dumps({"image": np.zeros((8, 8, 3), np.uint8), "instruction": ""}).encode(),
            422,
            "empty",
        ),
        (json_numpy.dumps({"image": np.zeros((8, 8, 3), np.uint8)}).encode(), 400, "missing"),
        (
            json_numpy.dumps(
                {"image": np.zeros((1, 1025, 3), np.uint8), "instruction": "x"}
            ).encode(),
            413,
            "1024",
        ),
    ],
)
def test_bad_requests_get_a_status_and_a_json_reason(cli_server, body, status, match) -> None:
    for path in ("/act", "/v1/act"):
        response = post(cli_server, path, data=body, headers={"Content-Type": "application/json"})
        assert response.status_code == status, response.text
        assert match in response.json()["detail"]


def test_body_limit_on_content_length_and_on_streamed_bodies(cli_server) -> None:
    big = json_numpy.dumps({"image": np.zeros((1000, 1000, 3), np.uint8), "instruction": "x"})
    assert len(big) > 2 * 1024 * 1024
    response = post(cli_server, "/act", data=big)
    assert response.status_code == 413 and "limit" in response.json()["detail"]

    def chunks():  # no Content-Length: chunked transfer encoding
        for i in range(0, len(big), 64 * 1024):
            yield big[i : i + 64 * 1024].encode()

    response = post(cli_server, "/act", data=chunks())
    assert response.status_code == 413 and "streamed" in response.json()["detail"]
    # A lying Content-Length never makes the server read past it either.
    response = post(cli_server, "/act", data=b"{}", headers={"Content-Length": "abc"})
    assert response.status_code == 400


def test_client_validates_before_sending(cli_server) -> None:
    remote = RemotePolicy(cli_server.url, max_image_side=1024)
    with pytest.raises(InputError, match="uint8"):
        remote.predict(np.zeros((8, 8, 3), np.float32), "x", UNNORM_KEY)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="1024"):
        remote.predict(np.zeros((8, 2000, 3), np.uint8), "x", UNNORM_KEY)
    with pytest.raises(InputError, match="empty"):
        remote.predict(np.zeros((8, 8, 3), np.uint8), " ", UNNORM_KEY)


def test_server_survives_bad_requests_and_concurrency(cli_server, reference_policy) -> None:
    # Interleave garbage with good requests from several threads: every good request gets its
    # own, correct action (no cross-talk), and the server stays up.
    from concurrent.futures import ThreadPoolExecutor

    remote = RemotePolicy(cli_server.url)

    def good(i: int) -> bool:
        image, instruction, key = CASES[i % len(CASES)]
        return np.array_equal(
            remote.predict(image, instruction, key).action,
            reference_policy.predict(image, instruction, key).action,
        )

    def bad(i: int) -> int:
        return post(cli_server, "/act", data=b"[" * (i + 1)).status_code

    with ThreadPoolExecutor(6) as pool:
        goods = [pool.submit(good, i) for i in range(12)]
        bads = [pool.submit(bad, i) for i in range(12)]
        assert all(f.result() for f in goods)
        assert all(f.result() == 400 for f in bads)
    assert cli_server.proc.alive()


def test_client_module_does_not_import_torch() -> None:
    result = run_python(
        "import sys; import openvla_ros.serving.client as c; "
        "bad = {'torch', 'fastapi', 'uvicorn', 'hypercorn', 'rclpy'} & set(sys.modules); "
        "assert not bad, bad; print('ok')"
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_unknown_route_is_a_404(cli_server) -> None:
    assert requests.get(cli_server.url + "/docs", timeout=5).status_code == 404
    assert requests.get(cli_server.url + "/act", timeout=5).status_code == 405
