# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The inference server: OpenVLA's ``POST /act`` contract plus health, info and real errors.

Endpoints (see docs/serving.md):

- ``POST /act``: the official OpenVLA contract, byte-for-byte what existing clients expect:
  json_numpy body (or the ``{"encoded": "<json>"}`` variant), the bare float64 action array in
  the response. Timing, token ids and the statistics key travel in ``X-OpenVLA-*`` headers.
- ``POST /v1/act``: same request, extended plain-JSON response (what :class:`RemotePolicy` uses);
  also accepts the frame itself as the body (raw uint8, PNG or JPEG; fields in headers, see
  :mod:`openvla_ros.serving.wire`), offered in ``X-OpenVLA-Binary-Formats`` and ``/info``.
- ``GET /health``: 200 ``ready`` / 503 ``loading`` or ``failed``; never needs the token.
- ``GET /info``: the policy's ``info()`` plus server limits and library versions.

One worker thread owns the model (one GPU, one stream of work); the event loop only parses,
validates and queues. The queue is bounded: beyond ``max_queue`` waiting requests the server
answers 503 with ``Retry-After`` instead of letting latency grow without bound, which for a
robot means acting on stale frames.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import hmac
import json
import logging
import math
import platform
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

import openvla_ros
from openvla_ros.errors import InputError, PolicyError
from openvla_ros.image_codec import ImageTooLargeError
from openvla_ros.policy.base import Policy, PolicyResult
from openvla_ros.serving import wire

if TYPE_CHECKING:
    from hypercorn.logging import Logger as HypercornLogger

LOG = logging.getLogger(__name__)

#: Version of the extended API (``/v1/act`` response layout, ``/info`` layout).
API_VERSION = 1
TIMING_HEADER = "X-OpenVLA-Timing-Ms"
TOKEN_IDS_HEADER = "X-OpenVLA-Token-Ids"
UNNORM_KEY_HEADER = "X-OpenVLA-Unnorm-Key"
#: Largest request head (request line + headers) a connection may send, in bytes (hypercorn's
#: ``h11_max_incomplete_size``): a longer one is answered 400 and closed.
MAX_HEADER_BYTES = 16 * 1024
#: Status code logged (never sent) for a request whose client went away mid-request (nginx's).
CLIENT_CLOSED = 499
#: Bytes hypercorn asks its stream reader for per socket read (its default, 64 KiB, turns a
#: 640x480 raw frame into 15 reads, each a task + timer + h11 pass: ~0.3 ms of the remote
#: overhead). asyncio's transport receives at most 256 KiB per recv and pauses reading past
#: 128 KiB buffered, so a larger request only returns what is already buffered: no more memory
#: per connection, and the read/idle timeouts are untouched.
READ_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ServerConfig:
    """Limits and behaviour of one server (all have safe defaults).

    Attributes:
        token: bearer token required on ``/act``, ``/v1/act`` and ``/info``; ``None``: no auth.
        max_queue: requests allowed to wait while one (batch) runs; more get 503 +
            Retry-After. 0 serves a request only when the server is idle.
        max_wait_s: a queued request still waiting after this long gets 503 (its robot has
            moved on; running it would waste the GPU).
        max_batch: requests of the same unnorm key run together in one batched forward pass
            (1 = no batching, results then match in-process inference exactly).
        max_body_bytes: largest request body, checked on Content-Length and while streaming.
        max_image_side: largest accepted image side (pixels).
        max_instruction_chars: longest accepted instruction.
        legacy_errors: answer ``/act`` errors like the official server (HTTP 200, body
            ``"error"``) instead of a 4xx/5xx with a JSON reason.
        idle_timeout_s: a connection that has not sent a complete request head for this long
            (idle keep-alive, a silent socket, a slowloris trickling headers) is closed; a
            body read that stalls this long ends the request.
    """

    token: str | None = None
    max_queue: int = 8
    max_wait_s: float = 30.0
    max_batch: int = 1
    max_body_bytes: int = 20 * 1024 * 1024
    max_image_side: int = wire.DEFAULT_MAX_IMAGE_SIDE
    max_instruction_chars: int = wire.MAX_INSTRUCTION_CHARS
    legacy_errors: bool = False
    idle_timeout_s: float = 10.0

    def public(self) -> dict[str, Any]:
        """The limits a client may see (never the token)."""
        out = asdict(self)
        out.pop("token")
        out["auth"] = self.token is not None
        return out


