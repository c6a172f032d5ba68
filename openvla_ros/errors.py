# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Typed errors, one family per subsystem.

Every error message says what was wrong and what to do about it. Nodes catch
:class:`OpenVLARosError` to log and count a rejection instead of dying.
"""

from __future__ import annotations


class OpenVLARosError(Exception):
    """Base class of every error this package raises on purpose."""


class CheckpointError(OpenVLARosError):
    """A checkpoint directory is missing a file, has a bad key or shape, or is corrupt."""


class PrecisionError(OpenVLARosError):
    """A precision / device / attention combination that cannot work here."""


class InputError(OpenVLARosError, ValueError):
    """Bad input to the policy: image, instruction or unnorm key."""


class PolicyError(OpenVLARosError):
    """The policy failed to produce an action (model error, remote failure)."""


class RemotePolicyError(PolicyError):
    """The remote inference server was unreachable, too slow, or answered garbage."""


class ConfigError(OpenVLARosError, ValueError):
    """A robot profile, safety limit or parameter value is invalid."""


class BagError(OpenVLARosError):
    """A rosbag could not be read or does not contain what was asked for."""


class DatasetError(OpenVLARosError):
    """A demonstration dataset could not be written or read, or an episode is unusable."""


class TrainingError(OpenVLARosError):
    """Fine-tuning cannot start or continue: bad dataset/base pairing, memory, NaN loss, I/O."""


class LaunchError(OpenVLARosError):
    """A node a launch requires exited on its own; fails the launch (non-zero exit code)."""
