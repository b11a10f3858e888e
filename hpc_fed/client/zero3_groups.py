"""ZeRO-3 with one engine per client group: what DeepSpeed and transformers assume about the
world (one data-parallel group, world rank 0 reads the checkpoint), scoped to the client group.

Two jobs, one owner:

- `partitioned_loading`: the base model is created partitioned over the client group while it
  loads, so no rank ever holds the whole model (a 72B model under ZeRO-3 would not fit).
- `scope_trace_check_to_group`: ZeRO-3's trace consistency check stays inside the group.

## Partitioned loading

transformers' own ZeRO-3 path does the loading: with an `HfDeepSpeedConfig` alive,
`from_pretrained` builds the model under `deepspeed.zero.Init` (each parameter is partitioned as
soon as its module is built; nothing is initialised at random) and copies the checkpoint in one
module at a time (`_load_state_dict_into_zero3_model`: gather one module's partitions, the
reading rank copies the values in, re-partition). It keeps transformers' checkpoint-key
conversions (old LLaVA-family Hub checkpoints load as they do without DeepSpeed). Two of its
assumptions are world-wide, and both would be wrong with client groups:

- `zero.Init()` is called without a group, so it partitions over the world; the engine later
  partitions over the client group (mpu), and the two disagree. Within the context
  `deepspeed.zero.Init` defaults to `data_parallel_group=<the client group>`.
- "rank 0" (`torch.distributed.get_rank() == 0`) reads the checkpoint and is the source of
  every gathered module's values; GatheredParameters then broadcasts from rank 0 *of the
  parameter's group*, which for the second group is world rank G, a rank that read only shapes
  (meta tensors): that group would train from uninitialised weights. Within the context,
  `torch.distributed.get_rank()` without a group answers the rank within the client group, so
  each group's first rank reads the checkpoint. Calls with a group, and torch's own internal
  calls, are unchanged. Buffers (not partitioned) are broadcast from world rank 0 over the
  world by transformers; every group read the same checkpoint, so the values agree.

Memory: each group's first rank reads the checkpoint into host memory during the load (as world
rank 0 does in transformers' single-group case); GPU memory holds this rank's 1/G of every
parameter plus one module gathered at a time.

## The trace check

DeepSpeed 0.19's ZeRO-3 parameter coordinator, when it finishes recording a module trace,
checks that all ranks recorded the same order with broadcasts from global rank 0 over the
WORLD group (`assert_ints_same_as_other_ranks`). DeepSpeed assumes the world is one
data-parallel group; with one engine per client group, groups record their traces at different
times (they train different numbers of clients), and that world broadcast deadlocks (seen here:
2 groups x 2 ranks, the run hung until gloo's timeout). The check is only meaningful among the
ranks that share parameters, so we run the same check over this process's client group.
One engine per process is our design, so a process-wide replacement is exact.
"""

from __future__ import annotations

import contextlib
import os

import torch

from hpc_fed.distributed.collectives import Comm


def same_in_group(values: list[int], comm: Comm, src: int) -> None:
    """Raise on a rank of `comm` whose `values` differ from global rank `src`'s. Every rank runs
    the same two broadcasts whatever it finds, so a mismatch cannot desynchronise the group's
    later collectives (the mismatching rank raises; the run then stops)."""
    length = int(comm.broadcast(torch.tensor([len(values)], dtype=torch.long), src=src))
    mine = list(values) if len(values) == length else [0] * length
    data = comm.broadcast(torch.tensor(mine, dtype=torch.long), src=src).tolist()
    if len(values) != length:
        raise RuntimeError(f"ZeRO-3 trace differs within the client group: rank {src} recorded "
                           f"{length} entries, this rank ({comm.name}, rank {comm.rank}) {len(values)}")
    if data != list(values):
        raise RuntimeError(f"ZeRO-3 trace order differs between rank {src} and rank {comm.rank} of "
                           f"{comm.name}")


def scope_trace_check_to_group(comm: Comm, src: int) -> None:
    from deepspeed.runtime.zero import partitioned_param_coordinator as coordinator

    coordinator.assert_ints_same_as_other_ranks = lambda ints: same_in_group(list(ints), comm, src)


@contextlib.contextmanager
def partitioned_loading(topo, ds_config: dict):
    """Within: transformers' `from_pretrained` creates the model partitioned over this rank's
    client group (`topo`: the Topology; `ds_config`: the group's DeepSpeed ZeRO-3 config, the one
    the engine gets) and each group's first rank reads the checkpoint. Ranks sharing one GPU
    under gloo tell zero.Init their device through LOCAL_RANK, which it reads."""
    import deepspeed
    import torch.distributed as dist
    from transformers.integrations.deepspeed import HfDeepSpeedConfig, unset_hf_deepspeed_config

    if ds_config.get("zero_optimization", {}).get("stage") != 3:
        raise ValueError("partitioned loading is for ZeRO stage 3")
    base_init, base_get_rank = deepspeed.zero.Init, dist.get_rank

    class GroupInit(base_init):  # a subclass, so DeepSpeed's own isinstance checks still hold
        def __init__(self, *args, **kwargs):
            if kwargs.get("data_parallel_group") is None and kwargs.get("mpu") is None:
                # the group partitions; the mpu sizes the config's batch check to the group
                kwargs.update(data_parallel_group=topo.dp_group, mpu=topo.mpu())
            super().__init__(*args, **kwargs)

    def rank_in_group(group=None):  # torch.distributed.get_rank's signature
        return base_get_rank(topo.dp_group if group is None else group)

    local_rank = os.environ.get("LOCAL_RANK")
    hf_config = HfDeepSpeedConfig(ds_config)  # transformers holds only a weak reference
    deepspeed.zero.Init, dist.get_rank = GroupInit, rank_in_group
    if topo.device.type == "cuda":
        os.environ["LOCAL_RANK"] = str(topo.device.index)
    try:
        yield
    finally:
        deepspeed.zero.Init, dist.get_rank = base_init, base_get_rank
        if local_rank is None:
            os.environ.pop("LOCAL_RANK", None)
        else:
            os.environ["LOCAL_RANK"] = local_rank
        unset_hf_deepspeed_config()
        del hf_config
