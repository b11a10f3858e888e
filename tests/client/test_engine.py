"""The client engine on real gloo ranks: a written adapter is where the next step starts, at every
ZeRO stage; a fresh optimizer per client."""

from __future__ import annotations

import pytest
import torch
from distributed_helpers import cpu_choice, deepspeed_master, spawn, tiny_run_config


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


@pytest.mark.floors
def test_written_adapter_is_where_the_next_step_starts(tiny_model_dir, tmp_path):
    spawn(_zero_lr_worker, 2, tmp_path, tiny_model_dir, str(tmp_path))
    for r in range(2):
        got = torch.load(tmp_path / f"zero_lr_{r}.pt")
        assert all(got[(stage, True)] for stage in (0, 1, 2, 3)), got
        assert not got[(2, False)] and not got[(3, False)], "without refresh ZeRO restores old weights"


def _module(engine) -> dict[str, torch.Tensor]:
    """The module's own (bf16) adapter parameters, whole."""
    from hpc_fed.client.master_copy import gathered

    with gathered(engine.params, engine.zero_stage):
        return {n: p.detach().clone() for n, p in zip(engine.names, engine.params)}


def _off_grid(shape, gen) -> torch.Tensor:
    """fp32 values bf16 cannot represent, each 1e-5..2e-5 from a bf16 value of magnitude
    0.02..0.03, where one bf16 step is 1.2e-4: a move of 1e-6 leaves every one's rounding as is."""
    def sign():
        return torch.randint(0, 2, shape, generator=gen) * 2 - 1

    grid = (0.02 + 0.01 * torch.rand(shape, generator=gen)).bfloat16().float() * sign()
    return grid + (1e-5 + 1e-5 * torch.rand(shape, generator=gen)) * sign()


def _bf16_worker(rank, world, model_dir, out_dir):
    """Per ZeRO stage under bf16: write an adapter bf16 cannot represent, read it back, take one
    AdamW step far below bf16's resolution, read again; DeepSpeed's master copy alongside."""
    from hpc_fed.client.engine import ClientEngine, base_model_loading
    from hpc_fed.data.collate import Collator
    from hpc_fed.data.datasets.easyvqa import load_easyvqa
    from hpc_fed.distributed import build_topology
    from hpc_fed.fed.aggregate import delta
    from hpc_fed.model.loading import apply_lora, load_base_model, load_processor

    out = {}
    # ZeRO-3 twice: with every adapter tensor partitioned, and with DeepSpeed's default
    # persistence threshold, under which the small LoRA tensors stay gathered between steps
    for case, stage, persist in [("0", 0, 0), ("2", 2, 0), ("3", 3, 0), ("3 persistent", 3, 100000)]:
        cfg = tiny_run_config(model_dir, out_dir, stage, world, extra=(
            "train.precision=bf16",
            f"train.deepspeed={{zero_optimization: {{stage3_param_persistence_threshold: {persist}}}}}"))
        topo = build_topology(world, cpu_choice())
        with base_model_loading(topo, cfg.train, torch.bfloat16):  # partitioned at ZeRO-3, as a run
            base = load_base_model(cfg.model, torch.bfloat16)
        torch.manual_seed(0)
        engine = ClientEngine(apply_lora(base, cfg.model.lora), topo, cfg.train, torch.bfloat16)
        gen = torch.Generator().manual_seed(1)  # the same on both ranks
        x = {n: _off_grid(v.shape, gen) for n, v in engine.read_adapter().items()}
        engine.write_adapter(x)
        written, master_before = engine.read_adapter(), deepspeed_master(engine)
        module_before = _module(engine)
        engine.start_client(lr=1e-6)
        batch = Collator(load_processor(cfg.model)).train_batch(load_easyvqa("test")[:4])
        engine.train_micro_batch(batch)
        after, master_after = engine.read_adapter(), deepspeed_master(engine)
        module_after = _module(engine)
        out[case] = {"x": x, "written": written, "master_before": master_before,
                      "module_before": module_before, "after": after, "master_after": master_after,
                      "module_after": module_after, "delta": delta(after, x)}
    torch.save(out, f"{out_dir}/bf16_{rank}.pt")


@pytest.mark.floors
def test_bf16_adapter_is_the_fp32_master_copy(tiny_model_dir, tmp_path):
    """Under bf16 the adapter is read from and written to the optimizer's fp32 master copy: a
    write then a read gives the fp32 values back, an update below one bf16 step (which leaves the
    module's bf16 weights unchanged) still moves the adapter exactly as the master copy moved, and
    a client's delta is master-after minus master-before, exactly."""
    spawn(_bf16_worker, 2, tmp_path, tiny_model_dir, str(tmp_path))
    for r in range(2):
        for case, got in torch.load(tmp_path / f"bf16_{r}.pt").items():
            x = got["x"]
            assert all(not torch.equal(v, v.bfloat16().float()) for v in x.values())  # not bf16 values
            for n in x:
                assert torch.equal(got["written"][n], x[n]), (case, n)
                assert torch.equal(got["master_before"][n], x[n]), (case, n)
                assert torch.equal(got["module_before"][n], x[n].bfloat16()), (case, n)  # master, rounded
                # the step is below bf16's resolution: the module's weights did not move ...
                assert torch.equal(got["module_after"][n], got["module_before"][n]), (case, n)
                # ... the master copy did, and the adapter with it
                assert torch.equal(got["after"][n], got["master_after"][n]), (case, n)
                moved_master = got["master_after"][n] - got["master_before"][n]
                assert torch.equal(got["delta"][n], moved_master), (case, n)
            moved = sum(int((got["delta"][n] != 0).sum()) for n in x) / sum(v.numel() for v in x.values())
            assert moved > 0.9, (case, moved)
