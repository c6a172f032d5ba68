# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""A real server around the real model with faults injected by instruction prefix.

Used by the queue / timeout / error tests (``python -m test.serving.fault_server``):

- ``slow ...``: sleeps :data:`SLOW_S` seconds before inferring (a busy GPU).
- ``crash ...``: the policy raises RuntimeError (a model bug).
- ``nan ...``: the policy returns a NaN action (a numerically broken model).

Everything else goes straight to :class:`OpenVLAPolicy`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from openvla_ros.policy.base import Policy, PolicyResult
from openvla_ros.serving.cli import read_token
from openvla_ros.serving.server import ServerConfig, serve

SLOW_S = 1.0


class FaultInjectingPolicy:
    """Wraps a real policy; see the module docstring for the instruction prefixes."""

    def __init__(self, inner: Policy) -> None:
        self.inner = inner

    def predict(
        self, image: np.ndarray, instruction: str, unnorm_key: str | None = None
    ) -> PolicyResult:
        if instruction.startswith("slow"):
            time.sleep(SLOW_S)
        if instruction.startswith("crash"):
            raise RuntimeError("injected model failure")
        result = self.inner.predict(image, instruction, unnorm_key)
        if instruction.startswith("nan"):
            return dataclasses.replace(result, action=np.full(7, np.nan))
        return result

    def reset(self) -> None:
        self.inner.reset()

    def info(self) -> dict[str, Any]:
        return {**self.inner.info(), "wrapper": "fault-injecting (tests)"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-file", type=Path, required=True)
    parser.add_argument("--max-queue", type=int, default=1)
    parser.add_argument("--idle-timeout-s", type=float, default=10.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)

    def load() -> Policy:
        from openvla_ros.model.inference import OpenVLAPolicy

        inner = OpenVLAPolicy.from_checkpoint(args.checkpoint, precision="fp32", device="cpu")
        return FaultInjectingPolicy(inner)

    config = ServerConfig(
        token=read_token(args.token_file),
        max_queue=args.max_queue,
        legacy_errors=True,
        idle_timeout_s=args.idle_timeout_s,
    )
    return serve(loader=load, config=config, port=args.port)


if __name__ == "__main__":
    sys.exit(main())
