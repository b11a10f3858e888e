"""FedProx's server half is FedAvg; its client half is the proximal term
(hpc_fed/fed/regularizers.py), on by default for this algorithm (fed.regularizer=prox)."""

from hpc_fed.fed.server.fedavg import FedAvg


class FedProx(FedAvg):
    name = "fedprox"
