"""The main thread's progress, which the rank monitor's watchdog reads (hpc_fed/runtime/watchdog.py).

The training loop ticks after every micro-batch, evaluation after every batch, and the run
names the phase its main thread enters (`RankMonitor.at`). Ticking is one attribute increment
on the main thread: no lock, no I/O; the monitor thread only reads the values.

A phase is *long* when its main thread may go without a tick for longer than
distributed.watchdog_s and still be healthy: the start (model build or pre-fit, data loading,
model load, engine build, resuming from a checkpoint), checkpoint writes, and everything after
the last round (saving the adapter, the bench's reference step). A rank is never reported for
making no progress in a long phase (its heartbeat is still watched). Every other phase (local
training, aggregation, evaluation, the stop agreement) ticks at least once per micro-batch, per
evaluation batch or per phase change.
"""

from __future__ import annotations


class Pulse:
    """What the main thread last did: `ticks` grows while it makes progress."""

    def __init__(self) -> None:
        self.ticks = 0
        self.where = "startup"
        self.long = True

    def tick(self) -> None:
        self.ticks += 1

    def at(self, where: str, long: bool = False) -> None:
        """The main thread enters phase `where` (`long`: see the module docstring)."""
        self.where, self.long = where, long
        self.ticks += 1


# One per process, like its main thread: the training loop, evaluation and the monitor of
# whichever run the process is in share it without passing it through every call.
MAIN = Pulse()
