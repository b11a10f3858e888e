"""`hpc-fed sweep`: submitit's task environment, and the local executor through the one local
runner (the real SLURM runs are in test_slurm.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

from cli_helpers import ROOT, cli, tiny_matrix

from hpc_fed.launch.sweep import submit, torch_env


def test_torch_env_of_a_submitit_task():
    env = torch_env(global_rank=3, local_rank=1, world=4, nodes=2, first_host="node1", job_id="17_2")
    assert env == {**env, "RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2",
                   "MASTER_ADDR": "node1"}
    assert env["MASTER_PORT"] == torch_env(0, 0, 4, 2, "node1", "17_2")["MASTER_PORT"]
    assert torch_env(0, 0, 2, 1, "n", "5")["MASTER_ADDR"] == "127.0.0.1"


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


def test_a_job_list_hpc_fed_did_not_write_is_refused_before_anything_is_submitted(tmp_path, capsys):
    folder = tmp_path / "submitit"  # --folder naming a folder with a user's sweep.json
    folder.mkdir()
    (folder / "sweep.json").write_text('{"my": "notes"}')
    assert submit(SimpleNamespace(nodes=1, detach=True), None, SimpleNamespace(name="m"), [], [],
                  folder, tmp_path / "report", 1) == 2
    assert "sweep.json exists and is not a file hpc_fed wrote" in capsys.readouterr().err
    assert (folder / "sweep.json").read_text() == '{"my": "notes"}'
