"""Centralized pre-fit of the tiny base model (all weights, one process).

Runs on easy-VQA's reserved `prefit` image slice, open (shape/colour) questions only by
default: the base learns to see shapes and colours, and the federated run still has yes/no
questions to learn. `all` adds the yes/no questions (the benchmark's base: it answers yes/no).
A fifth of the slice's images is held out to report the pre-fit's own accuracy.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from hpc_fed.model.config import TinyModelConfig
from hpc_fed.data.collate import Collator
from hpc_fed.data.datasets.easyvqa import load_easyvqa
from hpc_fed.eval.metrics import accuracy_counts
from hpc_fed.eval.scoring import option_loglik

log = logging.getLogger(__name__)


def prefit(model, processor, cfg: TinyModelConfig) -> dict:
    records = load_easyvqa("prefit", open_only=cfg.prefit_questions == "open")
    held = [r for r in records if image_number(r.image) // 5 % 5 == 0]
    fit = [r for r in records if image_number(r.image) // 5 % 5 != 0]
    collator = Collator(processor)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.prefit_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 50) * 0.5 * (1 + np.cos(np.pi * s / cfg.prefit_steps)))
    rng = np.random.default_rng(cfg.seed)
    model.train()
    start, losses = time.time(), []
    for step in range(cfg.prefit_steps):
        idx = rng.choice(len(fit), size=cfg.prefit_batch_size, replace=False)
        loss = model(**collator.train_batch([fit[i] for i in idx])).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if (step + 1) % 100 == 0:
            log.info("pre-fit step %d/%d loss %.3f (%.0fs)", step + 1, cfg.prefit_steps,
                     np.mean(losses[-100:]), time.time() - start)
    model.eval()
    correct = 0
    for i in range(0, len(held), 64):
        chunk = held[i:i + 64]
        c, _ = accuracy_counts(option_loglik(model, collator, chunk, torch.device("cpu")),
                               [r.label for r in chunk])
        correct += c
    return {"final_loss": round(float(np.mean(losses[-50:])), 4),
            "heldout_accuracy": round(correct / max(1, len(held)), 4),
            "heldout_samples": len(held), "train_samples": len(fit),
            "seconds": round(time.time() - start, 1)}


def image_number(path: str) -> int:
    """The image id from easy-VQA's file name (e.g. .../1234.png -> 1234)."""
    from pathlib import Path

    return int(Path(path).stem)
