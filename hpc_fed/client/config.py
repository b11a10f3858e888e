"""The `train` section: a client's local training (steps, batch, optimizer, ZeRO, precision)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Dict, List, Literal, Optional

import torch

from hpc_fed.client.deepspeed_config import check_user_config
from hpc_fed.client.optimizers import OPTIMIZERS
from hpc_fed.client.schedule import LOCAL_SCHEDULES
from hpc_fed.errors import require

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}  # and auto: bf16 on GPU, fp32 on CPU


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """auto: bf16 on GPU, fp32 on CPU."""
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return PRECISIONS[precision]


@dataclass
class TrainConfig:
    """A client's local training: steps, batch, optimizer, schedule, ZeRO stage and precision."""

    local_steps: Optional[int] = 20
    """Optimizer steps per client per round; set exactly one of this and train.local_epochs."""
    local_epochs: Optional[float] = None
    """Passes over the client's data per round (fractions allowed); null when local_steps is set."""
    micro_batch_size: int = 16
    """Samples per rank per forward pass."""
    grad_accum: int = 1
    """Micro-batches accumulated per optimizer step."""
    lr: float = 2e-3
    """Local learning rate: the round's rate after warm-up, then decayed by a cosine over the
    remaining rounds to train.min_lr_ratio x lr."""
    optimizer: Annotated[str, Literal[tuple(OPTIMIZERS)]] = "adamw"
    """Local optimizer. SCAFFOLD's control variates and FedProx's analysis assume SGD steps; with
    AdamW their terms pass through Adam's normalisation."""
    min_lr_ratio: float = 0.1
    """Floor of the cosine decay over rounds, as a fraction of train.lr."""
    warmup_rounds: int = 1
    """Whole rounds of linear warm-up: round r gets lr * (r+1) / warmup_rounds, so round 0 never
    runs above train.lr."""
    weight_decay: float = 0.0
    """Weight decay of the local optimizer."""
    adam_betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    """AdamW's (beta1, beta2)."""
    local_schedule: Annotated[str, Literal[LOCAL_SCHEDULES]] = "constant"
    """The rate within a client's round: constant (the round's rate throughout) or cosine (from
    the round's rate to 0 over the client's optimizer steps after a linear warm-up of
    train.local_warmup_ratio of them: transformers' cosine schedule with warmup_ratio, as each
    round of the FedMLLM reference code runs its Trainer)."""
    local_warmup_ratio: float = 0.0
    """Fraction of a client's steps of linear warm-up within the round (local_schedule=cosine)."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm (0: no clipping)."""
    zero_stage: Annotated[int, Literal[0, 1, 2, 3]] = 2
    """DeepSpeed ZeRO stage inside a client group (3 partitions the parameters)."""
    precision: Annotated[str, Literal[("auto", *PRECISIONS)]] = "auto"
    """auto (bf16 on GPU, fp32 on CPU), fp32 or bf16."""
    seed: int = 0
    """Seed of the local data order; offset per client, round and rank."""
    deepspeed: Dict[str, Any] = field(default_factory=dict)
    """Merged over the generated DeepSpeed config, e.g.
    train.deepspeed={zero_optimization: {stage3_param_persistence_threshold: 0}}; keys hpc_fed sets
    itself (ZeRO stage, batch sizes, clipping, precision, optimizer) are refused."""

    def check(self) -> None:
        require((self.local_steps is None) != (self.local_epochs is None),
                f"set exactly one of train.local_steps ({self.local_steps}) and train.local_epochs "
                f"({self.local_epochs}); set the other to null")
        require(self.local_steps is None or self.local_steps >= 1,
                f"train.local_steps ({self.local_steps}) must be >= 1")
        require(self.local_epochs is None or self.local_epochs > 0,
                f"train.local_epochs ({self.local_epochs}) must be > 0")
        require(self.micro_batch_size >= 1, f"train.micro_batch_size ({self.micro_batch_size}) must be >= 1")
        require(self.grad_accum >= 1, f"train.grad_accum ({self.grad_accum}) must be >= 1")
        require(self.lr >= 0, f"train.lr ({self.lr}) must be >= 0")
        require(0 <= self.min_lr_ratio <= 1, f"train.min_lr_ratio ({self.min_lr_ratio}) must be in [0, 1]")
        require(self.warmup_rounds >= 0, f"train.warmup_rounds ({self.warmup_rounds}) must be >= 0")
        require(len(self.adam_betas) == 2 and all(0 <= b < 1 for b in self.adam_betas),
                f"train.adam_betas ({list(self.adam_betas)}) must be two numbers in [0, 1), e.g. "
                "[0.9, 0.95]")
        require(0 <= self.local_warmup_ratio < 1,
                f"train.local_warmup_ratio ({self.local_warmup_ratio}) must be in [0, 1)")
        require(self.max_grad_norm >= 0, f"train.max_grad_norm ({self.max_grad_norm}) must be >= 0")
        check_user_config(dict(self.deepspeed))
