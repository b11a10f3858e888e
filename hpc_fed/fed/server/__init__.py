"""Server optimizers: `new_w = opt.step(w, delta)` on dicts name -> tensor, pure and stateful.

`delta` is the averaged client update (sample-weighted or uniform, see `weighting`). The
distributed path computes it with one all_reduce and then calls the same object on every rank,
so the global adapter and the optimizer state stay identical everywhere.
"""

from hpc_fed.fed.server.base import (REGISTRY, ServerOptimizer, build_server_optimizer,
                                     server_optimizer_from_config)
from hpc_fed.fed.server.fedadagrad import FedAdagrad
from hpc_fed.fed.server.fedadam import FedAdam
from hpc_fed.fed.server.fedavg import FedAvg
from hpc_fed.fed.server.fedavgm import FedAvgM
from hpc_fed.fed.server.fedprox import FedProx
from hpc_fed.fed.server.fedyogi import FedYogi
from hpc_fed.fed.server.scaffold import ScaffoldServer

for _cls in (FedAvg, FedProx, FedAvgM, FedAdagrad, FedYogi, FedAdam, ScaffoldServer):
    REGISTRY[_cls.name] = _cls

__all__ = ["ServerOptimizer", "build_server_optimizer", "server_optimizer_from_config", "REGISTRY",
           "FedAvg", "FedAvgM",
           "FedAdagrad", "FedYogi", "FedAdam", "FedProx", "ScaffoldServer"]
