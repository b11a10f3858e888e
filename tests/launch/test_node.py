"""`hpc-fed launch` on one node or several (torchrun), its checks before any process starts, and
the launchers/ scripts that wrap it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest
from cli_helpers import QUICK, ROOT, TINY

from hpc_fed.launch.node import torchrun_command


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_command_shapes():
    one = torchrun_command(4, ["--config", "c.yaml", "fed.rounds=3"])
    assert one[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert one[-7:] == ["--nproc-per-node=4", "--max-restarts=0", "-m", "hpc_fed.train", "--config",
                        "c.yaml", "fed.rounds=3"]
    two = torchrun_command(2, [], nnodes=2, rdzv_endpoint="h0:29500", rdzv_id="r")
    assert "--standalone" not in two
    assert two[3:11] == ["--nnodes", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint", "h0:29500",
                         "--rdzv-id", "r"]


@pytest.mark.parametrize("nproc,gpus,ok", [(2, 2, True), (3, 2, False), (4, 0, True)])
def test_more_ranks_than_gpus_is_refused_before_any_process(monkeypatch, capsys, tmp_path, nproc, gpus,
                                                           ok):
    from hpc_fed import cli

    monkeypatch.setattr("hpc_fed.distributed.backend.visible_gpus", lambda: gpus)
    execs = []
    monkeypatch.setattr("hpc_fed.launch.node.launch",
                        lambda args, run_dir, train_args: execs.append(train_args) or 0)
    rc = cli.main(["launch", "--nproc", str(nproc), "--config", QUICK, f"output.dir={tmp_path}/run"])
    err = capsys.readouterr().err
    if ok:
        assert rc == 0 and len(execs) == 1
    else:
        assert rc == 2 and not execs
        assert err.count("\n") == 1 and "3 processes on this node but 2 visible GPU(s)" in err
        assert "--nproc 2" in err and "distributed.device=cpu" in err
    # a CPU run on a GPU machine, asked for explicitly, starts whatever the GPU count
    execs.clear()
    assert cli.main(["launch", "--nproc", str(nproc), "--config", QUICK, f"output.dir={tmp_path}/run",
                     "distributed.device=cpu"]) == 0 and len(execs) == 1


def test_multi_node_needs_a_rendezvous(capsys):
    from hpc_fed import cli

    assert cli.main(["launch", "--nnodes", "2", "--nproc", "1", "--config", QUICK]) == 2
    assert "--rdzv-endpoint HOST:PORT" in capsys.readouterr().err


def test_launchers_are_documented_executable_scripts():
    scripts = sorted((ROOT / "launchers").glob("*.sh"))
    assert [p.name for p in scripts] == ["multi_node.sh", "single_node.sh", "sweep.sh"]
    for path in scripts:
        assert os.access(path, os.X_OK), path
        assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
        usage = subprocess.run([str(path), "--help"], capture_output=True, text=True, cwd=ROOT)
        assert usage.returncode == 2 and f"launchers/{path.name}" in usage.stdout  # usage from the header


def test_two_nodes_on_localhost_through_launchers_multi_node(tiny_model_dir, tmp_path):
    """launchers/multi_node.sh started twice, as on two hosts: one world of 2 ranks."""
    out, port = tmp_path / "run", _free_port()
    procs, logs = [], [tmp_path / "node0.log", tmp_path / "node1.log"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NNODES": "2", "HEAD": "127.0.0.1", "PORT": str(port),
           "NPROC": "1", "RUN_ID": "two-nodes", "HPC_FED_PYTHON": sys.executable}
    try:
        for node in (0, 1):
            cmd = [str(ROOT / "launchers/multi_node.sh"), QUICK, f"model.path={tiny_model_dir}", *TINY,
                   f"output.dir={out}"]
            with open(logs[node], "w") as log:
                procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env))
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


@pytest.mark.parametrize("user_threads", [None, "3"])
def test_launch_gives_the_workers_their_threads_and_leaves_its_environment(tmp_path, monkeypatch,
                                                                           user_threads):
    """The real torchrun agent, in this process, on 2 ranks of a module that writes its environment:
    each rank gets cores / 2 threads (or the user's), and this process's os.environ is as before
    (a command that launches several runs, like `hpc-fed bench`, must not pass one run's threads
    on to the next)."""
    from hpc_fed.launch import threads
    from hpc_fed.launch.node import launch

    (tmp_path / "env_dump.py").write_text(
        "import json, os, sys\n"
        "keys = ('OMP_NUM_THREADS', 'HPC_FED_STOP_FILE')\n"
        "with open(os.path.join(sys.argv[1], f\"env{os.environ['RANK']}.json\"), 'w') as f:\n"
        "    json.dump({k: os.environ.get(k) for k in keys}, f)\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.delenv("HPC_FED_STOP_FILE", raising=False)
    if user_threads:
        monkeypatch.setenv("OMP_NUM_THREADS", user_threads)
    else:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cpus", lambda: 8)
    before = dict(os.environ)
    args = SimpleNamespace(nproc=2, nnodes=1, rdzv_endpoint=None, rdzv_id="env-test", max_restarts=0)
    assert launch(args, tmp_path / "run", [str(tmp_path)], module="env_dump") == 0
    assert dict(os.environ) == before
    seen = [json.loads((tmp_path / f"env{r}.json").read_text()) for r in (0, 1)]
    assert [s["OMP_NUM_THREADS"] for s in seen] == [user_threads or "4"] * 2
    assert all(s["HPC_FED_STOP_FILE"] for s in seen)  # the workers still get the stop file
