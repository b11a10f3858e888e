"""The watchdog sees a wedged main thread, on any rank, rank 0 included, and names the culprit.

The monitor thread of a rank whose main thread is deadlocked keeps beating; what stops is the
progress its main thread publishes. Its peers stop too, inside the collective that waits for
it: the report names the rank that stalled outside any collective, not them. The pure rules are
tested on records; real 2-rank runs under `hpc-fed launch` (the in-process torchrun agent) are
made to hang one rank's main thread while its monitor runs on."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch.distributed as dist
from cli_helpers import QUICK, ROOT

from hpc_fed.distributed.collectives import blocked_in
from hpc_fed.runtime.watchdog import RankState, stall_report

HEARTBEAT_S, WATCHDOG_S = 0.5, 3.0


def state(stalled=0.0, where="round 2, local_train", long=False, waiting=None, at=None):
    return RankState(beat=7, where=where, long=long, stalled=stalled, waiting=waiting, at=at)


def test_the_culprit_is_named_not_the_ranks_waiting_for_it():
    states = {0: state(5.0, "round 2, aggregate", waiting="all_reduce"),
              1: state(6.0, at="hpc_fed/client/local.py:170 (train_client)"),
              2: state(4.0, "round 2, aggregate", waiting="all_reduce")}
    line = stall_report(states, 3.0, whole_world=True)
    assert line.startswith("rank 1's main thread has made no progress for 6 s "
                           "(distributed.watchdog_s=3) in round 2, local_train at "
                           "hpc_fed/client/local.py:170 (train_client), outside any collective")
    assert "ranks 0, 2 wait for it in a collective" in line


def test_no_report_while_progressing_in_a_long_phase_or_waiting_for_a_busy_peer():
    assert stall_report({0: state(1.0), 1: state(2.9)}, 3.0, whole_world=True) is None
    # rank 0 writes a checkpoint (long) while rank 1 waits for it in the next collective
    assert stall_report({0: state(60.0, "round 4, checkpoint", long=True),
                         1: state(60.0, waiting="broadcast")}, 3.0, whole_world=True) is None
    # rank 1 still trains while rank 0 has long been waiting in the round's all_reduce
    assert stall_report({0: state(60.0, waiting="all_reduce"), 1: state(0.2)}, 3.0,
                        whole_world=True) is None


def test_a_collective_every_rank_waits_in_is_reported_with_the_first_rank():
    states = {0: state(9.0, "round 1, aggregate", waiting="all_reduce"),
              1: state(12.0, "round 1, eval", waiting="all_reduce")}
    line = stall_report(states, 3.0, whole_world=True)
    assert line.startswith("every rank has waited in a collective for 9 s (distributed.watchdog_s=3); "
                           "rank 1 first, in all_reduce during round 1, eval")
    # rank 1 watches rank 0 alone: it cannot tell a hung collective from a busy peer
    assert stall_report({0: states[0]}, 3.0, whole_world=False) is None


def test_rank_1_reports_rank_0_after_rank_0_had_its_own_chance():
    wedged = {0: state(4.0)}
    assert stall_report(wedged, 3.0, whole_world=False, extra_s=1.0) is not None
    assert stall_report(wedged, 3.0, whole_world=False, extra_s=2.0) is None


def test_the_record_is_small_and_survives_the_store():
    record = state(3.25, waiting="all_reduce", at="hpc_fed/fed/payload.py:80 (reduce)")
    assert RankState.decode(record.encode()) == record and len(record.encode()) < 200


def _blocked_thread(filename: str, name: str):
    """A thread blocked in a function `name` whose code belongs to `filename`."""
    release = threading.Event()
    scope = {"release": release}
    exec(compile(f"def {name}():\n    release.wait()\n", filename, "exec"), scope)
    thread = threading.Thread(target=scope[name], daemon=True)
    thread.start()
    time.sleep(0.1)
    return thread, release


@pytest.mark.parametrize("filename, name, expected", [
    (dist.distributed_c10d.__file__, "all_reduce", "all_reduce"),
    (str(Path(sys.prefix) / "site-packages/deepspeed/runtime/zero/partition_parameters.py"), "wait",
     "wait on DeepSpeed's collective"),
    (str(ROOT / "hpc_fed/client/local.py"), "train_client", None),
], ids=["torch.distributed", "deepspeed-handle", "hpc_fed-code"])
def test_a_thread_inside_a_collective_is_told_from_one_computing(filename, name, expected):
    thread, release = _blocked_thread(filename, name)
    try:
        assert blocked_in(sys._current_frames()[thread.ident]) == expected
    finally:
        release.set()
        thread.join()


# --- real runs ------------------------------------------------------------------------------

# Loaded by every process of the run (sitecustomize): on SIGUSR1 a worker's main thread hangs
# at its next step of progress (inside training or evaluation), while its monitor thread runs on.
HANG_HOOK = '''
import os, signal, sys, threading


def _hang_at_next_tick(signum, frame):
    try:
        from hpc_fed.runtime import pulse
    except ImportError:  # no progress to hook: hang right here
        sys.stderr.write(f"test hook: rank {os.environ['RANK']} hangs in an unknown phase\\n")
        sys.stderr.flush()
        threading.Event().wait()

    class Hung(type(pulse.MAIN)):
        def tick(self):
            sys.stderr.write(f"test hook: rank {os.environ['RANK']} hangs in {self.where}\\n")
            sys.stderr.flush()
            threading.Event().wait()

    pulse.MAIN.__class__ = Hung


if "RANK" in os.environ:
    signal.signal(signal.SIGUSR1, _hang_at_next_tick)
'''


def _start(model, out: Path, hook_dir: Path) -> subprocess.Popen:
    hook_dir.mkdir(exist_ok=True)
    (hook_dir / "sitecustomize.py").write_text(HANG_HOOK)
    path = os.pathsep.join(p for p in (str(hook_dir), str(ROOT), os.environ.get("PYTHONPATH")) if p)
    args = ["launch", "--nproc", "2", "--config", QUICK, f"model.path={model}", "fed.rounds=200",
            "train.local_steps=4", "train.micro_batch_size=4", "data.max_train_samples=64",
            "data.max_test_samples=16", "eval.batch_size=16", "fed.sample_clients=2",
            "eval.initial=false", "eval.every=2", f"distributed.heartbeat_s={HEARTBEAT_S}",
            f"distributed.watchdog_s={WATCHDOG_S:g}", f"output.dir={out}"]
    return subprocess.Popen([sys.executable, "-m", "hpc_fed.cli", *args], cwd=ROOT,
                            stdout=open(out.parent / "log.txt", "w"), stderr=subprocess.STDOUT,
                            start_new_session=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path})


def _workers(parent: int) -> dict[int, int]:
    """rank -> pid of the processes whose parent is `parent` and that have a RANK."""
    found = {}
    for d in Path("/proc").iterdir():
        try:
            if not d.name.isdigit() or int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) != parent:
                continue
            env = dict(e.split("=", 1) for e in (d / "environ").read_bytes().decode(errors="replace")
                       .split("\0") if "=" in e)
        except (OSError, ValueError, IndexError):
            continue
        if "RANK" in env:
            found[int(env["RANK"])] = int(d.name)
    return found


def _wait_for(log: Path, pattern: str, proc: subprocess.Popen, timeout: float) -> re.Match:
    deadline = time.time() + timeout
    while True:
        found = re.search(pattern, log.read_text())
        if found:
            return found
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.time() < deadline, f"no {pattern!r} within {timeout:g} s:\n" + log.read_text()[-3000:]
        time.sleep(0.1)


def _rounds(out: Path) -> int:
    path = out / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


def _running(tiny_model_dir, tmp_path) -> tuple[subprocess.Popen, Path, Path, dict[int, int]]:
    """A 2-rank run that has done 2 rounds."""
    out = tmp_path / "run"
    proc = _start(tiny_model_dir, out, tmp_path / "hook")
    deadline = time.time() + 180
    while _rounds(out) < 2:
        assert proc.poll() is None and time.time() < deadline, (tmp_path / "log.txt").read_text()[-3000:]
        time.sleep(0.1)
    return proc, out, tmp_path / "log.txt", _workers(proc.pid)


def _end(proc: subprocess.Popen, workers: dict[int, int]) -> None:
    """Nothing of the run outlives the test: the launcher's group, and the workers by pid (a
    stopped worker in a session of its own would otherwise stay, stopped, forever)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for pid in workers.values():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.slow
