# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The binary request form of ``/v1/act`` against the real server process.

Frames sent as raw uint8 or PNG must give bit-identical answers to in-process inference on the
same frame; JPEG the answer for the JPEG-decoded frame (decoded here with plain PIL). The
client must find the form on its own, and ``/act`` must not change at all.
"""

from __future__ import annotations

import base64
import io
import json
from urllib.parse import quote

import json_numpy
import numpy as np
import pytest
import requests
from PIL import Image

from openvla_ros.serving.client import RemotePolicy
from test.serving.conftest import camera_frame

FRAME = camera_frame(21, 480, 640)
KEY = "bridge_orig"


def _post_binary(url: str, body: bytes, headers: dict[str, str], path: str = "/v1/act"):
    return requests.post(url + path, data=body, headers=headers, timeout=30)


def _raw_headers(image: np.ndarray, instruction: str, key: str | None = KEY) -> dict[str, str]:
    headers = {
        "Content-Type": "application/octet-stream",
        "X-OpenVLA-Image-Shape": f"{image.shape[0]},{image.shape[1]},{image.shape[2]}",
        "X-OpenVLA-Instruction": quote(instruction, safe=""),
    }
    if key is not None:
        headers["X-OpenVLA-Unnorm-Key"] = key
    return headers


def _same_answer(payload: dict, want) -> None:
    assert payload["token_ids"] == list(want.token_ids)
    assert np.array_equal(np.asarray(payload["action"]), want.action)


def test_client_switches_to_raw_frames_once_offered(cli_server, reference_policy) -> None:
    remote = RemotePolicy(cli_server.url)
    assert remote.server_formats is None
    cases = [
        (FRAME, "pick up the red block"),
        (camera_frame(22, 240, 320), "stack the Zebra toy über the box"),
        (camera_frame(23, 224, 224), "open the drawer"),
    ]
    for i, (image, instruction) in enumerate(cases):
        got = remote.predict(image, instruction, KEY)
        want = reference_policy.predict(image, instruction, KEY)
        assert got.token_ids == want.token_ids
        assert np.array_equal(got.action, want.action)
        # The first answer carried the offer; every later request went raw.
        assert remote.server_formats == ("raw", "png", "jpeg"), i
    info = remote.info()
    assert info["server"]["binary_formats"] == ["raw", "png", "jpeg"]


def test_raw_body_with_shape_header(cli_server, reference_policy) -> None:
    instruction = "Put The Spoon In The Pot"
    response = _post_binary(cli_server.url, FRAME.tobytes(), _raw_headers(FRAME, instruction))
    assert response.status_code == 200, response.text
    _same_answer(response.json(), reference_policy.predict(FRAME, instruction, KEY))
    assert response.headers["X-OpenVLA-Binary-Formats"] == "raw,png,jpeg"


def test_png_and_jpeg_bodies(cli_server, reference_policy) -> None:
    instruction = "wipe the table"
    headers = {"X-OpenVLA-Instruction": quote(instruction), "X-OpenVLA-Unnorm-Key": KEY}
    png = io.BytesIO()
    Image.fromarray(FRAME).save(png, format="PNG")
    response = _post_binary(
        cli_server.url, png.getvalue(), {**headers, "Content-Type": "image/png"}
    )
    assert response.status_code == 200, response.text
    _same_answer(response.json(), reference_policy.predict(FRAME, instruction, KEY))

    jpeg = io.BytesIO()
    Image.fromarray(FRAME).save(jpeg, format="JPEG", quality=90)
    decoded = np.asarray(Image.open(io.BytesIO(jpeg.getvalue())).convert("RGB"))
    response = _post_binary(
        cli_server.url, jpeg.getvalue(), {**headers, "Content-Type": "image/jpeg"}
    )
    assert response.status_code == 200, response.text
    _same_answer(response.json(), reference_policy.predict(decoded, instruction, KEY))


def test_explicit_png_transport(cli_server, reference_policy) -> None:
    got = RemotePolicy(cli_server.url, transport="png").predict(FRAME, "close the lid", KEY)
    want = reference_policy.predict(FRAME, "close the lid", KEY)
    assert got.token_ids == want.token_ids and np.array_equal(got.action, want.action)


@pytest.mark.parametrize(
    ("mutate", "status", "match"),
    [
        (lambda b, h: (b[:-1], h), 400, "needs 921600"),
        (lambda b, h: (b, {k: v for k, v in h.items() if k != "X-OpenVLA-Image-Shape"}), 400,
         "X-OpenVLA-Image-Shape"),
        (lambda b, h: (b, {**h, "X-OpenVLA-Image-Shape": "480,640"}), 400, "H,W,3"),
        (lambda b, h: (b, {**h, "X-OpenVLA-Image-Shape": "480,-640,3"}), 400, "H,W,3"),
        (lambda b, h: (b, {**h, "X-OpenVLA-Image-Shape": "240,320,4"}), 422, "HxWx3"),
        # A size claim over the limit is refused before the body is looked at.
        (lambda b, h: (b, {**h, "X-OpenVLA-Image-Shape": "1,100000,3"}), 413, "1024"),
        (lambda b, h: (b, {k: v for k, v in h.items() if k != "X-OpenVLA-Instruction"}), 400,
         "X-OpenVLA-Instruction"),
        (lambda b, h: (b, {**h, "X-OpenVLA-Instruction": "%20"}), 422, "empty"),
        (lambda b, h: (b, {**h, "X-OpenVLA-Instruction": "%ff%fe"}), 400, "UTF-8"),
        (lambda b, h: (b"\x89PNG\r\n\x1a\nbroken", {**h, "Content-Type": "image/png"}), 422,
         "cannot decode"),
        (lambda b, h: (b, {**h, "X-OpenVLA-Unnorm-Key": "nope"}), 422, "bridge_orig"),
    ],
)  # fmt: skip
def test_bad_binary_requests(cli_server, mutate, status, match) -> None:
    body, headers = mutate(FRAME.tobytes(), _raw_headers(FRAME, "pick it up"))
    response = _post_binary(cli_server.url, body, headers)
    assert response.status_code == status, response.text
    assert match in response.json()["detail"]


def test_oversized_png_is_refused_from_its_header(cli_server) -> None:
    png = io.BytesIO()
    Image.new("RGB", (1100, 8)).save(png, format="PNG")
    response = _post_binary(
        cli_server.url,
        png.getvalue(),
        {"Content-Type": "image/png", "X-OpenVLA-Instruction": "go", "X-OpenVLA-Unnorm-Key": KEY},
    )
    assert response.status_code == 413 and "1024" in response.json()["detail"]


def test_act_keeps_the_official_contract(cli_server, reference_policy) -> None:
    """/act never takes the binary form and answers exactly as before."""
    response = _post_binary(
        cli_server.url, FRAME.tobytes(), _raw_headers(FRAME, "pick it up"), path="/act"
    )
    assert response.status_code == 400 and "not valid JSON" in response.json()["detail"]
    assert "X-OpenVLA-Binary-Formats" not in response.headers
    want = reference_policy.predict(FRAME, "pick it up", KEY).action
    body = json_numpy.dumps({"image": FRAME, "instruction": "pick it up", "unnorm_key": KEY})
    response = requests.post(cli_server.url + "/act", data=body, timeout=30)
    assert response.status_code == 200
    # Byte for byte the compact json_numpy float64 array it answered before the binary form.
    expected = json.dumps(
        {
            "__numpy__": base64.b64encode(want.astype("<f8").tobytes()).decode(),
            "dtype": "<f8",
            "shape": [7],
        },
        separators=(",", ":"),
    ).encode()
    assert response.content == expected
    assert "X-OpenVLA-Binary-Formats" not in response.headers
