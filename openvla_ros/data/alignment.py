# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Causal as-of sampling of several timestamped streams on a fixed-rate grid.

The grid starts at ``t0`` (the first camera frame of an episode) and ticks every ``period``.
For grid time ``t`` each stream contributes its newest message stamped at or before ``t``
(never a later one: causal, what a policy running at ``t`` could have seen). Its *staleness* is
``t - stamp``. Past ``warn_factor x period`` the point is counted as stale-warned for that stream;
past ``drop_factor x period`` (or with no message at all) the point is dropped.

A grid point is final once every stream has a message stamped after ``t`` (per-topic order
makes the as-of choice final) or once the newest stamp seen on any stream is
``drop_factor x period`` past ``t`` (a stalled stream cannot hold the recording up). Both
rules depend only on stamps and per-stream order, so a live recording and a bag of the same
run sample the same frames. All times are integer nanoseconds (no float drift on the grid).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from openvla_ros.errors import DatasetError

__all__ = ["AsOfAligner", "GridPoint", "StreamStats"]


@dataclass
class StreamStats:
    """Per-stream counters of one episode."""

    received: int = 0
    out_of_order: int = 0
    stale_warned: int = 0
    dropped_points: int = 0
    max_staleness_s: float = 0.0
    sum_staleness_s: float = 0.0
    sampled: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able counters (mean staleness over sampled points)."""
        return {
            "received": self.received,
            "out_of_order": self.out_of_order,
            "stale_warned": self.stale_warned,
            "dropped_points": self.dropped_points,
            "max_staleness_s": round(self.max_staleness_s, 6),
            "mean_staleness_s": round(self.sum_staleness_s / max(self.sampled, 1), 6),
        }


@dataclass(frozen=True)
class GridPoint:
    """One grid time: the as-of value of each stream, or why the point was dropped."""

    k: int
    t_ns: int
    values: dict[str, Any]
    stamps_ns: dict[str, int]
    dropped: str | None = None


@dataclass
class _Stream:
    stamps: list[int] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    stats: StreamStats = field(default_factory=StreamStats)


class AsOfAligner:
    """See module doc. ``push`` messages per stream, ``poll`` final grid points.

    Args:
        streams: stream names (all required).
        period_s: grid period (1 / control rate).
        warn_factor: staleness multiple of the period that is counted as a warning.
        drop_factor: staleness multiple that drops the point.
    """

    def __init__(
        self,
        streams: Sequence[str],
        period_s: float,
        warn_factor: float = 2.0,
        drop_factor: float = 4.0,
    ) -> None:
        if not streams:
            raise DatasetError("alignment needs at least one stream")
        if not (period_s > 0 and 0 < warn_factor <= drop_factor):
            raise DatasetError(
                f"bad alignment settings: period {period_s} s, warn x{warn_factor}, "
                f"drop x{drop_factor} (need period > 0 and 0 < warn <= drop)"
            )
        self.period_ns = round(period_s * 1e9)
        self.warn_ns = round(warn_factor * self.period_ns)
        self.drop_ns = round(drop_factor * self.period_ns)
        self._names = list(streams)
        self._streams = {s: _Stream() for s in streams}
        self._t0: int | None = None
        self._k = 0
        self._newest = -1

    @property
    def started(self) -> bool:
        """Whether the grid has an origin."""
        return self._t0 is not None

    @property
    def t0_ns(self) -> int | None:
        """Grid origin (None before :meth:`start`)."""
        return self._t0

    @property
    def next_t_ns(self) -> int | None:
        """Time of the next grid point (None before :meth:`start`)."""
        return None if self._t0 is None else self._t0 + self._k * self.period_ns

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per-stream counters."""
        return {s: st.stats.as_dict() for s, st in self._streams.items()}

    def start(self, t0_ns: int) -> None:
        """Put the grid origin at ``t0_ns`` (messages older than one drop window are kept)."""
        self._t0 = int(t0_ns)
        self._k = 0

    def push(self, stream: str, stamp_ns: int, value: Any) -> bool:
        """Add a message; False (counted) when not newer than the stream's last one."""
        st = self._streams[stream]
        st.stats.received += 1
        if st.stamps and stamp_ns <= st.stamps[-1]:
            st.stats.out_of_order += 1
            return False
        st.stamps.append(int(stamp_ns))
        st.values.append(value)
        self._newest = max(self._newest, int(stamp_ns))
        if self._t0 is None:
            # Before the grid starts only the last drop window can matter for the first point.
            keep = bisect.bisect_left(st.stamps, int(stamp_ns) - self.drop_ns)
            del st.stamps[:keep]
            del st.values[:keep]
        return True

    def poll(self) -> list[GridPoint]:
        """Grid points that became final (see module doc), in order."""
        out: list[GridPoint] = []
        while self._t0 is not None:
            t = self._t0 + self._k * self.period_ns
            settled = all(st.stamps and st.stamps[-1] > t for st in self._streams.values())
            if not (settled or self._newest >= t + self.drop_ns):
                break
            out.append(self._emit(t))
        return out

    def flush(self, end_ns: int) -> list[GridPoint]:
        """Finalise every remaining grid point up to ``end_ns`` (the episode's end)."""
        out = self.poll()
        while self._t0 is not None and self._t0 + self._k * self.period_ns <= end_ns:
            out.append(self._emit(self._t0 + self._k * self.period_ns))
        return out

    def _emit(self, t: int) -> GridPoint:
        values: dict[str, Any] = {}
        stamps: dict[str, int] = {}
        dropped: list[str] = []
        for name in self._names:
            st = self._streams[name]
            i = bisect.bisect_right(st.stamps, t) - 1
            if i < 0:
                dropped.append(f"{name}: no message yet")
                st.stats.dropped_points += 1
                continue
            age = t - st.stamps[i]
            st.stats.sampled += 1
            st.stats.sum_staleness_s += age / 1e9
            st.stats.max_staleness_s = max(st.stats.max_staleness_s, age / 1e9)
            if age > self.drop_ns:
                dropped.append(f"{name}: {age / 1e9:.3f} s stale")
                st.stats.dropped_points += 1
            elif age > self.warn_ns:
                st.stats.stale_warned += 1
            values[name] = st.values[i]
            stamps[name] = st.stamps[i]
            # Keep the chosen message (it may serve the next point too), forget older ones.
            del st.stamps[:i]
            del st.values[:i]
        point = GridPoint(self._k, t, values, stamps, "; ".join(dropped) or None)
        self._k += 1
        return point
