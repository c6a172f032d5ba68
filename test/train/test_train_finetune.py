# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""End-to-end fine-tunes of a small generated base on datasets written by the real writer;
outputs are loaded by the real loader (and the predict command) unchanged."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from openvla_ros.data.lerobot import DemoDataset
from openvla_ros.model.inference import OpenVLAPolicy
from openvla_ros.model.make_checkpoint import synthetic_scene

pytestmark = pytest.mark.timeout(120)


def _published_ids(actions: np.ndarray, stats: dict) -> np.ndarray:
    # The official recipe's formula, written out independently of the code under test.
    q01, q99 = np.array(stats["q01"]), np.array(stats["q99"])
    mask = np.array(stats["mask"])
    x = np.where(mask, np.clip(2 * (actions - q01) / (q99 - q01 + 1e-8) - 1, -1, 1), actions)
    return 32000 - np.digitize(np.clip(x, -1, 1), np.linspace(-1, 1, 256))


@pytest.mark.parametrize(
    "options",
    [
        {"full": True, "train_vision": True, "steps": 25, "lr": 1e-3},
        {"lora_rank": 32, "steps": 40, "lr": 3e-3},  # the default rank, adapters only
    ],
    ids=["full", "lora"],
)
def test_finetune_overfits_a_handful_of_frames(finetune, tiny_dataset: Path, options) -> None:
    result, lines = finetune("overfit", dataset=tiny_dataset, val_episodes=0, **options)
    out = result.out
    # The published layout, loaded by the real loader; statistics under the new key only.
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "dataset_statistics.json", "model.safetensors.index.json"} <= names
    assert {"tokenizer.json", "tokenizer.model", "preprocessor_config.json"} <= names
    assert any(n.startswith("model-00001-of-") for n in names)
    config = json.loads((out / "config.json").read_text())
    assert {"bridge_orig", "fractal20220817_data", "toy_lab"} <= set(config["norm_stats"])
    stats = json.loads((out / "dataset_statistics.json").read_text())
    assert list(stats) == ["toy_lab"]
    policy = OpenVLAPolicy.from_checkpoint(out, precision="fp32", device="cpu")
    assert policy.info()["unnorm_keys"] == ["toy_lab"]
    ds = DemoDataset(tiny_dataset)
    # Greedy inference (the deployed code path) reproduces every frame's action tokens.
    for i in range(ds.num_frames):
        frame = ds.frame(i)
        got = policy.predict(frame.image, frame.instruction)
        want = _published_ids(frame.action.astype(np.float64), stats["toy_lab"]["action"])
        assert list(got.token_ids) == want.tolist(), f"frame {i}"
        # and de-normalises to within half a bin of the recorded action clipped to
        # [q01, q99] (the normalisation clips; with 2 frames per episode extremes lie outside)
        q01 = np.array(stats["toy_lab"]["action"]["q01"])[:6]
        q99 = np.array(stats["toy_lab"]["action"]["q99"])[:6]
        clipped = np.clip(frame.action[:6], q01, q99)
        assert np.all(np.abs(got.action[:6] - clipped) <= (q99 - q01) / 510 + 1e-6)
    rows = list(csv.DictReader((out / "training" / "metrics.csv").open()))
    assert float(rows[-1]["action_accuracy"]) == 1.0
    assert (out / "training" / "metrics.png").stat().st_size > 1000
    assert any("samples/s" in line for line in lines)
    assert any("memory plan (" in line for line in lines)


def test_lora_merged_equals_base_plus_adapter(finetune, base_ckpt: Path, dataset: Path) -> None:
    from openvla_ros.train.adapter import load_policy_with_adapter

    result, lines = finetune("lora", steps=6, save_adapter=True, lr=2e-3, val_every=6)
    assert result.adapter is not None
    cfg = json.loads((result.adapter / "adapter_config.json").read_text())
    assert cfg["r"] == 4 and cfg["lora_alpha"] == 4  # alpha = min(rank, 16)
    assert not any("lm_head" in t for t in cfg["target_modules"])
    # The report shows the model next to the constant baselines and the instruction swap.
    report = "\n".join(lines)
    assert "zero" in report and "median" in report and "instruction swap" in report
    merged = OpenVLAPolicy.from_checkpoint(result.out, precision="fp32", device="cpu")
    stacked = load_policy_with_adapter(base_ckpt, result.adapter, precision="fp32", device="cpu")
    base = OpenVLAPolicy.from_checkpoint(base_ckpt, precision="fp32", device="cpu")
    ds = DemoDataset(dataset)
    differs = 0.0
    for i in (0, 5, 11, 23):
        frame = ds.frame(i)
        a = merged.predict(frame.image, frame.instruction)
        b = stacked.predict(frame.image, frame.instruction)
        assert a.token_ids == b.token_ids and np.array_equal(a.action, b.action)
        assert b.unnorm_key == "toy_lab"
        ref = base.predict(frame.image, frame.instruction, unnorm_key="bridge_orig")
        differs += float(np.abs(np.array(a.token_ids) - np.array(ref.token_ids)).sum())
    assert differs > 0, "the adapter changed nothing: the test would pass trivially"


def test_predict_command_loads_merged_and_adapter(
    finetune, base_ckpt: Path, tmp_path: Path, capsys
) -> None:
    from PIL import Image

    from openvla_ros.cli import main

    result, _ = finetune("lora2", steps=2, save_adapter=True, val_episodes=0)
    image = tmp_path / "frame.png"
    Image.fromarray(synthetic_scene(3)).save(image)
    common = [
        "--image",
        str(image),
        "--instruction",
        "push the blue block",
        "--precision",
        "fp32",
        "--device",
        "cpu",
        "--json",
    ]
    assert main(["predict", "--checkpoint", str(result.out), *common]) == 0
    merged = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (
        main(["predict", "--checkpoint", str(base_ckpt), "--adapter", str(result.adapter), *common])
        == 0
    )
    stacked = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert merged["token_ids"] == stacked["token_ids"] and merged["unnorm_key"] == "toy_lab"


def test_frames_decoded_on_demand_train_exactly_like_the_cache(finetune) -> None:
    from safetensors.torch import load_file

    cached, _ = finetune("cached", steps=2, image_aug=True, full=True, val_episodes=0)
    direct, lines = finetune(
        "direct", steps=2, image_aug=True, full=True, val_episodes=0, cache_gb=0.0
    )
    assert not any("cache" in line and "MB" in line for line in lines)
    a = load_file(next(cached.out.glob("model-*.safetensors")))
    b = load_file(next(direct.out.glob("model-*.safetensors")))
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
