# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Does a checkpoint read the colour word? An offline probe of instruction grounding.

On the first camera frame of N held-out ``reach_colour`` layouts (the arm at home, all three
cubes visible) the checkpoint is asked for its action under each of the three instructions
``reach the {red,green,blue} cube``. Printed:

* how many frames give identical action tokens for the three colour words (a model that
  ignores the word: N of N);
* the largest change of the first action token's logits when only the colour word changes;
* which cube the predicted first xy move points at (largest cosine to the TCP -> cube
  direction) per instructed colour: a confusion table; chance is one third;
* per LLM layer, the attention entropy of the positions from the colour word on (mean), and
  the largest attention the last prompt position (which emits the first action token) pays to
  the colour word (max over heads, layouts and the three colour words; eager attention).

This is the measurement behind data/embedded_default/TRAINING.md's statement that the shipped
checkpoint is not colour-grounded. Nothing here trains or changes the checkpoint.

Example:
    python benchmarks/probe_grounding.py                          # the shipped checkpoint
    python benchmarks/probe_grounding.py --checkpoint out/my_ft --layouts 50 --json probe.json
    python benchmarks/probe_grounding.py --colour-order by_y   # sim-demos' curriculum layouts
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from openvla_ros.model.inference import OpenVLAPolicy  # noqa: E402
from openvla_ros.model.network import build_prefill_inputs, generate_greedy  # noqa: E402
from openvla_ros.sim.demo import EMBEDDED_CHECKPOINT  # noqa: E402
from openvla_ros.sim.panda_sim import PandaSim, SimConfig  # noqa: E402
from openvla_ros.sim.tasks import COLOUR_ORDERS, COLOURS, TaskConfig, sample_scene  # noqa: E402


def _first_frames(
    layouts: int, seed: int, colour_order: str = "random"
) -> list[tuple[Any, np.ndarray, np.ndarray]]:
    out = []
    cfg = SimConfig()
    task_cfg = TaskConfig(colour_order=colour_order)
    with PandaSim(cfg) as sim:
        for k in range(layouts):
            scene = sample_scene("reach_colour", seed + k, cfg.cube_size_m, task_cfg)
            sim.set_scene(scene)
            sim.step(0.2)  # the cubes settle, as an episode starts
            out.append((scene, sim.render(224, 224), np.asarray(sim.ee_pose()[0])))
    return out


def _pointed_at(move: np.ndarray, scene: Any, ee: np.ndarray) -> int | None:
    """Index in COLOURS of the cube the xy move points at best; None for no move."""
    if np.linalg.norm(move) < 1e-4:
        return None
    cos = []
    for colour in COLOURS:
        to_cube = np.asarray(scene.cube(colour).position[:2]) - ee[:2]
        cos.append(float(move @ to_cube / (np.linalg.norm(move) * np.linalg.norm(to_cube))))
    return int(np.argmax(cos))


def _attention(policy: OpenVLAPolicy, images: list[np.ndarray], prompts: list[torch.Tensor],
               at: int) -> dict[str, list[float]]:  # fmt: skip
    """Attention statistics over every (image, prompt) pair; ``at``: the colour word's index
    in the prompt ids."""
    lm = policy.network.language_model
    for module in lm.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "_attn_implementation"):
            config._attn_implementation = "eager"  # sdpa returns no attention weights
    entropy: list[list[float]] = []
    to_colour: list[list[float]] = []
    for image in images:
        tokens = policy.network.embed_images(policy._pixels([image]))
        for prompt in prompts:
            with torch.inference_mode():
                inputs, mask, pos = build_prefill_inputs(policy.network, tokens, [prompt])
                out = lm(inputs_embeds=inputs, attention_mask=mask, position_ids=pos,
                         output_attentions=True)  # fmt: skip
            # [BOS] + image tokens + the rest of the prompt: the colour word's position.
            ci = tokens.shape[1] + at
            rows = [a[0, :, ci:, :] for a in out.attentions]
            entropy.append([float(-(r.clamp_min(1e-12).log() * r).sum(-1).mean()) for r in rows])
            to_colour.append([float(a[0, :, -1, ci].max()) for a in out.attentions])
    return {
        "entropy_nats": [round(float(v), 3) for v in np.mean(entropy, axis=0)],
        "last_to_colour": [round(float(v), 6) for v in np.max(to_colour, axis=0)],
    }


