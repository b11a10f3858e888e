"""Where the adapter's values live inside a DeepSpeed engine, read and written in fp32.

Under bf16 the module's parameters are a rounded copy: the optimizer keeps an fp32 master copy,
steps it, and rounds it into the module. An update smaller than one bf16 step of a weight
(about 0.4 % of its value; at lr 2e-5 most AdamW updates) changes the master copy but not the
module, so the adapter is read from, and written to, the master copy: a client's delta is
master-after minus master-before, exactly, and the global adapter stays fp32. After a write the
module holds the master copy rounded, as after an optimizer step (the forward runs on it).

Where the master copy is depends on the ZeRO stage (DeepSpeed 0.19):
  * fp32 training: the module's parameters are the values (the optimizer's own fp32 copy at
    ZeRO >= 1 equals them after every step and is refreshed from them after a write);
  * bf16, ZeRO 0: one whole fp32 tensor per parameter on every rank (`fp32_groups`);
  * bf16, ZeRO 1/2: each rank holds disjoint fragments (`param._hp_mapping`): a read puts every
    rank's fragments into one flat buffer and sums it over the client group (one all_reduce for
    the whole adapter, where `safe_get_full_fp32_param` runs one per tensor);
  * bf16, ZeRO 3: each rank holds partition r of every parameter (`safe_get_local_fp32_param`),
    read the same way; a write sets this rank's partitions locally and the module's through
    `GatheredParameters` (one gather for the whole adapter).
Every read and write of a client group runs the same collectives, in the same order, on each of
its ranks.
"""

from __future__ import annotations

import contextlib

import torch

from hpc_fed.distributed.collectives import Comm


def gathered(params, zero_stage: int, modifier_rank=None):
    """Full parameters under ZeRO-3 (a collective over the group); a no-op otherwise."""
    if zero_stage == 3:
        from deepspeed.runtime.zero import GatheredParameters

        return GatheredParameters(params, modifier_rank=modifier_rank)
    return contextlib.nullcontext()


class AdapterValues:
    """The module's parameters are the adapter's values (fp32 training)."""

    def __init__(self, params: list[torch.nn.Parameter], optimizer, zero_stage: int):
        self.params, self.optimizer, self.zero_stage = params, optimizer, zero_stage

    def read(self) -> list[torch.Tensor]:
        with gathered(self.params, self.zero_stage):
            return [p.detach().to("cpu", torch.float32).clone() for p in self.params]

    def write(self, values: list[torch.Tensor]) -> None:
        with gathered(self.params, self.zero_stage, modifier_rank=0), torch.no_grad():
            for p, v in zip(self.params, values):
                p.copy_(v.to(p.device, p.dtype))
        refresh = getattr(self.optimizer, "refresh_fp32_params", None)
        if refresh is not None:  # ZeRO's fp32 copy, which step() would otherwise write back
            refresh()


