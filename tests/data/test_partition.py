import numpy as np
import pytest

from hpc_fed.data.partition import dirichlet_partition, iid_partition
from hpc_fed.errors import ConfigError

LABELS = [f"c{i % 5}" for i in range(1000)]


def _covers(parts, n):
    flat = sorted(i for p in parts for i in p)
    return flat == list(range(n))


def test_iid_sizes_sum_and_balance():
    parts = iid_partition(1003, 10, seed=1)
    assert _covers(parts, 1003)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


@pytest.mark.parametrize("alpha", [0.1, 0.5, 5.0])
def test_dirichlet_is_a_partition_with_no_empty_client(alpha):
    parts = dirichlet_partition(LABELS, 10, alpha, seed=3)
    assert _covers(parts, len(LABELS))
    assert min(map(len, parts)) >= 1


def test_at_least_one_sample_even_when_draws_keep_failing():
    labels = ["a"] * 30
    parts = dirichlet_partition(labels, 25, alpha=0.01, seed=0, max_tries=1)
    assert _covers(parts, 30) and min(map(len, parts)) >= 1


def test_seed_reproducible_and_seed_sensitive():
    a = dirichlet_partition(LABELS, 10, 0.5, seed=7)
    assert a == dirichlet_partition(LABELS, 10, 0.5, seed=7)
    assert a != dirichlet_partition(LABELS, 10, 0.5, seed=8)


def _mean_label_entropy(parts):
    ent = []
    for p in parts:
        _, counts = np.unique([LABELS[i] for i in p], return_counts=True)
        q = counts / counts.sum()
        ent.append(-(q * np.log(q)).sum())
    return float(np.mean(ent))


def test_smaller_alpha_gives_more_label_skew():
    e = {a: np.mean([_mean_label_entropy(dirichlet_partition(LABELS, 10, a, seed=s))
                     for s in range(5)]) for a in (0.1, 1.0, 100.0)}
    assert e[0.1] < e[1.0] < e[100.0]
    assert e[100.0] > 0.95 * np.log(5)  # large alpha: close to uniform over the 5 labels


def test_more_clients_than_samples_is_a_config_error():
    with pytest.raises(ConfigError, match="fed.num_clients"):
        iid_partition(5, 10, seed=0)


def test_rare_labels_are_spread_over_clients_not_sent_to_the_last():
    """Free-text answers (medical VQA) make many one-sample labels; each goes to a drawn client."""
    labels = [f"answer {i}" for i in range(500)]
    parts = dirichlet_partition(labels, 10, 1.0, seed=0)
    sizes = sorted(len(p) for p in parts)
    assert sum(sizes) == 500
    assert sizes[-1] < 120, sizes  # floored cumulative cuts put all 500 on the last client
