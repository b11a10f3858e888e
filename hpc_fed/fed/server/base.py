"""The server-optimizer interface, its registry, and the state round trip."""

from __future__ import annotations

import torch

from hpc_fed.errors import ConfigError

State = dict[str, torch.Tensor]


def wide(t: torch.Tensor) -> torch.Tensor:
    """Server math runs in fp32 at least (fp64 inputs stay fp64)."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


REGISTRY: dict[str, type["ServerOptimizer"]] = {}


class ServerOptimizer:
    """Base class. Subclasses set `name`, `weighting` and implement `step`.

    Buffers (momentum, second moments) live in `self.buffers`, one dict name -> tensor per
    buffer, created at the first step; `state_dict` / `load_state_dict` round-trip them.
    """

    name = "base"
    weighting = "samples"  # samples: sum n_i delta_i / sum n_i; uniform: mean over clients
    hparams: tuple[str, ...] = ()

    def __init__(self, **hparams):
        unknown = sorted(set(hparams) - set(self.hparams))
        if unknown:
            raise ConfigError(f"{self.name} takes no hyper-parameter(s) {unknown}; "
                              f"it takes {list(self.hparams)}")
        for k, v in hparams.items():
            setattr(self, k, v)
        self.buffers: dict[str, State] = {}

    def step(self, w: State, delta: State) -> State:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {"name": self.name,
                "buffers": {b: {k: t.clone() for k, t in s.items()} for b, s in self.buffers.items()}}

    def load_state_dict(self, state: dict) -> None:
        if state.get("name") != self.name:
            raise ConfigError(f"server state is for {state.get('name')!r}, not {self.name!r}; "
                              "resume with the same fed.algorithm")
        self.buffers = {b: {k: t.clone() for k, t in s.items()}
                        for b, s in state.get("buffers", {}).items()}


def server_optimizer_from_config(fed) -> ServerOptimizer:
    """The configured server optimizer, given only the hyper-parameters it takes."""
    cls = REGISTRY.get(fed.algorithm)
    values = {"eta": fed.server_lr, "tau": fed.tau, "b1": fed.beta1, "b2": fed.beta2}
    opt = build_server_optimizer(fed.algorithm, **{k: v for k, v in values.items()
                                                   if cls is not None and k in cls.hparams})
    if fed.weighting is not None:
        opt.weighting = fed.weighting
    return opt


def build_server_optimizer(name: str, **hparams) -> ServerOptimizer:
    if name not in REGISTRY:
        raise ConfigError(f"fed.algorithm ({name!r}) is unknown; choose one of {sorted(REGISTRY)}")
    return REGISTRY[name](**hparams)
