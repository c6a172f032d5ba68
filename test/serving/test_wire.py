# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The wire format alone: json_numpy compatibility and strict, pickle-free decoding."""

from __future__ import annotations

import base64
import json
import pickle

import json_numpy
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from openvla_ros.errors import InputError
from openvla_ros.image_codec import ImageTooLargeError
from openvla_ros.serving import wire


@given(
    hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.int32, np.float32, np.float64, np.bool_]),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, max_side=5),
    )
)
def test_round_trip_matches_reference_json_numpy(arr: np.ndarray) -> None:
    # Our encoder's output decodes with json_numpy and vice versa, bit for bit.
    ours = wire.dumps({"a": arr})
    theirs = json_numpy.dumps({"a": arr})
    for text in (ours, theirs):
        back = wire.loads(text)["a"]
        assert np.asarray(back).dtype == arr.dtype
        assert np.array_equal(np.asarray(back), arr, equal_nan=True)
    assert np.array_equal(
        np.asarray(json_numpy.loads(ours)["a"]), arr, equal_nan=arr.dtype.kind == "f"
    )


def _doc(data: bytes, dtype: str, shape: list[int]) -> str:
    return json.dumps(
        {"__numpy__": base64.b64encode(data).decode(), "dtype": dtype, "shape": shape}
    )


@pytest.mark.parametrize("dtype", ["|O", "<U4", "|V8", "[('a', '<i4')]", "<M8[s]", "|S3", 5, None])
def test_non_numeric_dtypes_are_refused(dtype: object) -> None:
    doc = json.dumps({"__numpy__": "AAAAAAAAAAA=", "dtype": dtype, "shape": [1]})
    with pytest.raises(wire.PayloadError, match="not allowed"):
        wire.loads(doc)


def test_a_pickle_payload_is_never_unpickled() -> None:
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled!')",))

    data = pickle.dumps(np.array([Boom()], dtype=object))
    for dtype in ("|O", "O", "object"):
        with pytest.raises(wire.PayloadError):
            wire.loads(_doc(data, dtype, [1]))


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        (_doc(b"\x00" * 5, "|u1", [2, 2]), "need 4"),
        (_doc(b"\x00" * 4, "|u1", [-4]), "non-negative"),
        (_doc(b"\x00" * 4, "|u1", [True, 4]), "non-negative"),
        (_doc(b"\x00" * 4, "|u1", [2**62, 2**62]), "need"),
        (json.dumps({"__numpy__": "not base64!", "dtype": "|u1", "shape": [1]}), "base64"),
        (json.dumps({"__numpy__": 5, "dtype": "|u1", "shape": [1]}), "base64"),
        (json.dumps({"__numpy__": "AA==", "dtype": "|u1", "shape": "1"}), "shape"),
        (json.dumps({"__numpy__": "AA==", "dtype": "|u1", "shape": [1] * 9}), "shape"),
        ("{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "JSON"),
    ],
)
def test_malformed_documents_raise_payload_error(doc: str | bytes, match: str) -> None:
    with pytest.raises(wire.PayloadError, match=match):
        wire.loads(doc)


def test_decoded_arrays_are_writable_copies() -> None:
    arr = wire.loads(wire.dumps(np.arange(6, dtype=np.uint8).reshape(2, 3)))
    arr[0, 0] = 9  # frombuffer views are read-only; the decoder must hand out a copy
    assert arr.flags.owndata or arr.base is not None


def test_raw_frames_decode_to_writable_arrays_from_bytes_and_bytearray() -> None:
    # The server reads bodies into a bytearray and views it (no second copy of the frame);
    # a bytes body (immutable, maybe shared) is copied. Either way the model gets a writable
    # array holding the frame, row-major RGB.
    frame = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    headers = {wire.IMAGE_SHAPE_HEADER: "2,3,3"}
    raw = bytes(range(18))
    for body in (raw, bytearray(raw)):
        image = wire.decode_binary_image("raw", body, headers)
        assert np.array_equal(image, frame) and image.flags.writeable
        image[0, 0, 0] = 200
    assert raw[0] == 0  # the bytes body was copied, not written through
    mutable = bytearray(raw)
    wire.decode_binary_image("raw", mutable, headers)[1, 2, 2] = 99
    assert mutable[17] == 99  # the bytearray body is the image: no copy made
    req = wire.parse_act_request(bytearray(wire.encode_act_request(frame, "go").encode()))
    assert np.array_equal(req.image, frame)  # /act and JSON /v1/act take a bytearray body too


def test_decoder_ignores_a_json_numpy_patched_json_module(monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenVLA client code calls json_numpy.patch(); our decoder must not run its hook twice.
    for name in ("dumps", "loads", "dump", "load"):
        monkeypatch.setattr(json, name, getattr(json, name))
    json_numpy.patch()
    image = np.zeros((4, 5, 3), np.uint8)
    req = wire.parse_act_request(wire.encode_act_request(image, "go").encode())
    assert np.array_equal(req.image, image)


def test_parse_act_request_plain_and_encoded_variants() -> None:
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    plain = wire.encode_act_request(image, "Pick Up", "bridge_orig").encode()
    encoded = json.dumps({"encoded": plain.decode()}).encode()
    for body, is_encoded in ((plain, False), (encoded, True)):
        req = wire.parse_act_request(body)
        assert np.array_equal(req.image, image)
        assert (req.instruction, req.unnorm_key, req.encoded) == (
            "Pick Up",
            "bridge_orig",
            is_encoded,
        )


@pytest.mark.parametrize(
    ("payload", "error", "match"),
    [
        ({"image": np.zeros((4, 4, 3), np.float32), "instruction": "x"}, InputError, "uint8"),
        ({"image": np.zeros((4, 4), np.uint8), "instruction": "x"}, InputError, "HxWx3"),
        ({"image": np.zeros((4, 4, 4), np.uint8), "instruction": "x"}, InputError, "HxWx3"),
        ({"image": np.zeros((0, 4, 3), np.uint8), "instruction": "x"}, InputError, "empty"),
        ({"image": [[[1, 2, 3]]], "instruction": "x"}, InputError, "array"),
        (
            {"image": np.zeros((1, 2049, 3), np.uint8), "instruction": "x"},
            ImageTooLargeError,
            "2048",
        ),
        ({"image": np.zeros((4, 4, 3), np.uint8), "instruction": "  "}, InputError, "empty"),
        ({"image": np.zeros((4, 4, 3), np.uint8), "instruction": 7}, InputError, "string"),
        ({"image": np.zeros((4, 4, 3), np.uint8), "instruction": "x" * 5000}, InputError, "limit"),
        (
            {"image": np.zeros((4, 4, 3), np.uint8), "instruction": "x", "unnorm_key": 3},
            InputError,
            "unnorm_key",
        ),
        ({"instruction": "x"}, wire.PayloadError, "missing"),
        ([1, 2], wire.PayloadError, "JSON object"),
        ({"encoded": "{}", "extra": 1}, wire.PayloadError, "only key"),
        ({"encoded": 5}, wire.PayloadError, "string"),
    ],
)
def test_parse_act_request_rejects(payload: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        wire.parse_act_request(wire.dumps(payload).encode())
