"""The run directory contract: written by rank 0 only, atomic JSON, stale results removed."""

from __future__ import annotations

import json

from hpc_fed.config import load_config
from hpc_fed.distributed.collectives import LocalComm
from hpc_fed.runtime.rundir import RunDir, resolve_dir


class NotMain(LocalComm):
    rank = 1


def test_rank_zero_writes_the_contract_files(tmp_path):
    cfg = load_config(None, [f"output.dir={tmp_path / 'run'}", "fed.rounds=3"])
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text("{}")  # a previous run's: must not pass as done
    run = RunDir.create(cfg, LocalComm())
    assert run.is_main and not (run.path / "results.json").exists()
    assert "rounds: 3" in (run.path / "config.yaml").read_text()
    run.append_metrics({"round": 0})
    run.append_metrics({"round": 1})
    run.write_json("results.json", {"final": {"accuracy": 0.5}})
    rows = [json.loads(x) for x in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert rows == [{"round": 0}, {"round": 1}]
    assert json.loads((run.path / "results.json").read_text())["final"]["accuracy"] == 0.5
    assert not list(run.path.glob(".*.tmp"))  # written through a temporary file, then renamed


def test_other_ranks_write_nothing(tmp_path):
    cfg = load_config(None, [f"output.dir={tmp_path / 'run'}"])
    run = RunDir.create(cfg, NotMain())
    run.write_json("results.json", {})
    run.append_metrics({"round": 0})
    assert not run.is_main and not (tmp_path / "run").exists()


def test_default_directory_is_timestamped_and_shared():
    cfg = load_config(None, [])
    path = resolve_dir(cfg, LocalComm())
    assert path.parent.name == "runs" and path.name.startswith("run-")
