"""Dataset name -> how to load it: train records, test records, and (for data that comes
already split by client) the client parts. One entry per dataset module."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from hpc_fed.data.records import Record, RecordSet, subsample
from hpc_fed.errors import ConfigError

if TYPE_CHECKING:  # the config checks data.name against this registry, so no runtime import back
    from hpc_fed.data.config import DataConfig

# what a loader returns: train, test (lists of records, or RecordSets: tables in `datasets`),
# and the client parts of data that comes split by client (else None)
Loaded = tuple[Sequence[Record], Sequence[Record], Optional[list[list[int]]]]


@dataclass(frozen=True)
class DatasetSpec:
    primary_metric: str  # the headline metric of the paper's tables
    load: Callable[[DataConfig], Loaded]
    needs_root: bool = False
    open_ended: bool = False  # answers are free text: eval.mode must be generation
    # data.partition=source: record-id prefixes of the image source and the text source
    sources: tuple[str, ...] = ()
    # data.test_set: other test sets the dataset can be scored on (transfer), besides its own
    test_sets: tuple[str, ...] = ()


def data_root(cfg: DataConfig) -> Path:
    """data.root as a folder (disk datasets); checked at config load and before reading."""
    root = Path(cfg.root)
    if cfg.root and not root.exists() and not root.is_absolute() and len(root.parts) == 2:
        raise ConfigError(f"data.root ({cfg.root!r}) is not a folder; if it is a Hub id, take a local "
                          f"copy first on a machine with internet (hpc-fed download --dataset {cfg.root} "
                          "--local-dir DIR) and set data.root=DIR: runs read data from disk only "
                          "(see docs/datasets.md)")
    if not cfg.root or not root.is_dir():
        raise ConfigError(f"data.root ({cfg.root!r}) is not a folder; data.name={cfg.name} reads "
                          "its published files from there (see docs/datasets.md)")
    return root


def _easyvqa(cfg):
    from hpc_fed.data.datasets.easyvqa import load_easyvqa

    return load_easyvqa("train"), load_easyvqa("test"), None


def _claims(cfg):
    from hpc_fed.data.datasets.easyvqa_tasks import load_claims

    return load_claims("train", cfg.seed), load_claims("test", cfg.seed), None


def _memes(cfg):
    from hpc_fed.data.datasets.easyvqa_tasks import load_memes

    return load_memes("train", cfg.seed), load_memes("test", cfg.seed), None


def _mc(cfg):
    from hpc_fed.data.datasets.easyvqa_tasks import load_mc

    return load_mc("train", cfg.seed), load_mc("test", cfg.seed), None


def _hateful_memes(cfg):
    from hpc_fed.data.datasets.hateful_memes import load_hateful_memes

    root = data_root(cfg)
    missing = "keep" if cfg.on_error == "skip" else "raise"  # a missing file: skipped like a bad one
    return load_hateful_memes(root, "train", missing), load_hateful_memes(root, "test", missing), None


def _crisismmd(cfg):
    from hpc_fed.data.datasets.crisismmd import load_crisismmd

    root = data_root(cfg)
    return load_crisismmd(root, "train"), load_crisismmd(root, "test"), None


def _medvqa(cfg):
    from hpc_fed.data.datasets.medvqa import load_medvqa

    root = data_root(cfg)
    test = load_medvqa(root, "test_slake" if cfg.test_set == "slake" else "test")
    return load_medvqa(root, "train"), test, None


def _fedmllm(cfg):
    from hpc_fed.data.datasets.fedmllm import load_fedmllm_clients, load_fedmllm_test

    root = data_root(cfg)
    image_root = Path(cfg.image_root) if cfg.image_root else None
    clients = load_fedmllm_clients(root, image_root=image_root)
    sizes = np.cumsum([0] + [len(c) for c in clients])
    parts = [list(range(a, b)) for a, b in zip(sizes[:-1].tolist(), sizes[1:].tolist())]
    return RecordSet.concat(clients), load_fedmllm_test(root, image_root=image_root), parts


DATASETS: dict[str, DatasetSpec] = {
    "easyvqa": DatasetSpec("accuracy", _easyvqa),
    "easyvqa_memes": DatasetSpec("auc", _memes),
    "easyvqa_claims": DatasetSpec("auc", _claims),
    "easyvqa_mc": DatasetSpec("macro_f1", _mc),
    "hateful_memes": DatasetSpec("auc", _hateful_memes, needs_root=True),
    "crisismmd": DatasetSpec("macro_f1", _crisismmd, needs_root=True),
    "medvqa": DatasetSpec("vqa_accuracy", _medvqa, needs_root=True, open_ended=True,
                          sources=("vqarad", "medalpaca"), test_sets=("slake",)),
    "fedmllm": DatasetSpec("accuracy", _fedmllm, needs_root=True),
}


def headline_metric(primary: str, mode: str) -> str:
    """The dataset's headline metric, or accuracy where the eval mode gives no scores (AUC)."""
    return "accuracy" if mode == "generation" and primary == "auc" else primary


def dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ConfigError(f"data.name ({name!r}) is unknown; choose one of {sorted(DATASETS)}")
    return DATASETS[name]


def load_splits(cfg: DataConfig) -> tuple[RecordSet, RecordSet, Optional[list[list[int]]]]:
    """(train, test, parts or None) as RecordSets (tables in `datasets`), with data.max_*_samples
    applied (seeded)."""
    train, test, parts = dataset_spec(cfg.name).load(cfg)
    if parts is not None and cfg.max_train_samples is not None:
        raise ConfigError(f"data.max_train_samples ({cfg.max_train_samples}) cannot cap "
                          f"data.name={cfg.name}: its clients come as prepared files; set it to null")
    return (subsample(train, cfg.max_train_samples, cfg.seed),
            subsample(test, cfg.max_test_samples, cfg.seed + 1), parts)
