"""Single-process references that the distributed code is checked against (not used by runs)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from hpc_fed.errors import AggregationError
from hpc_fed.fed.aggregate import check_contribution

State = dict[str, torch.Tensor]


def weighted_mean(deltas: Sequence[State], weights: Sequence[float]) -> State:
    """sum_i w_i * delta_i / sum_i w_i, per tensor (the single-process reference)."""
    if not deltas:
        raise AggregationError("no client contributions to average")
    total = float(sum(weights))
    if total <= 0:
        raise AggregationError(f"client weights sum to {total}; at least one must be > 0")
    for i, (d, w) in enumerate(zip(deltas, weights)):
        check_contribution(d, deltas[0], w, f"client contribution {i}")
    return {k: sum(w * d[k].float() for d, w in zip(deltas, weights)) / total for k in deltas[0]}
