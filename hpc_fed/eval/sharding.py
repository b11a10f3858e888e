"""How both evaluators split a test set over the ranks of a Comm."""

from __future__ import annotations

import math


def shard_batches(n: int, rank: int, world: int, batch_size: int) -> list[list[int]]:
    """Rank's record indices (rank, rank+world, ...) in batches; -1 marks padding.

    Every rank gets the same number of batches (short shards are padded), which ZeRO-3 needs:
    its forward gathers parameters collectively in each group."""
    per_rank = math.ceil(n / world)
    num_batches = max(1, math.ceil(per_rank / batch_size))
    mine = list(range(rank, n, world))
    mine += [-1] * (num_batches * batch_size - len(mine))
    return [mine[b * batch_size:(b + 1) * batch_size] for b in range(num_batches)]
