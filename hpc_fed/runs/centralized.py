"""baseline=centralized: all clients' data pooled as one client, trained data-parallel over the
whole world (one ZeRO group of every rank), with the same total optimizer steps as the FL run
(fed.sample_clients x train.local_steps per round). The modality scenario is drawn on the FL
partition (fed.num_clients clients) before pooling, so the pooled data is the FL run's."""

from __future__ import annotations

import copy

from hpc_fed.config import RunConfig
from hpc_fed.data.federated import build_federated_data
from hpc_fed.runs.federated import FederatedRun


def centralized_config(cfg: RunConfig, world_size: int) -> RunConfig:
    """The FL config rewritten as one client holding all data on one group of every rank."""
    c = copy.deepcopy(cfg)
    if c.train.local_steps is not None:
        c.train.local_steps = cfg.train.local_steps * cfg.fed.sample_clients
    else:  # the FL run sees sample_clients/num_clients of the data per round, for local_epochs
        c.train.local_epochs = cfg.train.local_epochs * cfg.fed.sample_clients / cfg.fed.num_clients
    c.fed.num_clients = c.fed.sample_clients = 1
    c.fed.ranks_per_client = world_size
    c.fed.algorithm, c.fed.regularizer, c.fed.weighting = "fedavg", "none", None
    return c


class CentralizedRun(FederatedRun):
    def __init__(self, cfg: RunConfig, topo):
        self.fl_clients = cfg.fed.num_clients
        super().__init__(centralized_config(cfg, topo.world_size), topo)

    def build_data(self):
        data = build_federated_data(self.cfg.data, self.fl_clients)
        data.parts = [sorted(i for part in data.parts for i in part)]
        return data
