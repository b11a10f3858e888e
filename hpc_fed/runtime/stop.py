"""A clean stop between rounds, before a scheduler's time limit.

slurm/benchmark.sh asks SLURM for SIGUSR2 a few minutes before the limit (`--signal=B:USR2@180`)
and turns it into a stop file whose path it exports as HPC_FED_STOP_FILE (the file works across
nodes on a shared filesystem; a signal only reaches the batch shell). A process started another
way can get SIGUSR2 directly. Every rank calls `agreed()` once per round; it is a collective, so
all ranks leave the round loop after the same round.
"""

from __future__ import annotations

import os
import signal
import threading

import torch

STOP_FILE_ENV = "HPC_FED_STOP_FILE"


class StopRequest:
    def __init__(self, stop_file: str | None = None, install_handler: bool = True):
        self.stop_file = stop_file if stop_file is not None else os.environ.get(STOP_FILE_ENV, "")
        self.signalled = False
        if install_handler and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGUSR2, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        self.signalled = True

    def requested(self) -> bool:
        """This process has been asked to stop (signal or stop file)."""
        return self.signalled or bool(self.stop_file and os.path.exists(self.stop_file))

    def agreed(self, comm) -> bool:
        """True on every rank of `comm` (the world) when any rank was asked to stop (a
        collective: all ranks call it)."""
        flag = comm.all_reduce(torch.tensor([1.0 if self.requested() else 0.0]), op="max")
        return bool(flag.item() > 0)
