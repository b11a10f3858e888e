"""Partition a dataset over federated clients: IID, or Dirichlet label skew.

Pure functions of (labels, num_clients, alpha, seed): identical on every rank.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hpc_fed.errors import ConfigError


def _check(n: int, num_clients: int) -> None:
    if num_clients < 1:
        raise ConfigError(f"fed.num_clients ({num_clients}) must be >= 1")
    if n < num_clients:
        raise ConfigError(f"fed.num_clients ({num_clients}) exceeds the {n} training samples; "
                          "lower fed.num_clients or raise data.max_train_samples")


def iid_partition(n: int, num_clients: int, seed: int) -> list[list[int]]:
    """Shuffle and cut into num_clients near-equal parts (sizes differ by at most one)."""
    _check(n, num_clients)
    perm = np.random.default_rng(seed).permutation(n)
    return [sorted(part.tolist()) for part in np.array_split(perm, num_clients)]


def dirichlet_partition(labels: Sequence, num_clients: int, alpha: float, seed: int,
                        max_tries: int = 100) -> list[list[int]]:
    """Label skew: each label's samples are split over clients in Dirichlet(alpha) proportions.

    Small alpha gives clients few labels each; large alpha approaches IID. Draws are repeated
    (up to `max_tries`) until every client holds at least one sample; failing that, the largest
    clients give single samples to the empty ones, so the guarantee always holds.
    """
    if alpha <= 0:
        raise ConfigError(f"data.alpha ({alpha}) must be > 0")
    labels = np.asarray([str(x) for x in labels])
    n = len(labels)
    _check(n, num_clients)
    rng = np.random.default_rng(seed)
    by_class = _group_by_label(labels)
    for _ in range(max_tries):
        parts: list[list[int]] = [[] for _ in range(num_clients)]
        for idx in by_class:
            idx = rng.permutation(idx)
            props = rng.dirichlet(np.full(num_clients, alpha))
            # multinomial counts: unbiased per client (floored cumulative cuts favour the last)
            counts = rng.multinomial(len(idx), props)
            for k, chunk in enumerate(np.split(idx, np.cumsum(counts)[:-1])):
                parts[k].extend(chunk.tolist())
        if min(len(p) for p in parts) >= 1:
            break
    for k in range(num_clients):
        if not parts[k]:
            donor = max(range(num_clients), key=lambda j: len(parts[j]))
            parts[k].append(parts[donor].pop())
    return [sorted(p) for p in parts]


def _group_by_label(labels: np.ndarray) -> list[np.ndarray]:
    """Sample indices per distinct label, labels in sorted order (O(n log n) for any label count)."""
    _, inverse = np.unique(labels, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    return np.split(order, np.cumsum(np.bincount(inverse))[:-1])


def source_partition(sources: Sequence[str], order: Sequence[str], clients_per_source: Sequence[int],
                     seed: int) -> list[list[int]]:
    """Clients by data source: the samples of `order[j]` go IID to the next
    `clients_per_source[j]` clients (FedMLLM v2: image clients VQA-RAD, text clients MedAlpaca)."""
    sources = np.asarray([str(s) for s in sources])
    parts: list[list[int]] = []
    for j, (name, count) in enumerate(zip(order, clients_per_source)):
        idx = np.flatnonzero(sources == name)
        if count < 1 or len(idx) < count:
            raise ConfigError(f"source {name!r} has {len(idx)} samples for {count} clients; each of "
                              "its clients needs at least one (change data.k or fed.num_clients)")
        perm = idx[np.random.default_rng([seed, j]).permutation(len(idx))]
        parts.extend(sorted(part.tolist()) for part in np.array_split(perm, count))
    return parts


PARTITIONS = ("iid", "dirichlet", "source")  # data.partition; source: see source_partition


def partition(labels: Sequence, num_clients: int, scheme: str, alpha: float, seed: int):
    """iid or dirichlet (source partitions need the records' sources: hpc_fed/data/federated.py)."""
    if scheme == "iid":
        return iid_partition(len(labels), num_clients, seed)
    if scheme == "dirichlet":
        return dirichlet_partition(labels, num_clients, alpha, seed)
    raise ConfigError(f"data.partition ({scheme!r}) is unknown here; choose iid or dirichlet")