@pytest.mark.parametrize("hung", [1, 0])
def test_a_rank_whose_main_thread_hangs_is_named_with_its_phase(tiny_model_dir, tmp_path, hung):
    proc, out, log, workers = _running(tiny_model_dir, tmp_path)
    try:
        os.kill(workers[hung], signal.SIGUSR1)
        hook = _wait_for(log, rf"test hook: rank {hung} hangs in ([^\n]+)", proc, 60)
        hung_at = time.time()
        report = _wait_for(log, r"hpc-fed: (rank \d+'s main thread has made no progress[^\n]*)", proc,
                           WATCHDOG_S + 25)
        reported_after = time.time() - hung_at
        rc, text = proc.wait(timeout=90), log.read_text()
    finally:
        _end(proc, workers)
    assert WATCHDOG_S - HEARTBEAT_S <= reported_after < WATCHDOG_S + 8, text[-3000:]
    line = report.group(1)
    assert line.startswith(f"rank {hung}'s main thread has made no progress"), line
    assert f"in {hook.group(1)} at hpc_fed/" in line and "outside any collective" in line, line
    if hung == 1:
        assert "rank 0 waits for it in a collective" in line, line
    # the one report: SIGUSR1 is no stop request, and rank 0's leaving is no silence for rank 1
    assert "SIGUSR1" not in text and "has not answered" not in text, text[-3000:]
    last = text.strip().splitlines()[-1]
    assert rc == 1 and last.startswith(f"hpc-fed launch: error: rank {hung}'s main thread"), text[-3000:]
    stopped = json.loads((out / "stopped.json").read_text())
    assert stopped["failure"] and stopped["resumes"].startswith("from checkpoint round-")


@pytest.mark.slow
def test_rank_0_stopped_whole_is_reported_by_rank_1(tiny_model_dir, tmp_path):
    proc, out, log, workers = _running(tiny_model_dir, tmp_path)
    try:
        os.kill(workers[0], signal.SIGSTOP)
        stopped_at = time.time()
        _wait_for(log, r"\[rank 1\] hpc-fed: rank 0 has not answered for \d+ s", proc, WATCHDOG_S + 25)
        reported_after = time.time() - stopped_at
        os.kill(workers[0], signal.SIGCONT)  # lets torchrun's SIGTERM reach it
        rc = proc.wait(timeout=90)
    finally:
        _end(proc, workers)
    assert rc == 1 and WATCHDOG_S - HEARTBEAT_S <= reported_after < WATCHDOG_S + 8, log.read_text()[-3000:]
