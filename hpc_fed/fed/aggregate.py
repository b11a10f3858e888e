"""Weighted averaging of client adapter deltas.

The math (`flatten`, `unflatten`, `weighted_mean`) is pure tensor code; `allreduce_deltas` is
the collective: each group's leader contributes sum_i n_i * delta_i of the clients it trained,
in one flat fp32 buffer that also carries the weights and per-client statistics, and a single
all_reduce over the world sums them, so every rank ends with the same bits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from hpc_fed.distributed.collectives import Comm
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


@dataclass
class ReducedRound:
    mean_delta: State
    client_loss: dict[int, float]
    client_samples: dict[int, int]


def allreduce_deltas(weighted_sum: torch.Tensor, weight: float, stats: dict[int, tuple[float, int]],
                     clients: Sequence[int], like: State, names: Sequence[str],
                     contribute: bool, comm: Comm) -> ReducedRound:
    """Sum every group's weighted delta sum and weight across the world; divide.

    weighted_sum: flat fp32 sum_i n_i * delta_i over the clients this group trained.
    stats: client -> (train loss, samples) for those clients. Only one rank per group
    (`contribute`) adds its values; the others add zeros, so nothing is counted twice.
    `comm`: the world (every group's leader contributes).
    """
    k = len(clients)
    slot = {c: i for i, c in enumerate(clients)}
    buf = torch.zeros(weighted_sum.numel() + 1 + 2 * k, dtype=torch.float32)
    if contribute:
        buf[: weighted_sum.numel()] = weighted_sum
        buf[weighted_sum.numel()] = weight
        for c, (loss, n) in stats.items():
            buf[weighted_sum.numel() + 1 + slot[c]] = loss
            buf[weighted_sum.numel() + 1 + k + slot[c]] = n
    buf = comm.all_reduce(buf)
    p = weighted_sum.numel()
    total = float(buf[p])
    if total <= 0:
        raise AggregationError(f"sampled clients {list(clients)} have total weight {total}")
    mean = unflatten(buf[:p] / buf[p], like, names)
    tail = buf[p + 1:]
    return ReducedRound(mean_delta=mean,
                        client_loss={c: float(tail[slot[c]]) for c in clients},
                        client_samples={c: int(round(float(tail[k + slot[c]]))) for c in clients})