class HTTPError(Exception):
    """An error answered with ``status`` and a JSON reason ``{"error": code, "detail": ...}``."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        """The JSON error response."""
        return JSONResponse(
            {"error": self.code, "detail": self.detail}, self.status, headers=self.headers
        )


@dataclass
class _Job:
    request: wire.ActRequest
    future: concurrent.futures.Future[PolicyResult]
    enqueued: float = field(default_factory=time.perf_counter)
    started: float = 0.0


class InferenceWorker:
    """Owns the policy: loads it, then runs queued requests one (batch) at a time.

    The policy is created *inside* the worker thread (``loader``) so a CUDA context and any
    thread-local state belong to the thread that uses them, and so ``/health`` can answer
    ``loading`` while weights stream in.
    """

    def __init__(self, loader: Callable[[], Policy], config: ServerConfig) -> None:
        self._loader = loader
        self._config = config
        self._cond = threading.Condition()
        self._waiting: collections.deque[_Job] = collections.deque()
        self._running = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="openvla-inference", daemon=True)
        self.policy: Policy | None = None
        self.status = "loading"
        self.error = ""
        self.info: dict[str, Any] = {}
        #: Exponential moving average of one batch's inference time, for Retry-After.
        self.avg_infer_s = 0.5
        self.served = 0
        self.on_load_failure: Callable[[], None] | None = None

    def start(self) -> None:
        """Start the worker thread (loads the policy first)."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Fail queued requests with 503 and stop the thread after the current batch."""
        with self._cond:
            self._stop = True
            while self._waiting:
                future = self._waiting.popleft().future
                # The server may already have cancelled the waiter of a dropped connection.
                if future.done():
                    continue
                future.set_exception(HTTPError(503, "shutting_down", "the server is shutting down"))
            self._cond.notify_all()
        self._thread.join(timeout)

    def depth(self) -> tuple[int, int]:
        """(waiting, running) request counts."""
        with self._cond:
            return len(self._waiting), self._running

    def retry_after_s(self) -> int:
        """Seconds a rejected client should wait: roughly the time to drain the queue."""
        waiting, running = self.depth()
        return max(1, math.ceil(self.avg_infer_s * (waiting + running)))

    def submit(self, request: wire.ActRequest) -> concurrent.futures.Future[PolicyResult]:
        """Queue one request.

        Raises:
            HTTPError: 503 while loading, after a failed load, or when the queue is full.
        """
        if self.status != "ready":
            raise HTTPError(
                503,
                self.status,
                f"the model is {self.status}" + (f": {self.error}" if self.error else ""),
                {"Retry-After": "5"},
            )
        with self._cond:
            # max_queue bounds the requests that must wait while others run: when nothing
            # runs, the first waiting request is about to run, not to wait (so 0 = serve only
            # when idle).
            would_wait = len(self._waiting) + (1 if self._running else 0)
            if would_wait > self._config.max_queue:
                busy = HTTPError(
                    503,
                    "queue_full",
                    f"server busy: {len(self._waiting)} requests already waiting "
                    f"(--max-queue {self._config.max_queue}); retry later",
                )
                busy.headers["Retry-After"] = str(
                    max(1, math.ceil(self.avg_infer_s * (len(self._waiting) + self._running)))
                )
                raise busy
            job = _Job(request, concurrent.futures.Future())
            self._waiting.append(job)
            self._cond.notify()
        return job.future

    def _take_batch(self) -> list[_Job] | None:
        """Block for work; return up to max_batch live jobs sharing the first one's key."""
        with self._cond:
            while not self._waiting and not self._stop:
                self._cond.wait()
            if self._stop:
                return None
            now = time.perf_counter()
            batch: list[_Job] = []
            keep: collections.deque[_Job] = collections.deque()
            while self._waiting:
                job = self._waiting.popleft()
                if len(batch) >= self._config.max_batch or (
                    batch and job.request.unnorm_key != batch[0].request.unnorm_key
                ):
                    keep.append(job)
                    continue
                # A caller that gave up (its coroutine was cancelled) cancelled the future.
                if not job.future.set_running_or_notify_cancel():
                    continue
                if now - job.enqueued > self._config.max_wait_s:
                    job.future.set_exception(
                        HTTPError(
                            503,
                            "queue_timeout",
                            f"request waited more than {self._config.max_wait_s:g} s in the "
                            "queue; the server is overloaded",
                            {"Retry-After": str(self.retry_after_s())},
                        )
                    )
                    continue
                job.started = now
                batch.append(job)
            self._waiting = keep
            self._running = len(batch)
            return batch

    def _load(self) -> bool:
        try:
            policy = self._loader()
            info = _jsonable(policy.info())
        except Exception as exc:
            LOG.exception("loading the policy failed")
            self.error = f"{type(exc).__name__}: {exc}"
            self.status = "failed"
            if self.on_load_failure is not None:
                self.on_load_failure()
            return False
        self.policy = policy
        self.info = info if isinstance(info, dict) else {"policy": info}
        self.status = "ready"
        LOG.info("policy ready: %s", self.info.get("model_id", type(policy).__name__))
        return True

    def _run(self) -> None:
        if not self._load():
            return
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            if not batch:
                continue
            start = time.perf_counter()
            try:
                self._infer(batch)
            finally:
                elapsed = time.perf_counter() - start
                self.avg_infer_s = 0.8 * self.avg_infer_s + 0.2 * elapsed
                with self._cond:
                    self._running = 0

    def _infer(self, batch: list[_Job]) -> None:
        assert self.policy is not None
        requests = [job.request for job in batch]
        try:
            predict_batch = getattr(self.policy, "predict_batch", None)
            if len(batch) > 1 and predict_batch is not None:
                results: list[PolicyResult] = predict_batch(
                    [r.image for r in requests],
                    [r.instruction for r in requests],
                    requests[0].unnorm_key,
                )
            else:
                results = [
                    self.policy.predict(r.image, r.instruction, r.unnorm_key) for r in requests
                ]
        except InputError as exc:
            if len(batch) > 1:
                # One bad row (e.g. an over-long prompt) must not fail its neighbours: rerun
                # one by one so every request gets its own answer.
                for job in batch:
                    self._infer([job])
                return
            batch[0].future.set_exception(HTTPError(422, "invalid_input", str(exc)))
            return
        except PolicyError as exc:
            LOG.error("inference failed: %s", exc)
            for job in batch:
                job.future.set_exception(HTTPError(500, "inference_failed", str(exc)))
            return
        except Exception:
            # Never let one request kill the worker; the traceback stays in the server log.
            LOG.exception("unexpected error during inference")
            for job in batch:
                job.future.set_exception(
                    HTTPError(
                        500,
                        "internal_error",
                        "unexpected error during inference; see the server log",
                    )
                )
            return
        self.served += len(batch)
        for job, result in zip(batch, results, strict=True):
            job.future.set_result(result)


