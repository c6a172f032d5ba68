# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Pip packaging of the pure-Python layers (model, policy, control, serving, bags, sim).

On a ROS 2 install, `colcon build` uses CMakeLists.txt (interfaces + these sources). On a GPU
box without ROS, `pip install .[model,serve]` installs what the inference server needs.
Exact, tested versions are pinned in requirements.txt (the one place pins live); the names
here carry no versions so pip-installing into an existing environment does not fight it.
"""

from setuptools import find_packages, setup

setup(
    name="openvla_ros",
    version="0.1.0",
    description="OpenVLA vision-language-action policies on ROS 2 robot arms",
    license="Apache-2.0",
    python_requires=">=3.11",  # enum.StrEnum (paramspec), typing features
    packages=find_packages(include=["openvla_ros", "openvla_ros.*"], exclude=["openvla_ros.msg"]),
    package_data={"openvla_ros": ["py.typed"]},
    install_requires=["numpy", "pyyaml", "pillow", "requests", "urllib3"],
    extras_require={
        "model": ["torch", "transformers", "tokenizers", "safetensors", "sentencepiece"],
        "quant": ["bitsandbytes"],
        "serve": ["fastapi", "starlette", "hypercorn"],
        # json-numpy: only the tests import it (the reference encoder the wire format is
        # checked against); the package has its own strict decoder (serving/wire.py).
        # pyquaternion: the independent quaternion reference of the SE(3) tests.
        "test": ["pytest", "pytest-timeout", "hypothesis", "json-numpy", "pyquaternion"],
        "bag": ["rosbags", "matplotlib"],
        "data": ["pyarrow", "rosbags", "matplotlib"],
        "sim": ["pybullet", "matplotlib"],
        # openvla-ros finetune: the model side plus adapters (peft, which imports accelerate),
        # the memory plan (psutil), the dataset reader (pyarrow), metrics plot and progress bar.
        "train": ["peft", "accelerate", "psutil", "pyarrow", "matplotlib", "tqdm"],
    },
    entry_points={
        "console_scripts": [
            "openvla-ros = openvla_ros.cli:main",
            "openvla-policy-node = openvla_ros.nodes.policy_node:main",
            "openvla-executor-node = openvla_ros.nodes.executor_node:main",
            "openvla-sim-arm-node = openvla_ros.nodes.sim_arm_node:main",
            "openvla-widowx-bridge-node = openvla_ros.nodes.widowx_bridge_node:main",
            "openvla-recorder-node = openvla_ros.nodes.recorder_node:main",
            "openvla-sim-expert-node = openvla_ros.nodes.expert_node:main",
        ]
    },
)
