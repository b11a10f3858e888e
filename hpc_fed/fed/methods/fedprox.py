"""FedProx (Li et al. 2020): FedAvg on the server; on the client the proximal term
(mu/2) ||w - w_global||^2 (hpc_fed/fed/regularizers.py, weight fed.prox_mu), on by default
for this method (fed.regularizer=prox)."""

from hpc_fed.fed.methods.fedavg import FedAvg


class FedProx(FedAvg):
    name = "fedprox"
    title = "FedProx"
    default_regularizer = "prox"
