"""Score each record's options by log-likelihood under the model (no process group needed)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from hpc_fed.data.collate import Collator
from hpc_fed.data.records import Record
from hpc_fed.model.interfaces.base import to_device


@torch.no_grad()
def option_loglik(model, collator: Collator, records: Sequence[Record], device: torch.device,
                  float_dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """Per record, a float32 tensor of log p(option | prompt) for each of its options."""
    batch, plans = collator.score_batch(records)
    logits = collator.interface.forward(model, to_device(batch, device, float_dtype)).logits
    triples = [t for plan in plans for option in plan for t in option]
    rows, pos, toks = (torch.tensor(col, device=logits.device) for col in zip(*triples))
    # log_softmax only at the positions that predict option tokens (vocabularies are large).
    picked = torch.log_softmax(logits[rows, pos].float(), dim=-1).gather(1, toks[:, None])[:, 0]
    picked = picked.cpu().tolist()
    out, k = [], 0
    for plan in plans:
        scores = []
        for option in plan:
            scores.append(sum(picked[k:k + len(option)]))
            k += len(option)
        out.append(torch.tensor(scores, dtype=torch.float32))
    return out