class WholeMaster(AdapterValues):
    """bf16 at ZeRO 0: a whole fp32 copy of each parameter on every rank."""

    def __init__(self, params, optimizer, zero_stage: int):
        super().__init__(params, optimizer, zero_stage)
        master = {id(lp): hp for lps, hps in zip(optimizer.fp16_groups, optimizer.fp32_groups)
                  for lp, hp in zip(lps, hps)}
        self.master = [master[id(p)] for p in params]

    def read(self) -> list[torch.Tensor]:
        return [m.detach().to("cpu", torch.float32).clone() for m in self.master]

    def write(self, values: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for p, m, v in zip(self.params, self.master, values):
                m.copy_(v.to(m.device, m.dtype))
                p.copy_(m.to(p.dtype))


class FragmentMaster(AdapterValues):
    """bf16 at ZeRO 1/2: each rank's optimizer partition holds fragments of the fp32 values;
    the module's parameters are whole on every rank."""

    def __init__(self, params, optimizer, zero_stage: int, comm: Comm):
        super().__init__(params, optimizer, zero_stage)
        self.comm = comm
        self.offsets = _offsets([p.numel() for p in params])

    def _fragments(self):
        """(offset of the fragment in the flat adapter, its fp32 tensor) held by this rank."""
        for p, offset in zip(self.params, self.offsets):
            mapping = p._hp_mapping
            if mapping is not None:
                address = mapping.lp_fragment_address
                yield offset + address.start, mapping.get_hp_fragment()

    def read(self) -> list[torch.Tensor]:
        flat = torch.zeros(self.offsets[-1] + self.params[-1].numel(), dtype=torch.float32)
        for start, fragment in self._fragments():
            flat[start:start + fragment.numel()] = fragment.detach().flatten().cpu()
        flat = self.comm.all_reduce(flat)  # disjoint fragments: the sum is exact
        return [flat[o:o + p.numel()].view(p.shape).clone() for p, o in zip(self.params, self.offsets)]

    def write(self, values: list[torch.Tensor]) -> None:
        flat = torch.cat([v.reshape(-1).to(torch.float32) for v in values])
        with torch.no_grad():
            for start, fragment in self._fragments():
                fragment.copy_(flat[start:start + fragment.numel()].view_as(fragment))
            for p, v in zip(self.params, values):
                p.copy_(v.to(p.device, torch.float32).to(p.dtype))


class PartitionMaster(AdapterValues):
    """bf16 at ZeRO 3: rank r of the client group holds elements [r*n, (r+1)*n) of each
    parameter (n = its partition size, the last one padded) in fp32, and in bf16 for the module."""

    def __init__(self, params, optimizer, zero_stage: int, comm: Comm):
        super().__init__(params, optimizer, zero_stage)
        self.comm = comm
        self.sizes = [p.partition_numel() for p in params]
        self.offsets = _offsets([n * comm.size for n in self.sizes])

    def read(self) -> list[torch.Tensor]:
        from deepspeed.utils import safe_get_local_fp32_param

        r = self.comm.rank
        flat = torch.zeros(self.offsets[-1] + self.sizes[-1] * self.comm.size, dtype=torch.float32)
        for p, o, n in zip(self.params, self.offsets, self.sizes):
            flat[o + r * n:o + (r + 1) * n] = safe_get_local_fp32_param(p).detach().flatten().cpu()
        flat = self.comm.all_reduce(flat)  # disjoint partitions: the sum is exact
        return [flat[o:o + p.ds_numel].view(p.ds_shape).clone() for p, o in zip(self.params, self.offsets)]

    def write(self, values: list[torch.Tensor]) -> None:
        from deepspeed.utils import safe_set_local_fp32_param

        r = self.comm.rank
        values = [v.reshape(-1).to(torch.float32) for v in values]
        with gathered(self.params, self.zero_stage, modifier_rank=0), torch.no_grad():
            for p, v in zip(self.params, values):
                p.copy_(v.view(p.ds_shape).to(p.device, p.dtype))
        for p, v, n in zip(self.params, values, self.sizes):
            part = torch.zeros(n, dtype=torch.float32)
            mine = v[r * n:(r + 1) * n]
            part[:mine.numel()] = mine
            safe_set_local_fp32_param(p, part.to(p.ds_tensor.device))


def _offsets(sizes: list[int]) -> list[int]:
    out, total = [], 0
    for n in sizes:
        out.append(total)
        total += n
    return out


def adapter_values(params: list[torch.nn.Parameter], optimizer, zero_stage: int,
                   comm: Comm) -> AdapterValues:
    """Where this engine keeps the adapter's full-precision values (see the module docstring)."""
    if all(p.dtype == torch.float32 for p in params):
        return AdapterValues(params, optimizer, zero_stage)
    if zero_stage == 3 and all(hasattr(p, "ds_id") for p in params):
        _check_group(params[0].ds_process_group, comm)
        return PartitionMaster(params, optimizer, zero_stage, comm)
    if all(hasattr(p, "_hp_mapping") for p in params):
        _check_group(params[0]._dp_group, comm)
        return FragmentMaster(params, optimizer, zero_stage, comm)
    if hasattr(optimizer, "fp32_groups") and hasattr(optimizer, "fp16_groups"):
        return WholeMaster(params, optimizer, zero_stage)
    raise RuntimeError(f"no fp32 master copy of the adapter found in DeepSpeed's "
                       f"{type(optimizer).__name__} at ZeRO stage {zero_stage} (parameters in "
                       f"{params[0].dtype}); the adapter would be rounded to {params[0].dtype} "
                       "every round: use train.precision=fp32")


def _check_group(group, comm: Comm) -> None:
    import torch.distributed as dist

    if dist.get_world_size(group) != comm.size or dist.get_rank(group) != comm.rank:
        raise RuntimeError("DeepSpeed partitions the adapter over a group other than the client "
                           f"group ({comm.name})")
