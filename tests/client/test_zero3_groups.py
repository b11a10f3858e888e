"""ZeRO-3's trace check kept inside the client group (hpc_fed/client/zero3_groups.py)."""

from __future__ import annotations

import torch
from distributed_helpers import cpu_choice, spawn


def _worker(rank, world, out_dir):
    from deepspeed.runtime.zero import partitioned_param_coordinator as coordinator

    from hpc_fed.client.zero3_groups import same_in_group, scope_trace_check_to_group
    from hpc_fed.distributed import build_topology

    topo = build_topology(2, cpu_choice())  # groups {0, 1} and {2, 3}
    src = topo.group_ranks()[0]
    out = {}
    # the same trace within each group passes, although the two groups hold different ones
    same_in_group([topo.group_index, 5, 7], topo.client, src)
    out["same"] = True
    # a rank that recorded another order is caught, on every rank of its group only
    values = [1, 2, 3] if not (topo.group_index == 1 and topo.rank_in_group == 1) else [1, 3, 2]
    try:
        same_in_group(values, topo.client, src)
        out["order"] = "passed"
    except RuntimeError as exc:
        out["order"] = str(exc)
    lengths = [1, 2] if topo.rank != 3 else [1, 2, 3]
    try:
        same_in_group(lengths, topo.client, src)
        out["length"] = "passed"
    except RuntimeError as exc:
        out["length"] = str(exc)
    scope_trace_check_to_group(topo.client, src)  # what DeepSpeed now calls
    coordinator.assert_ints_same_as_other_ranks([topo.group_index])
    out["patched"] = True
    torch.save(out, f"{out_dir}/z{rank}.pt")


def test_trace_check_runs_within_the_client_group(tmp_path):
    spawn(_worker, 4, tmp_path, str(tmp_path))
    got = [torch.load(tmp_path / f"z{r}.pt") for r in range(4)]
    assert all(g["same"] and g["patched"] for g in got)
    assert [g["order"] == "passed" for g in got] == [True, True, True, False]  # the odd rank raises
    assert "order differs" in got[3]["order"]
    assert [g["length"] == "passed" for g in got] == [True, True, True, False]
    assert "recorded 2 entries" in got[3]["length"]
