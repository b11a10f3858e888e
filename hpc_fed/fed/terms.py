"""Client terms: the client-side halves of FL methods, plugged into local training.

A term adds to the client's loss (its gradient is what the method changes in the local step),
and may keep per-client state across rounds (SCAFFOLD's c_i). The round loop calls the hooks
in order: begin_client -> (term(params) added to every micro-batch loss) -> end_client, and
end_round once per round on every rank.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class ClientTerm:
    def begin_client(self, client: int, global_adapter: dict, device) -> None:
        pass

    def __call__(self, named_params: Sequence[tuple[str, torch.Tensor]]) -> torch.Tensor:
        raise NotImplementedError

    def end_client(self, client: int, global_adapter: dict, local: dict, steps: int, lr: float) -> None:
        pass

    def end_round(self, clients: Sequence[int], global_adapter: dict, names: Sequence[str],
                  contribute: bool, comm) -> None:
        pass


def build_client_terms(fed, server, client_state: dict, names: Sequence[str],
                       num_layers: int) -> list[ClientTerm]:
    """The configured regularizer (none | prox | adaptive) and, for scaffold, its client half."""
    from hpc_fed.fed.regularizers import ProximalTerm, prox_weights
    from hpc_fed.fed.scaffold import ScaffoldClient, ScaffoldServer

    terms: list[ClientTerm] = []
    if fed.regularizer != "none":
        terms.append(ProximalTerm(prox_weights(names, fed.regularizer, fed.prox_mu, fed.mu_w,
                                               fed.s_layer, num_layers)))
    if isinstance(server, ScaffoldServer):
        terms.append(ScaffoldClient(server, client_state, fed.num_clients))
    return terms
