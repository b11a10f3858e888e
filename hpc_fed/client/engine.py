"""One DeepSpeed engine per client group, built once and reused for every client it trains.

Between clients the engine is not rebuilt: the global adapter is written into it (into the
optimizer's fp32 master copy, which the next step starts from, and the module's parameters),
the optimizer state is cleared so each client starts a fresh AdamW, and the round's learning
rate is set. The adapter is read from and written to its full-precision values
(hpc_fed/client/master_copy.py): under bf16 that is the fp32 master copy, not the rounded module.
"""

from __future__ import annotations

import collections
import contextlib
from types import SimpleNamespace

import torch

from hpc_fed.client.zero3_groups import partitioned_loading, scope_trace_check_to_group
from hpc_fed.client.config import TrainConfig
from hpc_fed.client.deepspeed_config import deepspeed_config
from hpc_fed.client.master_copy import adapter_values
from hpc_fed.client.optimizers import build_optimizer
from hpc_fed.distributed.topology import Topology
from hpc_fed.model.interfaces.base import ModelInterface, to_device
from hpc_fed.model.loading import trainable_parameters


def base_model_loading(topo: Topology, cfg: TrainConfig, dtype: torch.dtype):
    """The context the base model is loaded in: at ZeRO-3 it is created partitioned over the
    client group (zero3_groups.partitioned_loading), so no rank holds the whole model; at stages
    0-2 every rank holds it anyway and it loads as usual."""
    if cfg.zero_stage != 3:
        return contextlib.nullcontext()
    return partitioned_loading(topo, deepspeed_config(cfg, topo.group_size, dtype))


class ClientEngine:
    """The group's DeepSpeed engine plus the adapter's read/write/reset operations. `interface`:
    the model family's calling convention (hpc_fed/model/interfaces/), transformers' by default."""

    def __init__(self, model, topo: Topology, cfg: TrainConfig, dtype: torch.dtype, *,
                 interface: ModelInterface | None = None):
        import deepspeed

        self.topo = topo
        self.dtype = dtype
        self.interface = interface or ModelInterface()
        self.zero_stage = cfg.zero_stage
        if cfg.zero_stage == 3 and topo.num_groups > 1:
            scope_trace_check_to_group(topo.client, src=topo.group_ranks()[0])
        named = trainable_parameters(model)
        self.names = [n for n, _ in named]
        params = [p for _, p in named]
        for p in params:
            # DeepSpeed casts a module to bf16 itself, except a ZeRO-3 one created partitioned
            # (base_model_loading), where peft's fp32 LoRA next to the bf16 base fails its build
            if p.dtype != dtype:
                p.data = p.data.to(dtype)
        optimizer = build_optimizer(cfg.optimizer, params, cfg.lr, cfg.weight_decay, cfg.adam_betas)
        # DeepSpeed picks its device from LOCAL_RANK unless told: ranks sharing a GPU
        # (distributed.backend=gloo) must use the one the topology chose.
        args = SimpleNamespace(device_rank=topo.device.index) if topo.device.type == "cuda" else None
        self.engine, self.optimizer, _, _ = deepspeed.initialize(
            args=args, model=model, optimizer=optimizer, config=deepspeed_config(cfg, topo.group_size, dtype),
            mpu=topo.mpu())
        self.params = [p for _, p in trainable_parameters(self.engine.module)]
        if [n for n, _ in trainable_parameters(self.engine.module)] != self.names:
            raise RuntimeError("DeepSpeed changed the set of trainable parameters")
        self.values = adapter_values(self.params, self.optimizer, cfg.zero_stage, topo.client)

    @property
    def module(self):
        return self.engine.module

    def read_adapter(self) -> dict[str, torch.Tensor]:
        """The full adapter as fp32 CPU tensors (identical on every rank of the group): the
        optimizer's fp32 master copy under bf16. Every rank of the group calls it (it may run a
        collective over the group)."""
        return dict(zip(self.names, self.values.read()))

    def write_adapter(self, state: dict[str, torch.Tensor]) -> None:
        """Load `state` into the live engine so that the next step starts from it exactly (the
        fp32 master copy); the module's parameters get it in their own precision. Every rank of
        the group calls it (it may run a collective over the group)."""
        self.values.write([state[n] for n in self.names])

    def _inner_optimizers(self):
        inner = getattr(self.optimizer, "optimizer", None)
        return [self.optimizer] if inner is None else [self.optimizer, inner]

    def start_client(self, lr: float) -> None:
        """Fresh optimizer state (AdamW moments) and this round's learning rate."""
        for opt in self._inner_optimizers():
            if isinstance(opt, torch.optim.Optimizer):
                opt.state = collections.defaultdict(dict)
        self.set_lr(lr)
        self.engine.train()

    def set_lr(self, lr: float) -> None:
        """The rate of the next optimizer step (train.local_schedule within a round)."""
        for opt in self._inner_optimizers():
            for group in opt.param_groups:
                group["lr"] = lr

    def train_micro_batch(self, batch: dict[str, torch.Tensor], terms=()) -> float:
        """Forward + backward + (at the accumulation boundary) optimizer step.

        `terms` are client terms of the FL method (proximal, SCAFFOLD correction) added to the
        loss; the returned value is the task loss alone.
        """
        batch = to_device(batch, self.topo.device, self.dtype)
        loss = self.interface.forward(self.engine, batch).loss
        total = loss
        if terms:
            named = list(zip(self.names, self.params))
            total = loss + sum(term(named) for term in terms)
        self.engine.backward(total)
        self.engine.step()
        return float(loss.detach())
