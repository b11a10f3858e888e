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
    from hpc_fed.distributed import init_distributed, shutdown

    init_distributed(DistributedConfig(device="cpu"), init_method=f"file://{init_file}")
    try:
        fn(rank, world, *args)
    finally:
        shutdown()


def cpu_choice():
    """The BackendChoice of a spawned test rank (gloo on the CPU)."""
    from hpc_fed.config import DistributedConfig
    from hpc_fed.distributed import choose_backend

    return choose_backend(DistributedConfig(device="cpu"))


def spawn(fn, world: int, tmp_path: Path, *args) -> None:
    """Run fn(rank, world, *args) on `world` gloo ranks; a failure in any rank fails the test."""
    init_file = str(tmp_path / f"init-{os.getpid()}-{id(fn)}")
    mp.spawn(_worker, args=(world, init_file, fn, args), nprocs=world, join=True)
