"""Dataset name -> (train records, test records). One entry per dataset module."""

from __future__ import annotations

from hpc_fed.config import DataConfig
from hpc_fed.data.datasets.easyvqa import load_easyvqa, subsample
from hpc_fed.data.records import Record
from hpc_fed.errors import ConfigError


def load_splits(cfg: DataConfig) -> tuple[list[Record], list[Record]]:
    if cfg.name == "easyvqa":
        train, test = load_easyvqa("train"), load_easyvqa("test")
    else:
        raise ConfigError(f"data.name ({cfg.name!r}) is unknown; choose easyvqa")
    return (subsample(train, cfg.max_train_samples, cfg.seed),
            subsample(test, cfg.max_test_samples, cfg.seed + 1))
