"""Client terms: what a federated method adds to a client's local loss.

A term is called on the trainable (adapter) parameters at every micro-batch and returns a scalar
added to the task loss; its gradient is what the method changes in the local step (FedProx's
pull towards the global adapter, SCAFFOLD's control correction). Methods create them per client
(hpc_fed/fed/methods/base.py); the engine adds them to the loss (hpc_fed/client/engine.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class ClientTerm:
    def __call__(self, named_params: Sequence[tuple[str, torch.Tensor]]) -> torch.Tensor:
        raise NotImplementedError
