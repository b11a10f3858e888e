"""The rank monitor: one background thread per rank that keeps a run answerable while its main
thread is busy (training, or blocked in a collective waiting for a peer).

It does four things, about once a second (heartbeats every `distributed.heartbeat_s`):
  - catches SIGTERM, SIGINT and SIGUSR2 (through `signal.set_wakeup_fd`, so a signal is seen even while
    the main thread waits inside a C++ collective and Python handlers cannot run) and records
    the stop request (hpc_fed/runtime/stop.py);
  - shares a stop request with every rank through the job's c10d store, so a signal that reached
    one rank stops them all after the same round;
  - enforces the stop deadline: after SIGTERM the round in flight has checkpoint.stop_grace_s to
    end, then the run abandons it (rank 0 writes stopped.json; the newest checkpoint is the
    state to continue from) and the process exits before the sender's SIGKILL;
  - heartbeats and the watchdog: every `distributed.heartbeat_s` each rank puts a small record
    in the store: its beat and its main thread's progress (hpc_fed/runtime/pulse.py,
    hpc_fed/runtime/watchdog.py). Rank 0 watches every rank, itself included, and rank 1 watches
    rank 0. A rank silent for `distributed.watchdog_s` (stopped, swapped out, its monitor
    starved), or whose main thread made no progress for that long outside a long phase and
    outside any collective (deadlocked, hung), is reported by rank and phase, and the run exits
    with an error (torchrun's --max-restarts then restarts it from the last checkpoint) instead
    of waiting for the collective timeout. Ranks that only wait for it in a collective are not
    the ones reported. A world of one watches its own main thread.

Under torchrun the worker also asks the kernel for SIGTERM when its agent dies (PR_SET_PDEATHSIG),
so a killed launcher never leaves workers training on as orphans.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from typing import Callable

from hpc_fed.runtime.pulse import MAIN
from hpc_fed.runtime.stop import StopRequest, stop_exit_code, under_torchelastic
from hpc_fed.runtime.watchdog import RankState, main_thread_state, stall_report

log = logging.getLogger("hpc_fed")

# signal -> urgent. SIGINT (Ctrl-C) is a SIGTERM: the round gets the grace time, a second
# Ctrl-C leaves at once (one arriving within REPEAT_S of the first is the same keypress, which
# reaches a torchrun worker twice: from the terminal and from its agent).
STOP_SIGNALS = {signal.SIGTERM: True, signal.SIGINT: True, signal.SIGUSR2: False}
REPEAT_S = 2.0
EXIT_STUCK = 1  # a failure: torchrun restarts the workers when it has restarts left
THREAD_NAME = "hpc-fed-monitor"  # `hpc-fed bench` finds the thread by it to count its CPU time
_PREFIX = "hpc_fed/"


def _job_store():
    """The c10d store of the default process group (None without one)."""
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        return None
    getter = getattr(dist.distributed_c10d, "_get_default_store", None)
    return getter() if getter is not None else None


def _die_with_parent() -> None:
    """SIGTERM to this process when its parent (torchrun's agent) dies, even by SIGKILL."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


class RankMonitor:
    def __init__(self, stop: StopRequest, rank: int, world_size: int, heartbeat_s: float,
                 watchdog_s: float, grace_s: float,
                 on_abandon: Callable[[str, bool], None] = lambda reason, failure: None):
        self.stop, self.rank, self.world_size = stop, rank, world_size
        self.heartbeat_s, self.watchdog_s, self.grace_s = heartbeat_s, watchdog_s, grace_s
        self.on_abandon = on_abandon
        self.leaving = False  # the main thread is on its way out (stopping or done): no deadline
        self.pulse = MAIN  # the main thread's progress and phase
        self._main: int | None = None  # the thread id of the run's main thread
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._sockets: tuple[socket.socket, socket.socket] | None = None
        self._previous: dict = {}
        self._previous_fd: int | None = None
        self._store = None
        self._published = 0  # the stop level this rank put in the store (1 patient, 2 urgent)
        self._agent: int | None = None  # torchrun's agent (this process's parent), which hosts the store

    # --- main thread --------------------------------------------------------------------
    def start(self) -> "RankMonitor":
        self._main = threading.get_ident()
        self.pulse.at("startup", long=True)
        if threading.current_thread() is threading.main_thread():
            self._install_signals()
        if under_torchelastic():
            self._agent = os.getppid()
            _die_with_parent()
        self._store = _job_store() if self.world_size > 1 else None
        self.stop.remote_reason = self.shared_reason
        self._thread = threading.Thread(target=self._loop, name=THREAD_NAME, daemon=True)
        self._thread.start()
        return self

    def at(self, round_idx: int | None, phase: str, long: bool = False) -> None:
        """Where the main thread is (shown when this rank is reported stuck or a round abandoned);
        `long`: a phase that may go without progress for longer than distributed.watchdog_s
        (hpc_fed/runtime/pulse.py)."""
        self.pulse.at(phase if round_idx is None else f"round {round_idx}, {phase}", long)

    def close(self) -> None:
        self.leaving = True
        self._closed.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._say_left()
        if self._sockets is not None and threading.current_thread() is threading.main_thread():
            signal.set_wakeup_fd(self._previous_fd if self._previous_fd is not None else -1)
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)
            for s in self._sockets:
                s.close()
            self._sockets = None

    def _install_signals(self) -> None:
        r, w = socket.socketpair()
        r.setblocking(False)
        w.setblocking(False)
        self._sockets = (r, w)
        self._previous_fd = signal.set_wakeup_fd(w.fileno(), warn_on_full_buffer=False)
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._python_handler)

    def _python_handler(self, signum, frame) -> None:
        return None  # the monitor thread reads the signal from the wakeup socket

    # --- monitor thread -----------------------------------------------------------------
    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        urgent = STOP_SIGNALS.get(signal.Signals(signum), False)
        if urgent and self.stop.urgent and not self.leaving and time.monotonic() - self.stop.since > REPEAT_S:
            self._abandon(f"rank {self.rank}: {name} again: stopping now")
        self.stop.request(f"{name} on rank {self.rank}", urgent)
        self._drop_store_if_agent_died()
        if self._store is not None:
            try:
                self._publish()
            except Exception:
                pass  # the loop retries and reports
        log.warning("rank %d: %s: %s", self.rank, name,
                    f"finishing the round if it ends within {self.grace_s:g} s "
                    "(checkpoint.stop_grace_s), then stopping" if urgent else
                    "stopping after the round in flight")

    def _loop(self) -> None:
        tick = max(0.05, min(1.0, self.heartbeat_s))
        start = time.monotonic()
        seen = {r: (-1, start) for r in range(self.world_size)}  # rank -> (beat, when it changed)
        ticks, progressed = self.pulse.ticks, start  # the main thread's progress, when it last moved
        beat, next_beat = 0, 0.0
        while not self._closed.is_set():
            if self._sockets is not None:
                ready, _, _ = select.select([self._sockets[0]], [], [], tick)
                if ready:
                    try:
                        for signum in self._sockets[0].recv(64):
                            if signum in STOP_SIGNALS:  # every signal with a Python handler lands here
                                self._on_signal(signum)
                    except (BlockingIOError, OSError):
                        pass
            else:
                self._closed.wait(tick)
            if self._closed.is_set():
                return
            now = time.monotonic()
            if self.pulse.ticks != ticks:
                ticks, progressed = self.pulse.ticks, now
            self.stop.requested()  # the stop file
            self._drop_store_if_agent_died()
            try:
                if self._store is not None:
                    self._share_stop()
                if now >= next_beat:
                    next_beat, beat = now + self.heartbeat_s, beat + 1
                    mine = self._state(beat, now - progressed)
                    if self._store is not None:
                        self._store.set(f"{_PREFIX}state/{self.rank}", mine.encode())
                    if self.watchdog_s > 0 and self.rank in (0, 1):
                        self._watch(mine, seen, now)
            except Exception as exc:  # the store's host is gone (its agent died): the rest holds
                log.warning("rank %d: the job's store stopped answering (%s); heartbeats off",
                            self.rank, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                self._store = None
            if (self.stop.urgent and not self.leaving and self.stop.since is not None
                    and now - self.stop.since > self.grace_s):
                self._abandon(f"{self.stop.reason}: {self.pulse.where} did not end within "
                              f"checkpoint.stop_grace_s ({self.grace_s:g} s)")

    def _drop_store_if_agent_died(self) -> None:
        """Forget the store once torchrun's agent, which hosts it, has died (this process was
        reparented): talking to it would only print the store client's broken-pipe stack traces."""
        if self._agent is not None and self._store is not None and os.getppid() != self._agent:
            self._store = None

    def _state(self, beat: int, stalled: float) -> RankState:
        """This rank's heartbeat record; where its main thread is, once it has stalled."""
        frame = None
        if stalled >= self.heartbeat_s and self._main is not None:
            frame = sys._current_frames().get(self._main)
        return main_thread_state(beat, self.pulse, stalled, frame, long=self.leaving)

    def _publish(self) -> None:
        """Put this rank's stop request in the store (once per level)."""
        mine = 0 if self.stop.reason is None else (2 if self.stop.urgent else 1)
        if mine > self._published:
            self._store.set(f"{_PREFIX}stop_reason", self.stop.reason)
            self._store.add(f"{_PREFIX}stop", 1)
            if mine == 2:
                self._store.add(f"{_PREFIX}stop_urgent", 1)
            self._published = mine

    def shared_reason(self) -> str | None:
        """The stop reason another rank put in the store (None when there is none)."""
        key = f"{_PREFIX}stop_reason"
        try:
            if self._store is not None and self._store.check([key]):
                return self._store.get(key).decode()
            return None
        except Exception:
            return None

    def _share_stop(self) -> None:
        """Publish this rank's stop request; pick up another rank's."""
        self._publish()
        if self._published < 2:
            urgent = self._store.add(f"{_PREFIX}stop_urgent", 0) > 0
            if urgent or (self._published == 0 and self._store.add(f"{_PREFIX}stop", 0) > 0):
                reason = self._store.get(f"{_PREFIX}stop_reason").decode()
                self.stop.request(reason, urgent)
                self._published = 2 if urgent else 1

    def _watch(self, mine: RankState, seen: dict, now: float) -> None:
        """Rank 0 watches every rank, itself included; rank 1 watches rank 0, whose own monitor
        may be what stopped (it gives rank 0's monitor two heartbeats to report itself first)."""
        others = [] if self._store is None else ([0] if self.rank == 1 else list(range(1, self.world_size)))
        states = {0: mine} if self.rank == 0 else {}
        for r, state in self._read_states(others).items():
            if state.left:  # its run is over: nothing more to watch
                others.remove(r)
                continue
            if state.beat != seen[r][0]:
                seen[r] = (state.beat, now)
            states[r] = state
        for r in others:
            if now - seen[r][1] > self.watchdog_s:
                where = states[r].where if r in states else "startup"
                self._abandon(f"rank {r} has not answered for {now - seen[r][1]:.0f} s "
                              f"(distributed.watchdog_s={self.watchdog_s:g}); its last heartbeat was "
                              f"in {where}: that process is stopped, swapped out or hung; stopping the run "
                              "(the newest checkpoint is kept)", EXIT_STUCK)
        report = stall_report(states, self.watchdog_s, whole_world=self.rank == 0,
                              extra_s=0.0 if self.rank == 0 else 2 * self.heartbeat_s)
        if report is not None:
            self._abandon(report, EXIT_STUCK)

    def _read_states(self, ranks: list[int]) -> dict[int, RankState]:
        """The records of `ranks` in the store (one round trip once every one has published)."""
        if not ranks:
            return {}
        keys = [f"{_PREFIX}state/{r}" for r in ranks]
        if self._store.check(keys):
            return {r: RankState.decode(v) for r, v in zip(ranks, self._store.multi_get(keys))}
        return {r: RankState.decode(self._store.get(k)) for r, k in zip(ranks, keys)
                if self._store.check([k])}

    def _abandon(self, reason: str, code: int | None = None) -> None:
        """Leave now, from this thread, whatever the main thread is doing."""
        self.leaving = True
        code = stop_exit_code() if code is None else code
        try:
            self.on_abandon(reason, code == EXIT_STUCK)
        except Exception as exc:  # leaving anyway
            reason += f" (and writing stopped.json failed: {exc})"
        sys.stderr.write(f"[rank {self.rank}] hpc-fed: {reason}; exit {code}\n")
        sys.stderr.flush()
        self._say_left()
        os._exit(code)

    def _say_left(self) -> None:
        """Tell the watchers this rank's silence from now on is not a fault."""
        self._drop_store_if_agent_died()
        store, self._store = self._store, None
        if store is None:
            return
        try:
            record = RankState(-1, self.pulse.where, long=True, stalled=0.0, left=True)
            store.set(f"{_PREFIX}state/{self.rank}", record.encode())
        except Exception:
            pass  # the store's host is gone: nobody is watching either
