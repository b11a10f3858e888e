"""FedOpt (Reddi et al. 2021) family: adaptive server steps w <- w + eta * u / (sqrt(v) + tau).

Subclasses choose the update direction u and the second-moment rule for v; v starts at tau^2.
Client deltas are averaged uniformly over the sampled clients, as the reference code does.
"""

from __future__ import annotations

from hpc_fed.fed.methods.base import Method, State, wide


class FedOpt(Method):
    weighting = "uniform"
    hparams = ("eta", "tau", "b1", "b2")
    eta, tau, b1, b2 = 1e-3, 1e-3, 0.9, 0.99

    def direction(self, delta: State) -> State:
        raise NotImplementedError

    def second_moment(self, v, u, delta, k):
        raise NotImplementedError

    def step(self, w: State, delta: State) -> State:
        u = self.direction(delta)
        if "v" not in self.buffers:
            self.buffers["v"] = {k: wide(d).new_full(d.shape, self.tau ** 2) for k, d in delta.items()}
        v = self.buffers["v"]
        for k in v:
            v[k] = self.second_moment(v[k], u[k], wide(delta[k]), k)
        return {k: w[k] + (self.eta * u[k] / (v[k].sqrt() + self.tau)).to(w[k].dtype) for k in w}
