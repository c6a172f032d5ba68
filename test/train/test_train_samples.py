# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Training samples are exactly what the official recipe builds, checked against independent
formulations: the published normalisation/bin formula, the official prompt string tokenised
whole, and transformers' own causal-LM loss with -100 labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from openvla_ros.model.action_tokenizer import ActionTokenizer, normalize
from openvla_ros.model.config import ActionStats, load_config
from openvla_ros.model.prompt import PromptTokenizer
from openvla_ros.train.augment import augment_uint8, random_resized_crop
from openvla_ros.train.samples import eos_token_id, split_episodes

STATS = ActionStats(
    q01=(-0.02, -0.04, -0.03, -0.1, -0.1, -0.2, 0.0),
    q99=(0.02, 0.04, 0.05, 0.1, 0.1, 0.2, 1.0),
    mask=(True, True, True, True, True, True, False),
)


def _official_ids(actions: np.ndarray) -> np.ndarray:
    # The published recipe, written out: BOUNDS_Q99 normalisation, then
    # 32000 - np.digitize(x, linspace(-1, 1, 256)).
    q01, q99 = np.array(STATS.q01), np.array(STATS.q99)
    mask = np.array(STATS.mask)
    x = np.where(mask, np.clip(2 * (actions - q01) / (q99 - q01 + 1e-8) - 1, -1, 1), actions)
    return 32000 - np.digitize(np.clip(x, -1, 1), np.linspace(-1, 1, 256))


def test_action_ids_match_the_published_formula() -> None:
    rng = np.random.default_rng(0)
    actions = rng.uniform(-0.3, 1.2, size=(50, 7))
    actions[0] = STATS.q01  # exactly q01 -> -1 -> id 31999
    # exactly q99 -> 1 - 2e-8 / range (the +1e-8) -> the last bin, id 31745; the gripper's raw
    # 1.0 is exactly the top edge -> id 31744.
    actions[1] = STATS.q99
    ids = ActionTokenizer(32000, 256).encode(normalize(actions, STATS))
    np.testing.assert_array_equal(ids, _official_ids(actions))
    assert ids[0].tolist()[:6] == [31999] * 6 and ids[0][6] == 32000 - 128  # gripper 0.0
    assert ids[1].tolist() == [31745] * 6 + [31744]
    # The gripper (mask false) is not normalised: 0.3 stays 0.3.
    assert normalize(np.array([0.0] * 6 + [0.3]), STATS)[6] == pytest.approx(0.3)


def test_training_sequence_is_the_official_prompt_tokenised_whole(base_ckpt: Path) -> None:
    tok = PromptTokenizer.from_dir(base_ckpt)
    action_ids = [31999, 31800, 31744, 31872, 31900, 31750, 31990]
    ours = [*tok.encode("Pick up the red block"), *action_ids, eos_token_id(tok)]
    # Official: the action tokens' text after "Out: ", then "</s>", tokenised as one string
    # with BOS; the space before the actions becomes the lone 29871 piece.
    action_text = tok.tokenizer.decode(action_ids, skip_special_tokens=False)
    prompt = (
        f"In: What action should the robot take to pick up the red block?\nOut: {action_text}</s>"
    )
    official = tok.tokenizer.encode(prompt, add_special_tokens=True).ids
    assert ours == official
    assert ours[-9] == 29871 and ours[-8:-1] == action_ids and ours[-1] == 2


def test_loss_equals_the_full_logits_loss_with_masked_labels(base_ckpt: Path) -> None:
    from openvla_ros.model.checkpoint import load_network
    from openvla_ros.model.precision import resolve_placement
    from openvla_ros.train.forward import action_forward, build_inputs, embed_images

    cfg = load_config(base_ckpt)
    net = load_network(base_ckpt, cfg, resolve_placement("fp32", "cpu"))
    tok = PromptTokenizer.from_dir(base_ckpt)
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randn(2, 6, 224, 224, generator=gen)
    seqs = [
        torch.tensor([*tok.encode(text), *ids, 2])
        for text, ids in (
            ("pick up the red block", [31999, 31800, 31744, 31872, 31900, 31750, 31990]),
            ("push the blue block to the left", [31744] * 7),  # a longer prompt: padding
        )
    ]
    out = action_forward(net, pixels, seqs, 8)
    # Reference: every position's logits through the HF model, labels -100 except the last 8
    # tokens of each row (and the padding), loss computed by transformers itself.
    with torch.no_grad():
        inputs, lengths = build_inputs(net, embed_images(net, pixels), seqs)
        labels = torch.full(inputs.shape[:2], -100, dtype=torch.long)
        for row, (seq, n) in enumerate(zip(seqs, lengths.tolist(), strict=True)):
            labels[row, n - 8 : n] = seq[-8:]
        per_row = []
        for row in range(2):  # per row, so padding cannot enter the reference either
            n = int(lengths[row])
            ref = net.language_model(
                inputs_embeds=inputs[row : row + 1, :n], labels=labels[row : row + 1, :n]
            )
            per_row.append(ref.loss)
    assert float(out.loss) == pytest.approx(float(torch.stack(per_row).mean()), rel=1e-5)


def test_split_holds_out_whole_episodes_deterministically() -> None:
    train, val = split_episodes(range(10), 2, seed=3)
    assert len(val) == 2 and not set(train) & set(val) and sorted(train + val) == list(range(10))
    assert split_episodes(range(10), 2, seed=3) == (train, val)
    with pytest.raises(Exception, match="leaves no training episode"):
        split_episodes(range(3), 3, seed=0)


def test_augmentation_is_seeded_and_keeps_the_frame_format() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(224, 224, 3), dtype=np.uint8)
    a = augment_uint8(image, torch.Generator().manual_seed(1))
    b = augment_uint8(image, torch.Generator().manual_seed(1))
    c = augment_uint8(image, torch.Generator().manual_seed(2))
    assert a.shape == image.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 1.0


def test_crop_covers_sqrt_point_nine_of_each_side() -> None:
    # A horizontal ramp 0..1: the crop's columns must span sqrt(0.9) of the range, inside it.
    ramp = torch.linspace(0, 1, 224).expand(3, 224, 224).clone()
    out = random_resized_crop(ramp, torch.Generator().manual_seed(5))
    left, right = float(out[0, 0, 0]), float(out[0, 0, -1])
    assert right - left == pytest.approx(0.9**0.5, abs=1e-4)
    assert left >= 0.0 and right <= 1.0 + 1e-6
