# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""ROS node benchmark: what the nodes cost beyond the model.

1. Node overhead per step, in-process, excluding the model forward: decode the camera
   message, OpenVLA preprocessing (preset + processor), build and publish the DeltaAction.
2. Camera-to-command latency across processes with a zero-time scripted policy: this
   process publishes camera frames (and plays the robot: EE pose, following each target);
   the policy node and the executor node run as separate processes; latency = receipt of
   the target PoseStamped here minus the capture stamp of the frame it came from (carried by
   the ExecutorState published with it), plus camera -> DeltaAction.
3. CPU use of the policy and executor processes (user + system time from /proc) while the
   camera runs at 30 Hz.

Example:
    python benchmarks/bench_nodes.py                      # 640x480 rgb8, 30 Hz, 15 s
    python benchmarks/bench_nodes.py --width 224 --height 224 --duration 30 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


#: A Fast DDS profile with a larger shared-memory segment (docs/nodes.md explains why).
FASTDDS_SHM_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<profiles xmlns="http://www.eprosima.com">
  <transport_descriptors>
    <transport_descriptor>
      <transport_id>shm_large</transport_id>
      <type>SHM</type>
      <segment_size>{size}</segment_size>
    </transport_descriptor>
    <transport_descriptor>
      <transport_id>udp</transport_id>
      <type>UDPv4</type>
    </transport_descriptor>
  </transport_descriptors>
  <participant profile_name="openvla_ros_shm_large" is_default_profile="true">
    <rtps>
      <userTransports>
        <transport_id>shm_large</transport_id>
        <transport_id>udp</transport_id>
      </userTransports>
      <useBuiltinTransports>false</useBuiltinTransports>
    </rtps>
  </participant>
