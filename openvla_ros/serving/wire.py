# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The wire format shared by the server and the client: json_numpy, decoded safely.

OpenVLA's official server speaks json_numpy: an array travels as
``{"__numpy__": <base64 of the raw buffer>, "dtype": "|u1", "shape": [H, W, 3]}``. The
reference decoder trusts ``dtype`` (any numpy descriptor) and ``shape``; this module decodes
the same documents with a strict whitelist instead (plain numeric dtypes only, so no object
arrays and never pickle; shape must match the byte count exactly), and validates the ``/act``
request fields. numpy + stdlib only: the robot-side client imports it too. It also defines the
binary request form of ``/v1/act`` (raw uint8 or PNG/JPEG body, fields in headers).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import numpy as np
import numpy.typing as npt

from openvla_ros.errors import InputError
from openvla_ros.image_codec import (
    ImageTooLargeError,
    check_rgb_array,
    compressed_to_rgb,
    rgb_to_jpeg,
    rgb_to_png,
)

#: Numeric dtype descriptors accepted on the wire: bool, signed/unsigned ints, floats, in any
#: byte order. Everything else (object "|O", structured, strings, datetimes) is refused before
#: numpy ever sees it, which is what makes pickle or object construction impossible.
_DTYPE_RE = re.compile(r"^[<>|=]?(?:b1|[iu][1248]|f[248])$")
#: Highest array rank accepted; images are rank 3, actions rank 1.
MAX_NDIM = 8
#: Default longest accepted instruction (characters); matches the model's own limit.
MAX_INSTRUCTION_CHARS = 4096
#: Default largest accepted image side (pixels).
DEFAULT_MAX_IMAGE_SIDE = 2048


class PayloadError(InputError):
    """The body is not valid JSON / json_numpy or misses a required field (HTTP 400)."""


def _decode_array(dct: dict[str, Any]) -> npt.NDArray[Any] | np.generic:
    descr = dct.get("dtype")
    shape = dct.get("shape")
    data = dct.get("__numpy__")
    if not isinstance(descr, str) or not _DTYPE_RE.match(descr):
        raise PayloadError(
            f"json_numpy dtype {descr!r} is not allowed; send a plain numeric array "
            "(images: uint8, '|u1')"
        )
    if not isinstance(shape, list | tuple) or len(shape) > MAX_NDIM:
        raise PayloadError(f"json_numpy shape must be a list of at most {MAX_NDIM} ints")
    # bool is an int subclass; a shape of [true, 3] is garbage, not [1, 3].
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise PayloadError(f"json_numpy shape {shape!r} must hold non-negative ints")
    if not isinstance(data, str):
        raise PayloadError("json_numpy '__numpy__' must be a base64 string")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PayloadError(f"json_numpy '__numpy__' is not valid base64: {exc}") from None
    dtype = np.dtype(descr)
    # math.prod on Python ints cannot overflow, unlike np.prod on int64.
    count = math.prod(shape)
    if count * dtype.itemsize != len(raw):
        raise PayloadError(
            f"json_numpy buffer holds {len(raw)} bytes but dtype {descr} and shape "
            f"{list(shape)} need {count * dtype.itemsize}"
        )
    # frombuffer gives a read-only view of the decoded bytes; copy so callers own their array.
    arr = np.frombuffer(raw, dtype=dtype).copy()
    return arr.reshape(shape) if shape else arr[0]


def object_hook(dct: dict[str, Any]) -> Any:
    """``json.loads`` hook turning json_numpy documents into arrays, strictly (see module doc)."""
    if "__numpy__" in dct:
        return _decode_array(dct)
    return dct


