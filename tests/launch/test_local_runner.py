"""The one local runner (hpc-fed benchmark --local, hpc-fed sweep --executor local): skips,
failures, concurrency, commands (fake entries, no training)."""

from __future__ import annotations

import json
import sys

import pytest
from matrix_helpers import FULL, SMALL, write_matrix

from hpc_fed.benchmark.matrix import expand
from hpc_fed.errors import HpcFedError
from hpc_fed.launch import benchmark, local, threads
from hpc_fed.runtime.owned import claim


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The 244-entry matrix (expanded once: validation loads ~120 run configs)."""
    return expand(write_matrix(tmp_path_factory.mktemp("full"), FULL))


def _done(entry, accuracy=0.5):
    claim(entry.run_dir, "run", what="output.dir")  # as a run (or the runner) marks it
    entry.results_path.write_text(json.dumps({"final": {"accuracy": accuracy}}))


@pytest.fixture
def fake_runs(monkeypatch):
    """command_for -> a python one-liner that writes results.json, or fails for beta0.5/seed0."""
    calls = []

    def fake(entry, base, nproc):
        calls.append((entry.index, nproc))
        if entry.name == "d/missing-beta0.5/FedAvg/seed0":
            code = "import sys; print('boom: out of memory'); sys.exit(3)"
        else:
            code = (f"import json, pathlib; print('training'); pathlib.Path({str(entry.results_path)!r})"
                    f".write_text(json.dumps({{'final': {{'accuracy': 0.{entry.index + 1}}}}}))")
        return [sys.executable, "-c", code]

    monkeypatch.setattr(local, "command_for", fake)
    return calls


def test_local_runner_skips_continues_and_summarises(tmp_path, capsys, fake_runs):
    path = write_matrix(tmp_path, SMALL)
    m = expand(path)
    _done(m.entries[1])
    assert benchmark.main([str(path), "--local"]) == 1
    out = capsys.readouterr().out
    assert [i for i, _ in fake_runs] == [0, 2, 3] and all(n == 1 for _, n in fake_runs)
    assert "[1/4] d/missing-beta0.3/FedAvg/seed0 ... done" in out and "accuracy 0.100" in out
    assert "[2/4] d/missing-beta0.3/FedAvg/seed1 ... skipped (done" in out
    assert "[3/4] d/missing-beta0.5/FedAvg/seed0 ... FAILED" in out and "exit code 3" in out
    assert "boom: out of memory" in out and str(m.entries[2].log_path) in out
    assert "[4/4] d/missing-beta0.5/FedAvg/seed1 ... done" in out and "accuracy 0.400" in out
    assert "2 done, 1 skipped (already done), 1 failed" in out
    assert "training" in m.entries[0].log_path.read_text()
    assert not m.entries[2].done
    # rerun: the done ones are skipped, the failed one runs again (and fails again)
    fake_runs.clear()
    assert benchmark.main([str(path)]) == 1
    assert [i for i, _ in fake_runs] == [2]
    # --index of a done entry skips it unless --force
    fake_runs.clear()
    assert benchmark.main([str(path), "--index", "0"]) == 0
    assert fake_runs == [] and "skipped" in capsys.readouterr().out
    assert benchmark.main([str(path), "--index", "0", "--force", "--nproc", "2"]) == 0
    assert fake_runs == [(0, 2)]


def test_jobs_run_entries_at_once_and_share_the_cores(tmp_path, capsys, monkeypatch):
    """Each fake entry waits (up to 20 s) for a file the other one writes: only overlap passes."""
    path = write_matrix(tmp_path, SMALL)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cpus", lambda: 8)

    def fake(entry, base, nproc):
        me, other = tmp_path / f"started{entry.index}", tmp_path / f"started{1 - entry.index}"
        code = (f"import json, os, pathlib, time; pathlib.Path({str(me)!r}).touch()\n"
                f"for _ in range(200):\n    if pathlib.Path({str(other)!r}).exists(): break\n"
                f"    time.sleep(0.1)\nelse: raise SystemExit('ran alone')\n"
                f"pathlib.Path({str(entry.results_path)!r}).write_text(json.dumps("
                f"{{'final': {{'threads': int(os.environ['OMP_NUM_THREADS'])}}}}))")
        return [sys.executable, "-c", code]

    monkeypatch.setattr(local, "command_for", fake)
    assert benchmark.main([str(path), "--only", "*beta0.3*", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 at a time" in out and "2 done, 0 skipped (already done), 0 failed" in out
    m = expand(path)
    for e in m.entries[:2]:  # 8 cores / (2 jobs x 1 process)
        assert json.loads(e.results_path.read_text())["final"]["threads"] == 4


def test_exit_zero_without_results_is_a_failure(tmp_path, capsys, monkeypatch):
    path = write_matrix(tmp_path, SMALL)
    monkeypatch.setattr(local, "command_for", lambda entry, base, nproc: [sys.executable, "-c", "pass"])
    assert benchmark.main([str(path), "--only", "*beta0.3*seed0"]) == 1
    out = capsys.readouterr().out
    assert "wrote no results.json" in out and "0 done, 0 skipped (already done), 1 failed" in out


def test_real_command_shapes(full):
    e = full.entries[0]
    cmd = local.command_for(e, full.base, 2)
    assert cmd[:7] == [sys.executable, "-m", "hpc_fed.cli", "launch", "--nproc", "2", "--config"]
    assert cmd[7] == full.base and cmd[8:] == e.overrides
    assert local.command_for(e, full.base, 1)[:6] == [sys.executable, "-m", "hpc_fed.cli", "train",
                                                      "--config", full.base]


def test_each_running_entry_gets_its_own_gpus():
    assert local.gpu_slots(2, 2, ["0", "1", "2", "3"]) == [{"CUDA_VISIBLE_DEVICES": "0,1"},
                                                           {"CUDA_VISIBLE_DEVICES": "2,3"}]
    assert local.gpu_slots(1, 2, ["3", "5"]) == [{"CUDA_VISIBLE_DEVICES": "3"}, {"CUDA_VISIBLE_DEVICES": "5"}]
    assert local.gpu_slots(4, 3, []) == [{}, {}, {}]  # CPU: nothing to hand out
    with pytest.raises(HpcFedError, match=r"need 6 GPUs but 4 visible.*at most 1 at once"):
        local.gpu_slots(3, 2, ["0", "1", "2", "3"])


def test_gpus_handed_to_concurrent_entries_never_overlap(tmp_path, capsys, monkeypatch):
    path = write_matrix(tmp_path, SMALL)
    monkeypatch.setattr(local, "visible_gpu_ids", lambda: ["0", "1", "2", "3"])

    def fake(entry, base, nproc):
        code = (f"import json, os, pathlib, time; time.sleep(0.3); pathlib.Path({str(entry.results_path)!r})"
                f".write_text(json.dumps({{'final': {{}}, 'gpus': os.environ['CUDA_VISIBLE_DEVICES']}}))")
        return [sys.executable, "-c", code]

    monkeypatch.setattr(local, "command_for", fake)
    assert benchmark.main([str(path), "--jobs", "2", "--nproc", "2"]) == 0
    gpus = [json.loads(e.results_path.read_text())["gpus"] for e in expand(path).entries]
    assert sorted(set(gpus)) == ["0,1", "2,3"] and len(gpus) == 4
    monkeypatch.setattr(local, "visible_gpu_ids", lambda: ["0"])
    assert benchmark.main([str(path), "--jobs", "2", "--force"]) == 2
    assert "need 2 GPUs but 1 visible" in capsys.readouterr().err


def test_the_tiny_base_is_built_once_before_entries_run_side_by_side(tmp_path):
    """Two entries starting together used to build the same tiny model each (a pre-fit twice on
    shared cores, and a race for the folder); the runner builds it once first."""
    from types import SimpleNamespace

    from hpc_fed.launch.local import build_tiny_bases

    base = tmp_path / "base.yaml"
    base.write_text(f"model:\n  path: tiny\n  tiny:\n    dir: {tmp_path / 'tiny'}\n    prefit_steps: 0\n")
    matrix = SimpleNamespace(base=base)
    entries = [SimpleNamespace(overrides=[f"fed.seed={s}"]) for s in range(3)]
    entries.append(SimpleNamespace(overrides=["fed.rounds=oops"]))  # its own run reports it
    said = []
    build_tiny_bases(matrix, entries, said.append)
    assert (tmp_path / "tiny" / "config.json").is_file()
    assert said == [f"building the tiny model in {tmp_path / 'tiny'} once for all entries"]
    build_tiny_bases(matrix, entries, said.append)  # built: nothing to say or do
    assert len(said) == 1


def test_a_forced_rerun_replaces_a_finished_run_only_once_the_new_one_runs(tmp_path, capsys, monkeypatch):
    """--force passes output.overwrite=true and leaves results.json to the run: a rerun that fails
    before starting keeps the finished run, and one that exits 0 without a new results.json fails."""
    monkeypatch.setattr(local, "build_tiny_bases", lambda *args: None)  # no model is loaded
    path = write_matrix(tmp_path, SMALL)
    entry = expand(path).entries[0]
    _done(entry, accuracy=0.9)
    commands, real = [], local.command_for

    def fails_at_startup(entry, base, nproc):
        commands.append(real(entry, base, nproc))
        return [sys.executable, "-c", "raise SystemExit(2)"]

    monkeypatch.setattr(local, "command_for", fails_at_startup)
    assert benchmark.main([str(path), "--index", "0", "--force"]) == 1
    assert commands[0][-1] == "output.overwrite=true"
    assert json.loads(entry.results_path.read_text())["final"]["accuracy"] == 0.9
    monkeypatch.setattr(local, "command_for", lambda entry, base, nproc: [sys.executable, "-c", "pass"])
    assert benchmark.main([str(path), "--index", "0", "--force"]) == 1
    assert "wrote no results.json" in capsys.readouterr().out


def test_an_entry_folder_hpc_fed_did_not_write_fails_that_entry_untouched(tmp_path, capsys, fake_runs,
                                                                         monkeypatch):
    monkeypatch.setattr(local, "build_tiny_bases", lambda *args: None)  # no model is loaded
    path = write_matrix(tmp_path, SMALL)
    entry = expand(path).entries[0]
    entry.run_dir.mkdir(parents=True)
    (entry.run_dir / "log.txt").write_text("my own log")
    assert benchmark.main([str(path), "--only", "*beta0.3*seed0"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "holds files hpc_fed did not write" in out
    assert fake_runs == [] and [p.name for p in entry.run_dir.iterdir()] == ["log.txt"]
    assert (entry.run_dir / "log.txt").read_text() == "my own log"
