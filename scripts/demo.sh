#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
#
# The README's "run" command: set up the environment, then run the whole graph (simulated
# Panda + camera on a one-cube reach_cube scene (--task reach_colour: red, green and blue
# cubes), policy node with the shipped embedded default
# (data/embedded_default; `--checkpoint random` for a small random one), executor with safety)
# for a fixed number of steps. Arguments go to `openvla-ros demo` (see `--help`).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup_env.sh
venv="${OPENVLA_ROS_VENV:-$repo/.venv}"
exec "$venv/bin/openvla-ros" demo "$@"
