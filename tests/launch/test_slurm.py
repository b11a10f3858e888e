"""slurm/benchmark.sh and `hpc-fed sweep --executor slurm` on a real one-node SLURM cluster.

The cluster comes from slurm/local_cluster.sh (needs root and Debian's slurm packages; .ci/run
installs them and sets HPC_FED_REQUIRE_SLURM=1 so that a missing cluster fails CI instead of
skipping). A cluster this test module started is stopped at the end; one already up is left up.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import QUICK, ROOT, TINY, tiny_matrix

CLUSTER = ROOT / "slurm" / "local_cluster.sh"
REQUIRED = os.environ.get("HPC_FED_REQUIRE_SLURM") == "1"


@pytest.fixture(scope="module")
def slurm():
    """A running local cluster, or a skip (a failure when HPC_FED_REQUIRE_SLURM=1)."""
    why = None
    if shutil.which("sbatch") is None and not Path("/usr/bin/sbatch").exists():
        why = "SLURM is not installed (run: slurm/local_cluster.sh install)"
    elif os.geteuid() != 0:
        why = "the local SLURM cluster needs root"
    if why:
        if REQUIRED:
            pytest.fail(why)
        pytest.skip(why)
    was_up = subprocess.run([str(CLUSTER), "status"], capture_output=True).returncode == 0
    start = subprocess.run([str(CLUSTER), "start"], capture_output=True, text=True, timeout=180)
    if start.returncode != 0:
        message = f"local SLURM cluster did not start:\n{start.stdout[-2000:]}{start.stderr[-2000:]}"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    yield
    if not was_up:
        subprocess.run([str(CLUSTER), "stop"], capture_output=True, timeout=180)


def sbatch(tmp_path: Path, *args: str, env: dict[str, str], timeout: float = 600):
    """`sbatch --wait` of slurm/benchmark.sh from the repository root; (process, log text)."""
    log = tmp_path / "slurm-%A_%a.out"
    cmd = ["sbatch", "--wait", f"--output={log}", f"--job-name=hpc-fed-test-{tmp_path.name}"[:60],
           "--time=10", *args, "slurm/benchmark.sh"]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "HPC_FED_PYTHON": sys.executable, **env})
    finally:  # a timed-out test must not leave its job holding the one test node
        subprocess.run(["scancel", f"--name=hpc-fed-test-{tmp_path.name}"[:60]], capture_output=True)
    logs = "\n".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("slurm-*.out")))
    return proc, logs


def test_sbatch_runs_a_config_on_two_processes(slurm, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    proc, log = sbatch(tmp_path, env={
        "CONFIG": QUICK, "NPROC_PER_NODE": "2",
        "OVERRIDES": " ".join([f"model.path={tiny_model_dir}", *TINY, f"output.dir={out}"])})
    assert proc.returncode == 0, proc.stderr + log[-4000:]
    results = json.loads((out / "results.json").read_text())
    assert results["world_size"] == 2 and results["client_groups"] == 2
    assert "rendezvous" in log and "finished with exit code 0" in log
    assert {"config.yaml", "metrics.jsonl", "partition.json"} <= {p.name for p in out.iterdir()}


def test_sbatch_array_runs_one_matrix_entry_per_task(slurm, tiny_model_dir, tmp_path):
    m = tiny_matrix(tmp_path, tiny_model_dir)
    proc, log = sbatch(tmp_path, "--array=0-1", "--cpus-per-task=1",
                       env={"CONFIG": str(m), "NPROC_PER_NODE": "1"})
    assert proc.returncode == 0, proc.stderr + log[-4000:]
    for method in ("FedAvg", "FedProx"):
        res = json.loads((tmp_path / f"bench/memes/missing-beta0.5/{method}/seed0/results.json").read_text())
        assert res["tags"]["method"] == method and res["algorithm"] == method.lower()
    assert "array task 0" in log and "array task 1" in log
    # resubmitting skips done entries without starting any process
    for p in tmp_path.glob("slurm-*.out"):
        p.unlink()
    again, log = sbatch(tmp_path, "--array=0", env={"CONFIG": str(m), "NPROC_PER_NODE": "1"})
    assert again.returncode == 0 and "nothing to do (already done)" in log


@pytest.mark.parametrize("env, needle", [
    ({"CONFIG": "configs/no_such.yaml"}, "config configs/no_such.yaml does not exist"),
    ({"CONFIG": QUICK, "NPROC_PER_NODE": "2", "OVERRIDES": "fed.ranks_per_client=3"},
     "fed.ranks_per_client (3) does not divide the world size (2)"),
])
def test_sbatch_fails_fast_with_a_readable_message(slurm, tmp_path, env, needle):
    start = time.time()
    proc, log = sbatch(tmp_path, env=env, timeout=120)
    assert proc.returncode != 0
    assert needle in log and "stops before starting any process" in log and "Traceback" not in log
    assert time.time() - start < 120  # seconds, against minutes for a run that got going


def test_time_limit_signal_stops_the_run_cleanly_after_a_round(slurm, tiny_model_dir, tmp_path):
    """`--signal=B:USR2@...` reaches the batch shell; it asks the run to stop after the round."""
    out = tmp_path / "run"
    env = {**os.environ, "HPC_FED_PYTHON": sys.executable, "CONFIG": QUICK, "NPROC_PER_NODE": "1",
           "OVERRIDES": " ".join([f"model.path={tiny_model_dir}", *TINY, "fed.rounds=200",
                                  f"output.dir={out}"])}
    sub = subprocess.run(["sbatch", "--parsable", f"--output={tmp_path}/slurm-%j.out", "--time=10",
                          "slurm/benchmark.sh"], cwd=ROOT, capture_output=True, text=True, env=env,
                         timeout=60)
    assert sub.returncode == 0, sub.stderr
    job, deadline = sub.stdout.strip().split(";")[0], time.time() + 240
    metrics = out / "metrics.jsonl"
    try:
        while time.time() < deadline and not (metrics.exists() and metrics.read_text().strip()):
            time.sleep(1)
        assert metrics.exists() and metrics.read_text().strip(), "no round finished within 4 min"
        subprocess.run(["scancel", "--batch", "--signal=USR2", job], check=True, timeout=30)
        while time.time() < deadline and subprocess.run(["squeue", "-h", "-j", job], capture_output=True,
                                                        text=True).stdout.strip():
            time.sleep(1)
    finally:
        subprocess.run(["scancel", job], capture_output=True)
    log = next(tmp_path.glob("slurm-*.out")).read_text()
    stopped = json.loads((out / "stopped.json").read_text())
    assert 1 <= stopped["stopped_after_round"] < 200, log[-3000:]
    assert not (out / "results.json").exists()
    assert "SIGUSR2 (time limit near)" in log and "stopped cleanly before the time limit" in log
    state = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True).stdout
    assert "ExitCode=75:0" in state  # not COMPLETED: the entry is not done


def test_requeue_after_a_clean_stop_continues_the_run(slurm, tiny_model_dir, tmp_path):
    """REQUEUE=1: the job stopped by USR2 requeues itself and the requeued job resumes."""
    out = tmp_path / "run"
    env = {**os.environ, "HPC_FED_PYTHON": sys.executable, "CONFIG": QUICK, "NPROC_PER_NODE": "1",
           "REQUEUE": "1", "OVERRIDES": " ".join([f"model.path={tiny_model_dir}", *TINY, "fed.rounds=6",
                                                  "train.local_steps=20", f"output.dir={out}"])}
    sub = subprocess.run(["sbatch", "--parsable", "--requeue", "--open-mode=append",
                          f"--output={tmp_path}/slurm-%j.out", "--time=10", "slurm/benchmark.sh"],
                         cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert sub.returncode == 0, sub.stderr
    job, deadline = sub.stdout.strip().split(";")[0], time.time() + 420
    metrics = out / "metrics.jsonl"
    try:
        while time.time() < deadline and not (metrics.exists() and metrics.read_text().strip()):
            time.sleep(0.5)
        assert metrics.exists() and metrics.read_text().strip(), "no round finished in time"
        subprocess.run(["scancel", "--batch", "--signal=USR2", job], check=True, timeout=30)
        released, pending_since = False, None
        while time.time() < deadline and not (out / "results.json").exists():
            state = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True,
                                   text=True).stdout
            if "JobState=PENDING" in state and "Restarts=1" in state:
                pending_since = pending_since or time.time()
            # SLURM makes a requeued job eligible ~2 min later; release it sooner, as an admin may,
            # but not within seconds of the requeue: slurmd refuses a credential issued in the
            # same second as the old one's revocation ("Job credential revoked")
            if not released and pending_since and time.time() - pending_since > 5:
                subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
                released = True
            time.sleep(1)
    finally:
        subprocess.run(["scancel", job], capture_output=True)
    log = next(tmp_path.glob("slurm-*.out")).read_text()
    assert released and (out / "results.json").exists(), log[-3000:]
    assert "requeueing job" in log and "resuming" in log, log[-3000:]
    rows = [json.loads(line)["round"] for line in metrics.read_text().splitlines()]
    assert rows == list(range(6))


def test_sweep_submits_the_matrix_as_a_slurm_array(slurm, tiny_model_dir, tmp_path):
    m = tiny_matrix(tmp_path, tiny_model_dir)
    proc = subprocess.run([sys.executable, "-m", "hpc_fed.cli", "sweep", str(m), "--executor", "slurm",
                           "--cpus-per-task", "1", "--timeout-min", "10"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 entries to slurm (1 node(s) x 1 task(s) each)" in proc.stdout
    assert proc.stdout.count(": done (job ") == 2
    record = json.loads((tmp_path / "bench/submitit/sweep.json").read_text())
    assert [r["job_id"].split("_")[1] for r in record] == ["0", "1"]  # one array, two tasks
    assert (tmp_path / "bench/report/results.csv").is_file()
