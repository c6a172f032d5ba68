# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""``RemotePolicy``: the :class:`~openvla_ros.policy.base.Policy` interface over HTTP.

The ROS policy node gets either the in-process model or this client and cannot tell them apart:
same ``predict``/``reset``/``info``, same :class:`PolicyResult`, same :class:`InputError` for a
bad frame or key. Transport failures (unreachable, too slow, garbage answers) become
:class:`RemotePolicyError` after bounded retries, never a hang. Imports numpy, urllib3 and
requests only (no torch), so the robot PC stays light.

Requests go out through urllib3 (requests' own transport) on one keep-alive connection per
thread: the requests layer above it (session merging, hooks, cookie jar, per-request reads of
the proxy variables) cost ~0.3 ms of the <= 3 ms remote overhead per 640x480 frame; requests
still decides, once per connection, which proxy and CA bundle the environment names.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import requests
import urllib3

from openvla_ros.errors import InputError, RemotePolicyError
from openvla_ros.policy.base import PolicyResult
from openvla_ros.serving import wire

LOG = logging.getLogger(__name__)

#: Environment variable with the bearer token (shared with ``openvla-ros serve``).
TOKEN_ENV = "OPENVLA_ROS_TOKEN"
#: Retry-After values above this are not honoured: the robot would rather fail and hold.
MAX_RETRY_AFTER_S = 5.0
#: Answers larger than this are refused (an action answer is a few hundred bytes; the
#: server's info and health answers a few kB).
MAX_ANSWER_BYTES = 8 * 1024 * 1024
#: Accepted ``transport`` values of :class:`RemotePolicy`.
TRANSPORTS = ("auto", "json", "raw", "png", "jpeg")


@dataclass(frozen=True)
class _Answer:
    """One HTTP answer, read in full."""

    status_code: int
    headers: Mapping[str, str]  # case-insensitive (urllib3's HTTPHeaderDict)
    body: bytes
    method: str
    url: str

    def json(self) -> Any:
        """The body as JSON (ValueError when it is not)."""
        try:
            return json.loads(self.body)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None

    @property
    def text(self) -> str:
        """The body as text, undecodable bytes replaced."""
        return self.body.decode("utf-8", errors="replace")


def _connection_pool(url: str) -> urllib3.PoolManager:
    """A keep-alive connection pool for ``url``: through the proxy the environment names for
    it (HTTP_PROXY / NO_PROXY, as requests reads them), TLS verified against
    REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE or requests' CA bundle; a proxy URL's credentials
    go to the proxy (Proxy-Authorization). ~/.netrc is not read: its Basic credentials for
    the host would replace the bearer token."""
    proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
    bundle = (
        os.environ.get("REQUESTS_CA_BUNDLE")
        or os.environ.get("CURL_CA_BUNDLE")
        or requests.utils.DEFAULT_CA_BUNDLE_PATH
    )
    # A directory of hashed certificates is a CA directory, as requests treats it.
    tls: dict[str, Any] = {"ca_cert_dir": bundle} if os.path.isdir(bundle) else {"ca_certs": bundle}
    if proxy:
        # requests sends a proxy URL's user:password as Proxy-Authorization; urllib3 does not
        # (an authenticating proxy would answer 407).
        user, password = requests.utils.get_auth_from_url(proxy)
        auth = urllib3.util.make_headers(proxy_basic_auth=f"{user}:{password}") if user else None
        return urllib3.ProxyManager(
            proxy,
            num_pools=1,
            maxsize=1,
            proxy_headers=auth,
            cert_reqs="CERT_REQUIRED",
            **tls,
        )
    return urllib3.PoolManager(num_pools=1, maxsize=1, cert_reqs="CERT_REQUIRED", **tls)


class RemoteInputError(InputError, RemotePolicyError):
    """The server refused the input (HTTP 400/413/422): an InputError, raised remotely.

    Catching either :class:`InputError` (like the in-process model's) or
    :class:`RemotePolicyError` works.
    """


class RemotePolicy:
    """A policy served by ``openvla-ros serve`` (``POST /v1/act``).

    Args:
        url: server base URL, e.g. ``http://gpu-box:8000``.
        token: bearer token when the server requires one; ``None`` reads
            ``$OPENVLA_ROS_TOKEN`` (the variable the server reads too), if set.
        timeout_s: read timeout per attempt (s): how long one inference may take, queue included.
        connect_timeout_s: TCP connect timeout per attempt (s).
        retries: extra attempts after a connection error or a 503 (busy / loading); 4xx and
            other 5xx answers and read timeouts are never retried (a late action is useless).
        backoff_s: first back-off (s), doubled each retry; a server's Retry-After is honoured up
            to :data:`MAX_RETRY_AFTER_S`.
        unnorm_key: default statistics key when ``predict`` gets none.
        max_image_side: frames with a longer side are refused here, before any upload.
        transport: how frames travel. ``auto`` (default): json_numpy on the first request,
            then the raw binary form as soon as the server offers it
            (``X-OpenVLA-Binary-Formats``); ``json``: always json_numpy; ``raw`` / ``png`` /
            ``jpeg``: always that binary form (``jpeg`` is lossy: actions may differ).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout_s: float = 5.0,
        connect_timeout_s: float = 2.0,
        retries: int = 2,
        backoff_s: float = 0.1,
        unnorm_key: str | None = None,
        max_image_side: int = wire.DEFAULT_MAX_IMAGE_SIDE,
        transport: str = "auto",
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {list(TRANSPORTS)}, got {transport!r}")
        self.transport = transport
        #: Binary formats the server offered on its last /v1/act answer (None: not seen yet).
        self.server_formats: tuple[str, ...] | None = None
        if timeout_s <= 0 or connect_timeout_s <= 0 or retries < 0 or backoff_s < 0:
            raise ValueError("timeouts must be > 0, retries and backoff_s >= 0")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.unnorm_key = unnorm_key
        self.max_image_side = max_image_side
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token is None:
            token = os.environ.get(TOKEN_ENV, "").strip() or None
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._timeout = urllib3.Timeout(connect=connect_timeout_s, read=timeout_s)
        # One connection per thread: a connection carries one request at a time.
        self._local = threading.local()

    def __repr__(self) -> str:
        # Never show the token.
        return f"RemotePolicy({self.url!r}, timeout_s={self.timeout_s}, retries={self.retries})"

    def _pool(self) -> urllib3.PoolManager:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = _connection_pool(self.url)
            self._local.pool = pool
        return pool

    def close(self) -> None:
        """Close this thread's HTTP connection."""
        pool = getattr(self._local, "pool", None)
        if pool is not None:
            pool.clear()
            self._local.pool = None

    def _send(
        self, method: str, url: str, body: bytes | memoryview | None, headers: Mapping[str, str]
    ) -> _Answer:
        """One attempt, the answer read in full (urllib3 errors propagate).

        The read timeout bounds each wait for bytes; the body must also be complete within
        ``connect_timeout_s + timeout_s`` of the request (checked between reads) and be at
        most :data:`MAX_ANSWER_BYTES` (a server or proxy trickling the body, or sending
        without end, must not hold the policy node's worker).
        """
        deadline = time.monotonic() + self.connect_timeout_s + self.timeout_s
        response = self._pool().urlopen(
            method,
            url,
            body=body,  # a memoryview goes out in one sendall, uncopied
            headers=headers,
            timeout=self._timeout,
            retries=False,
            redirect=False,
            preload_content=False,
        )
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk := response.read1(65536):
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise RemotePolicyError(
                        f"{url}: answer larger than {MAX_ANSWER_BYTES} bytes: not an inference "
                        "server's answer"
                    )
                if time.monotonic() > deadline:
                    total = self.connect_timeout_s + self.timeout_s
                    raise RemotePolicyError(
                        f"{url}: answer not complete within {total:g} s (connect_timeout_s + "
                        "timeout_s): the server or a proxy trickles it"
                    )
                chunks.append(chunk)
        except RemotePolicyError:
            response.close()
            self.close()  # the connection is mid-answer: never reuse it
            raise
        response.release_conn()
        return _Answer(response.status, response.headers, b"".join(chunks), method, url)

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | memoryview | None = None,
        headers: dict[str, str] | None = None,
    ) -> _Answer:
        """One request with bounded retries on connection errors and 503."""
        url = self.url + path
        headers = {**self._headers, **headers} if headers else self._headers
        attempt = 0
        while True:
            wait_s = self.backoff_s * (2**attempt)
            try:
                response = self._send(method, url, body, headers)
            except urllib3.exceptions.ReadTimeoutError:
                # The server has the request and is slow; retrying would only queue a duplicate.
                raise RemotePolicyError(
                    f"{url}: no answer within {self.timeout_s:g} s (server overloaded or model "
                    "too slow); raise timeout_s or check the server"
                ) from None
            except urllib3.exceptions.HTTPError as exc:
                # Connection refused/reset, a server that died mid-request, not HTTP at all.
                self.close()
                if attempt >= self.retries:
                    raise RemotePolicyError(
                        f"{url}: cannot reach the inference server after {attempt + 1} "
                        f"attempt(s): {type(exc).__name__}: {exc}"
                    ) from None
            else:
                if response.status_code != 503 or attempt >= self.retries:
                    return response
                wait_s = max(wait_s, _retry_after(response))
                LOG.info("server busy (503), retrying in %.2f s", wait_s)
            time.sleep(wait_s)
            attempt += 1

    @staticmethod
    def _raise_for_status(response: _Answer) -> None:
        if response.status_code == 200:
            return
        detail = response.text[:500]
        try:
            payload = response.json()
            if isinstance(payload, dict) and "detail" in payload:
                detail = str(payload["detail"])
        except ValueError:
            pass
        where = f"{response.method} {response.url}"
        if response.status_code in (400, 413, 422):
            raise RemoteInputError(f"server refused the input ({response.status_code}): {detail}")
        if response.status_code == 401:
            raise RemotePolicyError(
                f"{where}: unauthorized (401): wrong or missing token; pass token= (the server's "
                "--token-file / OPENVLA_ROS_TOKEN)"
            )
        raise RemotePolicyError(f"{where}: HTTP {response.status_code}: {detail}")

    def predict(
        self, image: npt.NDArray[np.uint8], instruction: str, unnorm_key: str | None = None
    ) -> PolicyResult:
        """Predict one action remotely; same contract as the in-process model.

        Raises:
            InputError: bad image/instruction/key (checked here first, or refused by the
                server: then a :class:`RemoteInputError`).
            RemotePolicyError: unreachable, too slow, busy after retries, or a garbage answer.
        """
        t0 = time.perf_counter()
        image = wire.validate_image(image, self.max_image_side)
        instruction = wire.validate_instruction(instruction)
        key = wire.validate_unnorm_key(unnorm_key if unnorm_key is not None else self.unnorm_key)
        response = self._post_act(image, instruction, key)
        self._raise_for_status(response)
        result = _parse_result(response)
        timings = dict(result.timings_ms)
        timings["client_total"] = 1e3 * (time.perf_counter() - t0)
        return PolicyResult(
            action=result.action,
            normalized_action=result.normalized_action,
            token_ids=result.token_ids,
            unnorm_key=result.unnorm_key,
            timings_ms=timings,
        )

    def _frame_format(self) -> str | None:
        """The binary format for the next request, or None for json_numpy."""
        if self.transport == "json":
            return None
        if self.transport != "auto":
            return self.transport
        return "raw" if self.server_formats and "raw" in self.server_formats else None

    def _post_act(self, image: npt.NDArray[np.uint8], instruction: str, key: str | None) -> _Answer:
        fmt = self._frame_format()
        if fmt is not None:
            try:
                body, headers = wire.encode_binary_act_request(image, instruction, key, fmt)
            except InputError:
                if self.transport != "auto":
                    raise
                fmt = None  # an instruction too long for a header goes as JSON
        if fmt is None:
            body = wire.encode_act_request(image, instruction, key).encode()
            headers = {}
        response = self._request("POST", "/v1/act", body, headers)
        offered = response.headers.get(wire.BINARY_FORMATS_HEADER)
        if offered is not None:
            self.server_formats = tuple(f.strip() for f in offered.split(",") if f.strip())
        elif fmt is not None and self.transport == "auto" and response.status_code in (400, 415):
            # The server was replaced by one without the binary form: back to json_numpy.
            LOG.info("server no longer offers binary frames; using json_numpy")
            self.server_formats = ()
            return self._post_act(image, instruction, key)
        return response

    def reset(self) -> None:
        """Nothing to reset remotely: OpenVLA is stateless per step."""

    def info(self) -> dict[str, Any]:
        """The server's ``/info``: the served policy's info plus a ``server`` section.

        Raises:
            RemotePolicyError: unreachable, unauthorized, or not a JSON object.
        """
        response = self._request("GET", "/info")
        self._raise_for_status(response)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise RemotePolicyError(f"{self.url}/info: answer is not a JSON object")
        return payload

    def health(self) -> dict[str, Any]:
        """``/health`` as a dict (``status``: ready / loading / failed); no retries on 503."""
        try:
            payload = self._send("GET", self.url + "/health", None, {}).json()
        except (urllib3.exceptions.HTTPError, ValueError) as exc:
            raise RemotePolicyError(f"{self.url}/health: {type(exc).__name__}: {exc}") from None
        if not isinstance(payload, dict):
            raise RemotePolicyError(f"{self.url}/health: answer is not a JSON object")
        return payload


