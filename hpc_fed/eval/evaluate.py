"""Evaluate the model on a test set, sharded over all ranks and reduced.

Every rank runs the same number of forward passes (short shards repeat a record whose result
is dropped), which ZeRO-3 needs: its forward gathers parameters collectively in each group.

scoring mode: each record's options are scored by log-likelihood; the argmax is the
prediction, the softmax over options gives class probabilities (ROC-AUC for binary tasks uses
the probability of the last option, the positive class). generation mode: greedy decoding
(hpc_fed/eval/generate.py).
"""

from __future__ import annotations

import torch

from hpc_fed.data.collate import Collator
from hpc_fed.data.records import Record
from hpc_fed.distributed.collectives import LocalComm
from hpc_fed.errors import DataFormatError
from hpc_fed.eval.generate import evaluate_generation
from hpc_fed.eval.metrics import (
    binary_options, f1_scores, option_nll, per_class_report, reference_auc, roc_auc)
from hpc_fed.eval.scoring import option_loglik
from hpc_fed.eval.sharding import shard_batches
from hpc_fed.runtime.pulse import MAIN


def evaluate(model, collator: Collator, records: list[Record], device: torch.device,
             batch_size: int, float_dtype: torch.dtype = torch.float32, comm=None,
             mode: str = "scoring", max_new_tokens: int = 16, per_class: bool = False,
             synced: bool = False) -> dict:
    """Metrics of `model` on `records`, sharded over the ranks of `comm` (a Comm: the world or
    a client group; default a LocalComm, this process alone), which must all hold the same
    model. `per_class` adds a per-class report; `synced` (ZeRO-3 generation) keeps every rank
    stepping until all ranks finish decoding."""
    comm = comm or LocalComm(device)
    if mode == "generation":
        return evaluate_generation(model, collator, records, device, batch_size, float_dtype,
                                   comm, max_new_tokens, per_class, synced)
    open_ended = next((r for r in records if not r.options), None)
    if open_ended is not None:
        raise DataFormatError(f"record {open_ended.id!r} is open-ended (no options), which option "
                              "scoring cannot score; set eval.mode=generation")
    rank, world = comm.rank, comm.size
    classes = sorted({o for r in records for o in r.options})  # same on every rank
    index = {c: i for i, c in enumerate(classes)}
    binary = binary_options(records)
    was_training = model.training
    model.eval()
    nll = 0.0
    confusion = torch.zeros(len(classes), len(classes), dtype=torch.float64)
    positive = torch.zeros(len(records) if binary else 0, dtype=torch.float64)
    for batch in shard_batches(len(records), rank, world, batch_size):
        real = [i for i in batch if i >= 0]
        recs = [records[i] for i in real] or [records[0]]
        ll = option_loglik(model, collator, recs, device, float_dtype)
        for i, r, scores in zip(real, recs, ll):
            nll += option_nll(scores, r.label)
            confusion[index[r.answer], index[r.options[int(torch.argmax(scores))]]] += 1
            if binary:
                positive[i] = float(torch.softmax(scores, dim=0)[1])
        MAIN.tick()  # progress, for the watchdog
    totals = torch.cat([confusion.flatten(), torch.tensor([nll], dtype=torch.float64), positive])
    totals = comm.all_reduce(totals)
    model.train(was_training)
    k = len(classes)
    confusion = totals[:k * k].view(k, k)
    count = float(confusion.sum())
    out = {"accuracy": float(confusion.diag().sum()) / count, "nll": float(totals[k * k]) / count,
           "samples": int(count), **f1_scores(confusion)}
    if binary:
        out["auc"] = roc_auc(totals[k * k + 1:].tolist(), [r.label for r in records])
        negative, positive_class = binary  # the reference's "AUC" from the argmax predictions
        out["reference_auc"] = reference_auc(confusion, index[negative], index[positive_class])
    if per_class:
        out["per_class"] = per_class_report(confusion, classes)
    return out
