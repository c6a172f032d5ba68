# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""As-of aligner: property tests against a brute-force as-of on random streams."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from openvla_ros.data.alignment import AsOfAligner

MS = 1_000_000


@st.composite
def streams(draw: st.DrawFn) -> dict[str, list[int]]:
    out = {}
    for name in ("camera", "pose"):
        gaps = draw(st.lists(st.integers(1, 400), min_size=1, max_size=40))
        t, stamps = 0, []
        for g in gaps:
            t += g * MS
            stamps.append(t)
        out[name] = stamps
    return out


@settings(max_examples=150, deadline=None)
@given(streams(), st.randoms(use_true_random=False))
def test_every_point_takes_the_newest_message_at_or_before_it(data, rnd) -> None:
    al = AsOfAligner(["camera", "pose"], period_s=0.2)
    t0 = data["camera"][0]
    al.start(t0)
    # Delivery with up to 300 ms of latency per message (less than the 800 ms drop window),
    # each stream in its own order (as DDS delivers a topic), streams interleaved by arrival.
    arrivals = []
    for name, stamps in data.items():
        last = 0
        for s in stamps:
            last = max(last, s + rnd.randrange(300) * MS)
            arrivals.append((last, name, s))
    arrivals.sort()
    points = []
    for _, name, stamp in arrivals:
        assert al.push(name, stamp, stamp)
        points += al.poll()
    points += al.flush(max(data["camera"]))
    assert [p.t_ns for p in points] == [t0 + k * 200 * MS for k in range(len(points))]
    assert points and points[-1].t_ns >= max(data["camera"]) - 200 * MS
    for p in points:
        for name, stamps in data.items():
            before = [s for s in stamps if s <= p.t_ns]
            if not before:
                assert name not in p.values and p.dropped and name in p.dropped
                continue
            assert p.values[name] == max(before)  # causal and the newest
            stale = p.t_ns - max(before) > 4 * 200 * MS
            assert (p.dropped is not None and f"{name}:" in p.dropped) == stale


def test_out_of_order_messages_are_refused_and_counted() -> None:
    al = AsOfAligner(["pose"], period_s=0.2)
    assert al.push("pose", 5 * MS, "a")
    assert not al.push("pose", 5 * MS, "dup")
    assert not al.push("pose", 4 * MS, "older")
    assert al.stats()["pose"]["out_of_order"] == 2
