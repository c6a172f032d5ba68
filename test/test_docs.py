# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The docs stay true to the code: every CLI flag, node parameter and launch argument a user
can touch is documented (README.md or docs/*.md)."""

from __future__ import annotations

import argparse

import pytest

from openvla_ros.cli import build_parser
from openvla_ros.launch_description.graph import LAUNCH_ARGUMENTS
from openvla_ros.nodes.params import POLICY_NODE_PARAMS, executor_params
from test.conftest import REPO

DOCS = "\n".join(
    [(REPO / "README.md").read_text()]
    + [p.read_text() for p in sorted((REPO / "docs").glob("*.md"))]
)


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices)


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_cli_flag_is_documented(command: str) -> None:
    sub = _subcommands()[command]
    assert f"openvla-ros {command}" in DOCS or f"`{command}" in DOCS, command
    missing = [
        opt
        for action in sub._actions
        for opt in action.option_strings
        if opt.startswith("--") and opt != "--help" and opt not in DOCS
    ]
    assert not missing, f"openvla-ros {command}: undocumented flags {missing}"


def _node_specs() -> dict[str, list]:
    rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (run scripts/setup_env.sh)")
    del rclpy
    from openvla_ros.data.recorder_config import RECORDER_PARAMS
    from openvla_ros.nodes.expert_node import EXPERT_PARAMS
    from openvla_ros.nodes.sim_arm_node import SIM_ARM_PARAMS
    from openvla_ros.nodes.widowx_bridge_node import WIDOWX_BRIDGE_PARAMS

    return {
        "openvla_policy": list(POLICY_NODE_PARAMS),
        "openvla_executor": executor_params(),
        "sim_arm": list(SIM_ARM_PARAMS),
        "widowx_bridge": list(WIDOWX_BRIDGE_PARAMS),
        "openvla_recorder": list(RECORDER_PARAMS),
        "sim_expert": list(EXPERT_PARAMS),
    }


def test_every_node_parameter_is_documented() -> None:
    missing = [
        f"{node}.{spec.name}"
        for node, specs in _node_specs().items()
        for spec in specs
        if f"`{spec.name}`" not in DOCS
    ]
    assert not missing, f"undocumented parameters: {missing}"


def test_every_launch_argument_is_documented() -> None:
    launch_doc = (REPO / "docs" / "launch.md").read_text()
    missing = [a.name for a in LAUNCH_ARGUMENTS if f"`{a.name}`" not in launch_doc]
    assert not missing, f"launch arguments missing from docs/launch.md: {missing}"


def test_node_parameter_tables_match_the_specs() -> None:
    # The tables in the docs are rendered from the specs: defaults, units and ranges stay true.
    from openvla_ros.nodes.params import EXECUTOR_NODE_PARAMS
    from openvla_ros.paramspec import render_markdown_table

    specs = _node_specs()
    tables = {
        "policy node (docs/nodes.md)": specs["openvla_policy"],
        "executor node (docs/nodes.md)": list(EXECUTOR_NODE_PARAMS),
        "sim_arm (docs/sim.md)": specs["sim_arm"],
        "widowx_bridge (docs/nodes.md)": specs["widowx_bridge"],
        "openvla_recorder (docs/datasets.md)": specs["openvla_recorder"],
        "sim_expert (docs/datasets.md)": specs["sim_expert"],
    }
    stale = [where for where, s in tables.items() if render_markdown_table(s).strip() not in DOCS]
    assert not stale, f"regenerate with openvla_ros.paramspec.render_markdown_table: {stale}"


def test_every_documented_cli_flag_exists() -> None:
    # The other direction: a flag written after `openvla-ros <command>` in README/docs (code
    # blocks, inline commands, line continuations joined) is one that command accepts.
    import re

    subs = _subcommands()
    top = {o for a in build_parser()._actions for o in a.option_strings}
    text = DOCS.replace("\\\n", " ")
    checked, unknown = 0, []
    pattern = r"openvla-ros\s+(?:--[a-z-]+\s+\S+\s+)*([a-z][a-z-]+)([^`|\n]*)"
    for m in re.finditer(pattern, text):
        if m.group(1) not in subs:
            continue
        accepted = {o for a in subs[m.group(1)]._actions for o in a.option_strings} | top
        rest = re.split(r"openvla-ros|;|\)|&&|\|", m.group(2))[0]
        for flag in re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9-]*", rest):
            checked += 1
            if flag not in accepted:
                unknown.append(f"openvla-ros {m.group(1)} {flag}")
    assert checked > 50, "the scan found almost no documented commands: the pattern broke"
    assert unknown == [], f"documented flags the commands do not accept: {unknown}"
