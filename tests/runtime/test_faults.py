"""Faults as they happen on a cluster, done to real 2-rank runs under `hpc-fed launch` (the
in-process torchrun agent): kill -9 of a rank, SIGTERM / SIGUSR2 to the launcher or to one worker,
a stuck (SIGSTOPped) rank, a SIGTERM whose round cannot finish in time. Each ends as documented
in docs/failures.md: the exit code, one line saying what happened, the run
directory's checkpoint and stopped.json, no orphaned workers, and a rerun (or torchrun's restart)
that ends with the uninterrupted run's adapter, bit for bit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import QUICK, ROOT

ADAPTER = "adapter/adapter_model.safetensors"


def _args(model, out, rounds=10, extra=(), launcher=()):
    return ["launch", "--nproc", "2", *launcher, "--config", QUICK, f"model.path={model}",
            f"fed.rounds={rounds}", "train.local_steps=4", "train.micro_batch_size=4",
            "data.max_train_samples=64", "data.max_test_samples=16", "eval.batch_size=16",
            "fed.sample_clients=2", "eval.initial=false", "eval.every=2", "output.save_adapter=true",
            f"output.dir={out}", *extra]


def _start(args, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hpc_fed.cli", *args], cwd=ROOT, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _run(args, log: Path, timeout=240) -> tuple[int, str]:
    proc = _start(args, log)
    return proc.wait(timeout=timeout), log.read_text()


def _rows(out: Path) -> list[dict]:
    path = out / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _wait_rounds(out: Path, n: int, proc: subprocess.Popen, timeout=120) -> None:
    deadline = time.time() + timeout
    while len(_rows(out)) < n:
        assert proc.poll() is None and time.time() < deadline, f"{n} rounds not reached"
        time.sleep(0.1)


def _workers(parent: int) -> dict[int, int]:
    """rank -> pid of the hpc_fed.train processes whose parent is `parent`."""
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid != parent:
                continue
            env = dict(e.split("=", 1) for e in (d / "environ").read_bytes().decode(errors="replace")
                       .split("\0") if "=" in e)
        except (OSError, ValueError, IndexError):
            continue
        if "RANK" in env:
            found[int(env["RANK"])] = int(d.name)
    return found


def _no_process_mentions(text: str) -> bool:
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if text.encode() in (d / "cmdline").read_bytes():
                    return False
            except OSError:
                continue
    return True


def _same_outcome(run: Path, straight: Path) -> None:
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows]  # noqa: E731
    assert strip(_rows(run)) == strip(_rows(straight))
    assert (run / ADAPTER).read_bytes() == (straight / ADAPTER).read_bytes()
    assert not (run / "checkpoints").exists() and not (run / "stopped.json").exists()


@pytest.fixture(scope="module")
def straight(tiny_model_dir, tmp_path_factory):
    """The uninterrupted run every fault is compared with."""
    out = tmp_path_factory.mktemp("straight") / "run"
    rc, log = _run(_args(tiny_model_dir, out), out.parent / "log.txt")
    assert rc == 0, log[-3000:]
    return out


def test_kill_9_of_a_rank_is_restarted_from_the_checkpoint(tiny_model_dir, tmp_path, straight):
    out = tmp_path / "run"
    proc = _start(_args(tiny_model_dir, out, launcher=["--max-restarts", "1"]), tmp_path / "log.txt")
    _wait_rounds(out, 3, proc)
    os.kill(_workers(proc.pid)[1], signal.SIGKILL)
    rc, log = proc.wait(timeout=240), (tmp_path / "log.txt").read_text()
    assert rc == 0, log[-3000:]
    assert "resuming" in log and "failed (exitcode: -9)" in log
    _same_outcome(out, straight)


def test_kill_9_without_restarts_fails_in_one_line_and_the_rerun_resumes(tiny_model_dir, tmp_path, straight):
    out, log = tmp_path / "run", tmp_path / "log.txt"
    proc = _start(_args(tiny_model_dir, out), log)
    _wait_rounds(out, 3, proc)
    os.kill(_workers(proc.pid)[1], signal.SIGKILL)
    rc, text = proc.wait(timeout=120), log.read_text()
    last = text.strip().splitlines()[-1]
    assert rc == 1, text[-3000:]
    assert last.startswith("hpc-fed launch: error: workers failed: rank 1 (signal SIGKILL)"), last
    assert "when the same command runs again" in last
    rc, text = _run(_args(tiny_model_dir, out), tmp_path / "log2.txt")
    assert rc == 0 and "resuming" in text, text[-3000:]
    _same_outcome(out, straight)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR2])
def test_a_signal_to_the_launcher_stops_cleanly_and_the_rerun_resumes(tiny_model_dir, tmp_path,
                                                                      straight, sig):
    out, log = tmp_path / "run", tmp_path / "log.txt"
    proc = _start(_args(tiny_model_dir, out), log)
    _wait_rounds(out, 2, proc)
    proc.send_signal(sig)
    rc, text = proc.wait(timeout=60), log.read_text()
    assert rc == 75, text[-3000:]
    last = text.strip().splitlines()[-1]
    assert "run the same command again to continue (exit 75)" in last and "Traceback" not in text
    stopped = json.loads((out / "stopped.json").read_text())
    assert 2 <= stopped["stopped_after_round"] < 10 and not (out / "results.json").exists()
    assert (out / "checkpoints" / f"round-{stopped['stopped_after_round']:06d}").is_dir()
    assert (out / ADAPTER).is_file()  # the global adapter so far, usable as it is
    time.sleep(1)
    assert _no_process_mentions(f"output.dir={out}")  # no orphaned workers
    rc, text = _run(_args(tiny_model_dir, out), tmp_path / "log2.txt")
    assert rc == 0 and f"after round {stopped['stopped_after_round']} of 10" in text, text[-3000:]
    _same_outcome(out, straight)


def test_sigterm_to_one_worker_stops_every_rank(tiny_model_dir, tmp_path):
    out, log = tmp_path / "run", tmp_path / "log.txt"
    proc = _start(_args(tiny_model_dir, out, rounds=40), log)
    _wait_rounds(out, 2, proc)
    os.kill(_workers(proc.pid)[1], signal.SIGTERM)
    rc, text = proc.wait(timeout=60), log.read_text()
    assert rc == 75, text[-3000:]
    stopped = json.loads((out / "stopped.json").read_text())
    assert stopped["reason"] == "SIGTERM on rank 1" and not stopped.get("abandoned")
    assert len(_rows(out)) == stopped["stopped_after_round"] < 40


def test_a_stuck_rank_is_named_with_its_round(tiny_model_dir, tmp_path):
    out, log = tmp_path / "run", tmp_path / "log.txt"
    proc = _start(_args(tiny_model_dir, out, rounds=200, extra=["distributed.heartbeat_s=0.5",
                                                                "distributed.watchdog_s=3"]), log)
    _wait_rounds(out, 2, proc)
    rank1 = _workers(proc.pid)[1]
    os.kill(rank1, signal.SIGSTOP)
    stuck_at, deadline = time.time(), time.time() + 30
    while "has not answered" not in log.read_text():
        assert time.time() < deadline, "the stuck rank was not reported within 30 s"
        time.sleep(0.2)
    reported_after = time.time() - stuck_at
    os.kill(rank1, signal.SIGCONT)  # lets torchrun's SIGTERM reach it (else SIGKILL after 30 s)
    rc, text = proc.wait(timeout=90), log.read_text()
    assert rc == 1 and 2 <= reported_after < 10, text[-3000:]  # watchdog_s - heartbeat_s at least
    line = next(x for x in text.splitlines() if "has not answered" in x)
    assert "rank 1 has not answered" in line and "its last heartbeat was in round" in line
    assert "hpc-fed launch: error: rank 1 has not answered" in text.strip().splitlines()[-1]
    stopped = json.loads((out / "stopped.json").read_text())
    assert stopped["failure"] and stopped["resumes"].startswith("from checkpoint round-")


def test_sigterm_abandons_a_round_that_cannot_end_in_the_grace_time(tiny_model_dir, tmp_path):
    """A world of one (`hpc-fed train`, no torchrun) whose rounds are long: SIGTERM, then
    checkpoint.stop_grace_s later it leaves mid-round with exit 75, resumable."""
    out, log = tmp_path / "run", tmp_path / "log.txt"
    args = ["train", *_args(tiny_model_dir, out, rounds=3)[3:], "train.local_steps=400",
            "checkpoint.stop_grace_s=1"]
    proc = _start(args, log)
    deadline = time.time() + 120
    while "rounds:" not in log.read_text():  # round 0 under way
        assert proc.poll() is None and time.time() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    sent = time.time()
    proc.send_signal(signal.SIGTERM)
    rc, text = proc.wait(timeout=60), log.read_text()
    assert rc == 75 and time.time() - sent < 15, text[-3000:]
    assert "did not end within checkpoint.stop_grace_s (1 s)" in text
    stopped = json.loads((out / "stopped.json").read_text())
    assert stopped["abandoned"] and stopped["resumes"] == "from the start" and not _rows(out)
