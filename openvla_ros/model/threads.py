# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Run a stretch of many small CPU tensor operations on one intra-op thread.

Why: every torch CPU operation above a small size is an OpenMP parallel region that ends in a
barrier, and the barrier waits for the slowest thread. When another process holds one of the
cores (a robot computer running other nodes, a machine that trains), torch's default thread
count (one per core) leaves a thread waiting for a CPU timeslice at every barrier: measured on
a 2-core VM with one core busy, the loader's NaN/inf sums ran 15x slower on 2 threads than on
one (1.5 s vs 0.10 s for 730 tensors) and the self-check's 16-patch tower pass 7x slower (3.6 s
vs 0.53 s; its two small-LM passes 20x: 0.43 s vs 0.02 s). Those stretches are small,
memory-bound work, so one thread costs little on an idle machine and saves seconds on a busy
one. Used only around the loader's own checks; the weight casts and predictions keep the
configured thread count.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_intra_op_thread() -> Iterator[None]:
    """Set torch's intra-op thread count to 1 for the block, restoring it after (also on error).

    Scope, with torch's OpenMP backend (the Linux wheels): the count is per OS thread, taken
    from torch's process default the first time a thread runs a parallel operation. Threads
    that already ran torch work keep their own count during the block; a thread whose *first*
    parallel torch operation falls inside the block takes 1 and keeps it after the block
    (measured: torch 2.13). So use it only where no other thread starts torch work meanwhile:
    the loader runs before a node's inference thread exists, and the server loads the policy
    on its inference thread itself.
    """
    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
