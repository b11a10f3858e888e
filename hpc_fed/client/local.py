"""Train one client for one round on the group's engine.

The client's samples are split over the group's ranks (rank j of G takes every G-th sample);
each rank draws micro-batches from its share in epochs shuffled by a generator keyed by
(train.seed, round, client, rank in group): data order differs per rank, never the adapter.
torch's generator (LoRA dropout) is reseeded from the same key before each client, so a
client's update does not depend on which group trains it or what that group trained before:
a run gives the same result with 1 group training clients in turn or with one group each.
"""

from __future__ import annotations

import math
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from hpc_fed.client.engine import ClientEngine
from hpc_fed.client.config import TrainConfig
from hpc_fed.client.schedule import local_lr
from hpc_fed.data.collate import Collator
from hpc_fed.data.records import Record
from hpc_fed.runtime.pulse import MAIN


@dataclass
class ClientResult:
    client: int
    num_samples: int
    train_loss: float  # mean over the client's micro-batches and the group's ranks
    steps: int  # optimizer steps
    # this rank's share of the work and where its time went (hpc-fed bench)
    compute_seconds: float = 0.0  # forward + backward + optimizer step
    data_seconds: float = 0.0  # waiting for the next batch (all of its building without prefetch)
    micro_batches: int = 0
    samples_seen: int = 0
    tokens: int = 0  # attended tokens in this rank's micro-batches


def local_steps(cfg: TrainConfig, num_samples: int, group_size: int) -> int:
    """Optimizer steps for one client in one round (identical on the group's ranks)."""
    if cfg.local_steps is not None:
        return cfg.local_steps
    per_step = cfg.micro_batch_size * cfg.grad_accum * group_size
    return max(1, math.ceil(cfg.local_epochs * num_samples / per_step))


def rank_share(indices: list[int], rank_in_group: int, group_size: int) -> list[int]:
    """This rank's part of a client's samples; every rank gets all of a client smaller than G."""
    if len(indices) < group_size:
        return list(indices)
    return list(indices[rank_in_group::group_size])


def client_seed(key: tuple[int, ...]) -> int:
    """A 63-bit seed for torch derived from a (seed, round, client, rank) key."""
    return int(np.random.SeedSequence(list(key)).generate_state(1, dtype=np.uint64)[0] >> 1)


def batch_order(share: list[int], count: int, seed: tuple[int, ...]) -> list[int]:
    """`count` sample indices: successive shuffled passes over `share`."""
    rng = np.random.default_rng(list(seed))
    order: list[int] = []
    while len(order) < count:
        order.extend(np.asarray(share)[rng.permutation(len(share))].tolist())
    return order[:count]


def batches(build, count: int, ahead: int):
    """build(0), ..., build(count - 1) in order; with `ahead` > 0 a background thread builds up
    to `ahead` batches in advance (decoding and processing overlap the model's compute; the
    batches and their order are the same either way)."""
    if ahead <= 0:
        for m in range(count):
            yield build(m)
        return
    pool = ThreadPoolExecutor(1, thread_name_prefix="hpc-fed-batches")
    try:
        pending = deque(pool.submit(build, m) for m in range(min(ahead, count)))
        queued = len(pending)
        while pending:
            batch = pending.popleft().result()
            if queued < count:
                pending.append(pool.submit(build, queued))
                queued += 1
            yield batch
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def train_client(engine: ClientEngine, collator: Collator, records: list[Record],
                 client: int, indices: list[int], round_idx: int, lr: float,
                 cfg: TrainConfig, terms=(), prefetch: int = 0) -> ClientResult:
    """`prefetch`: data.prefetch (batches built ahead on a thread)."""
    topo = engine.topo
    steps = local_steps(cfg, len(indices), topo.group_size)
    micro = steps * cfg.grad_accum
    share = rank_share(indices, topo.rank_in_group, topo.group_size)
    key = (cfg.seed, round_idx, client, topo.rank_in_group)
    order = batch_order(share, micro * cfg.micro_batch_size, key)
    pin = topo.device.type == "cuda"

    def build(m: int) -> dict[str, torch.Tensor]:
        chunk = order[m * cfg.micro_batch_size:(m + 1) * cfg.micro_batch_size]
        batch = collator.train_batch([records[i] for i in chunk], image_anchor=topo.group_size > 1)
        return {k: v.pin_memory() for k, v in batch.items()} if pin else batch

    torch.manual_seed(client_seed(key))  # dropout masks: a function of the client, not the group
    engine.start_client(lr)
    losses = []
    res = ClientResult(client=client, num_samples=len(indices), train_loss=0.0, steps=steps)
    source = batches(build, micro, prefetch)
    while True:
        start = time.perf_counter()
        batch = next(source, None)
        got = time.perf_counter()
        res.data_seconds += got - start
        if batch is None:
            break
        if cfg.local_schedule != "constant":  # the step this micro-batch belongs to
            engine.set_lr(local_lr(res.micro_batches // cfg.grad_accum, steps, lr, cfg.local_schedule,
                                   cfg.local_warmup_ratio))
        res.micro_batches += 1
        res.samples_seen += int(batch["input_ids"].shape[0])
        res.tokens += int(batch["attention_mask"].sum())
        losses.append(engine.train_micro_batch(batch, terms))
        MAIN.tick()  # progress, for the watchdog
        res.compute_seconds += time.perf_counter() - got
    loss = topo.client.all_reduce(torch.tensor([float(np.mean(losses))], dtype=torch.float64))
    res.train_loss = float(loss / topo.group_size)
    return res
