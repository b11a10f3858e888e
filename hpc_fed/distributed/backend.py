"""Backend and device chosen in one place: nccl + cuda:LOCAL_RANK on GPUs, gloo + cpu otherwise."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class BackendChoice:
    backend: str
    device: torch.device


def choose_backend(local_rank: int | None = None, cuda_available: bool | None = None) -> BackendChoice:
    """nccl on a CUDA device when one is present, gloo on CPU otherwise."""
    if local_rank is None:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    if cuda_available:
        return BackendChoice("nccl", torch.device("cuda", local_rank))
    return BackendChoice("gloo", torch.device("cpu"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_distributed(timeout_s: float = 1800.0) -> BackendChoice:
    """Join the torch.distributed world that torchrun describes, or form a world of one.

    Run without torchrun (no RANK/WORLD_SIZE in the environment), it becomes a world of 1 so
    the same code path serves `hpc-fed train` on a laptop.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        os.environ.update({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0",
                           "LOCAL_WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"})
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
    choice = choose_backend()
    if choice.device.type == "cuda":
        torch.cuda.set_device(choice.device)
    if not dist.is_initialized():
        import deepspeed  # imported late: slow, and not needed for config errors

        deepspeed.init_distributed(dist_backend=choice.backend, timeout=timedelta(seconds=timeout_s))
    return choice
