"""Two rows of docs/failures.md "Signals, kills and stuck ranks", done to real 2-rank runs under `hpc-fed
launch`: a second SIGTERM (more than 2 s after the first) leaves the round in flight at once and
keeps the newest checkpoint; the launcher killed with SIGKILL leaves no orphaned workers, which
get SIGTERM from the kernel (PR_SET_PDEATHSIG) and stop as after any SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cli_helpers import QUICK, ROOT


def _args(model, out, rounds, local_steps, extra=()):
    return ["launch", "--nproc", "2", "--config", QUICK, f"model.path={model}", f"fed.rounds={rounds}",
            f"train.local_steps={local_steps}", "train.micro_batch_size=4", "data.max_train_samples=64",
            "data.max_test_samples=16", "eval.batch_size=16", "fed.sample_clients=2", "eval.initial=false",
            "eval.every=0", f"output.dir={out}", *extra]


def _start(args, tmp_path: Path) -> subprocess.Popen:
    # TMPDIR: what a killed launcher cannot clean up (torchrun's log folders) stays in tmp_path
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)}
    return subprocess.Popen([sys.executable, "-m", "hpc_fed.cli", *args], cwd=ROOT,
                            stdout=open(tmp_path / "log.txt", "w"), stderr=subprocess.STDOUT, env=env)


def _wait_for_checkpoint(out: Path, rounds_done: int, proc: subprocess.Popen, timeout=300) -> None:
    path, deadline = out / "checkpoints" / f"round-{rounds_done:06d}", time.time() + timeout
    while not path.is_dir():
        assert proc.poll() is None and time.time() < deadline, f"no checkpoint after round {rounds_done}"
        time.sleep(0.1)


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (state first), None when PID is gone."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _workers(parent: int) -> dict[int, tuple[int, str]]:
    """rank -> (pid, start time) of the worker processes (RANK in their environment) of `parent`."""
    found = {}
    for d in Path("/proc").iterdir():
        fields = _stat(int(d.name)) if d.name.isdigit() else None
        if fields is None or int(fields[1]) != parent:
            continue
        try:
            env = dict(e.split("=", 1) for e in (d / "environ").read_bytes().decode(errors="replace")
                       .split("\0") if "=" in e)
        except OSError:
            continue
        if "RANK" in env:
            found[int(env["RANK"])] = (int(d.name), fields[19])
    return found


def _running(pid: int, started: str) -> bool:
    """The process is still there and not a zombie (an orphan's exit is reaped by init, later)."""
    fields = _stat(pid)
    return fields is not None and fields[19] == started and fields[0] != "Z"


def test_a_second_sigterm_leaves_the_round_in_flight_at_once(tiny_model_dir, tmp_path):
    """The first SIGTERM gives the round checkpoint.stop_grace_s (25 s) to end; a second one 3 s
    later leaves now: exit 75, stopped.json says the round was abandoned and continues from the
    checkpoint of round 1, which stays."""
    out = tmp_path / "run"
    # rounds of 300 local steps: one takes ~15 s on an idle 2-core machine, far more than the 3 s
    # between the signals
    proc = _start(_args(tiny_model_dir, out, rounds=3, local_steps=300,
                        extra=["checkpoint.stop_grace_s=25"]), tmp_path)
    try:
        _wait_for_checkpoint(out, 1, proc)
        proc.send_signal(signal.SIGTERM)
        time.sleep(3)  # more than 2 s: a second signal, not one keypress seen twice
        assert proc.poll() is None, "the round did not wait for the grace time"
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        rc = proc.wait(timeout=90)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    text = (tmp_path / "log.txt").read_text()
    assert rc == 75 and took < 10, (rc, took, text[-3000:])
    stopped = json.loads((out / "stopped.json").read_text())
    assert stopped["abandoned"] and "SIGTERM again: stopping now" in stopped["reason"], stopped
    assert stopped["stopped_after_round"] == 1 and stopped["resumes"] == "from checkpoint round-000001"
    assert (out / "checkpoints" / "round-000001").is_dir() and not (out / "results.json").exists()
    last = text.strip().splitlines()[-1]
    assert "abandoned the round in flight after round 1 of 3" in last and "(exit 75)" in last, last


def test_a_launcher_killed_with_sigkill_leaves_no_orphans(tiny_model_dir, tmp_path):
    """Its workers get SIGTERM from the kernel, finish the round in flight (a short one), write
    the checkpoint and stopped.json, and exit, within seconds."""
    out = tmp_path / "run"
    proc = _start(_args(tiny_model_dir, out, rounds=200, local_steps=4), tmp_path)
    workers = {}
    try:
        _wait_for_checkpoint(out, 2, proc)
        workers = _workers(proc.pid)
        assert sorted(workers) == [0, 1], workers
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.time() + 20
        while any(_running(*w) for w in workers.values()) and time.time() < deadline:
            time.sleep(0.1)
        orphans = [rank for rank, w in workers.items() if _running(*w)]
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid, started in workers.values():  # the test's own processes, if they outlived it
            if _running(pid, started):
                os.kill(pid, signal.SIGKILL)
    text = (tmp_path / "log.txt").read_text()
    assert not orphans, f"ranks {orphans} outlived their launcher by 20 s\n{text[-3000:]}"
    stopped = json.loads((out / "stopped.json").read_text())
    assert stopped["reason"].startswith("SIGTERM on rank") and not stopped.get("abandoned"), stopped
    assert 2 <= stopped["stopped_after_round"] < 200 and not (out / "results.json").exists()
    assert (out / "checkpoints" / f"round-{stopped['stopped_after_round']:06d}").is_dir()
    # the agent hosted the job's store: the ranks leave it alone instead of printing the store
    # client's stack traces for every failed send
    assert "sendBytes failed" not in text and "Broken pipe" not in text, text[-3000:]