def _jsonable(obj: Any) -> Any:
    """Turn numpy scalars/arrays, paths and other odd values into plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return str(obj)


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    import fastapi

    return {
        "openvla_ros": openvla_ros.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "fastapi": fastapi.__version__,
        "hypercorn": version("hypercorn"),
    }


async def _read_body(request: Request, limit: int) -> bytearray:
    """Read the body, refusing it (413) as soon as it is known to exceed ``limit`` bytes.

    Content-Length is checked before a single body byte is read; chunked bodies (no length)
    are counted while they stream, so a client cannot make the server buffer an unbounded body.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise HTTPError(400, "bad_request", "Content-Length is not an integer") from None
        if size > limit:
            raise HTTPError(
                413, "body_too_large", f"body is {size} bytes, larger than the {limit} byte limit"
            )
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise HTTPError(
                413, "body_too_large", f"body exceeds the {limit} byte limit (streamed)"
            )
        chunks.append(chunk)
    # A bytearray: the raw decoder can then view it as the image instead of copying it again
    # (one copy of the frame in the server instead of two).
    return bytearray().join(chunks)


async def _read_body_or_gone(request: Request, limit: int) -> bytearray:
    """:func:`_read_body`; a client that disconnects mid-upload is one INFO line, not an
    ERROR with a traceback (a robot restarting mid-request is normal)."""
    try:
        return await _read_body(request, limit)
    except ClientDisconnect:
        client = request.client.host if request.client else "?"
        LOG.info("client %s disconnected mid-upload; request dropped", client)
        raise HTTPError(CLIENT_CLOSED, "client_closed", "the client disconnected") from None


