"""The `distributed` section: where ranks compute and how they communicate
(hpc_fed/distributed/backend.py)."""

from __future__ import annotations

from dataclasses import dataclass

from hpc_fed.errors import require

DEVICES = ("auto", "cuda", "cpu")
BACKENDS = ("auto", "nccl", "gloo")


@dataclass
class DistributedConfig:
    # auto: this rank's GPU when CUDA is visible, else the CPU | cuda | cpu (a CPU run on a GPU
    # machine: gloo, no GPU touched)
    device: str = "auto"
    # auto: nccl on GPUs, gloo on CPU | nccl | gloo (with device=cuda: GPUs compute, gloo carries
    # the collectives and ranks may share a GPU; for testing several ranks on one GPU)
    backend: str = "auto"
    timeout_s: float = 1800.0  # a collective waiting longer than this fails the run
    # Every rank's monitor thread puts a heartbeat with its main thread's progress in the job's
    # store this often. Rank 0 (and rank 1, for rank 0) reports a rank silent for watchdog_s
    # (stopped, swapped out), or whose main thread made no progress for watchdog_s outside a
    # collective and outside the long phases (start-up, checkpoint writes, after the last round;
    # hpc_fed/runtime/pulse.py), naming it and its phase, and ends the run (torchrun
    # --max-restarts restarts it from the last checkpoint). It must exceed the longest micro-batch
    # and evaluation batch. 0: off.
    heartbeat_s: float = 5.0
    watchdog_s: float = 300.0

    def check(self) -> None:
        require(self.device in DEVICES, f"distributed.device ({self.device!r}) must be one of {DEVICES}")
        require(self.backend in BACKENDS,
                f"distributed.backend ({self.backend!r}) must be one of {BACKENDS}")
        require(not (self.backend == "nccl" and self.device == "cpu"),
                "distributed.backend=nccl needs distributed.device cuda or auto; use gloo on the CPU")
        require(self.timeout_s > 0, f"distributed.timeout_s ({self.timeout_s}) must be > 0")
        require(self.heartbeat_s > 0, f"distributed.heartbeat_s ({self.heartbeat_s}) must be > 0")
        require(self.watchdog_s == 0 or self.watchdog_s >= 2 * self.heartbeat_s,
                f"distributed.watchdog_s ({self.watchdog_s}) must be 0 (off) or at least twice "
                f"distributed.heartbeat_s ({self.heartbeat_s})")
