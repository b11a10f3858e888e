"""The `fed` section: the federated method, its hyper-parameters, clients and rounds. Method and
regularizer names come from their registries (hpc_fed/fed/methods/, hpc_fed/fed/regularizers.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, Optional

from hpc_fed.errors import require
from hpc_fed.fed.methods import REGISTRY
from hpc_fed.fed.methods.base import WEIGHTINGS
from hpc_fed.fed.regularizers import REGULARIZERS
from hpc_fed.fed.sampling import ASSIGNMENTS


@dataclass
class FedConfig:
    """The federated method and its hyper-parameters, the clients and the rounds."""

    algorithm: Annotated[str, Literal[tuple(REGISTRY)]] = "fedavg"
    """The federated method (hpc_fed/fed/methods/): how the server turns client deltas into the
    next global adapter."""
    regularizer: Optional[Annotated[str, Literal[REGULARIZERS]]] = None
    """Client-side proximal term: none, prox (FedProx) or adaptive (FedMLLM's layer window); works
    with every algorithm. null: the method's default (prox for fedprox, none otherwise)."""
    prox_mu: float = 0.01
    """Weight of the proximal term (prox and adaptive)."""
    mu_w: float = 0.1
    """adaptive: weight multiplier inside the layer window."""
    s_layer: int = 4
    """adaptive: the window regularizes decoder layers s_layer .. L-1-s_layer."""
    weighting: Optional[Annotated[str, Literal[WEIGHTINGS]]] = None
    """How client deltas are averaged: samples (sum n_i d_i / sum n_i) or uniform (mean over the
    sampled clients). null: the algorithm's own default (uniform for the adaptive FedOpt ones)."""
    server_lr: float = 1e-3
    """Server learning rate eta of fedadagrad / fedyogi / fedadam."""
    tau: float = 1e-3
    """Adaptivity of fedadagrad / fedyogi / fedadam (the second moment starts at tau^2)."""
    beta1: float = 0.9
    """Server momentum of fedavgm / fedyogi / fedadam, in [0, 1)."""
    beta2: float = 0.99
    """Second-moment decay of fedyogi / fedadam, in [0, 1)."""
    rounds: int = 10
    """Federated rounds."""
    num_clients: int = 10
    """Clients the training data is split over."""
    sample_clients: int = 2
    """Clients sampled per round (at most fed.num_clients)."""
    ranks_per_client: int = 1
    """Ranks in one client group (DeepSpeed's data-parallel size); must divide the world size."""
    assignment: Annotated[str, Literal[ASSIGNMENTS]] = "balanced"
    """Sampled clients onto client groups: balanced (longest first onto the least-loaded group,
    load = the client's local steps) or round_robin (i-th sampled client on group i mod groups)."""
    seed: int = 0
    """Seed of client sampling; identical on every rank."""
    local_client: Optional[int] = None
    """baseline=local: train only this client (null: every client)."""

    def resolve(self) -> None:
        """Fill the defaults that depend on the method (before `check`)."""
        if self.regularizer is None and self.algorithm in REGISTRY:
            self.regularizer = REGISTRY[self.algorithm].default_regularizer

    def check(self) -> None:
        require(self.prox_mu >= 0 and self.mu_w >= 0 and self.s_layer >= 0,
                f"fed.prox_mu ({self.prox_mu}), fed.mu_w ({self.mu_w}) and fed.s_layer ({self.s_layer}) "
                "must be >= 0")
        require(self.server_lr > 0 and self.tau > 0,
                f"fed.server_lr ({self.server_lr}) and fed.tau ({self.tau}) must be > 0")
        require(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1,
                f"fed.beta1 ({self.beta1}) and fed.beta2 ({self.beta2}) must be in [0, 1)")
        require(self.rounds >= 1, f"fed.rounds ({self.rounds}) must be >= 1")
        require(self.num_clients >= 1, f"fed.num_clients ({self.num_clients}) must be >= 1")
        require(1 <= self.sample_clients <= self.num_clients,
                f"fed.sample_clients ({self.sample_clients}) must be between 1 and fed.num_clients "
                f"({self.num_clients}); lower fed.sample_clients or raise fed.num_clients")
        require(self.ranks_per_client >= 1, f"fed.ranks_per_client ({self.ranks_per_client}) must be >= 1")
        require(self.local_client is None or 0 <= self.local_client < self.num_clients,
                f"fed.local_client ({self.local_client}) must be in [0, fed.num_clients "
                f"({self.num_clients}))")

    @property
    def needs_whole_adapter(self) -> bool:
        """Client terms that read every adapter value (a regularizer, SCAFFOLD's correction)."""
        return self.regularizer != "none" or REGISTRY[self.algorithm].needs_whole_adapter
