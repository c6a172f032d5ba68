# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Demonstrations to training data (pure: no rclpy).

* :mod:`openvla_ros.data.lerobot`: LeRobot v3 dataset writer and reader (images in parquet).
* :mod:`openvla_ros.data.statistics`: OpenVLA ``dataset_statistics.json`` and LeRobot stats.
* :mod:`openvla_ros.data.alignment`: causal as-of sampling of streams at the control rate.
* :mod:`openvla_ros.data.labels`: deltas from consecutive measured poses (executor convention).
"""
