# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Time to generate the small checkpoint the tests and the demo use (was a timed test).

python benchmarks/bench_make_checkpoint.py [--repeat 3] [--shards 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shards", type=int, default=3)
    args = parser.parse_args()
    from openvla_ros.model.make_checkpoint import write_small_checkpoint

    times = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            write_small_checkpoint(Path(tmp) / "ckpt", seed=i, shards=args.shards)
            times.append(time.perf_counter() - t0)
    print(
        f"write_small_checkpoint(shards={args.shards}): median {statistics.median(times):.2f} s, "
        f"max {max(times):.2f} s over {args.repeat} runs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
