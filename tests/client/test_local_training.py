"""A client's local work: steps or epochs, its rank shares, seeded batch order, the round's
learning rate."""

import pytest

from hpc_fed.client.local import batch_order, local_steps, rank_share
from hpc_fed.client.schedule import round_lr
from hpc_fed.config import TrainConfig


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


def test_prefetched_batches_are_the_inline_batches_in_order():
    import threading

    from hpc_fed.client.local import batches

    built_on = []

    def build(m):
        built_on.append(threading.current_thread().name)
        return {"m": m}

    assert [b["m"] for b in batches(build, 7, ahead=0)] == list(range(7))
    assert set(built_on) == {threading.current_thread().name}
    built_on.clear()
    assert [b["m"] for b in batches(build, 7, ahead=2)] == list(range(7))
    assert all(name.startswith("hpc-fed-batches") for name in built_on)
    assert list(batches(build, 0, ahead=2)) == []
