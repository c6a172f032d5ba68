# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Remote inference: an HTTP server speaking OpenVLA's ``/act`` contract and its client.

``openvla_ros.serving.client`` (``RemotePolicy``) and ``openvla_ros.serving.wire`` import only
numpy, urllib3 and requests; ``openvla_ros.serving.server`` needs FastAPI + hypercorn (the
``serve`` extra).
Nothing is imported here so that the robot side never pulls in the server stack.
"""
