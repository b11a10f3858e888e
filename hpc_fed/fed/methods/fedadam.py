"""FedAdam: m as FedAvgM; v <- b2*v + (1-b2)*m^2; w <- w + eta*m/(sqrt(v)+tau)."""

from hpc_fed.fed.methods.fedavgm import momentum
from hpc_fed.fed.methods.fedopt import FedOpt


class FedAdam(FedOpt):
    name = "fedadam"
    title = "FedAdam"

    def direction(self, delta):
        return momentum(self.buffers, delta, self.b1)

    def second_moment(self, v, m, delta, k):
        return self.b2 * v + (1 - self.b2) * m ** 2
