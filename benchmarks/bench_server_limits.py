# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Memory and availability of ``openvla-ros serve`` under hostile load (docs/serving.md).

1. Peak RSS of the server process while N clients upload large bodies at once: the in-flight
   limit (``--max-queue + --max-batch``) bounds it, the rest get 503 before their body is read.
2. Silent + slowloris sockets: ``/health`` and ``/act`` latency during the attack, and how long
   until the server has closed every attacking socket (``--idle-timeout-s``).

    python benchmarks/bench_server_limits.py [--clients 40] [--side 2048] [--sockets 256]
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import json_numpy
import numpy as np
import requests


def _vm_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(ckpt: Path, port: int, idle_s: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "openvla_ros.cli", "--log-level", "WARNING", "serve",
         "--checkpoint", str(ckpt), "--precision", "fp32", "--device", "cpu",
         "--port", str(port), "--idle-timeout-s", str(idle_s)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if requests.get(url + "/health", timeout=1).json().get("status") == "ready":
                return proc
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not become ready")


def _uploads(url: str, pid: int, clients: int, side: int) -> None:
    image = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    body = json_numpy.dumps({"image": image, "instruction": "go", "unnorm_key": "bridge_orig"})
    before = _vm_mib(pid, "VmRSS")
    start = threading.Barrier(clients)

    def one(_: int) -> int:
        start.wait()
        try:
            return requests.post(url + "/v1/act", data=body, timeout=300).status_code
        except requests.ConnectionError:  # refused early and closed while we still sent
            return -1

    with ThreadPoolExecutor(clients) as pool:
        codes = list(pool.map(one, range(clients)))
    peak = _vm_mib(pid, "VmHWM")
    mib = len(body) / 2**20
    print(f"uploads: {clients} clients x {mib:.1f} MiB bodies: "
          f"{codes.count(200)} x 200, {codes.count(503)} x 503, {codes.count(-1)} x closed "
          f"while sending; server RSS {before:.0f} MiB "
          f"before, peak {peak:.0f} MiB (+{peak - before:.0f} MiB = "
          f"{(peak - before) / mib:.1f} bodies)")  # fmt: skip


def _attack(url: str, port: int, sockets: int, idle_s: float) -> None:
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(sockets)]
    loris = [socket.create_connection(("127.0.0.1", port)) for _ in range(sockets // 4)]
    for s in silent + loris:
        s.settimeout(0.01)
    stop = threading.Event()

    def trickle() -> None:
        head = b"POST /act HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 8192
        for i in range(len(head)):
            if stop.is_set():
                return
            for s in loris:
                with contextlib.suppress(OSError):
                    s.send(head[i : i + 1])
            stop.wait(0.5)

    threading.Thread(target=trickle, daemon=True).start()
    image = np.zeros((224, 224, 3), np.uint8)
    body = json_numpy.dumps({"image": image, "instruction": "go", "unnorm_key": "bridge_orig"})
    t0 = time.monotonic()
    health, act, open_left = [], [], []
    while time.monotonic() - t0 < idle_s + 3:
        t = time.perf_counter()
        ok_h = requests.get(url + "/health", timeout=5).status_code == 200
        health.append((time.perf_counter() - t) * 1e3 if ok_h else float("inf"))
        t = time.perf_counter()
        ok_a = requests.post(url + "/v1/act", data=body, timeout=30).status_code == 200
        act.append((time.perf_counter() - t) * 1e3 if ok_a else float("inf"))
        alive = 0
        for s in silent + loris:
            try:
                alive += s.recv(1) != b""
            except TimeoutError:
                alive += 1
            except OSError:
                pass
        open_left.append((time.monotonic() - t0, alive))
    stop.set()
    for s in silent + loris:
        s.close()
    closed_at = next((t for t, n in open_left if n == 0), None)
    print(f"attack: {sockets} silent + {sockets // 4} slowloris sockets, idle timeout {idle_s:g} s:"
          f" /health median {statistics.median(health):.1f} ms (max {max(health):.1f}), "
          f"/v1/act median {statistics.median(act):.1f} ms (max {max(act):.1f}); all attacking "
          f"sockets closed by the server after "
          f"{'never' if closed_at is None else f'{closed_at:.1f} s'}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--side", type=int, default=2048, help="upload image side (px)")
    parser.add_argument("--sockets", type=int, default=256)
    parser.add_argument("--idle-timeout-s", type=float, default=3.0)
    parser.add_argument("--no-attack", action="store_true", help="only the upload measurement")
    args = parser.parse_args()
    from openvla_ros.model.make_checkpoint import write_small_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = write_small_checkpoint(Path(tmp) / "ckpt", seed=0)
        port = _free_port()
        proc = _start(ckpt, port, args.idle_timeout_s)
        try:
            url = f"http://127.0.0.1:{port}"
            if not args.no_attack:
                _attack(url, port, args.sockets, args.idle_timeout_s)
            _uploads(url, proc.pid, args.clients, args.side)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
