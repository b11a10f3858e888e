"""Server optimizers: a pure step `new_w = opt.step(w, delta)` on dicts name -> tensor.

The distributed path averages client deltas with collectives, then every rank calls the same
server optimizer on the same inputs, so the global adapter stays identical everywhere. State
(momentum, second moments) is explicit and round-trips through state_dict / load_state_dict.
"""

from __future__ import annotations

from hpc_fed.errors import ConfigError

State = dict


class ServerOptimizer:
    """Base: no state; subclasses override `step`."""

    name = "base"
    weighting = "samples"  # how client deltas are averaged before `step`

    def step(self, w: State, delta: State) -> State:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {"name": self.name}

    def load_state_dict(self, state: dict) -> None:
        if state.get("name") != self.name:
            raise ConfigError(f"server state is for {state.get('name')!r}, not {self.name!r}; "
                              "resume with the same fed.algorithm")


class FedAvg(ServerOptimizer):
    """McMahan et al. 2017: w <- w + sample-weighted mean of client deltas."""

    name = "fedavg"

    def step(self, w: State, delta: State) -> State:
        return {k: w[k] + delta[k].to(w[k].dtype) for k in w}


REGISTRY: dict[str, type[ServerOptimizer]] = {cls.name: cls for cls in (FedAvg,)}


def build_server_optimizer(name: str, **hparams) -> ServerOptimizer:
    if name not in REGISTRY:
        raise ConfigError(f"fed.algorithm ({name!r}) is unknown; choose one of {sorted(REGISTRY)}")
    return REGISTRY[name](**hparams)
