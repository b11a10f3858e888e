"""What the rank monitor's watchdog publishes for each rank, and which rank it reports.

Every heartbeat, each rank's monitor thread puts one small record in the job's store: a beat
number (its monitor is alive), the phase its main thread is in, whether that phase is long
(hpc_fed/runtime/pulse.py), how long its main thread has gone without progress, and, once it
has stalled, where: the collective it is inside, or else its innermost hpc_fed frame.

A rank whose progress stalls makes its peers stall too, as soon as they reach a collective
that needs it. So the report names the culprit, not the waiters: a rank that has made no
progress for distributed.watchdog_s outside a long phase and is not inside a collective. When
every rank has stalled that long inside collectives, the collective itself hangs (mismatched
collectives, a network that stopped delivering): the rank that stalled first is named with it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from hpc_fed.distributed.collectives import blocked_in

_PACKAGE = Path(__file__).resolve().parents[1]  # hpc_fed/


@dataclass(frozen=True)
class RankState:
    beat: int  # grows with every heartbeat of the rank's monitor thread
    where: str  # the phase of its main thread ("round 3, local_train")
    long: bool  # a phase that may go without progress
    stalled: float  # seconds since its main thread last made progress
    waiting: str | None = None  # the collective its stalled main thread is inside
    at: str | None = None  # its stalled main thread's innermost hpc_fed frame
    left: bool = False  # the rank's run is over (done or abandoned): silence from it is no fault

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> "RankState":
        return cls(**json.loads(data))


def main_thread_state(beat: int, pulse, stalled: float, frame, long: bool = False) -> RankState:
    """This rank's record: `frame` is its main thread's innermost frame (None while it
    progresses: where it is matters only once it stalls)."""
    waiting = blocked_in(frame) if frame is not None else None
    return RankState(beat, pulse.where, pulse.long or long, round(stalled, 1), waiting,
                     None if frame is None else _innermost_own(frame))


def _innermost_own(frame) -> str | None:
    """`hpc_fed/client/local.py:171 (train_client)`: the innermost frame of hpc_fed's code."""
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.is_absolute() and path.is_relative_to(_PACKAGE):
            return f"{path.relative_to(_PACKAGE.parent)}:{frame.f_lineno} ({frame.f_code.co_name})"
        frame = frame.f_back
    return None


def _ranks(ranks: list[int]) -> str:
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(map(str, ranks))


def stall_report(states: dict[int, RankState], watchdog_s: float, whole_world: bool,
                 extra_s: float = 0.0) -> str | None:
    """The line reporting a stalled run, or None. `states`: the ranks watched (rank 0 watches
    the world, `whole_world`; rank 1 watches rank 0 alone, so it cannot tell a hung collective,
    and waits `extra_s` longer)."""
    stalled = {r: s for r, s in states.items() if s.stalled >= watchdog_s + extra_s and not s.long}
    limit = f"distributed.watchdog_s={watchdog_s:g}"
    computing = sorted((r for r, s in stalled.items() if s.waiting is None),
                       key=lambda r: -stalled[r].stalled)
    if computing:
        r, s = computing[0], stalled[computing[0]]
        others = [f"{q} ({stalled[q].where})" for q in computing[1:]]
        waiters = sorted(q for q, st in states.items() if st.waiting is not None)
        return (f"rank {r}'s main thread has made no progress for {s.stalled:.0f} s ({limit}) in "
                f"{s.where}" + (f" at {s.at}" if s.at else "") + ", outside any collective"
                + (f" (also without progress: {_ranks(others)})" if others else "")
                + (f"; {_ranks(waiters)} {'waits' if len(waiters) == 1 else 'wait'} for it in a "
                   "collective" if waiters else "")
                + ": that process is deadlocked or hung; stopping the run (the newest checkpoint "
                "is kept)")
    if whole_world and states and len(stalled) == len(states):
        r = max(stalled, key=lambda q: stalled[q].stalled)
        s = stalled[r]
        return (f"every rank has waited in a collective for {min(x.stalled for x in stalled.values()):.0f} s "
                f"({limit}); rank {r} first, in {s.waiting} during {s.where}"
                + (f" at {s.at}" if s.at else "")
                + ": the ranks called different collectives, or the network stopped delivering; "
                "stopping the run (the newest checkpoint is kept)")
    return None
