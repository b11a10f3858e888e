"""SCAFFOLD (Karimireddy et al. 2020, option II): both halves of the method.

Client i keeps a control variate c_i (zero at start, kept per client in `clients` across rounds
wherever it trains next); the server keeps c (`buffers["c"]`). Local steps follow
grad + c - c_i: the loss term sum <c - c_i, w> has exactly that gradient. After K local steps
with rate lr:
    c_i+ = c_i - c + (w - w_i) / (K * lr)
Each client's c_i+ - c_i travels in the round payload (extra "control"), so after the round's
one all_reduce every rank updates every sampled c_i and, besides w <- w + delta
(sample-weighted, as FedAvg),
    c <- c + (|S| / N) * mean_{i in S} (c_i+ - c_i) = c + sum_{i in S} (c_i+ - c_i) / N.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from hpc_fed.fed.methods.base import State
from hpc_fed.fed.methods.fedavg import FedAvg
from hpc_fed.fed.terms import ClientTerm


def client_control_update(c_i: State, c: State, w: State, w_i: State, steps: int, lr: float) -> State:
    """c_i+ = c_i - c + (w - w_i) / (K * lr); unchanged when K * lr is 0 (nothing learned)."""
    if steps * lr == 0:
        return {k: v.clone() for k, v in c_i.items()}
    return {k: c_i[k] - c[k] + (w[k] - w_i[k]) / (steps * lr) for k in c_i}


def server_control_update(c: State, control_deltas: Sequence[State], num_clients: int) -> State:
    """c + (|S| / N) * mean over S of (c_i+ - c_i) = c + sum over S / N."""
    return {k: c[k] + sum(d[k] for d in control_deltas) / num_clients for k in c}


class ControlCorrection(ClientTerm):
    """sum_n <c - c_i, p_n>: its gradient is the SCAFFOLD correction c - c_i."""

    def __init__(self, correction: State):
        self.correction = correction

    def __call__(self, named_params) -> torch.Tensor:
        return sum((p.float() * self.correction[n]).sum() for n, p in named_params)


class Scaffold(FedAvg):
    name = "scaffold"
    title = "SCAFFOLD"
    hparams = ("num_clients",)
    num_clients = 1  # N in the server's control update (fed.num_clients)
    extras = ("control",)
    needs_whole_adapter = True

    def _zeros(self, like: State) -> State:
        return {k: torch.zeros_like(v, dtype=torch.float32) for k, v in like.items()}

    def c(self, like: State) -> State:
        return self.buffers.setdefault("c", self._zeros(like))

    def c_i(self, client: int, like: State) -> State:
        return self.clients.setdefault(client, {}).setdefault("c", self._zeros(like))

    def method_terms(self, client: int, global_adapter: State, device) -> list[ClientTerm]:
        c, c_i = self.c(global_adapter), self.c_i(client, global_adapter)
        return [ControlCorrection({k: (c[k] - c_i[k]).to(device) for k in c})]

    def client_extras(self, client, global_adapter, local, steps, lr) -> dict[str, State]:
        c_i = self.c_i(client, global_adapter)
        new = client_control_update(c_i, self.c(global_adapter), global_adapter, local, steps, lr)
        return {"control": {k: new[k] - c_i[k] for k in c_i}}

    def server_update(self, w: State, reduced) -> State:
        """Every sampled c_i and c from the reduced control deltas, then FedAvg's step."""
        deltas = reduced.extras["control"]
        for client, d in deltas.items():
            c_i = self.c_i(client, w)
            self.clients[client]["c"] = {k: c_i[k] + d[k] for k in c_i}
        self.buffers["c"] = server_control_update(self.c(w), list(deltas.values()), self.num_clients)
        return self.step(w, reduced.mean_delta)
