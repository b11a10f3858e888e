"""Benchmark matrices written for tests: the paper-sized one and a small one."""

from __future__ import annotations

from pathlib import Path

SCENARIOS = """\
scenarios:
  aligned: {key: data.alpha, values: [5.0, 1.0, 0.5]}
  missing: {key: data.beta, values: [0.3, 0.4, 0.5]}
  cross:   {key: data.k, values: [3, 5, 7]}
  hybrid:  {key: data.p, values: [0.8, 0.7, 0.6]}
"""


FULL = """\
name: offline
base: base.yaml
overrides: [fed.rounds=6]
output_root: {root}
nproc: 2
seeds: [0, 1]
datasets:
  claims: [data.max_train_samples=100]
  mc: [data.max_train_samples=200]
""" + SCENARIOS + """\
methods:
  FedAvg: [fed.algorithm=fedavg]
  FedProx: [fed.algorithm=fedprox]
  FedAvg+prompt: [fed.algorithm=fedavg, data.prompt=modality_agnostic]
baselines:
  Zero-shot: {overrides: [baseline=zero_shot], per: dataset}
  Local: {overrides: [baseline=local], per: setting}
  Centralized: {overrides: [baseline=centralized], per: setting}
"""


SMALL = """\
base: base.yaml
output_root: {root}
seeds: [0, 1]
datasets:
  d: []
scenarios:
  missing: {key: data.beta, values: [0.3, 0.5]}
methods:
  FedAvg: [fed.algorithm=fedavg]
"""


def write_matrix(tmp_path: Path, text: str, name: str = "matrix.yaml") -> Path:
    (tmp_path / "base.yaml").write_text("fed: {rounds: 1}\n")
    path = tmp_path / name
    path.write_text(text.replace("{root}", str(tmp_path / "out")))
    return path
