"""SCAFFOLD (Karimireddy et al. 2020, option II): both halves of the method.

Client i keeps a control variate c_i (zero at start, kept per client across rounds wherever it
trains next); the server keeps c. Local steps follow grad + c - c_i: we add the loss term
sum <c - c_i, w>, whose gradient is exactly c - c_i. After K local steps with rate lr:
    c_i+ = c_i - c + (w - w_i) / (K * lr)
and the server, besides w <- w + delta (sample-weighted, as FedAvg), sets
    c <- c + (|S| / N) * mean_{i in S} (c_i+ - c_i).
The control updates of all sampled clients are exchanged with one all_reduce so every rank
holds every c_i and the same c.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from hpc_fed.distributed.collectives import Comm
from hpc_fed.fed.aggregate import flatten, unflatten
from hpc_fed.fed.server.scaffold import ScaffoldServer
from hpc_fed.fed.terms import ClientTerm

State = dict[str, torch.Tensor]


def client_control_update(c_i: State, c: State, w: State, w_i: State, steps: int, lr: float) -> State:
    """c_i+ = c_i - c + (w - w_i) / (K * lr); unchanged when K * lr is 0 (nothing learned)."""
    if steps * lr == 0:
        return {k: v.clone() for k, v in c_i.items()}
    return {k: c_i[k] - c[k] + (w[k] - w_i[k]) / (steps * lr) for k in c_i}


def server_control_update(c: State, control_deltas: Sequence[State], num_clients: int) -> State:
    """c + (|S| / N) * mean over S of (c_i+ - c_i) = c + sum over S / N."""
    return {k: c[k] + sum(d[k] for d in control_deltas) / num_clients for k in c}


class ScaffoldClient(ClientTerm):
    """The client half, as a client term of the round loop."""

    def __init__(self, server: ScaffoldServer, client_state: dict, num_clients: int):
        self.server, self.client_state, self.num_clients = server, client_state, num_clients
        self.pending: dict[int, State] = {}  # client -> c_i+ - c_i, this round, this group

    def _zeros(self, like: State) -> State:
        return {k: torch.zeros_like(v, dtype=torch.float32) for k, v in like.items()}

    def _c(self, like: State) -> State:
        if "c" not in self.server.buffers:
            self.server.buffers["c"] = self._zeros(like)
        return self.server.buffers["c"]

    def _c_i(self, client: int, like: State) -> State:
        return self.client_state.setdefault(client, {}).setdefault("c", self._zeros(like))

    def begin_client(self, client: int, global_adapter: State, device) -> None:
        c, c_i = self._c(global_adapter), self._c_i(client, global_adapter)
        self.correction = {k: (c[k] - c_i[k]).to(device) for k in c}

    def __call__(self, named_params) -> torch.Tensor:
        return sum((p.float() * self.correction[n]).sum() for n, p in named_params)

    def end_client(self, client: int, global_adapter: State, local: State, steps: int, lr: float):
        c_i = self._c_i(client, global_adapter)
        new = client_control_update(c_i, self._c(global_adapter), global_adapter, local, steps, lr)
        self.pending[client] = {k: new[k] - c_i[k] for k in c_i}

    def end_round(self, clients: Sequence[int], global_adapter: State, names: Sequence[str],
                  contribute: bool, comm: Comm) -> None:
        """Share every sampled client's control update; update each c_i and c on every rank."""
        like = self._c(global_adapter)
        p = sum(v.numel() for v in like.values())
        buf = torch.zeros(len(clients), p, dtype=torch.float32)
        if contribute:
            for row, c in enumerate(clients):
                if c in self.pending:
                    buf[row] = flatten(self.pending[c], names)
        buf = comm.all_reduce(buf)
        deltas = [unflatten(buf[row], like, names) for row in range(len(clients))]
        for c, d in zip(clients, deltas):
            c_i = self._c_i(c, like)
            self.client_state[c]["c"] = {k: c_i[k] + d[k] for k in c_i}
        self.server.buffers["c"] = server_control_update(like, deltas, self.num_clients)
        self.pending = {}
