"""Evaluate the model on a test set, sharded over all ranks and reduced.

Every rank runs the same number of forward passes (short shards repeat a record whose result
is dropped), which ZeRO-3 needs: its forward gathers parameters collectively in each group.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist

from hpc_fed.data.collate import Collator
from hpc_fed.data.records import Record
from hpc_fed.eval.metrics import f1_scores, option_nll
from hpc_fed.eval.scoring import option_loglik


def shard_batches(n: int, rank: int, world: int, batch_size: int) -> list[list[int]]:
    """Rank's record indices (rank, rank+world, ...) in batches; -1 marks padding."""
    per_rank = math.ceil(n / world)
    num_batches = max(1, math.ceil(per_rank / batch_size))
    mine = list(range(rank, n, world))
    mine += [-1] * (num_batches * batch_size - len(mine))
    return [mine[b * batch_size:(b + 1) * batch_size] for b in range(num_batches)]


def evaluate(model, collator: Collator, records: list[Record], device: torch.device,
             batch_size: int, float_dtype: torch.dtype = torch.float32, group=None) -> dict:
    """accuracy and mean negative log-likelihood of the right option (over options only).

    Sharded over the ranks of `group` (default: the whole world), which must all hold the
    same model.
    """
    rank = dist.get_rank(group) if dist.is_initialized() else 0
    world = dist.get_world_size(group) if dist.is_initialized() else 1
    classes = sorted({o for r in records for o in r.options})  # same on every rank
    index = {c: i for i, c in enumerate(classes)}
    was_training = model.training
    model.eval()
    nll = 0.0
    confusion = torch.zeros(len(classes), len(classes), dtype=torch.float64)
    for batch in shard_batches(len(records), rank, world, batch_size):
        real = [i for i in batch if i >= 0]
        recs = [records[i] for i in real] or [records[0]]
        ll = option_loglik(model, collator, recs, device, float_dtype)
        if real:
            for r, scores in zip(recs, ll):
                nll += option_nll(scores, r.label)
                confusion[index[r.answer], index[r.options[int(torch.argmax(scores))]]] += 1
    totals = torch.cat([confusion.flatten(), torch.tensor([nll], dtype=torch.float64)])
    if world > 1:
        dist.all_reduce(totals, group=group)
    model.train(was_training)
    confusion = totals[:-1].view(len(classes), len(classes))
    count = float(confusion.sum())
    return {"accuracy": float(confusion.diag().sum()) / count, "nll": float(totals[-1]) / count,
            "samples": int(count), **f1_scores(confusion)}
