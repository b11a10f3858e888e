"""Weighted averaging of client adapter deltas: pure tensor math, no processes.

`weighted_mean` is the single-process reference the distributed path (hpc_fed/fed/payload.py,
one all_reduce of a flat buffer) is tested against; `flatten` / `unflatten` give that buffer's
layout; `check_contribution` rejects a client's update before it is averaged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from hpc_fed.errors import AggregationError

State = dict[str, torch.Tensor]


def check_contribution(state: State, reference: State, weight: float, who: str) -> None:
    if set(state) != set(reference):
        missing, extra = sorted(set(reference) - set(state)), sorted(set(state) - set(reference))
        raise AggregationError(f"{who}: adapter keys differ from the global adapter "
                               f"(missing {missing[:3]}, unexpected {extra[:3]})")
    for k, ref in reference.items():
        if state[k].shape != ref.shape:
            raise AggregationError(f"{who}: {k} has shape {tuple(state[k].shape)}, "
                                   f"expected {tuple(ref.shape)}")
    if not math.isfinite(weight) or weight < 0:
        raise AggregationError(f"{who}: weight {weight} must be finite and >= 0")


def flatten(state: State, names: Sequence[str]) -> torch.Tensor:
    return torch.cat([state[n].reshape(-1).to(torch.float32) for n in names])


def unflatten(flat: torch.Tensor, like: State, names: Sequence[str]) -> State:
    out, offset = {}, 0
    for n in names:
        numel = like[n].numel()
        out[n] = flat[offset:offset + numel].view_as(like[n]).clone()
        offset += numel
    if offset != flat.numel():
        raise AggregationError(f"flat buffer holds {flat.numel()} values, the adapter {offset}")
    return out


def delta(local: State, global_: State) -> State:
    return {k: local[k].float() - global_[k].float() for k in global_}


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