def loads(text: str | bytes | bytearray) -> Any:
    """Parse JSON with json_numpy arrays decoded strictly.

    Raises:
        PayloadError: not UTF-8 JSON, too deeply nested, or a bad json_numpy array.
    """
    try:
        if isinstance(text, bytes | bytearray):
            text = text.decode("utf-8")
        # The decoder class, not json.loads: json_numpy.patch() (which OpenVLA client code calls)
        # replaces json.loads with a version that would run its own hook on our arrays.
        return json.JSONDecoder(object_hook=object_hook).decode(text)
    except PayloadError:
        raise
    except RecursionError:
        raise PayloadError("JSON nesting is too deep") from None
    except (ValueError, TypeError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise PayloadError(f"body is not valid JSON: {exc}") from None


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray | np.generic):
        # asarray, not ascontiguousarray: the latter turns 0-d arrays into shape (1,).
        arr = np.asarray(obj)
        return {
            "__numpy__": base64.b64encode(arr.tobytes(order="C")).decode("ascii"),
            "dtype": np.lib.format.dtype_to_descr(arr.dtype),
            "shape": list(arr.shape),
        }
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def dumps(obj: Any) -> str:
    """Serialise to compact JSON with numpy arrays json_numpy-encoded (NaN refused)."""
    encoder = json.JSONEncoder(default=_default, separators=(",", ":"), allow_nan=False)
    return encoder.encode(obj)


def validate_image(image: Any, max_side: int = DEFAULT_MAX_IMAGE_SIDE) -> npt.NDArray[np.uint8]:
    """Check that ``image`` is an HxWx3 uint8 RGB array within ``max_side`` pixels per side
    (:func:`openvla_ros.image_codec.check_rgb_array` with the serving default limit).

    Raises:
        InputError: wrong type, dtype, rank or channel count, or an empty image.
        ImageTooLargeError: a side exceeds ``max_side``.
    """
    return check_rgb_array(image, max_side)


def validate_instruction(instruction: Any, max_chars: int = MAX_INSTRUCTION_CHARS) -> str:
    """Reject non-text, empty or over-long instructions; return the text unchanged."""
    if not isinstance(instruction, str):
        raise InputError(f"instruction must be a string, got {type(instruction).__name__}")
    if not instruction.strip():
        raise InputError("instruction is empty; say what the robot should do")
    if len(instruction) > max_chars:
        raise InputError(f"instruction is {len(instruction)} characters long (limit {max_chars})")
    try:
        instruction.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate ("\ud800") from a JSON escape
        raise InputError(
            f"instruction is not valid Unicode text ({exc.reason} at character {exc.start})"
        ) from None
    return instruction


def validate_unnorm_key(unnorm_key: Any) -> str | None:
    """``None`` or a non-empty, reasonably short string."""
    if unnorm_key is None:
        return None
    if not isinstance(unnorm_key, str) or not unnorm_key or len(unnorm_key) > 256:
        raise InputError("unnorm_key must be null or a dataset name string (1-256 characters)")
    return unnorm_key


@dataclass(frozen=True)
class ActRequest:
    """One validated ``/act`` request.

    Attributes:
        image: HxWx3 uint8 RGB image.
        instruction: the task in natural language.
        unnorm_key: dataset statistics key, or ``None`` for the checkpoint's default.
        encoded: the request used the ``{"encoded": "<json>"}`` variant (the official server
            then answers with the action double-encoded as a JSON string).
    """

    image: npt.NDArray[np.uint8]
    instruction: str
    unnorm_key: str | None
    encoded: bool = False


def parse_act_request(
    body: bytes | bytearray,
    max_image_side: int = DEFAULT_MAX_IMAGE_SIDE,
    max_instruction_chars: int = MAX_INSTRUCTION_CHARS,
) -> ActRequest:
    """Decode and validate an ``/act`` body (plain or ``"encoded"`` variant).

    Raises:
        PayloadError: malformed JSON / json_numpy, not an object, missing fields (HTTP 400).
        ImageTooLargeError: the image exceeds ``max_image_side`` (HTTP 413).
        InputError: wrong dtype / shape, bad instruction or unnorm key (HTTP 422).
    """
    payload = loads(body)
    encoded = False
    if isinstance(payload, dict) and "encoded" in payload:
        if len(payload) != 1:
            raise PayloadError("an 'encoded' request must have 'encoded' as its only key")
        inner = payload["encoded"]
        if not isinstance(inner, str):
            raise PayloadError("'encoded' must be a JSON document serialised as a string")
        payload = loads(inner)
        encoded = True
    if not isinstance(payload, dict):
        raise PayloadError(
            f"body must be a JSON object with 'image' and 'instruction', got "
            f"{type(payload).__name__}"
        )
    missing = [k for k in ("image", "instruction") if k not in payload]
    if missing:
        raise PayloadError(f"missing field(s): {', '.join(missing)}")
    image = validate_image(payload["image"], max_image_side)
    instruction = validate_instruction(payload["instruction"], max_instruction_chars)
    unnorm_key = validate_unnorm_key(payload.get("unnorm_key"))
    return ActRequest(image, instruction, unnorm_key, encoded)


