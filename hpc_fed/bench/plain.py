"""The reference step that `step_efficiency` divides by: plain peft + torch.optim on the same
model, adapter and batch, with no DeepSpeed, no federated bookkeeping and the batch prepared
once. It is what a hand-written single-GPU loop reaches; hpc_fed's local step should come close."""

from __future__ import annotations

import statistics
import time

import torch


def plain_step_seconds(cfg, batch: dict[str, torch.Tensor], dtype: torch.dtype,
                       device: torch.device, steps: int = 10, warmup: int = 3, *,
                       interface=None) -> float:
    """Median seconds of forward + backward (+ clipping when train.max_grad_norm > 0) +
    AdamW step on a fresh copy of the run's model with the run's LoRA settings (`interface`:
    the model family's calling convention, transformers' by default)."""
    from hpc_fed.model.interfaces import ModelInterface, to_device
    from hpc_fed.model.loading import apply_lora, load_base_model, trainable_parameters

    model = apply_lora(load_base_model(cfg.model, dtype), cfg.model.lora).to(device)
    params = [p for _, p in trainable_parameters(model)]
    opt = torch.optim.AdamW(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    interface = interface or ModelInterface()
    batch = to_device(batch, device, dtype)
    model.train()
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        loss = interface.forward(model, batch).loss
        loss.backward()
        if cfg.train.max_grad_norm and cfg.train.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.train.max_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.detach().item()  # waits for the device
        if i >= warmup:
            times.append(time.perf_counter() - start)
    del model, opt
    return statistics.median(times)
