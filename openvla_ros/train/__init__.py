# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Fine-tuning OpenVLA on a recorded dataset (pure torch, no rclpy).

* :mod:`openvla_ros.train.samples`: dataset frames -> cached uint8 images + action tokens,
  batches built with the model's own processor, prompt and action tokenizer.
* :mod:`openvla_ros.train.augment`: the official image augmentation, in torch.
* :mod:`openvla_ros.train.forward`: the loss on the 7 action tokens + EOS (logits at 8 positions).
* :mod:`openvla_ros.train.adapters`: LoRA through peft; :mod:`openvla_ros.train.adapter` loads a
  saved adapter on top of a base for inference.
* :mod:`openvla_ros.train.memory`: the memory plan printed (and enforced) before training.
* :mod:`openvla_ros.train.state`: atomic training checkpoints and bit-identical resume.
* :mod:`openvla_ros.train.validate`: held-out metrics that cannot flatter.
* :mod:`openvla_ros.train.export`: the merged checkpoint in the published layout.
* :mod:`openvla_ros.train.options`: ``FinetuneOptions`` and their checks;
  :mod:`openvla_ros.train.batches`: seeded sampling and batch tensors.
* :mod:`openvla_ros.train.loop`: ``run_finetune``, the training loop;
  :mod:`openvla_ros.train.cli` the command.

Submodules are imported explicitly so ``import openvla_ros.train`` stays free of torch.
"""
