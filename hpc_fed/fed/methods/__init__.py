"""Federated methods, one small class per file; `fed.algorithm` names one (see base.py for what
a method is). The registry below is the only list of method names."""

from __future__ import annotations

from hpc_fed.errors import ConfigError
from hpc_fed.fed.methods.base import Method
from hpc_fed.fed.methods.fedadagrad import FedAdagrad
from hpc_fed.fed.methods.fedadam import FedAdam
from hpc_fed.fed.methods.fedavg import FedAvg
from hpc_fed.fed.methods.fedavgm import FedAvgM
from hpc_fed.fed.methods.fedprox import FedProx
from hpc_fed.fed.methods.fedyogi import FedYogi
from hpc_fed.fed.methods.scaffold import Scaffold
from hpc_fed.fed.regularizers import build_regularizer

REGISTRY: dict[str, type[Method]] = {cls.name: cls for cls in (
    FedAvg, FedProx, FedAvgM, FedAdagrad, FedYogi, FedAdam, Scaffold)}


def method_class(name: str) -> type[Method]:
    if name not in REGISTRY:
        raise ConfigError(f"fed.algorithm ({name!r}) is unknown; choose one of {sorted(REGISTRY)}")
    return REGISTRY[name]


def build_method(name: str, **hparams) -> Method:
    """The method `name` with the server-side hyper-parameters it takes."""
    return method_class(name)(**hparams)


def method_from_config(fed, names=(), num_layers: int = 0, language: str | None = None) -> Method:
    """The configured method: its hyper-parameters from `fed`, fed.weighting, and the
    fed.regularizer term over the adapter parameters `names` of a `num_layers`-layer language
    model whose module is named `language` (ModuleRoles.language)."""
    cls = method_class(fed.algorithm)
    values = {"eta": fed.server_lr, "tau": fed.tau, "b1": fed.beta1, "b2": fed.beta2,
              "num_clients": fed.num_clients}
    method = cls(**{k: v for k, v in values.items() if k in cls.hparams})
    if fed.weighting is not None:
        method.weighting = fed.weighting
    method.regularizer = build_regularizer(fed, names, num_layers, language)
    return method


__all__ = ["Method", "REGISTRY", "build_method", "method_class", "method_from_config", "FedAvg",
           "FedProx", "FedAvgM", "FedAdagrad", "FedYogi", "FedAdam", "Scaffold"]
