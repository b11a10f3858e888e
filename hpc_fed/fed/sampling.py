"""Which clients train in a round, and on which client group. Pure and seeded by (seed, round):
every rank computes the same answer without communicating."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def sample_clients(num_clients: int, k: int, seed: int, round_idx: int) -> list[int]:
    """k distinct clients, uniformly without replacement, sorted."""
    rng = np.random.default_rng([seed, round_idx])
    return sorted(rng.choice(num_clients, size=k, replace=False).tolist())


ASSIGNMENTS = ("balanced", "round_robin")  # the values of fed.assignment


def assign_clients(clients: Sequence[int], sizes: Sequence[int], num_groups: int,
                   how: str = "balanced") -> list[list[int]]:
    """Clients -> groups. balanced: heaviest first onto the least-loaded group (longest
    processing time first, at most 4/3 of the best makespan); round_robin: the i-th client (in
    id order) on group i mod num_groups, whatever its size.

    `sizes[c]` is client c's work (its local steps this round). Ties go to the lower group
    index, and clients of equal size are taken in id order, so the plan is deterministic.
    Within a group, clients run in ascending id order.
    """
    if how == "round_robin":
        return [sorted(clients)[g::num_groups] for g in range(num_groups)]
    load = [0] * num_groups
    plan: list[list[int]] = [[] for _ in range(num_groups)]
    for c in sorted(clients, key=lambda c: (-sizes[c], c)):
        g = min(range(num_groups), key=lambda j: (load[j], len(plan[j]), j))
        plan[g].append(c)
        load[g] += sizes[c]
    return [sorted(p) for p in plan]
