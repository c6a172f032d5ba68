# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""``openvla-ros serve``: run the inference server for one checkpoint.

Only argparse and the stdlib at import time; torch, FastAPI and hypercorn load in the handler.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import stat
from pathlib import Path
from typing import Any

from openvla_ros.errors import ConfigError

LOG = logging.getLogger(__name__)

#: Environment variable holding the bearer token when no --token-file is given.
TOKEN_ENV = "OPENVLA_ROS_TOKEN"


def register(subparsers: Any) -> None:
    """Add the ``serve`` subcommand."""
    p = subparsers.add_parser(
        "serve",
        help="serve a checkpoint over HTTP (OpenVLA-compatible POST /act)",
        description=(
            "Serve an OpenVLA checkpoint over HTTP: OpenVLA's POST /act contract, plus "
            "POST /v1/act, GET /health and GET /info. Binds to 127.0.0.1 unless --host says "
            f"otherwise; set a bearer token with --token-file or ${TOKEN_ENV} before exposing it."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    model = p.add_argument_group("model")
    model.add_argument("--checkpoint", required=True, type=Path, help="checkpoint directory")
    model.add_argument(
        "--adapter",
        default=None,
        type=Path,
        help="LoRA adapter directory (finetune --save-adapter) stacked on --checkpoint",
    )
    model.add_argument(
        "--precision",
        default="bf16",
        choices=["fp32", "bf16", "fp16", "int8", "int4"],
        help="weights/compute precision of the language model",
    )
    model.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    model.add_argument(
        "--attn-implementation",
        default="sdpa",
        choices=["sdpa", "eager", "flash_attention_2"],
        help="attention kernel of the language model",
    )
    model.add_argument(
        "--preprocess",
        default="none",
        help="image preset before the processor: none, bridge, center_crop, libero, or '+'-joined",
    )
    model.add_argument(
        "--decode",
        default="eager",
        choices=["eager", "static", "compiled"],
        help="decode path: eager (dynamic KV cache), static (preallocated KV cache) or compiled "
        "(static + torch.compile, CUDA graphs on GPU; compiled at start-up); same tokens",
    )
    model.add_argument(
        "--default-unnorm-key",
        default=None,
        help="statistics key for requests that name none; unset: the checkpoint's only key",
    )
    net = p.add_argument_group("network and security")
    net.add_argument(
        "--host", default="127.0.0.1", help="address to bind; 0.0.0.0 exposes it to the network"
    )
    net.add_argument("--port", type=int, default=8000, help="TCP port")
    net.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help=f"file holding the bearer token; unset: ${TOKEN_ENV} if set, else no auth",
    )
    lim = p.add_argument_group("limits")
    lim.add_argument(
        "--max-queue",
        type=int,
        default=8,
        help="requests that may wait while one runs (0: serve only when idle); more get 503 + "
        "Retry-After",
    )
    lim.add_argument(
        "--max-wait-s",
        type=float,
        default=30.0,
        help="a request still queued after this many seconds gets 503 instead of running",
    )
    lim.add_argument(
        "--max-batch",
        type=int,
        default=1,
        help="batch up to N queued requests (same unnorm key) into one forward pass; 1 = off",
    )
    lim.add_argument(
        "--max-image-side", type=int, default=2048, help="largest accepted image side (pixels)"
    )
    lim.add_argument(
        "--max-body-mb", type=float, default=20.0, help="largest accepted request body (MiB)"
    )
    lim.add_argument(
        "--idle-timeout-s",
        type=float,
        default=10.0,
        help="close a connection that sends no complete request head for this long (idle "
        "keep-alive, silent or slowloris sockets) or stalls this long mid-body",
    )
    p.add_argument(
        "--legacy-errors",
        action="store_true",
        help='answer /act errors like the official server (HTTP 200 with body "error")',
    )
    p.set_defaults(func=_serve)


def read_token(token_file: Path | None) -> str | None:
    """The bearer token from ``token_file`` or ``$OPENVLA_ROS_TOKEN``; ``None`` when neither.

    Raises:
        ConfigError: unreadable or empty file, or a token with whitespace inside.
    """
    if token_file is not None:
        try:
            mode = token_file.stat().st_mode
            token = token_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"--token-file {token_file}: {exc.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            LOG.warning("token file %s is readable by other users; chmod 600 it", token_file)
        source = str(token_file)
    else:
        env = os.environ.get(TOKEN_ENV)
        if env is None:
            return None
        token = env.strip()
        source = f"${TOKEN_ENV}"
    if not token:
        raise ConfigError(f"the token from {source} is empty")
    if any(c.isspace() for c in token) or not token.isprintable():
        raise ConfigError(f"the token from {source} contains whitespace or control characters")
    return token


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve(args: argparse.Namespace) -> int:
    from openvla_ros.serving.server import ServerConfig, serve

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port} is outside 0..65535")
    if args.max_queue < 0 or args.max_batch < 1 or args.max_image_side < 1:
        raise ConfigError(
            "--max-queue must be >= 0 (0: serve only when idle), --max-batch and "
            "--max-image-side >= 1"
        )
    if args.max_body_mb <= 0 or args.max_wait_s <= 0:
        raise ConfigError("--max-body-mb and --max-wait-s must be > 0")
    if not 0.5 <= args.idle_timeout_s <= 3600:
        raise ConfigError("--idle-timeout-s must be within 0.5..3600 s")
    if not args.checkpoint.is_dir():
        raise ConfigError(f"--checkpoint {args.checkpoint}: not a directory")
    token = read_token(args.token_file)
    if token is None and not _is_loopback(args.host):
        LOG.warning(
            "serving on %s without a token: anyone who can reach this port can use the model "
            "(set --token-file or $%s)",
            args.host,
            TOKEN_ENV,
        )
    config = ServerConfig(
        token=token,
        max_queue=args.max_queue,
        max_wait_s=args.max_wait_s,
        max_batch=args.max_batch,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_image_side=args.max_image_side,
        legacy_errors=args.legacy_errors,
        idle_timeout_s=args.idle_timeout_s,
    )

    def load() -> Any:
        from openvla_ros.train.adapter import policy_loader

        return policy_loader(args.adapter)(
            args.checkpoint,
            precision=args.precision,
            device=args.device,
            attn_implementation=args.attn_implementation,
            preprocess=args.preprocess,
            default_unnorm_key=args.default_unnorm_key,
            decode=args.decode,
        )

    LOG.info(
        "serving %s on http://%s:%d (auth %s)",
        args.checkpoint,
        args.host,
        args.port,
        "on" if token else "off",
    )
    log_level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    return serve(loader=load, config=config, host=args.host, port=args.port, log_level=log_level)
