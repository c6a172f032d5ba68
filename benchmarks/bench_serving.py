# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Remote inference throughput and latency: ``openvla-ros serve`` vs in-process.

Starts the real server (a subprocess, as users run it) on a free loopback port, then drives it
with 1, 2 and 4 concurrent :class:`RemotePolicy` clients (one thread each) and prints requests/s
and latency percentiles, plus the remote-over-in-process overhead at one client. With
``--max-batch 1 4`` it repeats the sweep with the server's dynamic batching on.

    .venv/bin/python benchmarks/bench_serving.py                 # tiny generated checkpoint
    .venv/bin/python benchmarks/bench_serving.py --checkpoint DIR --precision bf16 --device cuda

Numbers are wall-clock on this machine; server and clients share its CPU cores.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
# One torch thread for the server and for the in-process baseline: on a small shared CPU,
# intra-op threads fight the client threads and each other (10x slower p50 measured on 2 cores).
# The server subprocess inherits it. Set OMP_NUM_THREADS yourself to override.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from openvla_ros.serving.client import RemotePolicy  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentiles(samples_ms: list[float]) -> str:
    p50, p90, p99 = np.percentile(samples_ms, [50, 90, 99])
    return f"p50 {p50:7.2f}  p90 {p90:7.2f}  p99 {p99:7.2f} ms"