def probe(
    checkpoint: Path, layouts: int, seed: int, colour_order: str = "random"
) -> dict[str, Any]:
    torch.set_num_threads(1)
    policy = OpenVLAPolicy.from_checkpoint(checkpoint, precision="fp32", device="cpu")
    texts = [f"reach the {c} cube" for c in COLOURS]
    prompts = [torch.as_tensor(policy._prompt_ids(t)) for t in texts]
    # The one position where the three prompts differ holds the colour word.
    differs = [i for i in range(len(prompts[0])) if len({int(p[i]) for p in prompts}) > 1]
    confusion = np.zeros((3, 4), dtype=int)
    identical, logit_change = 0, []
    frames = _first_frames(layouts, seed, colour_order)
    for scene, image, ee in frames:
        results = policy.predict_batch([image] * 3, texts)
        identical += len({r.token_ids for r in results}) == 1
        with torch.inference_mode():
            gen = generate_greedy(policy.network, policy._pixels([image] * 3), prompts, 1)
        logits = gen.first_logits
        logit_change.append(float((logits[1:] - logits[0]).abs().max()))
        for i, r in enumerate(results):
            j = _pointed_at(np.asarray(r.action[:2]), scene, ee)
            confusion[i, 3 if j is None else j] += 1
    attention = _attention(policy, [f[1] for f in frames], prompts, differs[0])
    hits = int(np.trace(confusion[:, :3]))
    return {
        "checkpoint": str(checkpoint),
        "layouts": layouts,
        "seed": seed,
        "colour_order": colour_order,
        "identical_tokens_frames": identical,
        "first_logit_change_median": float(np.median(logit_change)),
        "first_logit_change_max": float(np.max(logit_change)),
        "pointed_at_instructed": hits,
        "pointed_at_instructed_rate": hits / (3 * layouts),
        "confusion_rows_instructed_cols_pointed": {
            COLOURS[i]: dict(zip([*COLOURS, "none"], map(int, confusion[i]), strict=True))
            for i in range(3)
        },
        **attention,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=EMBEDDED_CHECKPOINT,
                    help="checkpoint directory (default: the shipped one)")  # fmt: skip
    ap.add_argument("--layouts", type=int, default=30, help="held-out layouts (default: 30)")
    ap.add_argument("--seed", type=int, default=2_000_000,
                    help="seed of the first layout (default 2000000: held out)")  # fmt: skip
    ap.add_argument("--colour-order", choices=COLOUR_ORDERS, default="random",
                    help="layouts: random (the task's) or by_y (the curriculum layout of "
                    "sim-demos --colour-order; default: random)")  # fmt: skip
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = ap.parse_args()
    result = probe(args.checkpoint, args.layouts, args.seed, args.colour_order)
    n = args.layouts
    print(
        f"{result['checkpoint']}: {n} held-out reach_colour layouts "
        f"({args.colour_order}), first frame"
    )
    print(f"  identical action tokens for red/green/blue: {result['identical_tokens_frames']}/{n}")
    median, top = result["first_logit_change_median"], result["first_logit_change_max"]
    print(f"  first-token logit change from the colour word: median {median:.2e}, max {top:.2e}")
    print(f"  first move points at the instructed cube: {result['pointed_at_instructed']}/{3 * n}"
          f" = {result['pointed_at_instructed_rate']:.2f} (chance 0.33)")  # fmt: skip
    for colour, row in result["confusion_rows_instructed_cols_pointed"].items():
        print(f"    instructed {colour:5s} -> " + ", ".join(f"{k} {v}" for k, v in row.items()))
    print(f"  attention entropy per layer (nats, from the colour word on, mean): "
          f"{result['entropy_nats']}")  # fmt: skip
    print(f"  last prompt position -> colour word per layer, max over heads, layouts and "
          f"colours: {result['last_to_colour']}")  # fmt: skip
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
