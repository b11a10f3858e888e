"""FedAdagrad: v <- v + delta^2; w <- w + eta * delta / (sqrt(v) + tau)."""

from hpc_fed.fed.methods.base import wide
from hpc_fed.fed.methods.fedopt import FedOpt


class FedAdagrad(FedOpt):
    name = "fedadagrad"
    title = "FedAdagrad"

    def direction(self, delta):
        return {k: wide(d) for k, d in delta.items()}

    def second_moment(self, v, u, delta, k):
        return v + delta ** 2
