import pytest

from hpc_fed.client.local import batch_order, local_steps, rank_share
from hpc_fed.client.schedule import round_lr
from hpc_fed.config import TrainConfig
from hpc_fed.fed.sampling import assign_clients, sample_clients


def test_sampling_is_seeded_distinct_and_varies_by_round():
    a = sample_clients(10, 4, seed=0, round_idx=3)
    assert a == sample_clients(10, 4, seed=0, round_idx=3)
    assert len(set(a)) == 4 and all(0 <= c < 10 for c in a)
    assert len({tuple(sample_clients(10, 4, 0, t)) for t in range(10)}) > 1


def test_assignment_covers_clients_and_balances_load():
    sizes = [100, 10, 10, 10, 10, 7]
    plan = assign_clients([0, 1, 2, 3, 4], sizes, num_groups=2)
    assert plan == [[0], [1, 2, 3, 4]]  # the heavy client alone; the light ones share a group
    even = assign_clients([0, 1, 2, 3, 4, 5], [5] * 6, num_groups=2)
    assert sorted(c for g in even for c in g) == list(range(6)) and list(map(len, even)) == [3, 3]


def test_more_groups_than_clients_leaves_groups_idle():
    plan = assign_clients([3], [1, 1, 1, 7], num_groups=3)
    assert plan == [[3], [], []]


def test_round_lr_warmup_never_exceeds_base_and_ends_at_floor():
    lrs = [round_lr(t, 10, 1.0, warmup_rounds=2, min_lr_ratio=0.1) for t in range(10)]
    assert lrs[0] == 0.5 and lrs[1] == 1.0 and lrs[2] == 1.0
    assert max(lrs) == 1.0
    assert lrs[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:]))


def test_local_work_in_steps_or_epochs():
    assert local_steps(TrainConfig(local_steps=7), 1000, 2) == 7
    cfg = TrainConfig(local_steps=None, local_epochs=1.0, micro_batch_size=4, grad_accum=2)
    assert local_steps(cfg, 100, 2) == 7  # ceil(100 / (4*2*2))


def test_rank_shares_split_a_client_and_orders_are_seeded():
    idx = list(range(10))
    assert rank_share(idx, 0, 2) + rank_share(idx, 1, 2) == [0, 2, 4, 6, 8, 1, 3, 5, 7, 9]
    assert rank_share([4], 1, 2) == [4]
    order = batch_order([1, 2, 3], 7, (0, 1, 2, 0))
    assert order == batch_order([1, 2, 3], 7, (0, 1, 2, 0))
    assert sorted(order[:3]) == [1, 2, 3] and sorted(order[3:6]) == [1, 2, 3]
