"""The arithmetic of `hpc-fed bench`, pure so it tests without processes (and the one reader of
this process's /proc figures: memory, `status_bytes`; CPU time per thread, `thread_cpu_seconds`).

A round on one rank splits into (seconds, summing to the round's wall time):
  compute      forward + backward + optimizer step of its local micro-batches
  data         waiting for the next batch (decode, process; hidden when prefetch keeps up)
  local_other  the rest of local training: writing / reading the adapter, client terms, the
               group's loss all_reduce
  wait         waiting for the other client groups to finish their clients (a barrier)
  aggregate    the round's all_reduce + the server step + loading the new global adapter
  eval         evaluation rounds only
  checkpoint   the stop agreement and, when due, writing the checkpoint
  rest         everything else (sampling, bookkeeping, the progress table)
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from pathlib import Path

PHASES = ("compute", "data", "local_other", "wait", "aggregate", "eval", "checkpoint", "rest")


def status_bytes(field: str) -> int | None:
    """A memory field of this process from /proc/self/status in bytes (VmRSS: now, VmHWM: the
    peak, RssAnon: anonymous), or None where there is no /proc (not Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def thread_cpu_seconds() -> dict[int, float]:
    """CPU seconds (user + system) of each live thread of this process by native thread id, from
    /proc/self/task (empty where there is none)."""
    out = {}
    try:
        tick = os.sysconf("SC_CLK_TCK")
        tasks = list(Path("/proc/self/task").iterdir())
    except (OSError, ValueError, AttributeError):
        return out
    for task in tasks:
        try:  # fields after the parenthesised name: state is the first, utime the 12th
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def cpu_split(before: dict[int, float], after: dict[int, float], wall: float, *, main: int,
              monitor: int | None) -> dict[str, float]:
    """CPU seconds between two thread_cpu_seconds() readings: the main thread's, the rank
    monitor's and all others' (torch's intra-op pool, gloo, prefetch), next to the wall time."""
    used = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
    main_s, monitor_s = used.pop(main, 0.0), used.pop(monitor, 0.0) if monitor is not None else 0.0
    return {"main": main_s, "monitor": monitor_s, "other": sum(used.values()), "wall": wall}


def split_round(timer: dict[str, float], compute: float, data: float, wait: float,
                checkpoint: float) -> dict[str, float]:
    """One rank's round in PHASES from its PhaseTimer seconds (round, local_train, aggregate,
    eval), the local-training split and the separately timed wait and checkpoint."""
    wall = timer.get("round", 0.0) + checkpoint
    local = timer.get("local_train", 0.0)
    aggregate = max(0.0, timer.get("aggregate", 0.0) - wait)
    out = {"compute": compute, "data": data, "local_other": max(0.0, local - compute - data),
           "wait": wait, "aggregate": aggregate, "eval": timer.get("eval", 0.0),
           "checkpoint": checkpoint}
    out["rest"] = max(0.0, wall - sum(out.values()))
    out["wall"] = wall
    return out


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max (rounded) of repeated measurements."""
    vals = sorted(values)
    if not vals:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"median": round(statistics.median(vals), 4), "min": round(vals[0], 4),
            "max": round(vals[-1], 4), "n": len(vals)}


def ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den > 0 else None


def summarize(rounds: list[list[dict]], skip_first: bool = True) -> dict:
    """`rounds[t][r]`: rank r's split_round of round t (plus its micro_batches, samples, tokens).
    The round's wall time is its slowest rank's; round 0 (warm-up) is left out when there are
    later rounds. Returns the steady-state figures of a run."""
    steady = rounds[1:] if skip_first and len(rounds) > 1 else rounds
    walls = [max(r["wall"] for r in ranks) for ranks in steady]
    # the round without its evaluation (evaluation is the same work whatever runs the rounds)
    train_walls = [max(r["wall"] - r["eval"] for r in ranks) for ranks in steady]
    total_wall = sum(walls)
    per_phase = {p: sum(statistics.mean(r[p] for r in ranks) for ranks in steady) for p in PHASES}
    evals = per_phase["eval"]
    compute = sum(sum(r["compute"] for r in ranks) for ranks in steady)
    micro = sum(sum(r["micro_batches"] for r in ranks) for ranks in steady)
    world = len(steady[0]) if steady else 1
    return {
        "rounds_measured": len(steady),
        "round_seconds": spread(walls),
        "train_round_seconds": spread(train_walls),
        "phase_seconds_per_round": {p: round(v / max(1, len(steady)), 4) for p, v in per_phase.items()},
        # the mean rank's local-training compute over the round's wall time without evaluation
        # (evaluation is its own phase, the same work whatever runs the rounds)
        "round_efficiency": ratio(compute / world, total_wall - evals),
        "step_seconds": ratio(compute, micro),  # one rank's local micro-batch step, mean
        "samples_per_second": ratio(sum(sum(r["samples"] for r in ranks) for ranks in steady), total_wall),
        "tokens_per_second": ratio(sum(sum(r["tokens"] for r in ranks) for ranks in steady), total_wall),
        "idle_seconds_per_round": round(per_phase["wait"] / max(1, len(steady)), 4),
    }
