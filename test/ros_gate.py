# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""pytest plugin: with ``OPENVLA_ROS_REQUIRE_ROS=1`` a test skipped because rclpy or the
package's interface build is missing is a failure, not a skip.

``scripts/test.sh`` sets it: on the project's machines the ROS wheels and the message build
are part of the environment, so a broken interface build must fail CI rather than silently
skip the ~50 tests that run nodes over DDS. Developers without ROS run pytest directly (or set
the variable to 0). test/conftest.py imports the hooks; test/test_ros_gate.py runs them.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

#: The variable; "1" turns ROS skips into failures.
REQUIRE_ROS_ENV = "OPENVLA_ROS_REQUIRE_ROS"
#: Skip reasons (as the tests write them in ``pytest.importorskip(..., reason=...)``) that
#: mean the ROS/DDS half of the suite did not run.
ROS_SKIP_REASONS = ("rclpy not installed", "interfaces not built")


def _ros_skip_reason(report: Any) -> str | None:
    if not report.skipped or os.environ.get(REQUIRE_ROS_ENV, "0").strip() != "1":
        return None
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text if any(r in text for r in ROS_SKIP_REASONS) else None


def _fail(report: Any, reason: str) -> None:
    report.outcome = "failed"
    report.longrepr = (
        f"{REQUIRE_ROS_ENV}=1 and this needs ROS: {reason}. Rebuild the environment "
        "(bash scripts/setup_env.sh) or, on a machine without ROS, set "
        f"{REQUIRE_ROS_ENV}=0."
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    """A test skipped for a missing ROS piece fails under ``OPENVLA_ROS_REQUIRE_ROS=1``."""
    outcome = yield
    report = outcome.get_result()
    reason = _ros_skip_reason(report)
    if reason is not None:
        _fail(report, reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: Any) -> Any:
    """The same for a module skipped at import (``pytest.importorskip`` at module level)."""
    outcome = yield
    report = outcome.get_result()
    reason = _ros_skip_reason(report)
    if reason is not None:
        _fail(report, reason)
