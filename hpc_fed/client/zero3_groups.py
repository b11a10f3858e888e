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
