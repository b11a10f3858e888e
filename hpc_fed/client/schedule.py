"""Per-round learning rate: linear warm-up over whole rounds, then cosine to a floor; and
optionally a schedule within each client's round (`train.local_schedule`).

With local_schedule=constant the rate is constant within a round. Warm-up counts whole rounds,
so round 0 runs at lr / warmup_rounds, never above the base rate (a fractional warm-up of 0.01 x rounds, as in
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


LOCAL_SCHEDULES = ("constant", "cosine")


def local_lr(step: int, total: int, lr: float, schedule: str, warmup_ratio: float) -> float:
    """The rate of a client's optimizer step `step` (0-based) of `total` in a round whose rate is
    `lr`. cosine is transformers' get_cosine_schedule_with_warmup with warmup_steps =
    ceil(warmup_ratio x total) (the Trainer's warmup_ratio): step s < w runs at lr x s / w (step
    0 at 0), then lr x (1 + cos(pi x (s - w) / (total - w))) / 2."""
    if schedule == "constant":
        return lr
    warm = math.ceil(warmup_ratio * total)
    if step < warm:
        return lr * step / max(1, warm)
    progress = (step - warm) / max(1, total - warm)
    return lr * max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
