"""FedYogi: m as FedAvgM; v <- v - (1-b2) * m^2 * sign(v - m^2); w <- w + eta*m/(sqrt(v)+tau)."""

from hpc_fed.fed.methods.fedavgm import momentum
from hpc_fed.fed.methods.fedopt import FedOpt


class FedYogi(FedOpt):
    name = "fedyogi"
    title = "FedYogi"

    def direction(self, delta):
        return momentum(self.buffers, delta, self.b1)

    def second_moment(self, v, m, delta, k):
        return v - (1 - self.b2) * m ** 2 * (v - m ** 2).sign()