</profiles>
"""


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def _summary(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1e3 for v in values_s]
    return {
        "n": len(ms),
        "median_ms": statistics.median(ms) if ms else float("nan"),
        "p95_ms": _pct(ms, 0.95),
        "max_ms": max(ms) if ms else float("nan"),
    }


def _frame(width: int, height: int) -> Any:
    import numpy as np

    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx % 256, yy % 256, (xx + yy) % 256], axis=-1).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# 1. in-process overhead
# ---------------------------------------------------------------------------------------------


def bench_overhead(width: int, height: int, runs: int) -> dict[str, Any]:
    """Per-step node work without the model forward, timed stage by stage."""
    import numpy as np
    import rclpy
    from baselines import gather_decode_rgb8, official_processor, previous_processor
    from sensor_msgs.msg import CompressedImage, Image

    from openvla_ros.image_codec import rgb_to_image_fields, rgb_to_jpeg
    from openvla_ros.model.preprocess import ProcessorSpec, apply_preset, parse_preset
    from openvla_ros.model.preprocess import process_image as processor
    from openvla_ros.msg import DeltaAction
    from openvla_ros.nodes.common import ACTION_QOS, ns_to_stamp
    from openvla_ros.nodes.policy_node import decode_frame

    rgb = _frame(width, height)
    raw = Image(**rgb_to_image_fields(rgb))
    bgr = Image(**{**rgb_to_image_fields(rgb[:, :, ::-1].copy()), "encoding": "bgr8"})
    jpeg = CompressedImage(format="jpeg", data=rgb_to_jpeg(rgb))
    spec = ProcessorSpec.default(fused=True)
    presets = {name: parse_preset(name) for name in ("none", "bridge")}

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("bench_overhead", context=ctx)
    sink = rclpy.create_node("bench_sink", context=ctx)
    got: list[Any] = []
    sink.create_subscription(DeltaAction, "/bench/delta_action", got.append, ACTION_QOS)
    pub = node.create_publisher(DeltaAction, "/bench/delta_action", ACTION_QOS)
    action = [0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]

    def publish() -> None:
        msg = DeltaAction()
        msg.header.stamp = ns_to_stamp(time.time_ns())
        msg.header.frame_id = "base_link"
        msg.step, msg.episode_id = 1, 1
        msg.instruction = "put the carrot in the pot"
        msg.unnorm_key = "bridge_orig"
        msg.action = action
        msg.normalized_action = action
        msg.inference_latency = 0.0
        msg.observation_age = 0.0
        pub.publish(msg)

    raw_bytes = np.frombuffer(raw.data, dtype=np.uint8)
    stages: dict[str, Any] = {
        "baseline decode rgb8 (channel gather, before the fix)": lambda: gather_decode_rgb8(
            raw_bytes, height, width
        ),
        "baseline preprocessing (official algorithm)": lambda: official_processor(
            rgb, spec.means, spec.stds
        ),
        "baseline preprocessing (previous processor, 1c2c6f1)": lambda: previous_processor(
            rgb, spec.means, spec.stds
        ),
        "decode rgb8": lambda: decode_frame(raw),
        "decode bgr8": lambda: decode_frame(bgr),
        "decode jpeg": lambda: decode_frame(jpeg),
        "preprocess (preset none + processor)": lambda: processor(
            apply_preset(rgb, presets["none"]), spec
        ),
        "preprocess (preset bridge + processor)": lambda: processor(
            apply_preset(rgb, presets["bridge"]), spec
        ),
        "build + publish DeltaAction (1 local subscriber)": publish,
        "whole step in one loop: decode rgb8 + preprocess + publish": lambda: (
            processor(apply_preset(decode_frame(raw), presets["none"]), spec),
            publish(),
        ),
    }
    out: dict[str, Any] = {}
    try:
        for name, fn in stages.items():
            out[name] = _timed(fn, runs)
    finally:
        node.destroy_node()
        sink.destroy_node()
        rclpy.try_shutdown(context=ctx)
    base = (
        out["decode rgb8"]["median_ms"]
        + out["build + publish DeltaAction (1 local subscriber)"]["median_ms"]
    )
    out["total rgb8, preset none (median sum)"] = {
        "median_ms": base + out["preprocess (preset none + processor)"]["median_ms"]
    }
    old_decode = out["baseline decode rgb8 (channel gather, before the fix)"]["median_ms"]
    publish_ms = out["build + publish DeltaAction (1 local subscriber)"]["median_ms"]
    out["baseline total rgb8, previous code (median sum)"] = {
        "median_ms": old_decode
        + publish_ms
        + out["baseline preprocessing (previous processor, 1c2c6f1)"]["median_ms"]
    }
    return out


def _timed(fn: Any, runs: int) -> dict[str, float]:
    for _ in range(5):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return _summary(times)


# ---------------------------------------------------------------------------------------------
# 2 + 3. processes over DDS
# ---------------------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def _call(node: Any, srv_type: Any, name: str, request: Any) -> Any:
    client = node.create_client(srv_type, name)
    if not client.wait_for_service(timeout_sec=30.0):
        raise RuntimeError(f"service {name} not available")
    time.sleep(0.2)  # let the response path match too (a fresh client's first call can vanish)
    future = client.call_async(request)
    deadline = time.monotonic() + 10
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.005)
    return client, future.result()


def _estop_latency(node: Any, states: list[Any], lock: threading.Lock, reps: int) -> list[float]:
    """Publish e-stop true, wait for the latched state; release + enable; repeat."""
    from std_msgs.msg import Bool
    from std_srvs.srv import SetBool, Trigger

    from openvla_ros.nodes.common import ESTOP_QOS

    pub = node.create_publisher(Bool, "/openvla/estop", ESTOP_QOS)
    deadline = time.monotonic() + 10
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    release, _ = _call(node, Trigger, "/openvla_executor/release_estop", Trigger.Request())
    enable, _ = _call(node, SetBool, "/openvla_executor/enable", SetBool.Request(data=True))
    out = []
    for _ in range(reps):
        t0 = time.time_ns()
        pub.publish(Bool(data=True))
        end = time.monotonic() + 5
        hit = None
        while hit is None and time.monotonic() < end:
            with lock:
                hit = next((rx for rx, _, _, latched in states if latched and rx > t0), None)
            time.sleep(0.0005)
        if hit is not None:
            out.append((hit - t0) / 1e9)
        for client, req in ((release, Trigger.Request()), (enable, SetBool.Request(data=True))):
            fut = client.call_async(req)
            end = time.monotonic() + 5
            while not fut.done() and time.monotonic() < end:
                time.sleep(0.002)
        time.sleep(0.1)
    return out


def bench_latency(
    width: int, height: int, hz: float, duration: float, estop_reps: int = 20
) -> dict[str, Any]:
    """Camera -> DeltaAction -> target pose across three processes; CPU of the two nodes."""
    import rclpy
    from geometry_msgs.msg import PoseStamped
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image
    from std_msgs.msg import String
    from std_srvs.srv import SetBool

    from openvla_ros.image_codec import rgb_to_image_fields
    from openvla_ros.msg import DeltaAction, ExecutorState
    from openvla_ros.nodes.common import (
        ACTION_QOS,
        COMMAND_QOS,
        POSE_QOS,
        SENSOR_QOS,
        STATE_QOS,
        ns_to_stamp,
        stamp_to_ns,
    )

    env = {
        **os.environ,
        "ROS_DOMAIN_ID": os.environ.get("ROS_DOMAIN_ID", str(150 + os.getpid() % 60)),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_nodes_{os.getpid()}"
    logs.mkdir(parents=True, exist_ok=True)

    def start(module: str, name: str, *params: str) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", module, "--ros-args"]
        for p in params:
            args += ["-p", p]
        log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 (lives as long as the process)
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)

    policy = start(
        "openvla_ros.nodes.policy_node",
        "policy",
        "policy:=scripted",
        "scripted.actions:=[0.0,0.0,0.0,0.0,0.0,0.0,1.0]",
        f"control_hz:={max(hz, 1.0) * 2:.1f}",
        "stats_period_s:=5.0",
    )
    executor = start(
        "openvla_ros.nodes.executor_node",
        "executor",
        "stats_period_s:=5.0",
        "limits.max_steps_per_episode:=1000000",
    )

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("bench_probe", context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    lock = threading.Lock()
    actions: list[tuple[int, int]] = []  # (receive ns, frame stamp ns)
    targets: list[int] = []  # receive ns
    states: list[tuple[int, int, int, bool]] = []  # (receive ns, action stamp, outcome, e-stop)
    pose = [(0.4, 0.0, 0.25), (1.0, 0.0, 0.0, 0.0)]

    def on_action(m: DeltaAction) -> None:
        with lock:
            actions.append((time.time_ns(), stamp_to_ns(m.header.stamp)))

    def on_target(m: PoseStamped) -> None:
        with lock:
            targets.append(time.time_ns())
        p, q = m.pose.position, m.pose.orientation
        pose[0], pose[1] = (p.x, p.y, p.z), (q.x, q.y, q.z, q.w)

    def on_state(m: ExecutorState) -> None:
        with lock:
            states.append((time.time_ns(), stamp_to_ns(m.action_stamp), m.outcome, m.estop_latched))

    node.create_subscription(DeltaAction, "/openvla/delta_action", on_action, ACTION_QOS)
    node.create_subscription(PoseStamped, "/openvla/target_pose", on_target, COMMAND_QOS)
    node.create_subscription(ExecutorState, "/openvla/executor_state", on_state, STATE_QOS)
    cam = node.create_publisher(Image, "/camera/image_raw", SENSOR_QOS)
    ee = node.create_publisher(PoseStamped, "/openvla/ee_pose", POSE_QOS)
    instr = node.create_publisher(String, "/instruction", 10)
    stop = threading.Event()
    spin = threading.Thread(
        target=lambda: [ex.spin_once(timeout_sec=0.05) for _ in iter(stop.is_set, True)],
        daemon=True,
    )
    spin.start()
    fields = rgb_to_image_fields(_frame(width, height))

    def robot() -> None:
        while not stop.is_set():
            m = PoseStamped()
            m.header.stamp = ns_to_stamp(time.time_ns())
            m.header.frame_id = "base_link"
            (m.pose.position.x, m.pose.position.y, m.pose.position.z) = pose[0]
            o = m.pose.orientation
            o.x, o.y, o.z, o.w = pose[1]
            ee.publish(m)
            stop.wait(0.02)

    threading.Thread(target=robot, daemon=True).start()
    result: dict[str, Any] = {}
    try:
        for name in ("openvla_policy", "openvla_executor"):
            client = node.create_client(SetBool, f"/{name}/enable")
            if not client.wait_for_service(timeout_sec=60.0):
                raise RuntimeError(f"{name} did not start; see {logs}")
            time.sleep(0.2)
            future = client.call_async(SetBool.Request(data=True))
            deadline = time.monotonic() + 10
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.01)
        deadline = time.monotonic() + 10
        while instr.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        instr.publish(String(data="put the carrot in the pot"))

        period = 1.0 / hz
        cam_stop = threading.Event()
        sent = [0]

        def camera() -> None:
            next_t = time.monotonic()
            while not cam_stop.is_set():
                img = Image(**fields)
                img.header.stamp = ns_to_stamp(time.time_ns())
                img.header.frame_id = "camera"
                cam.publish(img)
                sent[0] += 1
                next_t += period
                cam_stop.wait(max(0.0, next_t - time.monotonic()))

        cam_thread = threading.Thread(target=camera, daemon=True)
        cam_thread.start()
        time.sleep(2.0)  # warm-up: discovery, first episode
        cpu0 = {"policy": _cpu_seconds(policy.pid), "executor": _cpu_seconds(executor.pid)}
        wall0 = time.monotonic()
        with lock:
            actions.clear()
            targets.clear()
            states.clear()
            sent[0] = 0
        time.sleep(duration)
        wall = time.monotonic() - wall0
        cpu = {
            "policy": (_cpu_seconds(policy.pid) - cpu0["policy"]) / wall,
            "executor": (_cpu_seconds(executor.pid) - cpu0["executor"]) / wall,
        }
        n_sent = sent[0]
        time.sleep(0.3)
        with lock:
            a, t, s = list(actions), list(targets), list(states)
        cam_to_action = [(rx - stamp) / 1e9 for rx, stamp in a]
        # Pair each target with the ExecutorState the executor published right after it.
        executed = [(rx, stamp) for rx, stamp, outcome, _ in s if outcome in (0, 1)]
        cam_to_cmd = []
        j = 0
        for rx_target in t:
            while j < len(executed) and executed[j][0] < rx_target:
                j += 1
            if j < len(executed):
                cam_to_cmd.append((rx_target - executed[j][1]) / 1e9)
                j += 1
        result = {
            "frames_sent": n_sent,
            "actions": len(a),
            "targets": len(t),
            "camera_to_delta_action": _summary(cam_to_action),
            "camera_to_target_pose": _summary(cam_to_cmd),
            "cpu_percent_of_one_core": {k: 100.0 * v for k, v in cpu.items()},
        }
        result["estop_topic_to_latched_state"] = _summary(
            _estop_latency(node, states, lock, estop_reps)
        )
        cam_stop.set()
    finally:
        stop.set()
        for proc in (policy, executor):
            proc.send_signal(2)
        for proc in (policy, executor):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the numbers."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--hz", type=float, default=30.0, help="camera rate")
    ap.add_argument("--duration", type=float, default=15.0, help="measured seconds (after 2 s)")
    ap.add_argument("--runs", type=int, default=200, help="in-process repetitions per stage")
    ap.add_argument("--estop-reps", type=int, default=20, help="e-stop latency repetitions")
    ap.add_argument(
        "--shm-segment-mb",
        type=int,
        default=0,
        help="Fast DDS shared-memory segment size for every process (0: Fast DDS defaults, "
        "512 kB, which 640x480 rgb8 frames exceed)",
    )
    ap.add_argument(
        "--overhead-only", action="store_true", help="only the in-process overhead (no DDS run)"
    )
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    if args.shm_segment_mb > 0:
        # Set before any participant exists, here and (inherited) in the node processes.
        profile = Path(os.environ.get("TMPDIR", "/tmp")) / f"fastdds_shm_{os.getpid()}.xml"
        profile.write_text(FASTDDS_SHM_PROFILE.format(size=args.shm_segment_mb * 1024 * 1024))
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)

    results: dict[str, Any] = {"frame": f"{args.width}x{args.height}", "camera_hz": args.hz}
    results["overhead"] = bench_overhead(args.width, args.height, args.runs)
    print(f"== node overhead per step, {args.width}x{args.height}, in-process (no model forward)")
    for name, r in results["overhead"].items():
        extra = f"  p95 {r['p95_ms']:.3f} ms" if "p95_ms" in r else ""
        print(f"  {name:58s} median {r['median_ms']:.3f} ms{extra}")
    if args.overhead_only:
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return 0
    results["shm_segment_mb"] = args.shm_segment_mb
    results["dds"] = bench_latency(args.width, args.height, args.hz, args.duration, args.estop_reps)
    d = results["dds"]
    print(
        f"== across processes, zero-time scripted policy, camera {args.hz:g} Hz, "
        f"{args.duration:g} s: {d['frames_sent']} frames, {d['actions']} actions, "
        f"{d['targets']} targets"
    )
    for key in ("camera_to_delta_action", "camera_to_target_pose", "estop_topic_to_latched_state"):
        r = d[key]
        print(
            f"  {key:28s} median {r['median_ms']:.2f} ms  p95 {r['p95_ms']:.2f} ms  "
            f"max {r['max_ms']:.2f} ms  (n={r['n']})"
        )
    for k, v in d["cpu_percent_of_one_core"].items():
        print(f"  CPU {k:10s} {v:.1f} % of one core")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