def _check_action(result: PolicyResult) -> np.ndarray:
    # As many values as the statistics key has (7 for OpenVLA's datasets, 6 for some
    # fine-tunes); the robot side checks what its executor needs.
    action = np.asarray(result.action, dtype=np.float64)
    if action.ndim != 1 or action.size == 0 or not np.all(np.isfinite(action)):
        LOG.error("policy returned an invalid action %r", action)
        raise HTTPError(
            500, "invalid_action", "the model produced a non-finite or mis-shaped action"
        )
    return action


def _as_http_error(exc: Exception) -> HTTPError:
    """Any failure as an HTTPError; unexpected ones are logged and answered with a bare 500."""
    if isinstance(exc, HTTPError):
        return exc
    LOG.error("unexpected error handling a request", exc_info=exc)
    return HTTPError(500, "internal_error", "unexpected server error; see the server log")


def create_app(
    policy: Policy | None = None,
    *,
    loader: Callable[[], Policy] | None = None,
    config: ServerConfig | None = None,
) -> FastAPI:
    """Build the ASGI app serving ``policy`` (or the one ``loader`` returns, loaded in the
    background so ``/health`` says ``loading`` meanwhile).

    The worker thread starts with the app's lifespan and stops with it.
    """
    if (policy is None) == (loader is None):
        raise ValueError("pass exactly one of policy or loader")
    cfg = config or ServerConfig()
    if cfg.max_queue < 0 or cfg.max_batch < 1 or cfg.max_body_bytes < 1 or cfg.max_image_side < 1:
        raise ValueError(f"invalid server limits: {cfg.public()}")
    if loader is None:
        assert policy is not None
        ready_policy: Policy = policy

        def loader() -> Policy:
            return ready_policy

    worker = InferenceWorker(loader, cfg)
    expected_token = cfg.token.encode() if cfg.token else None
    max_inflight = inflight_limit(cfg)
    admitted = [0]  # /act + /v1/act requests past auth, on the event loop only

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        worker.start()
        try:
            yield
        finally:
            await run_in_threadpool(worker.stop)

    app = FastAPI(
        title="openvla_ros inference server",
        version=openvla_ros.__version__,
        lifespan=lifespan,
        # No interactive docs: nothing to serve beyond the API, and less attack surface.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.worker = worker
    app.state.config = cfg

    def check_auth(request: Request) -> None:
        if expected_token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, supplied = header.partition(" ")
        # compare_digest takes time independent of where the strings differ (no timing oracle).
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            supplied.strip().encode(), expected_token
        ):
            raise HTTPError(
                401,
                "unauthorized",
                "missing or wrong bearer token (send 'Authorization: Bearer <token>')",
                {"WWW-Authenticate": "Bearer"},
            )

    async def run_act(
        request: Request, binary: bool = False
    ) -> tuple[wire.ActRequest, PolicyResult, dict[str, float]]:
        t0 = time.perf_counter()
        check_auth(request)
        # Admission before a single body byte is read: what bounds the memory of concurrent
        # uploads (connections are not counted: idle ones cost nothing and time out).
        if admitted[0] >= max_inflight:
            raise HTTPError(
                503,
                "queue_full",  # the same answer as the worker's queue bound, one step earlier
                f"{max_inflight} requests are already in progress (--max-queue + --max-batch); "
                "retry later",
                {"Retry-After": str(worker.retry_after_s())},
            )
        admitted[0] += 1
        try:
            return await _run_admitted(request, binary, t0)
        finally:
            admitted[0] -= 1

    async def _run_admitted(
        request: Request, binary: bool, t0: float
    ) -> tuple[wire.ActRequest, PolicyResult, dict[str, float]]:
        body = await _read_body_or_gone(request, cfg.max_body_bytes)
        # The binary form (raw uint8 / PNG / JPEG body, fields in headers) on /v1/act only.
        fmt = wire.binary_format(request.headers.get("content-type")) if binary else None
        try:
            if fmt == "raw":
                # One memcpy: cheaper inline than a thread hand-off.
                act = wire.parse_binary_act_request(
                    fmt, body, request.headers, cfg.max_image_side, cfg.max_instruction_chars
                )
            elif fmt is not None:
                act = await run_in_threadpool(
                    wire.parse_binary_act_request,
                    fmt,
                    body,
                    request.headers,
                    cfg.max_image_side,
                    cfg.max_instruction_chars,
                )
            else:
                # Base64 + JSON of a multi-megabyte frame takes milliseconds: off the loop.
                act = await run_in_threadpool(
                    wire.parse_act_request, body, cfg.max_image_side, cfg.max_instruction_chars
                )
        except wire.PayloadError as exc:
            raise HTTPError(400, "bad_request", str(exc)) from None
        except ImageTooLargeError as exc:
            raise HTTPError(413, "image_too_large", str(exc)) from None
        except InputError as exc:
            raise HTTPError(422, "invalid_input", str(exc)) from None
        t_parsed = time.perf_counter()
        future = worker.submit(act)
        result = await asyncio.wrap_future(future)
        t_done = time.perf_counter()
        timings = {f"model_{k}": float(v) for k, v in result.timings_ms.items()}
        timings.update(
            parse=1e3 * (t_parsed - t0),
            queue_and_infer=1e3 * (t_done - t_parsed),
            server=1e3 * (t_done - t0),
        )
        return act, result, timings

    def info_headers(result: PolicyResult, timings: dict[str, float]) -> dict[str, str]:
        return {
            TIMING_HEADER: json.dumps({k: round(v, 3) for k, v in timings.items()}),
            TOKEN_IDS_HEADER: ",".join(str(t) for t in result.token_ids),
            # Percent-encoded (RFC 3986, UTF-8): header values must be Latin-1.
            UNNORM_KEY_HEADER: quote(result.unnorm_key, safe=""),
            "Server-Timing": ", ".join(
                f"{k};dur={v:.3f}"
                for k, v in timings.items()
                if k in ("parse", "queue_and_infer", "server")
            ),
        }

    @app.post("/act")
    async def act(request: Request) -> Response:
        """OpenVLA's official contract: the bare json_numpy float64 action array."""
        try:
            act_req, result, timings = await run_act(request)
            action = _check_action(result)
        except Exception as exc:
            err = _as_http_error(exc)
            # Auth and capacity answers stay real even in legacy mode: a client that cannot
            # authenticate or should back off must be told so, not handed a fake 200.
            if cfg.legacy_errors and err.status not in (401, 503, CLIENT_CLOSED):
                LOG.warning("request failed (%s); answering 'error' (--legacy-errors)", err.detail)
                return JSONResponse("error")
            return err.response()
        body = wire.dumps(action)
        if act_req.encoded:
            # The official server answers an "encoded" request with the array double-encoded.
            body = json.dumps(body)
        return Response(body, media_type="application/json", headers=info_headers(result, timings))

    @app.post("/v1/act")
    async def act_v1(request: Request) -> Response:
        """Extended response: action, normalized action, token ids, key and timings."""
        offer = {wire.BINARY_FORMATS_HEADER: ",".join(wire.BINARY_FORMATS)}
        try:
            _, result, timings = await run_act(request, binary=True)
            action = _check_action(result)
        except Exception as exc:
            err = _as_http_error(exc)
            err.headers.update(offer)
            return err.response()
        payload = {
            "action": action.tolist(),
            "normalized_action": _jsonable(np.asarray(result.normalized_action, np.float64)),
            "token_ids": [int(t) for t in result.token_ids],
            "unnorm_key": result.unnorm_key,
            "timings_ms": timings,
        }
        return JSONResponse(payload, headers={**info_headers(result, timings), **offer})

    @app.get("/health")
    async def health() -> JSONResponse:
        """200 when ready, 503 while loading or after a failed load (no auth: for probes)."""
        waiting, running = worker.depth()
        body = {"status": worker.status, "queue_waiting": waiting, "running": running}
        if worker.status == "failed":
            body["detail"] = worker.error
        return JSONResponse(body, 200 if worker.status == "ready" else 503)

    @app.get("/info")
    async def info(request: Request) -> JSONResponse:
        """The policy's info() plus server limits and versions."""
        try:
            check_auth(request)
        except HTTPError as exc:
            return exc.response()
        if worker.status != "ready":
            return HTTPError(
                503, worker.status, f"the model is {worker.status}", {"Retry-After": "5"}
            ).response()
        waiting, running = worker.depth()
        body = dict(worker.info)
        body["server"] = {
            "api_version": API_VERSION,
            # /v1/act also takes the frame as the body (see wire.BINARY_CONTENT_TYPES).
            "binary_formats": list(wire.BINARY_FORMATS),
            "limits": cfg.public(),
            "versions": _versions(),
            "served": worker.served,
            "queue_waiting": waiting,
            "running": running,
        }
        return JSONResponse(body)

    return app