def encode_act_request(
    image: npt.NDArray[np.uint8], instruction: str, unnorm_key: str | None = None
) -> str:
    """The JSON body of an ``/act`` or ``/v1/act`` request."""
    body: dict[str, Any] = {"image": image, "instruction": instruction}
    if unnorm_key is not None:
        body["unnorm_key"] = unnorm_key
    return dumps(body)


# ---------------------------------------------------------------------------------------------
# Binary request form of ``/v1/act`` (not ``/act``, which stays the official JSON contract).
#
# The body is the frame itself, raw or compressed; the rest travels in headers:
#   Content-Type: application/octet-stream (raw HxWx3 uint8, row-major RGB), image/png or
#       image/jpeg
#   X-OpenVLA-Image-Shape: H,W,3 (raw only)
#   X-OpenVLA-Instruction: the instruction, percent-encoded UTF-8 (RFC 3986)
#   X-OpenVLA-Unnorm-Key: the statistics key, percent-encoded (optional)
# A server that accepts it says so with X-OpenVLA-Binary-Formats on its /v1/act answers (and
# in /info), which is how RemotePolicy picks it without configuration.

#: Content types of the binary form -> format name.
BINARY_CONTENT_TYPES = {
    "application/octet-stream": "raw",
    "image/png": "png",
    "image/jpeg": "jpeg",
}
#: Format name -> content type.
BINARY_FORMAT_TYPES = {fmt: ctype for ctype, fmt in BINARY_CONTENT_TYPES.items()}
#: Formats the server offers, in order of preference (raw: no encode/decode cost, lossless).
BINARY_FORMATS = ("raw", "png", "jpeg")
IMAGE_SHAPE_HEADER = "X-OpenVLA-Image-Shape"
INSTRUCTION_HEADER = "X-OpenVLA-Instruction"
REQUEST_UNNORM_KEY_HEADER = "X-OpenVLA-Unnorm-Key"
#: Response header (and /info field) listing the binary formats a server accepts.
BINARY_FORMATS_HEADER = "X-OpenVLA-Binary-Formats"
#: Longest percent-encoded instruction header the client sends; longer ones go as JSON
#: (HTTP servers cap header sizes, h11 at 16 kB per request head).
MAX_INSTRUCTION_HEADER_BYTES = 8192


def binary_format(content_type: str | None) -> str | None:
    """The binary format a Content-Type names (``raw``/``png``/``jpeg``), or None for JSON."""
    if not content_type:
        return None
    main = content_type.split(";", 1)[0].strip().lower()
    return BINARY_CONTENT_TYPES.get(main)


