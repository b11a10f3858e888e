"""The local optimizers (`train.optimizer`): a fresh one per client and round."""

from __future__ import annotations

import torch

# SCAFFOLD's control variates and FedProx's analysis assume SGD steps; with AdamW their terms
# pass through Adam's normalisation.
OPTIMIZERS = {"adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


def build_optimizer(name: str, params, lr: float, weight_decay: float,
                    betas=(0.9, 0.999)) -> torch.optim.Optimizer:
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas))
    return OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay)
