"""All federated state in one explicit object: what a checkpoint must hold to resume exactly."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class FederatedState:
    round: int  # next round to run
    global_adapter: dict[str, torch.Tensor]  # fp32 CPU, identical on every rank
    server_state: dict  # the server optimizer's state_dict()
    client_state: dict[int, dict] = field(default_factory=dict)  # per-client (e.g. SCAFFOLD c_i)
    # Every random draw (client sampling, partitions, data order) is keyed by (seed, round,
    # ...) from the config, so `round` is the only RNG position to keep.
