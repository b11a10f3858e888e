"""Launch planning, `hpc-fed prepare`, the SLURM script's text, clean stops, multi-node torchrun on
localhost and `hpc-fed sweep` with submitit's local executor (no SLURM needed here; the real
cluster runs are in tests/test_slurm.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hpc_fed.distributed.collectives import LocalComm
from hpc_fed.errors import ConfigError
from hpc_fed.launch.plan import check_world, is_matrix, resolve
from hpc_fed.launch.sweep import torch_env
from hpc_fed.runtime.stop import StopRequest

ROOT = Path(__file__).resolve().parents[1]
QUICK = str(ROOT / "configs" / "quickstart.yaml")
SMOKE = str(ROOT / "configs" / "benchmark" / "smoke.yaml")
TINY = ["fed.rounds=1", "train.local_steps=2", "train.micro_batch_size=4", "data.max_train_samples=64",
        "data.max_test_samples=16", "eval.batch_size=16", "fed.sample_clients=2", "eval.initial=false",
        "output.save_adapter=false"]


def _cli(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "hpc_fed.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def tiny_matrix(tmp_path: Path, model_dir: str, nproc: int = 1) -> Path:
    """A 2-entry matrix (FedAvg and FedProx, memes, missing beta 0.5) on the tiny model."""
    spec = {"name": "tiny", "base": QUICK, "output_root": str(tmp_path / "bench"), "nproc": nproc,
            "overrides": [f"model.path={model_dir}", "data.name=easyvqa_memes", *TINY],
            "datasets": {"memes": []}, "scenarios": {"missing": {"key": "data.beta", "values": [0.5]}},
            "methods": {"FedAvg": ["fed.algorithm=fedavg"], "FedProx": ["fed.algorithm=fedprox"]}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


# --- plan: pure -----------------------------------------------------------------------------
def test_resolve_a_run_config_and_a_matrix_entry():
    spec = resolve(QUICK, None, ["fed.rounds=3"])
    assert spec.train_args() == ["--config", QUICK, "fed.rounds=3"] and spec.index is None
    entry = resolve(SMOKE, 1)
    assert entry.name == "memes/missing-beta0.5/FedAvg/seed0" and entry.index == 1
    assert entry.config.endswith("offline_base.yaml") and "data.beta=0.5" in entry.overrides
    assert is_matrix(Path(SMOKE)) and not is_matrix(Path(QUICK))


@pytest.mark.parametrize("config, index, needle", [
    ("configs/nope.yaml", None, "does not exist"),
    (SMOKE, None, "sbatch --array=0-2"),
    (SMOKE, 3, "out of range"),
    (QUICK, 0, "not a benchmark matrix"),
])
def test_resolve_errors_say_what_to_do(config, index, needle):
    with pytest.raises(ConfigError, match=needle):
        resolve(config, index)


def test_check_world_layouts():
    assert "4 client group(s) x 1 rank(s)" in check_world(1, 2, 2)
    assert "2 client group(s) x 2 rank(s)" in check_world(2, 2, 2)  # one group per node
    assert "1 client group(s) x 4 rank(s)" in check_world(4, 2, 2)  # a group of whole nodes
    with pytest.raises(ConfigError, match="fed.ranks_per_client .3. does not divide"):
        check_world(3, 1, 2)
    with pytest.raises(ConfigError, match="span nodes unevenly"):
        check_world(2, 2, 3)  # world 6 divides, but ranks 2,3 would sit on two nodes


def test_torch_env_of_a_submitit_task():
    env = torch_env(global_rank=3, local_rank=1, world=4, nodes=2, first_host="node1", job_id="17_2")
    assert env == {**env, "RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2",
                   "MASTER_ADDR": "node1"}
    assert env["MASTER_PORT"] == torch_env(0, 0, 4, 2, "node1", "17_2")["MASTER_PORT"]
    assert torch_env(0, 0, 2, 1, "n", "5")["MASTER_ADDR"] == "127.0.0.1"


# --- prepare: what slurm/benchmark.sh evals ---------------------------------------------------
def test_prepare_output_evals_to_the_train_arguments(tmp_path):
    script = ('set -euo pipefail; eval "$(' + f"{sys.executable} -m hpc_fed.cli prepare {SMOKE} "
              '--index 2 --nproc-per-node 2 \'eval.modalities=[full, no_text]\')"; '
              'printf "%s\\n" "$HPC_FED_NAME" "${HPC_FED_TRAIN_ARGS[@]}"')
    proc = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "memes/missing-beta0.5/FedAvg+prompt/seed0"
    assert lines[1:3] == ["--config", "configs/benchmark/offline_base.yaml"]
    assert "data.prompt=modality_agnostic" in lines and lines[-1] == "eval.modalities=[full, no_text]"
    assert "2 client group(s)" in proc.stderr


def test_prepare_exit_codes(tmp_path):
    bad = _cli("prepare", "configs/nope.yaml")
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
    world = _cli("prepare", QUICK, "fed.ranks_per_client=4", "--nproc-per-node", "2")
    assert world.returncode == 2 and "fed.ranks_per_client (4) does not divide" in world.stderr
    typo = _cli("prepare", QUICK, "fed.rnds=3")
    assert typo.returncode == 2 and "fed.rnds" in typo.stderr
    m = tiny_matrix(tmp_path, "unused")
    done = tmp_path / "bench/memes/missing-beta0.5/FedAvg/seed0/results.json"
    done.parent.mkdir(parents=True)
    done.write_text("{}")
    skip = _cli("prepare", str(m), "--index", "0")
    assert skip.returncode == 3 and "already done" in skip.stderr
    assert _cli("prepare", str(m), "--index", "0", "--force").returncode == 0


def test_slurm_script_shape():
    """The directives a cluster user relies on, and a syntax check of the whole script."""
    text = (ROOT / "slurm/benchmark.sh").read_text()
    directives = [line.split()[1] for line in text.splitlines() if line.startswith("#SBATCH")]
    assert directives[:3] == ["--job-name=hpc-fed", "--nodes=1", "--ntasks-per-node=1"]
    assert "--signal=B:USR2@180" in directives and "--output=slurm/logs/%x-%j.out" in directives
    for needle in ("--rdzv-backend c10d", 'hpc_fed.cli "${PREP[@]}"', "--kill-on-bad-exit=1",
                   "HPC_FED_STOP_FILE", "SLURM_ARRAY_TASK_ID"):
        assert needle in text
    assert subprocess.run(["bash", "-n", str(ROOT / "slurm/benchmark.sh")]).returncode == 0
    assert (ROOT / "slurm/logs").is_dir()  # sbatch does not create the --output directory


# --- a clean stop between rounds ----------------------------------------------------------------
def test_stop_request_by_file_and_by_signal(tmp_path):
    import signal

    stop_file = tmp_path / "stop"
    req = StopRequest(str(stop_file))
    assert not req.requested() and not req.agreed(LocalComm())
    stop_file.touch()
    assert req.requested() and req.agreed(LocalComm())
    previous = signal.getsignal(signal.SIGUSR2)
    try:
        req2 = StopRequest("")
        os.kill(os.getpid(), signal.SIGUSR2)
        assert req2.requested()
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_a_run_asked_to_stop_leaves_stopped_json_not_results(tiny_model_dir, tmp_path):
    stop_file, out = tmp_path / "stop", tmp_path / "run"
    stop_file.touch()
    proc = _cli("train", "--config", QUICK, f"model.path={tiny_model_dir}", *TINY, "fed.rounds=3",
                f"output.dir={out}", env={"HPC_FED_STOP_FILE": str(stop_file)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "stopped cleanly after round 1 of 3" in proc.stderr
    assert not (out / "results.json").exists()
    assert json.loads((out / "stopped.json").read_text())["stopped_after_round"] == 1
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1


# --- two torchrun agents on localhost form one world ------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_node_torchrun_on_localhost(tiny_model_dir, tmp_path):
    """`torchrun --nnodes 2 --node_rank {0,1} --rdzv-endpoint ...` as on two hosts: one world of 2."""
    out, port = tmp_path / "run", _free_port()
    procs, logs = [], [tmp_path / "node0.log", tmp_path / "node1.log"]
    try:
        for node in (0, 1):
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(node),
                   "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint",
                   f"127.0.0.1:{port}", "--rdzv-id", "two-nodes", "-m", "hpc_fed.train", "--config", QUICK,
                   f"model.path={tiny_model_dir}", *TINY, f"output.dir={out}"]
            with open(logs[node], "w") as log:
                procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                              env={**os.environ, "OMP_NUM_THREADS": "1"}))
        codes = [p.wait(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert codes == [0, 0], "\n".join(log.read_text()[-2000:] for log in logs)
    results = json.loads((out / "results.json").read_text())
    assert results["world_size"] == 2 and results["client_groups"] == 2
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert sorted(c["group"] for c in rows[0]["clients"]) == [0, 1]  # both "nodes" trained a client


# --- hpc-fed sweep with submitit's local executor --------------------------------------------
def test_sweep_local_executor_runs_the_matrix_skips_done_and_collects(tiny_model_dir, tmp_path):
    m = tiny_matrix(tmp_path, tiny_model_dir, nproc=2)  # each entry: 2 tasks joined by torch env
    listed = _cli("sweep", "--list", str(m))
    assert listed.returncode == 0 and "memes/missing-beta0.5/FedProx/seed0" in listed.stdout
    proc = _cli("sweep", str(m), "--executor", "local", "--timeout-min", "10", timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 entries to local (1 node(s) x 2 task(s) each, 2 at a time)" in proc.stdout
    for method in ("FedAvg", "FedProx"):
        res = json.loads((tmp_path / f"bench/memes/missing-beta0.5/{method}/seed0/results.json").read_text())
        assert res["world_size"] == 2 and res["tags"]["method"] == method
    table = (tmp_path / "bench/report/results.md").read_text()
    assert "FedProx" in table and "FedAvg" in table
    again = _cli("sweep", str(m), "--executor", "local")
    assert again.returncode == 0 and "all 2 entries are done; nothing to submit" in again.stdout
