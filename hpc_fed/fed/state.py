"""All federated state in one explicit object: what a checkpoint must hold to resume exactly."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class FederatedState:
    round: int  # next round to run
    global_adapter: dict[str, torch.Tensor]  # fp32 CPU, identical on every rank
    method_state: dict  # the method's state_dict(): server buffers and per-client state
    # Every random draw (client sampling, partitions, data order) is keyed by (seed, round,
    # ...) from the config, so `round` is the only RNG position to keep.
