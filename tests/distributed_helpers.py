"""One helper for multi-process tests: spawn real gloo ranks on CPU with a file:// rendezvous."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.multiprocessing as mp


def _worker(rank: int, world: int, init_file: str, fn, args):
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1"})
    torch.set_num_threads(1)
    import deepspeed
    import torch.distributed as dist

    deepspeed.init_distributed(dist_backend="gloo", auto_mpi_discovery=False,
                               init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        fn(rank, world, *args)
    finally:
        dist.destroy_process_group()


def spawn(fn, world: int, tmp_path: Path, *args) -> None:
    """Run fn(rank, world, *args) on `world` gloo ranks; a failure in any rank fails the test."""
    init_file = str(tmp_path / f"init-{os.getpid()}-{id(fn)}")
    mp.spawn(_worker, args=(world, init_file, fn, args), nprocs=world, join=True)
