"""The DeepSpeed config of one client group, and the keys of it that hpc_fed owns.

hpc_fed writes the keys in OWNED from its own settings (and runs the collectives, optimizer
and learning-rate schedule around them); `train.deepspeed` is merged over the rest. Setting an
owned key there would change the engine behind the config checks' back (a ZeRO stage of 3 in
`train.deepspeed` passed the checks for stage 2 and died mid-round), so it is refused at load
with the hpc_fed key to set instead.
"""

from __future__ import annotations

import copy

import torch

from hpc_fed.errors import ConfigError

# DeepSpeed key path -> the hpc_fed setting that decides it
OWNED = {
    ("train_micro_batch_size_per_gpu",): "train.micro_batch_size",
    ("gradient_accumulation_steps",): "train.grad_accum",
    ("train_batch_size",): "train.micro_batch_size x train.grad_accum x the client group's ranks",
    ("gradient_clipping",): "train.max_grad_norm",
    ("zero_optimization", "stage"): "train.zero_stage",
    ("bf16",): "train.precision",
    ("fp16",): "train.precision (fp16 is not supported: use bf16 or fp32)",
    ("optimizer",): "train.optimizer, train.lr, train.weight_decay (a fresh optimizer per client)",
    ("scheduler",): "train.lr, train.warmup_rounds, train.min_lr_ratio (set per round)",
}


def check_user_config(extra: dict, prefix: str = "train.deepspeed") -> None:
    """Refuse a `train.deepspeed` that sets a key hpc_fed owns, naming the setting to use."""
    for path, owner in OWNED.items():
        node = extra
        for part in path:
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            key = ".".join((prefix, *path))
            raise ConfigError(f"{key} is set by hpc_fed from {owner}; set that instead of {key}")


def _deep_update(base: dict, extra: dict) -> dict:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_update(base[k], v)
        else:
            base[k] = v
    return base


def deepspeed_config(cfg, group_size: int, dtype: torch.dtype) -> dict:
    """The DeepSpeed config of one client group (data parallel over its G ranks); `cfg` is the
    train section."""
    ds = {
        "train_micro_batch_size_per_gpu": cfg.micro_batch_size,
        "gradient_accumulation_steps": cfg.grad_accum,
        "train_batch_size": cfg.micro_batch_size * cfg.grad_accum * group_size,
        "gradient_clipping": cfg.max_grad_norm,
        "zero_optimization": {"stage": cfg.zero_stage},
        "bf16": {"enabled": dtype == torch.bfloat16},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 1 << 30,
        "wall_clock_breakdown": False,
    }
    extra = copy.deepcopy(dict(cfg.deepspeed))
    check_user_config(extra)
    return _deep_update(ds, extra)
