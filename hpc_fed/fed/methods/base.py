"""What a federated method is: one unit holding its server update, its client terms, its state
and what it adds to the round payload.

The round loop (hpc_fed/runs/federated.py) uses a method in three places:
  * the group training client c adds `method.client_terms(c, w, device)` to every micro-batch
    loss (the configured regularizer first, then the method's own terms);
  * after training it puts `method.client_extras(c, w, w_c, steps, lr)` into the round payload
    (per-client rows shaped like the adapter, named in `extras`), next to the weighted delta;
  * after the round's single all_reduce every rank calls `method.server_update(w, reduced)`,
    which is `step(w, mean delta)` (pure tensor math) unless the method also reads its extras.
Buffers (momentum, second moments, control variates) live in `self.buffers`, per-client state
(SCAFFOLD's c_i) in `self.clients`; `state_dict` / `load_state_dict` round-trip both, so the
state is identical on every rank and can be checkpointed. Adding FedDyn or FedNova is one file
with a subclass plus one line in hpc_fed/fed/methods/__init__.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from hpc_fed.errors import ConfigError
from hpc_fed.fed.terms import ClientTerm

if TYPE_CHECKING:
    from hpc_fed.fed.payload import ReducedRound
    from hpc_fed.fed.regularizers import Regularizer

State = dict[str, torch.Tensor]
WEIGHTINGS = ("samples", "uniform")  # fed.weighting: how client deltas are averaged


def wide(t: torch.Tensor) -> torch.Tensor:
    """Server math runs in fp32 at least (fp64 inputs stay fp64)."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


class Method:
    """Base class: subclasses set `name` and implement `step` (and the client hooks they need)."""

    name = "base"
    title = "Base"  # display name in reports
    weighting = "samples"  # samples: sum n_i delta_i / sum n_i; uniform: mean over clients
    hparams: tuple[str, ...] = ()  # server-side hyper-parameters the constructor takes
    default_regularizer = "none"  # fed.regularizer when the config leaves it null
    extras: tuple[str, ...] = ()  # per-client payload rows (each shaped like the adapter)
    needs_whole_adapter = False  # its client terms read every adapter value: ZeRO stage <= 2

    def __init__(self, **hparams):
        unknown = sorted(set(hparams) - set(self.hparams))
        if unknown:
            raise ConfigError(f"{self.name} takes no hyper-parameter(s) {unknown}; "
                              f"it takes {list(self.hparams)}")
        for k, v in hparams.items():
            setattr(self, k, v)
        self.buffers: dict[str, State] = {}
        self.clients: dict[int, dict[str, State]] = {}
        self.regularizer: Regularizer | None = None  # fed.regularizer, set by build_method

    # --- client half ----------------------------------------------------------------------
    def client_terms(self, client: int, global_adapter: State, device) -> list[ClientTerm]:
        """Loss terms of one client's local training: the regularizer, then the method's own."""
        own = self.method_terms(client, global_adapter, device)
        if self.regularizer is None:
            return own
        return [self.regularizer.term(global_adapter, device), *own]

    def method_terms(self, client: int, global_adapter: State, device) -> list[ClientTerm]:
        return []

    def client_weight(self, num_samples: int) -> float:
        """n_i for sample weighting, 1 for the uniform mean the adaptive optimizers use."""
        return float(num_samples) if self.weighting == "samples" else 1.0

    def client_extras(self, client: int, global_adapter: State, local: State, steps: int,
                      lr: float) -> dict[str, State]:
        """This client's rows of the round payload, one per name in `extras`."""
        return {}

    # --- server half ----------------------------------------------------------------------
    def step(self, w: State, delta: State) -> State:
        """The server update from the averaged client delta (pure; updates `buffers`)."""
        raise NotImplementedError

    def server_update(self, w: State, reduced: ReducedRound) -> State:
        return self.step(w, reduced.mean_delta)

    # --- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"name": self.name,
                "buffers": {b: _clone(s) for b, s in self.buffers.items()},
                "clients": {c: {b: _clone(s) for b, s in st.items()} for c, st in self.clients.items()}}

    def load_state_dict(self, state: dict) -> None:
        if state.get("name") != self.name:
            raise ConfigError(f"method state is for {state.get('name')!r}, not {self.name!r}; "
                              "resume with the same fed.algorithm")
        self.buffers = {b: _clone(s) for b, s in state.get("buffers", {}).items()}
        self.clients = {int(c): {b: _clone(s) for b, s in st.items()}
                        for c, st in state.get("clients", {}).items()}


def _clone(s: State) -> State:
    return {k: t.clone() for k, t in s.items()}
