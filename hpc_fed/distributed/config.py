"""The `distributed` section: where ranks compute and how they communicate
(hpc_fed/distributed/backend.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from hpc_fed.errors import require

DEVICES = ("auto", "cuda", "cpu")
BACKENDS = ("auto", "nccl", "gloo")


@dataclass
class DistributedConfig:
    """Where ranks compute and how they communicate (hpc_fed/distributed/backend.py)."""

    device: Annotated[str, Literal[DEVICES]] = "auto"
    """auto (this rank's GPU when CUDA is visible, else the CPU), cuda, or cpu (a CPU run on a GPU
    machine: gloo, no GPU touched)."""
    backend: Annotated[str, Literal[BACKENDS]] = "auto"
    """auto (nccl on GPUs, gloo on CPU), nccl, or gloo (with device=cuda: GPUs compute, gloo
    carries the collectives and ranks may share a GPU; for testing several ranks on one GPU)."""
    timeout_s: float = 1800.0
    """A collective waiting longer than this many seconds fails the run."""
    heartbeat_s: float = 5.0
    """Seconds between the heartbeats each rank's monitor thread puts in the job's store, with its
    main thread's progress."""
    watchdog_s: float = 300.0
    """Rank 0 (and rank 1, for rank 0) reports a rank silent for this many seconds (stopped,
    swapped out), or whose main thread made no progress for as long outside a collective and the
    long phases (start-up, checkpoint writes, after the last round; hpc_fed/runtime/pulse.py),
    naming it and its phase, and ends the run (torchrun --max-restarts restarts it from the last
    checkpoint). Must exceed the longest micro-batch and evaluation batch, and be at least twice
    distributed.heartbeat_s. 0: off."""

    def check(self) -> None:
        require(not (self.backend == "nccl" and self.device == "cpu"),
                "distributed.backend=nccl needs distributed.device cuda or auto; use gloo on the CPU")
        require(self.timeout_s > 0, f"distributed.timeout_s ({self.timeout_s}) must be > 0")
        require(self.heartbeat_s > 0, f"distributed.heartbeat_s ({self.heartbeat_s}) must be > 0")
        require(self.watchdog_s == 0 or self.watchdog_s >= 2 * self.heartbeat_s,
                f"distributed.watchdog_s ({self.watchdog_s}) must be 0 (off) or at least twice "
                f"distributed.heartbeat_s ({self.heartbeat_s})")
