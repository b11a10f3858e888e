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


@pytest.mark.parametrize("total,ratio", [(10, 0.01), (7, 0.3), (1, 0.0), (40, 0.1)])
def test_local_cosine_is_transformers_cosine_with_warmup(total, ratio):
    """train.local_schedule=cosine: the rate of each optimizer step is the one transformers'
    get_cosine_schedule_with_warmup gives (warmup_steps = ceil(warmup_ratio x steps), the
    Trainer's rule), as each round of the FedMLLM reference runs its Trainer."""
    import math

    import torch
    from transformers import get_cosine_schedule_with_warmup

    from hpc_fed.client.schedule import local_lr

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=3e-5)
    sched = get_cosine_schedule_with_warmup(opt, math.ceil(ratio * total), total)
    expected = []
    for _ in range(total):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    got = [local_lr(s, total, 3e-5, "cosine", ratio) for s in range(total)]
    assert got == pytest.approx(expected, abs=1e-15)
    assert local_lr(3, total, 3e-5, "constant", ratio) == 3e-5


def test_train_client_sets_each_optimizer_steps_rate_and_adam_betas():
    from types import SimpleNamespace

    import torch

    from hpc_fed.client.local import train_client
    from hpc_fed.client.optimizers import build_optimizer
    from hpc_fed.client.schedule import local_lr
    from hpc_fed.distributed.collectives import LocalComm

    class Engine:  # records the rate in force at each micro-batch
        topo = SimpleNamespace(rank_in_group=0, group_size=1, device=torch.device("cpu"), client=LocalComm())

        def __init__(self):
            self.lr, self.seen = None, []

        def start_client(self, lr):
            self.lr = lr

        def set_lr(self, lr):
            self.lr = lr

        def train_micro_batch(self, batch, terms=()):
            self.seen.append(self.lr)
            return 1.0

    class Collator:
        def train_batch(self, records, image_anchor=False):
            return {"input_ids": torch.zeros(len(records), 3, dtype=torch.long),
                    "attention_mask": torch.ones(len(records), 3, dtype=torch.long)}

    cfg = TrainConfig(local_steps=4, micro_batch_size=2, grad_accum=2, local_schedule="cosine",
                      local_warmup_ratio=0.25)
    engine = Engine()
    train_client(engine, Collator(), list(range(20)), 0, list(range(20)), 0, 1e-3, cfg)
    steps = [local_lr(s, 4, 1e-3, "cosine", 0.25) for s in range(4)]
    assert engine.seen == [lr for lr in steps for _ in range(2)]  # both micro-batches of a step
    assert steps[0] == 0.0 and steps[1] == 1e-3
    opt = build_optimizer("adamw", [torch.nn.Parameter(torch.zeros(1))], 1e-3, 0.1, [0.9, 0.95])
    assert opt.param_groups[0]["betas"] == (0.9, 0.95) and opt.param_groups[0]["weight_decay"] == 0.1
