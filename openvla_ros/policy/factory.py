# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Build a :class:`Policy` from the policy node's parameters.

* ``policy=model`` with ``remote_url``: the HTTP client (no torch on this machine needed);
* ``policy=model`` with ``checkpoint``: OpenVLA in this process (imports torch);
* ``policy=scripted``: :class:`~openvla_ros.policy.scripted.ScriptedPolicy`, optionally slow
  or failing on schedule (tests, dry runs, benchmarks).

Heavy imports happen inside the branch that needs them, so a remote or scripted policy node
never imports torch.
"""

from __future__ import annotations

from typing import Any

from openvla_ros.errors import ConfigError
from openvla_ros.policy.base import Policy
from openvla_ros.policy.runner import PolicyNodeConfig
from openvla_ros.policy.scripted import FailingPolicy, ScriptedPolicy, SlowPolicy

__all__ = ["describe", "make_policy"]


def make_policy(config: PolicyNodeConfig) -> Policy:
    """The policy ``config`` asks for (may take minutes for a large local checkpoint).

    Raises:
        ConfigError: no checkpoint and no remote URL for ``policy=model``, or bad scripted
            actions.
        CheckpointError / PrecisionError / InputError: from the model loader (bad directory,
            impossible precision/device, unknown preset or unnorm key).
    """
    if config.policy == "scripted":
        policy: Policy = ScriptedPolicy(
            config.scripted_actions,
            unnorm_key=config.unnorm_key,
            report_image=config.scripted_report_image,
        )
        if config.scripted_delay_s > 0:
            policy = SlowPolicy(policy, config.scripted_delay_s)
        if config.scripted_fail_every > 0:
            policy = FailingPolicy(policy, config.scripted_fail_every)
        return policy
    if config.policy != "model":
        raise ConfigError(f"unknown policy kind '{config.policy}' (model | scripted)")
    if config.remote_url:
        from openvla_ros.serving.client import RemotePolicy

        try:
            remote: Policy = RemotePolicy(
                config.remote_url,
                timeout_s=config.remote_timeout_s,
                unnorm_key=config.unnorm_key or None,
            )
        except ValueError as exc:
            raise ConfigError(f"remote_url: {exc}") from exc
        return remote
    if not config.checkpoint:
        raise ConfigError("policy=model needs a checkpoint directory or a remote_url")
    from openvla_ros.train.adapter import policy_loader

    # With an adapter: the base loaded by the real loader, the adapter merged on top.
    local: Policy = policy_loader(config.adapter or None)(
        config.checkpoint,
        precision=config.precision,
        device=config.device,
        preprocess=config.preprocess,
        decode=config.decode,
        # Validated at load time, so a typo'd key fails at start-up and not at the first step.
        default_unnorm_key=config.unnorm_key or None,
    )
    keys = local.info().get("unnorm_keys", [])
    if not config.unnorm_key and len(keys) > 1:
        # Every step would fail (the official code refuses too): refuse at start-up instead.
        raise ConfigError(
            f"checkpoint {config.checkpoint} has statistics for {len(keys)} datasets; set the "
            f"unnorm_key parameter (launch argument unnorm_key:=...), one of: {', '.join(keys)}"
        )
    return local


def describe(policy: Policy) -> str:
    """One log line describing ``policy`` (never raises: info() of a remote may fail)."""
    try:
        info: dict[str, Any] = policy.info()
    except Exception as exc:  # a description must not stop the node
        return f"{type(policy).__name__} (info unavailable: {exc})"
    keys = ("policy", "model", "model_id", "precision", "device", "unnorm_keys", "url")
    return ", ".join(f"{k}={info[k]}" for k in keys if k in info) or type(policy).__name__
