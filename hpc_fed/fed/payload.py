"""The round payload: everything that crosses client groups in a round, summed by one all_reduce.

For the k clients sampled this round and an adapter of P values, one flat fp32 buffer:

    [ sum_i w_i * delta_i  (P) | sum_i w_i  (1) | loss_i  (k) | samples_i  (k) |
      for each extra row name of the method (e.g. SCAFFOLD's "control"): k x P ]

w_i is the method's client weight (n_i, or 1 for a uniform mean). The group that trained client
i writes its slots; every other rank writes zeros there, and only each group's leader
contributes at all (its group's ranks hold the same values), so nothing is counted twice. After
the all_reduce over the world every rank holds the same bits and divides once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from hpc_fed.errors import AggregationError
from hpc_fed.fed.aggregate import check_contribution, flatten, unflatten

State = dict[str, torch.Tensor]


@dataclass
class ReducedRound:
    """The round after the all_reduce: identical on every rank."""

    mean_delta: State
    client_loss: dict[int, float]
    client_samples: dict[int, int]
    extras: dict[str, dict[int, State]] = field(default_factory=dict)  # name -> client -> rows


class RoundPayload:
    def __init__(self, clients: Sequence[int], names: Sequence[str], like: State,
                 extras: Sequence[str] = ()):
        """`clients`: every client sampled this round (in the same order on every rank);
        `like`: the global adapter (keys, shapes); `extras`: the method's per-client rows."""
        self.clients, self.names, self.like, self.extras = list(clients), list(names), like, tuple(extras)
        self.slot = {c: i for i, c in enumerate(self.clients)}
        self.p = sum(like[n].numel() for n in self.names)
        k = len(self.clients)
        self._stats = self.p + 1
        self._rows = self._stats + 2 * k
        self.buf = torch.zeros(self._rows + len(self.extras) * k * self.p, dtype=torch.float32)

    def add(self, client: int, weight: float, delta: State, loss: float, samples: int,
            extras: dict[str, State] | None = None) -> None:
        """Client `client`'s contribution: weight * delta, its stats and its extra rows."""
        who = f"client {client}"
        check_contribution(delta, self.like, weight, who)
        flat = flatten(delta, self.names)
        if not torch.isfinite(flat).all():
            raise AggregationError(f"{who}: its adapter update holds NaN or inf values (local "
                                   "training diverged); lower train.lr or raise train.max_grad_norm "
                                   "clipping")
        if not math.isfinite(loss):
            raise AggregationError(f"{who}: train loss is {loss}; lower train.lr")
        extras = extras or {}
        if set(extras) != set(self.extras):
            raise AggregationError(f"{who}: extra rows {sorted(extras)} differ from the method's "
                                   f"{sorted(self.extras)}")
        i, k = self.slot[client], len(self.clients)
        self.buf[:self.p] += weight * flat
        self.buf[self.p] += weight
        self.buf[self._stats + i] = loss
        self.buf[self._stats + k + i] = samples
        for e, name in enumerate(self.extras):
            start = self._rows + (e * k + i) * self.p
            self.buf[start:start + self.p] = flatten(extras[name], self.names)

    def reduce(self, comm, contribute: bool) -> ReducedRound:
        """One all_reduce over `comm` (the world); then the mean delta and the per-client rows.
        Ranks that do not `contribute` (non-leaders of a group) add zeros."""
        buf = comm.all_reduce(self.buf if contribute else torch.zeros_like(self.buf))
        total = float(buf[self.p])
        if not total > 0:
            raise AggregationError(f"sampled clients {self.clients} have total weight {total}")
        k = len(self.clients)
        stats = buf[self._stats:self._rows]
        extras = {}
        for e, name in enumerate(self.extras):
            rows = buf[self._rows + e * k * self.p:self._rows + (e + 1) * k * self.p].view(k, self.p)
            extras[name] = {c: unflatten(rows[self.slot[c]], self.like, self.names) for c in self.clients}
        return ReducedRound(
            mean_delta=unflatten(buf[:self.p] / total, self.like, self.names),
            client_loss={c: float(stats[self.slot[c]]) for c in self.clients},
            client_samples={c: int(round(float(stats[k + self.slot[c]]))) for c in self.clients},
            extras=extras)
