"""Client adapter deltas as tensors: pure math, no processes.

`delta` is a client's update, `flatten` / `unflatten` the layout of the round payload's flat
buffer (hpc_fed/fed/payload.py), `check_contribution` rejects a client's update before it is
averaged.
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
