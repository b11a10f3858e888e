"""A federated round under bf16 on a real gloo group: the global adapter moves as the optimizer's
fp32 master copy moved, also when every update is far below bf16's resolution; the saved
adapter is that fp32 global, and a run started from it (model.adapter) starts from it exactly."""

from __future__ import annotations

import pytest
import torch
from distributed_helpers import cpu_choice, deepspeed_master, spawn, tiny_run_config


def _round_worker(rank, world, model_dir, out_dir, stage):
    from hpc_fed.distributed import build_topology
    from hpc_fed.runs.federated import FederatedRun

    class RecordingRun(FederatedRun):
        def local_training(self, payload, clients, round_idx, lr):
            results = []
            for c in clients:  # one client at a time: the engine then holds its trained adapter
                results += super().local_training(payload, [c], round_idx, lr)
                self.masters[c] = (deepspeed_master(self.engine), results[-1].num_samples)
            return results

    # 2 AdamW steps at lr 1e-6: about 2e-6 per value, far below one bf16 step of most weights
    cfg = tiny_run_config(model_dir, f"{out_dir}/run", stage, world, extra=(
        "train.precision=bf16", "train.lr=1e-6", "train.warmup_rounds=0", "fed.rounds=1",
        "fed.sample_clients=2", "eval.every=0", "eval.initial=false", "output.save_adapter=true"))
    topo = build_topology(world, cpu_choice())
    run = RecordingRun.__new__(RecordingRun)
    run.masters = {}
    FederatedRun.__init__(run, cfg, topo)
    start = {k: v.clone() for k, v in run.state.global_adapter.items()}
    run.run()
    run.close()
    warm_cfg = tiny_run_config(model_dir, f"{out_dir}/warm", stage, world, extra=(
        "train.precision=bf16", f"model.adapter={out_dir}/run/adapter"))
    warm = FederatedRun(warm_cfg, topo)
    warm.close()
    torch.save({"start": start, "final": run.state.global_adapter, "masters": run.masters,
                "warm": warm.state.global_adapter}, f"{out_dir}/bf16_round{rank}.pt")


@pytest.mark.floors
@pytest.mark.parametrize("stage", [0, 2, 3])
def test_bf16_round_moves_the_global_adapter_as_the_master_copy_moved(tiny_model_dir, tmp_path, stage):
    from peft.utils import load_peft_weights
    from reference import weighted_mean

    spawn(_round_worker, 2, tmp_path, tiny_model_dir, str(tmp_path), stage)
    got = [torch.load(tmp_path / f"bf16_round{r}.pt", weights_only=False) for r in range(2)]
    start, final = got[0]["start"], got[0]["final"]
    deltas = [{k: m[k] - start[k] for k in start} for m, _ in got[0]["masters"].values()]
    mean = weighted_mean(deltas, [n for _, n in got[0]["masters"].values()])
    values = sum(v.numel() for v in start.values())
    for k in start:
        assert torch.allclose(final[k], start[k] + mean[k], atol=1e-9, rtol=0), k
        assert torch.equal(got[1]["final"][k], final[k]), k
    moved = sum(int((final[k] != start[k]).sum()) for k in start) / values
    assert moved > 0.9, moved  # with the module's bf16 weights read instead: about 0.2
    saved = load_peft_weights(str(tmp_path / "run" / "adapter"), device="cpu")
    assert {t.dtype for t in saved.values()} == {torch.float32}
    assert sorted(t.sum().item() for t in saved.values()) == sorted(v.sum().item() for v in final.values())
    for r in got:
        for k in final:
            assert torch.equal(r["warm"][k], final[k]), k