def inflight_limit(config: ServerConfig) -> int:
    """How many ``/act`` + ``/v1/act`` requests may be in progress at once (reading their body,
    parsing, queued or running): ``max_queue + max_batch``. More get a JSON 503 with
    ``Retry-After`` before their body is read, so request memory is bounded by about this many
    times ``max_body_bytes`` (docs/serving.md: measured per-request cost). ``/health`` and
    ``/info`` are not counted: they always answer."""
    return max(1, config.max_queue + config.max_batch)


def hypercorn_config(config: ServerConfig, host: str, port: int, log_level: str) -> Any:
    """The hypercorn configuration of :func:`serve` (docs/serving.md says why hypercorn).

    ``keep_alive_timeout`` closes a connection that has not sent a complete request head for
    ``idle_timeout_s``: hypercorn keeps a connection "idle" until h11 has parsed the whole
    head, so a silent socket and a slowloris trickling header bytes are both cut off (uvicorn
    has no header-read timeout). ``read_timeout`` ends a body upload that stalls that long.
    The access log prints the path without the query string (a token misplaced in the URL
    never reaches the log).
    """
    from hypercorn.config import Config

    hc = Config()
    hc.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    hc.keep_alive_timeout = config.idle_timeout_s
    hc.read_timeout = max(1, math.ceil(config.idle_timeout_s))
    hc.h11_max_incomplete_size = MAX_HEADER_BYTES
    hc.graceful_timeout = 5.0
    hc.backlog = 128
    hc.include_server_header = False
    hc.loglevel = log_level.upper()
    hc.errorlog = logging.getLogger("openvla_ros.serving.http")
    hc.accesslog = logging.getLogger("openvla_ros.serving.access")
    # %(U)s is the path only; hypercorn's %(r)s and %(q)s are avoided on purpose.
    hc.access_log_format = '%(h)s "%(m)s %(U)s HTTP/%(H)s" %(s)s %(b)s %(L)ss'
    hc.logger_class = _access_logger_class()
    _raise_hypercorn_read_size()
    return hc


