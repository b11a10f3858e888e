"""The `fed` section: the federated method, its hyper-parameters, clients and rounds. Method and
regularizer names come from their registries (hpc_fed/fed/methods/, hpc_fed/fed/regularizers.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from hpc_fed.errors import require
from hpc_fed.fed.methods import REGISTRY
from hpc_fed.fed.methods.base import WEIGHTINGS
from hpc_fed.fed.regularizers import REGULARIZERS
from hpc_fed.fed.sampling import ASSIGNMENTS


@dataclass
class FedConfig:
    # fedavg | fedprox | fedavgm | fedadagrad | fedyogi | fedadam | scaffold
    algorithm: str = "fedavg"
    # Client-side proximal term: none | prox (FedProx) | adaptive (FedMLLM's layer window);
    # null = the method's default (prox for fedprox, none otherwise). Works with every algorithm.
    regularizer: Optional[str] = None
    prox_mu: float = 0.01
    mu_w: float = 0.1  # adaptive: weight multiplier inside the layer window
    s_layer: int = 4  # adaptive: regularize decoder layers s..L-1-s
    # How client deltas are averaged: samples (sum n_i d_i / sum n_i) | uniform (mean over
    # sampled clients); null = the algorithm's own default (uniform for the adaptive FedOpt ones).
    weighting: Optional[str] = None
    server_lr: float = 1e-3  # eta of fedadagrad / fedyogi / fedadam
    tau: float = 1e-3  # adaptivity of fedadagrad / fedyogi / fedadam (v starts at tau^2)
    beta1: float = 0.9  # momentum of fedavgm / fedyogi / fedadam
    beta2: float = 0.99  # second-moment decay of fedyogi / fedadam
    rounds: int = 10
    num_clients: int = 10
    sample_clients: int = 2  # clients sampled per round
    ranks_per_client: int = 1  # ranks in one client group (DeepSpeed data-parallel size)
    # Sampled clients onto client groups: balanced (longest first onto the least-loaded group,
    # load = the client's local steps) | round_robin (i-th sampled client on group i mod groups)
    assignment: str = "balanced"
    seed: int = 0  # client sampling; identical on every rank
    local_client: Optional[int] = None  # baseline=local: train only this client (default all)

    def resolve(self) -> None:
        """Fill the defaults that depend on the method (before `check`)."""
        if self.regularizer is None and self.algorithm in REGISTRY:
            self.regularizer = REGISTRY[self.algorithm].default_regularizer

    def check(self) -> None:
        require(self.algorithm in REGISTRY,
                f"fed.algorithm ({self.algorithm!r}) is unknown; choose one of {sorted(REGISTRY)}")
        require(self.regularizer in REGULARIZERS,
                f"fed.regularizer ({self.regularizer!r}) must be one of {REGULARIZERS}")
        require(self.prox_mu >= 0 and self.mu_w >= 0 and self.s_layer >= 0,
                f"fed.prox_mu ({self.prox_mu}), fed.mu_w ({self.mu_w}) and fed.s_layer ({self.s_layer}) "
                "must be >= 0")
        require(self.weighting is None or self.weighting in WEIGHTINGS,
                f"fed.weighting ({self.weighting!r}) must be one of {WEIGHTINGS} or null")
        require(self.server_lr > 0 and self.tau > 0,
                f"fed.server_lr ({self.server_lr}) and fed.tau ({self.tau}) must be > 0")
        require(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1,
                f"fed.beta1 ({self.beta1}) and fed.beta2 ({self.beta2}) must be in [0, 1)")
        require(self.assignment in ASSIGNMENTS,
                f"fed.assignment ({self.assignment!r}) must be one of {ASSIGNMENTS}")
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
