"""`hpc-fed sweep`: submitit's task environment, and the local executor through the one local
runner (the real SLURM runs are in test_slurm.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from cli_helpers import ROOT, cli, tiny_matrix

from hpc_fed.errors import UsageError
from hpc_fed.launch.sweep import submit, torch_env


def test_torch_env_of_a_submitit_task():
    env = torch_env(global_rank=3, local_rank=1, world=4, nodes=2, first_host="node1", job_id="17_2")
    assert env == {**env, "RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2",
                   "MASTER_ADDR": "node1"}
    assert env["MASTER_PORT"] == torch_env(0, 0, 4, 2, "node1", "17_2")["MASTER_PORT"]
    assert torch_env(0, 0, 2, 1, "n", "5")["MASTER_ADDR"] == "127.0.0.1"


@pytest.mark.parametrize("cpus_per_task,user,threads", [(None, None, "4"), ("3", None, "3"), ("3", "5", "5")])
def test_a_sweep_task_gets_its_share_of_the_cores(monkeypatch, tmp_path, cpus_per_task, user, threads):
    """A submitit task is a rank itself: SLURM's CPUs per task, else the node's usable cores over
    the node's tasks, else the user's OMP_NUM_THREADS; set before hpc_fed.train starts."""
    import submitit

    from hpc_fed.launch import sweep, threads as rule

    class Task:  # the second of 2 tasks on one node
        num_tasks, num_nodes, global_rank, local_rank, job_id, hostnames = 2, 1, 1, 1, "7", ["n0"]

    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                "OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK"):
        monkeypatch.delenv(key, raising=False)  # a value set before the test comes back after it
    if cpus_per_task:
        monkeypatch.setenv("SLURM_CPUS_PER_TASK", cpus_per_task)
    if user:
        monkeypatch.setenv("OMP_NUM_THREADS", user)
    monkeypatch.setattr(submitit, "JobEnvironment", Task)
    monkeypatch.setattr(rule, "usable_cpus", lambda: 8)
    seen = []
    monkeypatch.setattr("hpc_fed.train.main", lambda args: seen.append(os.environ["OMP_NUM_THREADS"]) or 0)
    job = sweep.EntryJob("e", (), str(tmp_path / "results.json"), os.getcwd())
    with rule.scoped_environ({}):  # the task sets a rank's environment: none of it outlives the test
        assert sweep.run_entry_job(job) is None and seen == [threads]


def test_sweep_local_executor_runs_the_matrix_skips_done_and_collects(tiny_model_dir, tmp_path):
    m = tiny_matrix(tmp_path, tiny_model_dir, nproc=2)  # each entry: hpc-fed launch --nproc 2
    listed = cli("sweep", "--list", str(m))
    assert listed.returncode == 0 and "memes/missing-beta0.5/FedProx/seed0" in listed.stdout
    proc = subprocess.run([str(ROOT / "launchers/sweep.sh"), str(m), "--executor", "local"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HPC_FED_PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "sweep tiny: 2 entries, 2 process(es) each, 2 at a time" in proc.stdout
    for method in ("FedAvg", "FedProx"):
        res = json.loads((tmp_path / f"bench/memes/missing-beta0.5/{method}/seed0/results.json").read_text())
        assert res["world_size"] == 2 and res["tags"]["method"] == method
    table = (tmp_path / "bench/report/results.md").read_text()
    assert "FedProx" in table and "FedAvg" in table
    again = cli("sweep", str(m), "--executor", "local")
    assert again.returncode == 0 and "0 done, 2 skipped (already done), 0 failed" in again.stdout


def test_a_job_list_hpc_fed_did_not_write_is_refused_before_anything_is_submitted(tmp_path):
    folder = tmp_path / "submitit"  # --folder naming a folder with a user's sweep.json
    folder.mkdir()
    (folder / "sweep.json").write_text('{"my": "notes"}')
    with pytest.raises(UsageError, match="sweep.json exists and is not a file hpc_fed wrote"):
        submit(SimpleNamespace(nodes=1, detach=True), None, SimpleNamespace(name="m"), [], [],
               folder, tmp_path / "report", 1)
    assert (folder / "sweep.json").read_text() == '{"my": "notes"}'
