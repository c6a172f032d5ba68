# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The loader's checks run on one intra-op thread and give the thread count back, and the
self-check still refuses a language model that drops the image tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import openvla_ros.model.checkpoint as checkpoint
import openvla_ros.model.inference as inference
import openvla_ros.model.network as network
from openvla_ros.errors import CheckpointError
from openvla_ros.model.inference import OpenVLAPolicy
from openvla_ros.model.threads import one_intra_op_thread


@pytest.fixture
def two_threads() -> Iterator[None]:
    """torch on 2 intra-op threads for the test (CI may default to 1), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_one_intra_op_thread_restores_the_count(two_threads: None) -> None:
    with one_intra_op_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError, match="boom"), one_intra_op_thread():
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2
    torch.set_num_threads(1)
    with one_intra_op_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 1


def test_self_check_runs_on_one_thread_and_gives_the_threads_back(
    policy: OpenVLAPolicy, two_threads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, list[int]] = {"towers": [], "language model": []}
    towers = policy.network.vision_features
    prefill = inference.prefill_with_image_tokens

    def record_towers(*args: object, **kwargs: object) -> torch.Tensor:
        seen["towers"].append(torch.get_num_threads())
        return towers(*args, **kwargs)  # type: ignore[arg-type]

    def record_prefill(*args: object, **kwargs: object) -> object:
        seen["language model"].append(torch.get_num_threads())
        return prefill(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(policy.network, "vision_features", record_towers)
    monkeypatch.setattr(inference, "prefill_with_image_tokens", record_prefill)
    assert policy.self_check() > 0
    assert seen == {"towers": [1], "language model": [1, 1]}
    assert torch.get_num_threads() == 2


def test_failed_self_check_gives_the_threads_back(
    ckpt_copy: Callable[[], Path], two_threads: None
) -> None:
    root = ckpt_copy()
    key = "vision_backbone.featurizer.patch_embed.proj.weight"
    for shard in root.glob("model-*.safetensors"):
        tensors = load_file(str(shard))
        if key in tensors:
            tensors[key] = torch.zeros_like(tensors[key])
            save_file(tensors, str(shard), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="vision tower 0 gives the same patch"):
        OpenVLAPolicy.from_checkpoint(root, precision="fp32", device="cpu")
    assert torch.get_num_threads() == 2


def test_finite_check_on_one_thread_and_nan_still_refused(
    ckpt_copy: Callable[[], Path], two_threads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: set[int] = set()
    exact = checkpoint.all_finite

    def record(tensor: torch.Tensor) -> bool:
        seen.add(torch.get_num_threads())
        return exact(tensor)

    monkeypatch.setattr(checkpoint, "all_finite", record)
    root = ckpt_copy()
    key = "vision_backbone.fused_featurizer.blocks.0.mlp.fc1.weight"
    for shard in root.glob("model-*.safetensors"):
        tensors = load_file(str(shard))
        if key in tensors:
            tensors[key] = tensors[key].clone()
            tensors[key][3, 5] = float("inf")
            save_file(tensors, str(shard), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=f"key '{key}' contains NaN or inf"):
        OpenVLAPolicy.from_checkpoint(root, precision="fp32", device="cpu")
    assert seen == {1}
    assert torch.get_num_threads() == 2


def test_self_check_catches_a_language_model_that_drops_the_image_tokens(
    policy: OpenVLAPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The upstream regression (transformers 4.54-4.57): the prompt reaches the language model,
    # the image tokens do not. Simulated by a prefill-input builder that leaves them out.
    build = network.build_prefill_inputs

    def drop_images(
        net: network.OpenVLANetwork, images: torch.Tensor, prompts: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return build(net, images[:, :0], prompts)

    monkeypatch.setattr(network, "build_prefill_inputs", drop_images)
    with pytest.raises(CheckpointError, match="image is not reaching the language model"):
        policy.self_check()
