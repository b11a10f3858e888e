"""The kinds of run, one module each; `baseline` in the config names one.

  none         hpc_fed/runs/federated.py    the federated round loop (FederatedRun)
  zero_shot    hpc_fed/runs/zero_shot.py    the untouched base model, evaluated
  local        hpc_fed/runs/local.py        each client trains alone, never aggregated
  centralized  hpc_fed/runs/centralized.py  all data pooled as one client on one group of every rank

The registry holds module paths, imported on use: a run imports the whole training stack. Its
keys are hpc_fed.config.BASELINES, the names the config checks `baseline` against.
"""

from __future__ import annotations

import importlib

RUNS: dict[str, str] = {
    "none": "hpc_fed.runs.federated:FederatedRun",
    "zero_shot": "hpc_fed.runs.zero_shot:ZeroShotRun",
    "local": "hpc_fed.runs.local:LocalRun",
    "centralized": "hpc_fed.runs.centralized:CentralizedRun",
}
BASELINE_TITLES = {"zero_shot": "Zero-shot", "local": "Local", "centralized": "Centralized"}  # reports


def run_class(baseline: str):
    """The run class `baseline` names (validated at config load against RUNS)."""
    module, name = RUNS[baseline].split(":")
    return getattr(importlib.import_module(module), name)
