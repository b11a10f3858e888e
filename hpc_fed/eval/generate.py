"""Generation-mode evaluation: greedy decoding, then read each reply.

A classification record's reply is parsed to one of its options (hpc_fed/eval/answers.py:
"(B) hateful", "B", "Answer: B", "hateful"); a reply naming no option counts as wrong and is
reported in `invalid_rate`, never mapped to a default class. An open-ended record's reply is
scored by normalised exact match, overall and split by answer type (OPEN / CLOSED).
Sharded like scoring mode: every rank decodes the same number of batches.
"""

from __future__ import annotations

import torch

from hpc_fed.data.collate import Collator
from hpc_fed.data.records import Record
from hpc_fed.eval.answers import exact_match, parse_option
from hpc_fed.eval.metrics import binary_options, f1_scores, per_class_report, reference_auc
from hpc_fed.model.interfaces.base import to_device
from hpc_fed.eval.sharding import shard_batches
from hpc_fed.runtime.pulse import MAIN

# Counts of open-ended records: (correct, total) for OPEN, CLOSED, and untyped answers.
_OPEN_SLOTS = ("OPEN", "CLOSED", None)


@torch.no_grad()
def generate_replies(model, collator: Collator, records: list[Record], device: torch.device,
                     float_dtype: torch.dtype, max_new_tokens: int, synced: bool = False) -> list[str]:
    """Greedy replies (prompt removed, special tokens skipped), one per record."""
    batch = to_device(collator.generation_batch(records), device, float_dtype)
    tok = collator.tokenizer
    new = collator.interface.generate(model, batch, tokenizer=tok, max_new_tokens=max_new_tokens,
                                      synced=synced)
    return [s.strip() for s in tok.batch_decode(new, skip_special_tokens=True)]


def evaluate_generation(model, collator, records, device, batch_size, float_dtype, comm,
                        max_new_tokens, per_class, synced) -> dict:
    rank, world = comm.rank, comm.size
    classes = sorted({o for r in records for o in r.options})
    index = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    confusion = torch.zeros(k, k + 1, dtype=torch.float64)  # last column: no option named
    counts = torch.zeros(2 + 2 * len(_OPEN_SLOTS), dtype=torch.float64)  # choice n, invalid, open
    was_training = model.training
    model.eval()
    for batch in shard_batches(len(records), rank, world, batch_size):
        real = [i for i in batch if i >= 0]
        recs = [records[i] for i in real] or [records[0]]
        replies = generate_replies(model, collator, recs, device, float_dtype, max_new_tokens, synced)
        MAIN.tick()  # progress, for the watchdog
        if not real:
            continue
        for r, reply in zip(recs, replies):
            if r.options:
                counts[0] += 1
                picked = parse_option(reply, r.options)
                column = k if picked is None else index[r.options[picked]]
                confusion[index[r.answer], column] += 1
                counts[1] += picked is None
            else:
                slot = 2 + 2 * _OPEN_SLOTS.index(r.answer_type if r.answer_type in _OPEN_SLOTS else None)
                counts[slot] += exact_match(reply, r.answer)
                counts[slot + 1] += 1
    totals = torch.cat([confusion.flatten(), counts])
    totals = comm.all_reduce(totals)
    model.train(was_training)
    confusion, counts = totals[:k * (k + 1)].view(k, k + 1), totals[k * (k + 1):].tolist()
    out: dict = {"samples": len(records)}
    if counts[0]:
        out.update(accuracy=float(confusion[:, :k].diag().sum()) / counts[0],
                   invalid_rate=counts[1] / counts[0], **f1_scores(confusion))
        binary = binary_options(records)  # the positive class is the last option
        if binary:
            out["reference_auc"] = reference_auc(confusion, index[binary[0]], index[binary[1]])
        if per_class:
            out["per_class"] = per_class_report(confusion, classes)
    opened = counts[2:]
    open_n = sum(opened[1::2])
    if open_n:
        out["vqa_accuracy"] = sum(opened[0::2]) / open_n
        for name, (right, n) in zip(("open", "closed"), zip(opened[0:4:2], opened[1:4:2])):
            out[f"{name}_accuracy"] = right / n if n else None
            out[f"{name}_samples"] = int(n)
        if not counts[0]:
            out["accuracy"] = out["vqa_accuracy"]
    return out
