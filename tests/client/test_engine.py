"""The client engine on real gloo ranks: a written adapter is where the next step starts, at every
ZeRO stage; a fresh optimizer per client."""

from __future__ import annotations

import torch
from distributed_helpers import cpu_choice, spawn, tiny_run_config


def _zero_lr_worker(rank, world, model_dir, out_dir):
    """Does a written adapter survive a zero-learning-rate step? Per ZeRO stage, with and
    without refreshing ZeRO's fp32 master copy (the negative control shows the check bites)."""
    import deepspeed  # noqa: F401

    from hpc_fed.client.engine import ClientEngine
    from hpc_fed.data.collate import Collator
    from hpc_fed.data.datasets.easyvqa import load_easyvqa
    from hpc_fed.distributed import build_topology
    from hpc_fed.model.loading import apply_lora, load_base_model, load_processor

    out = {}
    for stage, with_refresh in [(s, True) for s in (0, 1, 2, 3)] + [(2, False), (3, False)]:
        cfg = tiny_run_config(model_dir, out_dir, stage, world)
        topo = build_topology(world, cpu_choice())
        torch.manual_seed(0)
        engine = ClientEngine(apply_lora(load_base_model(cfg.model), cfg.model.lora), topo,
                              cfg.train, torch.float32)
        if not with_refresh:
            engine.optimizer.refresh_fp32_params = lambda: None
        target = {k: torch.full_like(v, 0.25) for k, v in engine.read_adapter().items()}
        engine.write_adapter(target)
        engine.start_client(lr=0.0)
        batch = Collator(load_processor(cfg.model)).train_batch(load_easyvqa("test")[:4])
        engine.train_micro_batch(batch)
        after = engine.read_adapter()
        out[(stage, with_refresh)] = all(torch.equal(after[k], target[k]) for k in target)
        inner = getattr(engine.optimizer, "optimizer", engine.optimizer)
        assert len(inner.state) > 0, "AdamW state exists after a step"
        engine.start_client(lr=0.5)  # the next client starts a fresh AdamW at its own rate
        assert len(inner.state) == 0 and all(g["lr"] == 0.5 for g in inner.param_groups)
    torch.save(out, f"{out_dir}/zero_lr_{rank}.pt")


def test_written_adapter_is_where_the_next_step_starts(tiny_model_dir, tmp_path):
    spawn(_zero_lr_worker, 2, tmp_path, tiny_model_dir, str(tmp_path))
    for r in range(2):
        got = torch.load(tmp_path / f"zero_lr_{r}.pt")
        assert all(got[(stage, True)] for stage in (0, 1, 2, 3)), got
        assert not got[(2, False)] and not got[(3, False)], "without refresh ZeRO restores old weights"