def _access_logger_class() -> type[HypercornLogger]:
    """hypercorn's Logger, building a request's access-log fields only when the access log
    is enabled: hypercorn builds them (all headers and every environment variable) on every
    request and lets the logger drop them afterwards (~25 us a request with 35 environment
    variables, more in a sourced ROS shell)."""
    from hypercorn.logging import Logger

    class AccessLogger(Logger):
        async def access(self, request: Any, response: Any, request_time: float) -> None:
            if self.access_logger is not None and self.access_logger.isEnabledFor(logging.INFO):
                await super().access(request, response, request_time)

    return AccessLogger


def _raise_hypercorn_read_size() -> None:
    """Let hypercorn read up to :data:`READ_CHUNK_BYTES` per socket read (a module constant
    in hypercorn 0.18, no config option; left alone if a release renames it)."""
    from hypercorn.asyncio import tcp_server

    current = getattr(tcp_server, "MAX_RECV", None)
    if isinstance(current, int) and current < READ_CHUNK_BYTES:
        tcp_server.MAX_RECV = READ_CHUNK_BYTES


def serve(
    *,
    loader: Callable[[], Policy],
    config: ServerConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
) -> int:
    """Run the server in the foreground until SIGINT/SIGTERM; returns the exit code.

    The port opens at once (``/health`` answers ``loading``) while ``loader`` runs in the
    inference thread; a failed load stops the server with exit code 1 so a supervisor
    (systemd, docker) notices instead of a server that never becomes ready.
    """
    import signal

    from hypercorn.asyncio import serve as hypercorn_serve

    app = create_app(loader=loader, config=config)
    worker: InferenceWorker = app.state.worker

    async def run() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def stop_on_failure() -> None:  # called from the inference thread
            loop.call_soon_threadsafe(stop.set)

        worker.on_load_failure = stop_on_failure
        hc = hypercorn_config(config, host, port, log_level)
        await hypercorn_serve(app, hc, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    asyncio.run(run())
    if worker.status == "failed":
        LOG.error("the policy failed to load: %s", worker.error)
        return 1
    return 0