def _start_server(args: argparse.Namespace, checkpoint: Path, max_batch: int) -> tuple:
    port = _free_port()
    cmd = [
        sys.executable, "-m", "openvla_ros.cli", "--log-level", "WARNING", "serve",
        "--checkpoint", str(checkpoint), "--precision", args.precision, "--device", args.device,
        "--port", str(port), "--max-queue", "16", "--max-batch", str(max_batch),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    probe = RemotePolicy(url, timeout_s=2)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if probe.health().get("status") == "ready":
                return proc, url
        except Exception:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not become ready")


def _drive(url: str, clients: int, requests_per_client: int, image: np.ndarray, key: str) -> None:
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def worker(seed: int) -> None:
        remote = RemotePolicy(url, timeout_s=60)
        remote.predict(image, "warm up", key)  # connection + first-call costs off the clock
        barrier.wait()
        mine = []
        for i in range(requests_per_client):
            t0 = time.perf_counter()
            remote.predict(image, f"pick up object {seed} {i % 4}", key)
            mine.append(1e3 * (time.perf_counter() - t0))
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    rate = len(latencies) / elapsed
    print(f"  clients {clients}: {rate:7.1f} req/s   {_percentiles(latencies)}", flush=True)


_ZERO_TIME_SERVER = """
import sys
from openvla_ros.policy.scripted import ScriptedPolicy
from openvla_ros.serving.server import ServerConfig, serve
sys.exit(serve(loader=lambda: ScriptedPolicy([0.0] * 6 + [1.0], unnorm_key="bridge_orig"),
               config=ServerConfig(), port=int(sys.argv[1]), log_level="warning"))
"""


def _transport_only(args: argparse.Namespace, image: np.ndarray) -> None:
    """The remote path's own cost: a zero-time scripted policy behind the real server (its own
    process), so the latency is transport + validation + queue hand-off and nothing else."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", _ZERO_TIME_SERVER, str(port)], cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        probe = RemotePolicy(url, timeout_s=2)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if probe.health().get("status") == "ready":
                    break
            except Exception:
                time.sleep(0.1)
        print("transport only (zero-time scripted policy behind the real server):")
        for transport in args.transports:
            one, _, split = _one_client(url, transport, image, args, proc.pid)
            print(f"  transport {transport:5s} 1 client: {_percentiles(one)}\n{split}", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _one_client(
    url: str, transport: str, image: np.ndarray, args: argparse.Namespace, server_pid: int
) -> tuple[list[float], list[float], str]:
    """Sequential request latencies (ms) of one client using ``transport``, per request the
    latency minus the server-side model time, and a line saying where that added time goes."""
    remote = RemotePolicy(url, timeout_s=60, transport=transport)
    for _ in range(3):  # auto: the first answer carries the server's binary offer
        remote.predict(image, "warm up", args.unnorm_key)
    one, added, parse, handoff = [], [], [], []
    server_cpu0, client_cpu0 = _process_cpu_s(server_pid), time.thread_time()
    for i in range(args.requests):
        t0 = time.perf_counter()
        result = remote.predict(image, f"pick up object 0 {i % 4}", args.unnorm_key)
        one.append(1e3 * (time.perf_counter() - t0))
        timings = result.timings_ms
        # What the remote path adds to the very predict() the server ran: immune to the model's
        # own run-to-run noise on a shared machine.
        added.append(one[-1] - timings["model_total"])
        parse.append(timings["parse"])  # handler start -> frame parsed (body read included)
        handoff.append(timings["queue_and_infer"] - timings["model_total"])
    server_cpu = 1e3 * (_process_cpu_s(server_pid) - server_cpu0) / args.requests
    client_cpu = 1e3 * (time.thread_time() - client_cpu0) / args.requests
    rest = np.array(added) - np.array(parse) - np.array(handoff)
    split = (
        f"      added p50 split: server body read + parse {np.median(parse):.2f} ms, queue "
        f"hand-off to the model thread and back {np.median(handoff):.2f} ms, client + HTTP "
        f"framing + response {np.median(rest):.2f} ms\n"
        f"      CPU per request: client thread {client_cpu:.2f} ms, server process "
        f"{server_cpu:.2f} ms (model included; 10 ms clock ticks averaged)"
    )
    return one, added, split


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: tiny generated")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--requests", type=int, default=60, help="requests per client")
    parser.add_argument("--image", default="480x640", help="HxW of the camera frame sent")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--max-batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--unnorm-key", default="bridge_orig")
    parser.add_argument(
        "--transports",
        nargs="+",
        default=["json", "auto", "png"],
        help="client transports to time at one client (json = the json_numpy baseline; auto "
        "picks the raw binary form)",
    )
    args = parser.parse_args()

    height, width = (int(v) for v in args.image.split("x"))
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint
        if checkpoint is None:
            from openvla_ros.model.make_checkpoint import write_small_checkpoint

            checkpoint = write_small_checkpoint(Path(tmp) / "openvla-small", seed=0)
        print(f"checkpoint {checkpoint}  {args.precision} on {args.device}  image {width}x{height}")
        print(f"cpu cores {os.cpu_count()}  requests/client {args.requests}")

        from openvla_ros.model.inference import OpenVLAPolicy

        policy = OpenVLAPolicy.from_checkpoint(
            checkpoint, precision=args.precision, device=args.device
        )
        for _ in range(3):
            policy.predict(image, "warm up", args.unnorm_key)
        local = []
        for i in range(args.requests):
            t0 = time.perf_counter()
            policy.predict(image, f"pick up object 0 {i % 4}", args.unnorm_key)
            local.append(1e3 * (time.perf_counter() - t0))
        print(f"in-process: {1e3 / np.mean(local):7.1f} req/s   {_percentiles(local)}")
        _transport_only(args, image)
        del policy  # free the cores / GPU memory for the server

        for max_batch in args.max_batch:
            proc, url = _start_server(args, checkpoint, max_batch)
            try:
                print(f"server --max-batch {max_batch}:")
                for transport in args.transports:
                    one, added, split = _one_client(url, transport, image, args, proc.pid)
                    overhead = float(np.median(one) - np.median(local))
                    print(
                        f"  transport {transport:5s} 1 client: {_percentiles(one)}\n"
                        f"      remote overhead: p50 remote - p50 in-process {overhead:.2f} ms; "
                        f"per request (latency - server model time) p50 "
                        f"{np.median(added):.2f} ms, p90 {np.percentile(added, 90):.2f} ms",
                        flush=True,
                    )
                    print(split, flush=True)
                for clients in args.clients:
                    _drive(url, clients, args.requests, image, args.unnorm_key)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
