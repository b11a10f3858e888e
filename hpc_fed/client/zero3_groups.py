"""Make ZeRO-3's trace consistency check stay inside the client group.

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

import torch
import torch.distributed as dist


def _same_in_group(values: list[int], group, src: int) -> None:
    length = torch.tensor([len(values)], dtype=torch.long)
    dist.broadcast(length, src=src, group=group)
    if int(length) != len(values):
        raise RuntimeError(f"ZeRO-3 trace differs within the client group: rank {src} recorded "
                           f"{int(length)} entries, rank {dist.get_rank()} {len(values)}")
    data = torch.tensor(values, dtype=torch.long)
    dist.broadcast(data, src=src, group=group)
    if data.tolist() != list(values):
        raise RuntimeError(f"ZeRO-3 trace order differs between rank {src} and rank {dist.get_rank()}")


def scope_trace_check_to_group(group, src: int) -> None:
    from deepspeed.runtime.zero import partitioned_param_coordinator as coordinator

    coordinator.assert_ints_same_as_other_ranks = lambda ints: _same_in_group(list(ints), group, src)
