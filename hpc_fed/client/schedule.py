"""Per-round learning rate: linear warm-up over whole rounds, then cosine to a floor.

The rate is constant within a round. Warm-up counts whole rounds, so round 0 runs at
lr / warmup_rounds, never above the base rate (a fractional warm-up of 0.01 x rounds, as in
reference code, makes round 0 run at several times the base rate).
"""

from __future__ import annotations

import math


def round_lr(round_idx: int, rounds: int, lr: float, warmup_rounds: int, min_lr_ratio: float) -> float:
    if round_idx < warmup_rounds:
        return lr * (round_idx + 1) / warmup_rounds
    span = rounds - warmup_rounds
    if span <= 1:
        return lr
    progress = (round_idx - warmup_rounds) / (span - 1)
    floor = lr * min_lr_ratio
    return floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))
