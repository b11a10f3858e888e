"""FedAvg (McMahan et al. 2017): w <- w + delta (sample-weighted mean of client deltas)."""

from hpc_fed.fed.methods.base import Method, State


class FedAvg(Method):
    name = "fedavg"
    title = "FedAvg"

    def step(self, w: State, delta: State) -> State:
        return {k: w[k] + delta[k].to(w[k].dtype) for k in w}
