"""A clean stop: what asks for one, when the ranks agree on it, and how the process exits.

Three things ask a rank to stop, and all lead to the same end (the run leaves the round loop,
rank 0 writes a checkpoint and stopped.json, the process exits with EXIT_STOPPED):

  SIGUSR2        "the time limit is near" (slurm/benchmark.sh asks SLURM for it, `hpc-fed
                 launch` forwards it): finish the round in flight, then stop.
  the stop file  $HPC_FED_STOP_FILE appearing (a shared filesystem reaches every node; the SLURM
                 batch shell and `hpc-fed launch` create it when they get SIGUSR2): as SIGUSR2.
  SIGTERM        "you are being stopped" (scheduler preemption, the time limit, torchrun's agent
  (or SIGINT)    shutting its workers down, `kill`, Ctrl-C): finish the round if it ends within
                 checkpoint.stop_grace_s, else abandon it (the checkpoint of the round before is
                 the state to continue from) and exit before the sender's SIGKILL; a second one
                 leaves at once.

A request on one rank reaches every rank through the rank monitor (hpc_fed/runtime/monitor.py,
which also catches the signals while the main thread is blocked in a collective); every rank
calls `agreed()` once per round, a collective, so all ranks leave after the same round.
"""

from __future__ import annotations

import os
import threading
import time

STOP_FILE_ENV = "HPC_FED_STOP_FILE"
EXIT_STOPPED = 75  # EX_TEMPFAIL: not done; run the same command again to continue


def under_torchelastic() -> bool:
    """This process is a worker of a torchrun agent."""
    return "TORCHELASTIC_RUN_ID" in os.environ


def stop_exit_code() -> int:
    """The exit code of a worker that stopped cleanly. A torchrun agent restarts workers that exit
    non-zero (--max-restarts), which would undo the stop, so its workers exit 0 and the launcher
    (`hpc-fed launch`, slurm/benchmark.sh) turns the run directory's stopped.json into 75; a
    process run on its own exits 75 itself."""
    return 0 if under_torchelastic() else EXIT_STOPPED


class StopRequest:
    """Whether, why and since when this rank has been asked to stop."""

    def __init__(self, stop_file: str | None = None):
        self.stop_file = stop_file if stop_file is not None else os.environ.get(STOP_FILE_ENV, "")
        self.reason: str | None = None
        self.urgent = False  # SIGTERM: the round in flight has a deadline
        self.since: float | None = None
        self.remote_reason = lambda: None  # the reason another rank shared (set by the monitor)
        self._lock = threading.Lock()

    def request(self, reason: str, urgent: bool = False) -> None:
        """Ask for a stop (idempotent; an urgent request upgrades a patient one)."""
        with self._lock:
            if self.reason is None:
                self.reason, self.since = reason, time.monotonic()
            if urgent and not self.urgent:
                self.urgent, self.since = True, time.monotonic()
                self.reason = reason

    def requested(self) -> bool:
        """This process has been asked to stop (a signal, the stop file, another rank)."""
        if self.reason is None and self.stop_file and os.path.exists(self.stop_file):
            self.request(f"stop file {self.stop_file}")
        return self.reason is not None

    def agreed(self, comm) -> bool:
        """True on every rank of `comm` (the world) when any rank was asked to stop (a
        collective: all ranks call it)."""
        import torch

        flag = comm.all_reduce(torch.tensor([1.0 if self.requested() else 0.0]), op="max")
        if flag.item() > 0 and self.reason is None:
            self.request(self.remote_reason() or "another rank was asked to stop")
        return bool(flag.item() > 0)
