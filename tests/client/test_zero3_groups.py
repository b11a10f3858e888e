"""ZeRO-3's trace check kept inside the client group (hpc_fed/client/zero3_groups.py)."""

from __future__ import annotations

import torch
import torch.distributed as dist
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


def _load_worker(rank, world, model_dir, out_dir):
    from deepspeed.runtime.zero import GatheredParameters

    from hpc_fed.client.engine import ClientEngine, base_model_loading
    from hpc_fed.config import load_config
    from hpc_fed.distributed import build_topology
    from hpc_fed.model.loading import apply_lora, load_base_model

    topo = build_topology(2, cpu_choice())  # groups {0, 1} and {2, 3}
    cfg = load_config(None, [f"model.path={model_dir}", "train.zero_stage=3"])
    with base_model_loading(topo, cfg.train, torch.float32):
        base = load_base_model(cfg.model)
    params = list(base.parameters())
    out = {"partitioned": all(hasattr(p, "ds_tensor") and p.numel() == 0 for p in params),
           "held": sum(p.ds_tensor.numel() for p in params),
           "full": sum(p.ds_numel for p in params),
           "group_size": [dist.get_world_size(p.ds_process_group) for p in params[:1]],
           "after": dist.get_rank()}  # the scoped get_rank is back to the world rank
    with GatheredParameters(params):
        out["state"] = {k: v.detach().clone() for k, v in base.state_dict().items()}
    engine = ClientEngine(apply_lora(base, cfg.model.lora), topo, cfg.train, torch.float32)
    out["adapter"] = engine.read_adapter()
    torch.save(out, f"{out_dir}/load{rank}.pt")


def test_zero3_base_is_created_partitioned_over_each_client_group(tiny_model_dir, tmp_path):
    """At ZeRO-3 the base model is built partitioned over the client group (no rank holds it
    whole) and every rank of every group ends with the checkpoint's values. Without scoping
    transformers' "rank 0 reads the checkpoint" to the group, the second group's parameters were
    never written (72 of 82 tensors differed, checked once), and without scoping zero.Init the
    load stops on DeepSpeed's world-sized batch check."""
    from hpc_fed.client.memory import model_states
    from hpc_fed.config import ModelConfig
    from hpc_fed.model.loading import load_base_model

    spawn(_load_worker, 4, tmp_path, tiny_model_dir, str(tmp_path))
    reference = load_base_model(ModelConfig(path=tiny_model_dir)).state_dict()
    got = [torch.load(tmp_path / f"load{r}.pt", weights_only=False) for r in range(4)]
    for rank, g in enumerate(got):
        assert g["partitioned"] and g["group_size"] == [2] and g["after"] == rank
        # half of the base per rank (DeepSpeed pads each parameter's partition by < G elements)
        expected = model_states(g["full"], 0, stage=3, group_size=2, param_bytes=1).base
        assert expected <= g["held"] <= expected + len(reference)
        assert set(g["state"]) == set(reference)
        assert all(torch.equal(g["state"][k], reference[k]) for k in reference), rank
        assert g["adapter"] and all(v.numel() for v in g["adapter"].values())  # the engine built