def _header_text(headers: Any, name: str, required: bool) -> str | None:
    value = headers.get(name)
    if value is None:
        if required:
            raise PayloadError(f"binary request lacks the {name} header")
        return None
    try:
        return unquote(value, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise PayloadError(f"{name} is not percent-encoded UTF-8") from None


def _raw_shape(headers: Any, max_image_side: int) -> tuple[int, int]:
    text = headers.get(IMAGE_SHAPE_HEADER)
    if text is None:
        raise PayloadError(
            f"a raw (application/octet-stream) request needs {IMAGE_SHAPE_HEADER}: H,W,3"
        )
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise PayloadError(f"{IMAGE_SHAPE_HEADER} must be 'H,W,3', got {text!r}")
    height, width, channels = (int(p) for p in parts)
    if channels != 3:
        raise InputError(f"image must be HxWx3 RGB, got shape ({height}, {width}, {channels})")
    if height < 1 or width < 1:
        raise InputError(f"image is empty ({width}x{height})")
    # Checked before the body is interpreted, so no size claim can make the server allocate.
    if max(height, width) > max_image_side:
        raise ImageTooLargeError(
            f"image is {width}x{height}, outside 1..{max_image_side} px per side; the model "
            "sees 224x224, so downscale it first"
        )
    return height, width


def _check_compressed_size(body: bytes | bytearray, max_image_side: int) -> None:
    """Refuse a PNG/JPEG whose header declares a side over the limit, before decoding it (the
    codec would otherwise decode large JPEGs at a reduced scale: a different frame)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(body)) as img:
            width, height = img.size
    except Exception:
        return  # not an image: compressed_to_rgb raises the InputError that says so
    if max(width, height) > max_image_side:
        raise ImageTooLargeError(
            f"image is {width}x{height}, outside 1..{max_image_side} px per side; the model "
            "sees 224x224, so downscale it first"
        )


def decode_binary_image(
    fmt: str, body: bytes | bytearray, headers: Any, max_image_side: int = DEFAULT_MAX_IMAGE_SIDE
) -> npt.NDArray[np.uint8]:
    """The frame of a binary ``/v1/act`` body as a writable array: for a raw ``bytearray``
    body (what the server reads) a view of that buffer, so the frame is not copied again; for
    ``bytes`` a copy.

    Raises:
        PayloadError: missing/malformed shape header, or a body of the wrong size (HTTP 400).
        ImageTooLargeError: a side exceeds ``max_image_side`` (HTTP 413).
        InputError: not 3 channels, empty, or an undecodable PNG/JPEG (HTTP 422).
    """
    if fmt == "raw":
        height, width = _raw_shape(headers, max_image_side)
        if len(body) != height * width * 3:
            raise PayloadError(
                f"raw body holds {len(body)} bytes but {IMAGE_SHAPE_HEADER} "
                f"{height},{width},3 needs {height * width * 3}"
            )
        image = np.frombuffer(body, dtype=np.uint8).reshape(height, width, 3)
        # A view of bytes is read-only; copying a bytearray (writable) would cost a second
        # memcpy of the frame for nothing.
        return image if image.flags.writeable else image.copy()
    if fmt in ("png", "jpeg"):
        _check_compressed_size(body, max_image_side)
        return compressed_to_rgb(fmt, body)
    raise PayloadError(f"unknown binary format {fmt!r}; use one of {list(BINARY_FORMATS)}")


def parse_binary_act_request(
    fmt: str,
    body: bytes | bytearray,
    headers: Any,
    max_image_side: int = DEFAULT_MAX_IMAGE_SIDE,
    max_instruction_chars: int = MAX_INSTRUCTION_CHARS,
) -> ActRequest:
    """Decode and validate a binary ``/v1/act`` request (``headers``: any mapping with a
    case-insensitive ``get``, e.g. Starlette's or requests')."""
    instruction = _header_text(headers, INSTRUCTION_HEADER, required=True)
    key = _header_text(headers, REQUEST_UNNORM_KEY_HEADER, required=False)
    image = decode_binary_image(fmt, body, headers, max_image_side)
    return ActRequest(
        validate_image(image, max_image_side),
        validate_instruction(instruction, max_instruction_chars),
        validate_unnorm_key(key),
    )


def encode_binary_act_request(
    image: npt.NDArray[np.uint8],
    instruction: str,
    unnorm_key: str | None = None,
    fmt: str = "raw",
    jpeg_quality: int = 95,
) -> tuple[bytes | memoryview, dict[str, str]]:
    """Body and headers of a binary ``/v1/act`` request for a validated frame.

    The raw body is a byte view of the frame itself (no 921 kB copy per 640x480 request):
    send it before changing the frame.

    Raises:
        InputError: the percent-encoded instruction exceeds MAX_INSTRUCTION_HEADER_BYTES.
    """
    encoded = quote(instruction, safe="")
    if len(encoded) > MAX_INSTRUCTION_HEADER_BYTES:
        raise InputError(
            f"instruction is {len(encoded)} bytes percent-encoded, more than the "
            f"{MAX_INSTRUCTION_HEADER_BYTES} a header may carry; send it as JSON"
        )
    headers = {"Content-Type": BINARY_FORMAT_TYPES[fmt], INSTRUCTION_HEADER: encoded}
    if unnorm_key is not None:
        headers[REQUEST_UNNORM_KEY_HEADER] = quote(unnorm_key, safe="")
    if fmt == "raw":
        headers[IMAGE_SHAPE_HEADER] = f"{image.shape[0]},{image.shape[1]},3"
        return np.ascontiguousarray(image).data.cast("B"), headers
    if fmt == "png":
        return rgb_to_png(image), headers
    if fmt == "jpeg":
        return rgb_to_jpeg(image, quality=jpeg_quality), headers
    raise ValueError(f"unknown binary format {fmt!r}; use one of {list(BINARY_FORMATS)}")
