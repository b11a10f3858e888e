"""One helper for multi-process tests: spawn real gloo ranks on CPU with a file:// rendezvous.

Each rank joins through hpc_fed's own `init_distributed` (the path a run takes), with strict
collectives on (tests/conftest.py sets HPC_FED_STRICT_COLLECTIVES=1), so a collective that
bypasses hpc_fed.distributed.collectives fails the test.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.multiprocessing as mp


def _worker(rank: int, world: int, init_file: str, fn, args):
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1"})
    torch.set_num_threads(1)
    from hpc_fed.config import DistributedConfig
    from hpc_fed.distributed import exit_process, init_distributed, shutdown

    init_distributed(DistributedConfig(device="cpu"), init_method=f"file://{init_file}")
    try:
        fn(rank, world, *args)
    finally:
        shutdown()
    exit_process(0)  # as `hpc-fed train` leaves (a failure above still reaches mp.spawn)


def cpu_choice():
    """The BackendChoice of a spawned test rank (gloo on the CPU)."""
    from hpc_fed.config import DistributedConfig
    from hpc_fed.distributed import choose_backend

    return choose_backend(DistributedConfig(device="cpu"))


def spawn(fn, world: int, tmp_path: Path, *args) -> None:
    """Run fn(rank, world, *args) on `world` gloo ranks; a failure in any rank fails the test.
    The rendezvous file lies beside tmp_path, not in it: tests give tmp_path to runs as their
    output.dir, which must hold nothing hpc_fed did not write."""
    init_file = str(tmp_path.parent / f".rdzv-{tmp_path.name}-{os.getpid()}-{id(fn)}")
    mp.spawn(_worker, args=(world, init_file, fn, args), nprocs=world, join=True)


def tiny_run_config(model_dir, out_dir, stage, ranks_per_client, extra=()):
    """A 2-round run of the tiny model over 4 clients (3 sampled), 2 local steps each."""
    from hpc_fed.config import load_config

    return load_config(None, [
        f"model.path={model_dir}", "model.lora.r=4", "data.max_train_samples=96",
        "data.max_test_samples=24", "fed.rounds=2", "fed.num_clients=4", "fed.sample_clients=3",
        f"fed.ranks_per_client={ranks_per_client}", "train.local_steps=2",
        "train.micro_batch_size=4", "train.lr=0.01", f"train.zero_stage={stage}",
        "train.deepspeed={zero_optimization: {stage3_param_persistence_threshold: 0}}",
        "eval.every=1", "eval.batch_size=8", f"output.dir={out_dir}", *extra])


def deepspeed_master(engine) -> dict[str, torch.Tensor]:
    """The optimizer's fp32 master copy as DeepSpeed itself reports it (at ZeRO 1-3 through its
    public helper, a collective per tensor at stage 3; at ZeRO 0 its whole fp32 copies)."""
    from deepspeed.utils import safe_get_full_fp32_param

    if engine.zero_stage == 0:
        hp = {id(lp): m for lps, ms in zip(engine.optimizer.fp16_groups, engine.optimizer.fp32_groups)
              for lp, m in zip(lps, ms)}
        return {n: hp[id(p)].detach().float().clone() for n, p in zip(engine.names, engine.params)}
    return {n: safe_get_full_fp32_param(p).detach().float().cpu().clone()
            for n, p in zip(engine.names, engine.params)}