def _retry_after(response: _Answer) -> float:
    try:
        value = float(response.headers.get("Retry-After", "0"))
    except ValueError:
        return 0.0
    return min(max(value, 0.0), MAX_RETRY_AFTER_S) if math.isfinite(value) else 0.0


def _vector(payload: dict[str, Any], name: str, where: str) -> npt.NDArray[np.float64]:
    # As many values as the server's statistics key has (7 for OpenVLA, 6 for some fine-tunes).
    value = payload.get(name)
    if not isinstance(value, list) or not value:
        raise RemotePolicyError(f"{where}: '{name}' must be a non-empty list of numbers")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise RemotePolicyError(f"{where}: '{name}' holds non-numbers")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except OverflowError:
        raise RemotePolicyError(f"{where}: '{name}' holds a number too large") from None
    if not np.all(np.isfinite(arr)):
        raise RemotePolicyError(f"{where}: '{name}' holds non-finite values")
    return arr


def _timings(timings: dict[Any, Any], where: str) -> dict[str, float]:
    try:
        return {str(k): float(v) for k, v in timings.items() if isinstance(v, int | float)}
    except OverflowError:
        raise RemotePolicyError(f"{where}: 'timings_ms' holds a number too large") from None


def _parse_result(response: _Answer) -> PolicyResult:
    """Validate a ``/v1/act`` answer; anything off is a RemotePolicyError, never a bad action."""
    where = f"{response.url}"
    try:
        payload = response.json()
    except ValueError:
        raise RemotePolicyError(f"{where}: answer is not JSON: {response.text[:200]!r}") from None
    if not isinstance(payload, dict):
        raise RemotePolicyError(f"{where}: answer is not a JSON object: {str(payload)[:200]}")
    action = _vector(payload, "action", where)
    normalized = _vector(payload, "normalized_action", where)
    if action.shape != normalized.shape:
        raise RemotePolicyError(
            f"{where}: 'action' has {action.size} values but 'normalized_action' {normalized.size}"
        )
    tokens = payload.get("token_ids", [])
    timings = payload.get("timings_ms", {})
    key = payload.get("unnorm_key", "")
    if (
        not isinstance(tokens, list)
        or not all(isinstance(t, int) for t in tokens)
        or not isinstance(timings, dict)
        or not isinstance(key, str)
    ):
        raise RemotePolicyError(f"{where}: malformed token_ids / timings_ms / unnorm_key")
    return PolicyResult(
        action=action,
        normalized_action=normalized,
        token_ids=tuple(tokens),
        unnorm_key=key,
        timings_ms=_timings(timings, where),
    )
