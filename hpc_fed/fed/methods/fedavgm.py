"""FedAvgM, in FedMLLM's form: m <- delta at the first round, else m <- b1*m + (1-b1)*delta;
w <- w + m."""

from hpc_fed.fed.methods.base import Method, State, wide


def momentum(buffers: dict, delta: State, b1: float) -> State:
    """The shared first-moment rule of FedAvgM, FedYogi and FedAdam (updates buffers['m'])."""
    if "m" not in buffers:
        buffers["m"] = {k: wide(d).clone() for k, d in delta.items()}
    else:
        buffers["m"] = {k: b1 * m + (1 - b1) * wide(delta[k]) for k, m in buffers["m"].items()}
    return buffers["m"]


class FedAvgM(Method):
    name = "fedavgm"
    title = "FedAvgM"
    hparams = ("b1",)
    b1 = 0.9

    def step(self, w: State, delta: State) -> State:
        m = momentum(self.buffers, delta, self.b1)
        return {k: w[k] + m[k].to(w[k].dtype) for k in w}
